"""How the toy kind creates a hub's credential, as the create verb drives it (verbs/create.Setup)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from provision.console import Reporter
from provision.errors import ProvisionError, UsageError
from provision.hubconfig import HubRegistry
from provision.verbs.create import Created, Handover
from provision.verbs.deliver import HubFiles

NAME = "toyreg"


@dataclass(frozen=True)
class ToyRequest:
    hub: str
    vault: str  # the credentials API
    registry: str  # the registry v2 server, http://127.0.0.1:PORT

    @property
    def host(self) -> str:
        return self.registry.split("://", 1)[1]


def registry_for(req: ToyRequest, *, username: str, password: str) -> HubRegistry:
    return HubRegistry(NAME, req.registry, username, f"{req.host}/toy/{req.hub}-", password=password)


class ToySetup:
    def __init__(self, req: ToyRequest) -> None:
        self.req = req
        self.cluster: str | None = None

    def validate(self) -> None:
        if not self.req.hub.isidentifier():
            raise UsageError(f"invalid hub name {self.req.hub!r}")

    def check(self, prepared: HubFiles, reporter: Reporter, *, dry_run: bool) -> None:
        """Nothing of the toy's own to check in the hub's files."""

    def run(self, handover: Handover, reporter: Reporter) -> Created:
        url = f"{self.req.vault}/v1/hubs/{self.req.hub}/credential"
        if requests.get(url, timeout=10).status_code == 200:
            raise ProvisionError(f"{self.req.hub} already has a credential; its password is shown only once")
        if handover.dry_run:
            return Created(registry_for(self.req, username=f"toy-{self.req.hub}", password=""))
        answer = requests.post(url, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        reporter.add_secret(body["password"])
        reporter.always(f"created the toy credential {body['username']}")
        return Created(registry_for(self.req, username=body["username"], password=body["password"]),
                       {"changes": [f"create credential {body['username']}"]})  # fmt: skip
