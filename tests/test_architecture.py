"""The import graph of src/provision follows the layers of ../shared/STYLE.md, and start-up stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "provision"
SYSTEM = {"terraform", "sops", "registry"}
PURE = {"hubconfig", "plan", "names", "clusterrepo", "files", "secretcheck", "fleetconfig"}
# shared mechanisms importing errors at most
LEAVES = {"files", "httpretry", "hostlimit", "childenv", "endpoints", "answers"}
# module (or layer) -> provision modules it may import; "provision" (the root, __version__ only) is always allowed
ALLOWED: dict[str, set[str]] = {
    "cli": {"cli", "verbs", "registries", "hubfiles", "doctor", "console", "errors", "names", "hubconfig", "plan",
            "files", "fleetconfig"},
    # the kind-independent verbs, driving the kinds through their interface
    "verbs": SYSTEM | PURE | LEAVES | {"console", "errors", "registries", "hubfiles"},
    # each registry kind's package: its client, flows and rules, over the libraries
    "registries": SYSTEM | PURE | LEAVES | {"console", "errors", "hubfiles", "verbs"},
    "hubfiles": SYSTEM | PURE | LEAVES | {"console", "errors"},
    # doctor asks the registry kinds (their doctor block) what differs between them
    "doctor": PURE | LEAVES | {"console", "errors", "hubfiles", "registries"},
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
    return rel.parts[0] if len(rel.parts) > 1 else rel.name  # a package is one layer


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
    if path.name == "__init__.py" and not path.read_text().strip():
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
    (as doctor's file loading and merging moved to hubfiles/cluster.py for fleet)."""
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


def _module_name(path: Path) -> str:
    """`src/provision/doctor/hub.py` → `provision.doctor.hub`; a package's `__init__.py` → the package."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _import_edges(path: Path, known: set[str]) -> set[str]:
    """Every provision module `path` imports, wherever the import is (functions, TYPE_CHECKING blocks included):
    `import a.b` → a.b, `from pkg import mod` → pkg.mod when mod is a module, else pkg."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            edges.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            edges.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return edges & known


def _import_graph() -> dict[str, set[str]]:
    known = {_module_name(path) for path in MODULES}
    return {_module_name(path): _import_edges(path, known) for path in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """The strongly connected components with a cycle (Tarjan): each one's modules, and one cycle through them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[str] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1 or node in graph[node]:
                cycle = " -> ".join(_closed_path(graph, set(component)))
                found.append(f"{', '.join(sorted(component))} (e.g. {cycle})")

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _closed_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One cycle through the component's first module (breadth-first, so the shortest), ending where it starts."""
    start = min(component)
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for target in sorted(graph[path[-1]] & component):
            if target == start:
                return [*path, start]
            if target not in path:
                paths.append([*path, target])
    return sorted(component)  # unreachable: a component with a cycle has one through each of its modules


def test_no_import_cycles() -> None:
    """No module imports, even only for type checking, a module that imports it back (issue 19: the doctor's rules
    never import the driver)."""
    cycles = _cycles(_import_graph())
    assert not cycles, "modules importing each other:\n" + "\n".join(cycles)


# The folders whose modules drive the registry kinds through RegistryKind and must not name a kind themselves.
# `verbs` joins once its last kind names are gone (issue 19).
KIND_BLIND_FOLDERS = ("doctor", "verbs")


def _kind_names() -> set[str]:
    from provision.registries import KINDS

    return {kind.name for kind in KINDS}


def _kind_name_uses(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """String constants equal to a kind's name in a comparison (`kind == "quay"`, `kind in ("quay", …)`), as a
    dict key, a subscript or a match case: the places a module branches on a kind by its name."""
    places: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            places += [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            places += [key for key in node.keys if key is not None]
        elif isinstance(node, ast.Subscript):
            places.append(node.slice)
        elif isinstance(node, ast.MatchValue):
            places.append(node.value)
    return sorted(
        (const.lineno, const.value)
        for place in places
        for const in ast.walk(place)
        if isinstance(const, ast.Constant) and const.value in names
    )


@pytest.mark.parametrize("folder", KIND_BLIND_FOLDERS)
def test_verbs_and_doctor_name_no_kind(folder: str) -> None:
    names = _kind_names()
    found = [
        f"{path.relative_to(SRC)}:{line}: {value!r}"
        for path in sorted((SRC / folder).rglob("*.py"))
        for line, value in _kind_name_uses(ast.parse(path.read_text()), names)
    ]
    assert not found, "kind names compared or used as keys (ask the RegistryKind instead):\n" + "\n".join(found)


def test_doctor_rules_never_import_the_driver() -> None:
    """Issue 19: the rule families get a view and a findings collector; clusters.py and hub.py run them."""
    graph = _import_graph()
    driver = {"provision.doctor", "provision.doctor.clusters", "provision.doctor.hub"}
    for module, imported in graph.items():
        if module.startswith("provision.doctor.") and module.endswith("_rules"):
            assert not imported & driver, f"{module} imports {imported & driver}"


@pytest.mark.parametrize("folder", KIND_BLIND_FOLDERS)
def test_verbs_and_doctor_reach_the_kinds_only_through_their_interface(folder: str) -> None:
    """Issue 19: a verb (or doctor) imports `provision.registries` (the list of kinds) and `registries.base` (the
    interface), never a kind's own package: adding a kind touches no verb."""
    allowed = {"provision.registries", "provision.registries.base"}
    graph = _import_graph()
    found = [
        f"{module} imports {sorted(reached)}"
        for module, imported in sorted(graph.items())
        if module.startswith(f"provision.{folder}")
        and (reached := {m for m in imported if m.startswith("provision.registries")} - allowed)
    ]
    assert not found, "\n".join(found)
