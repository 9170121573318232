"""A fleet's settings in one small file at the repository root (`provision.toml`): the values that are the same on
every run of a fleet (Quay organization and whether it is shared, e-mail, members, team; Docker Hub namespace;
terraform folder), so that a run names only its cluster and hub. Options given on the command line win.

Validated strictly: an unknown table or key, or a value of the wrong type, is a usage error naming the file and the
key, never ignored (a typo would otherwise silently fall back to a default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import UsageError

FILE_NAME = "provision.toml"


@dataclass(frozen=True)
class QuaySettings:
    org: str | None = None
    shared_org: bool | None = None
    email: str | None = None
    members: tuple[str, ...] = ()
    team: str | None = None
    api_url: str | None = None


@dataclass(frozen=True)
class DockerHubSettings:
    namespace: str | None = None


@dataclass(frozen=True)
class GcpSettings:
    terraform_dir: str | None = None


@dataclass(frozen=True)
class FleetConfig:
    path: Path | None = None
    quay: QuaySettings = field(default_factory=QuaySettings)
    dockerhub: DockerHubSettings = field(default_factory=DockerHubSettings)
    gcp: GcpSettings = field(default_factory=GcpSettings)


# table -> key -> (expected type, its name in messages)
SCHEMA: dict[str, dict[str, tuple[type, str]]] = {
    "quay": {"org": (str, "a string"), "shared_org": (bool, "true or false"), "email": (str, "a string"),
             "members": (list, "a list of strings"), "team": (str, '"owners" or "creator"'),
             "api_url": (str, "a string")},
    "dockerhub": {"namespace": (str, "a string")},
    "gcp": {"terraform_dir": (str, "a string")},
}  # fmt: skip
TEAMS = ("owners", "creator")


def load(root: Path | None) -> FleetConfig:
    """The settings of `root/provision.toml`; empty settings when there is no root or no such file."""
    if root is None or not (root / FILE_NAME).is_file():
        return FleetConfig()
    path = root / FILE_NAME
    return parse(_read(path), path=path)


def _read(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML ({exc})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror})") from None


def parse(data: dict[str, Any], *, path: Path) -> FleetConfig:
    """Settings from parsed TOML. Raises UsageError for an unknown table or key, or a value of the wrong type."""
    for table, values in data.items():
        if table not in SCHEMA:
            raise UsageError(f"{path}: unknown table [{table}] (known: {', '.join(f'[{t}]' for t in SCHEMA)})")
        if not isinstance(values, dict):
            raise UsageError(f"{path}: {table} must be a table ([{table}])")
        for key, value in values.items():
            _check(path, table, key, value)
    quay = data.get("quay", {})
    return FleetConfig(
        path=path,
        quay=QuaySettings(quay.get("org"), quay.get("shared_org"), quay.get("email"), tuple(quay.get("members", ())),
                          quay.get("team"), quay.get("api_url")),  # fmt: skip
        dockerhub=DockerHubSettings(data.get("dockerhub", {}).get("namespace")),
        gcp=GcpSettings(data.get("gcp", {}).get("terraform_dir")),
    )


def _check(path: Path, table: str, key: str, value: Any) -> None:
    known = SCHEMA[table]
    if key not in known:
        raise UsageError(f"{path}: unknown key {table}.{key} (known in [{table}]: {', '.join(known)})")
    expected, words = known[key]
    wrong = not isinstance(value, expected) or (expected is not bool and isinstance(value, bool))
    if expected is list:
        wrong = wrong or not all(isinstance(v, str) for v in value)
    if key == "team" and not wrong:
        wrong = value not in TEAMS
    if wrong:
        raise UsageError(f"{path}: {table}.{key} must be {words}")
