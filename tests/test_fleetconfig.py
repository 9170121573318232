"""provision.toml, the fleet's settings (issue 21): read and validated strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.errors import UsageError
from provision.fleetconfig import FleetConfig, load

VALID = """\
# the fleet's Quay organization, shared by every hub
[quay]
org = "2i2c"
shared_org = true
email = "ops@example.org"
members = ["alice", "bob"]
team = "creator"

[dockerhub]
namespace = "myorg"

[gcp]
terraform_dir = "terraform/gcp"
"""


def test_a_valid_file_gives_every_setting(tmp_path: Path) -> None:
    (tmp_path / "provision.toml").write_text(VALID)
    config = load(tmp_path)
    assert config.path == tmp_path / "provision.toml"
    assert (config.quay.org, config.quay.shared_org, config.quay.members, config.quay.team) == (
        "2i2c", True, ("alice", "bob"), "creator",
    )  # fmt: skip
    assert config.dockerhub.namespace == "myorg" and config.gcp.terraform_dir == "terraform/gcp"


def test_no_file_or_no_repository_means_no_settings(tmp_path: Path) -> None:
    assert load(tmp_path) == FleetConfig() == load(None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[quay]\norganization = "x"\n', "unknown key quay.organization (known in [quay]: org, shared_org"),
        ('[harbor]\nurl = "x"\n', "unknown table [harbor]"),
        ('[quay]\nshared_org = "yes"\n', "quay.shared_org must be true or false"),
        ("[quay]\norg = 3\n", "quay.org must be a string"),
        ('[quay]\nmembers = "alice"\n', "quay.members must be a list of strings"),
        ('[quay]\nteam = "admins"\n', 'quay.team must be "owners" or "creator"'),
        ('quay = "x"\n', "quay must be a table"),
        ("[quay\n", "is not valid TOML"),
    ],
)
def test_a_wrong_file_is_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "provision.toml").write_text(text)
    with pytest.raises(UsageError) as err:
        load(tmp_path)
    assert message in str(err.value) and str(tmp_path / "provision.toml") in str(err.value)


def test_a_binary_file_is_refused_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "provision.toml").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(UsageError, match="not UTF-8"):
        load(tmp_path)
