"""Which backend a folder is set up for and which one a run asks for (pure, on files), and the init between them."""

from __future__ import annotations

import json
from pathlib import Path

from provision.terraform.backends import (
    Backend,
    asks_to_migrate,
    declared_backend,
    migration_hint,
    plan_init,
    requested_backend,
    stored_backend,
)


def _store(folder: Path, kind: str, config: dict[str, object]) -> None:
    (folder / ".terraform").mkdir(exist_ok=True)
    (folder / ".terraform" / "terraform.tfstate").write_text(json.dumps({"backend": {"type": kind, "config": config}}))


def test_declared_and_stored_backend(tmp_path: Path) -> None:
    assert declared_backend(tmp_path) == Backend("local", {})  # no backend block: local
    (tmp_path / "main.tf").write_text('terraform {\n  backend "gcs" {}\n}\n')
    assert declared_backend(tmp_path) == Backend("gcs", {})  # partial configuration, read without hcl2
    (tmp_path / "main.tf").write_text('terraform {\n  backend "gcs" {\n    bucket = "b"\n    prefix = "p"\n  }\n}\n')
    declared = declared_backend(tmp_path)
    assert declared == Backend("gcs", {"bucket": "b", "prefix": "p"})
    assert stored_backend(tmp_path) is None
    (tmp_path / ".terraform").mkdir()
    stored = '{"backend": {"type": "gcs", "config": {"bucket": "other", "prefix": "p", "credentials": "SECRET"}}}'
    (tmp_path / ".terraform" / "terraform.tfstate").write_text(stored)
    found = stored_backend(tmp_path)
    assert found is not None and not found.same_as(declared)
    assert found.describe() == "gcs (bucket=other, prefix=p)"  # never the credentials
    (tmp_path / "cloud.tf").write_text('terraform {\n  cloud {\n    organization = "o"\n  }\n}\n')
    (tmp_path / "main.tf").unlink()
    assert declared_backend(tmp_path) is None


def test_the_local_backends_default_paths_written_out_are_the_same_backend() -> None:
    assert Backend("local", {"path": "terraform.tfstate", "workspace_dir": "terraform.tfstate.d/"}).same_as(
        Backend("local", {"path": None})
    )
    assert not Backend("local", {"workspace_dir": "states/main"}).same_as(Backend("local", {}))
    assert not Backend("gcs", {"path": "terraform.tfstate"}).same_as(Backend("gcs", {}))


def test_requested_backend_puts_the_settings_on_the_modules_block(tmp_path: Path) -> None:
    settings = tmp_path / "cloudbank.hcl"
    settings.write_text('bucket = "cloudbank-state"\n# a comment\nprefix = "terraform/state"\n')
    declared = Backend("gcs", {"bucket": "main-state"})
    found = requested_backend(declared, [str(settings), "impersonate_service_account=sa@p.iam"])
    assert found == Backend(
        "gcs", {"bucket": "cloudbank-state", "prefix": "terraform/state", "impersonate_service_account": "sa@p.iam"}
    )
    assert requested_backend(None, ["bucket=b"]) is None  # a `cloud` block: unknown
    settings.write_bytes(b"\xff\xfe not text")
    assert requested_backend(declared, [str(settings)]) is None


def test_init_reconfigures_only_when_the_folder_records_another_backend(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    assert plan_init(tmp_path) == plan_init(tmp_path, ()) and not plan_init(tmp_path).reconfigure  # nothing stored
    _store(tmp_path, "local", {"path": None, "workspace_dir": None})
    # Issue 18: the settings the folder already records: a plain init, without the settings (passing them without
    # -reconfigure makes the engine compare hashes and ask to migrate; with -reconfigure it asks too).
    same = plan_init(tmp_path, ["workspace_dir=terraform.tfstate.d"])
    assert (same.backend_configs, same.reconfigure) == ((), False)
    assert "already set up for local (default settings)" in same.why
    other = plan_init(tmp_path, ["workspace_dir=states/cloudbank"])
    assert (other.backend_configs, other.reconfigure) == (("workspace_dir=states/cloudbank",), True)
    _store(tmp_path, "local", {"workspace_dir": "states/cloudbank"})
    back = plan_init(tmp_path)
    assert (back.backend_configs, back.reconfigure) == ((), True) and "earlier init" in back.why


def test_the_migration_question_is_explained_with_the_safe_command(tmp_path: Path) -> None:
    assert asks_to_migrate(["Error asking for state migration action: input is disabled"])
    assert not asks_to_migrate(["Error: Backend configuration changed"])
    (tmp_path / "main.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    same_place = migration_hint(tmp_path, "tofu", plan_init(tmp_path))
    assert "which is the same local folder" in same_place and "Nothing was changed" in same_place
    assert f"`tofu -chdir={tmp_path} init -input=false -force-copy`" in same_place
    elsewhere = migration_hint(tmp_path, "tofu", plan_init(tmp_path, ["workspace_dir=states/main"]))
    assert "overwriting states of the same names there" in elsewhere and "-force-copy" not in elsewhere
    assert f"`tofu -chdir={tmp_path} init -backend-config=workspace_dir=states/main -migrate-state`" in elsewhere
