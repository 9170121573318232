"""How the toy kind removes a hub's credential, as the remove verb drives it (verbs/remove.RemoteSide)."""

from __future__ import annotations

import requests

from provision import httpretry
from provision.console import Reporter
from provision.hubconfig import Chart
from provision.hubfiles.removal_target import RemovalTarget
from provision.plan import Change
from provision.verbs.remove import RemotePlan
from tests.toykind.setup import ToyRequest, registry_for


class ToyRemoval:
    destroys_data = False
    deadline = 30.0

    def __init__(self, req: ToyRequest) -> None:
        self.req = req
        self.hub = req.hub
        self.url = f"{req.vault}/v1/hubs/{req.hub}/credential"

    def validate(self) -> None:
        """The hub name was checked when the credential was made; nothing else is given."""

    def target(self, chart: Chart) -> RemovalTarget:
        return RemovalTarget(registry_for(self.req, username=f"toy-{self.hub}", password=""), chart, pull_hosts=())

    def read(self, reporter: Reporter, *, clock: httpretry.Deadline, dry_run: bool) -> RemotePlan:
        if requests.get(self.url, timeout=clock.remaining()).status_code == 404:
            return RemotePlan(present=(f"no toy credential for {self.hub}",))
        return RemotePlan((Change("delete_credential", "delete", f"toy credential toy-{self.hub}"),))

    def apply(self, change: Change) -> None:
        requests.delete(self.url, timeout=10).raise_for_status()

    def close(self) -> None:
        """No connection is kept."""
