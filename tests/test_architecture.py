"""The import graph of src/provision follows the layers of ../shared/STYLE.md, and start-up stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "provision"
SYSTEM = {"quay", "terraform", "tfvars", "tflocals", "sops", "registry", "dockerhub", "gcp"}
PURE = {"hubconfig", "plan", "names", "clusterrepo", "files", "tfplan", "secretcheck"}
# shared mechanisms importing errors at most
LEAVES = {"files", "httpretry", "hostlimit", "childenv", "endpoints", "answers"}
# module (or layer) -> provision modules it may import; "provision" (the root, __version__ only) is always allowed
ALLOWED: dict[str, set[str]] = {
    "cli": {"cli", "flows", "console", "errors", "names", "hubconfig", "plan", "files"},
    "flows": SYSTEM | PURE | LEAVES | {"console", "errors"},
    "console": {"plan", "errors"},
    "errors": set(),
    "__main__": {"cli"},
    "__init__": {"_version"},  # setuptools-scm writes _version.py at install time
    # files (atomic writes, diffs) and httpretry (the HTTP retry loop) are leaves any module may use.
    **{name: {"errors"} | LEAVES for name in SYSTEM},
    **{name: {"errors"} | LEAVES for name in PURE},
    "httpretry": {"errors"},
    "hostlimit": set(),
    "childenv": set(),
    "endpoints": {"errors"},
    "answers": {"errors"},
}
HEAVY = ("requests", "urllib3", "ruamel", "hcl2", "google", "jsonschema")


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    return rel.parts[0] if rel.parts[0] in ("flows", "cli") else rel.name


def _provision_imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for mod in mods:
            parts = mod.split(".")
            if parts[0] == "provision" and len(parts) > 1 and (SRC / parts[1]).with_suffix(".py").exists():
                found.add(parts[1])
            elif parts[0] == "provision" and len(parts) > 1 and (SRC / parts[1]).is_dir():
                found.add(parts[1])
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if p.name != "_version.py")  # _version.py: generated


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_go_down(path: Path) -> None:
    layer = _layer(path)
    assert layer in ALLOWED, f"{path.name}: new module, add its layer to this test"
    imported = _provision_imports(ast.parse(path.read_text())) - {layer}
    assert imported <= ALLOWED[layer], f"{path.relative_to(SRC)} imports {imported - ALLOWED[layer]}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_every_module_has_docstring_and_future_annotations(path: Path) -> None:
    tree = ast.parse(path.read_text())
    if path.name == "__init__.py" and path.parent.name == "flows":
        return
    assert ast.get_docstring(tree), f"{path.name} lacks its one-line role"
    if path.name != "__init__.py":
        assert "from __future__ import annotations" in path.read_text()


def test_no_print_or_exit_outside_cli_and_console() -> None:
    for path in MODULES:
        if path.parent.name == "cli" or path.name == "console.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"print() in {path.name}"
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert (node.value.id, node.attr) not in {("sys", "exit"), ("typer", "Exit")}, path.name


def test_cli_start_up_imports_nothing_heavy() -> None:
    """`provision --help` and shell completion import the CLI only: no HTTP, YAML or cloud libraries."""
    code = "import sys, provision.cli; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_use_each_others_public_names_only(path: Path) -> None:
    """A name with a leading underscore is its module's own: another module needing it gets a public home for it
    (as doctor's file loading and merging moved to flows/clusterfiles.py for fleet)."""
    tree = ast.parse(path.read_text())
    modules: set[str] = set()  # local names bound to provision modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "provision":
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                assert not private, f"{path.relative_to(SRC)} imports {node.module}.{alias.name}"
                target = SRC.joinpath(*node.module.split(".")[1:], alias.name)
                if target.with_suffix(".py").exists() or target.is_dir():
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update(a.asname for a in node.names if a.name.startswith("provision.") and a.asname)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            assert not private, f"{path.relative_to(SRC)} uses {node.value.id}.{node.attr}"
