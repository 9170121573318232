"""Which resources of a terraform plan belong to which hubs' registries: pure analysis of `show -json` output.

A hub's name also keys resources that are not its registry (2i2c keys home-directory disks, snapshot schedules
and workload service accounts by hub name, ../shared/facts/terraform.md §6), so ownership is decided from the
module's configuration, not from key text: a resource belongs to the registries when its `for_each` derives
from `var.container_repos`, directly or through another such resource (2i2c's keys iterate over
`google_service_account.registry_sa`), a local (expressions read by hcl_locals: `show -json` lacks them), a
module input or module `for_each`. Only then does its instance key name the hub. A resource counted over the
whole list belongs to no single hub (created with the first, destroyed with the last). A pending `moved` block
is a change too: a move is the hub's only when it stays inside the hub's registry. Anything mixed (derived from
container_repos and something else) and everything else is foreign, whatever its key.

Used by `provision gcp` (refuse a plan that changes anything else) and reusable for key rotation (`-replace` of
a hub's key) and hub removal (destroy only a hub's registry resources).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REGISTRY_VARIABLE = "container_repos"
# One step of a module path: module.NAME or module.NAME[KEY] (KEY a quoted string or a number).
MODULE_STEP = re.compile(r'module\.([A-Za-z0-9_-]+)(?:\[("(?:[^"\\]|\\.)*"|\d+)\])?\.?')
IGNORED_ACTIONS = {"no-op", "read"}
# module prefix ("" root, "module.a." child) → local name → the references of its expression (hcl_locals)
Locals = Mapping[str, Mapping[str, Iterable[str]]]
_KEY = r'(?:"(?:[^"\\]|\\.)*"|\d+)'
INSTANCE_ADDRESS = re.compile(
    rf"(?P<module>(?:module\.[A-Za-z0-9_-]+(?:\[{_KEY}\])?\.)*)(?P<data>data\.)?"
    rf"(?P<type>[A-Za-z0-9_-]+)\.(?P<name>[A-Za-z0-9_-]+)(?:\[(?P<key>{_KEY})\])?"
)


@dataclass(frozen=True)
class ResourceChange:
    """One resource instance in a plan: where it is configured, its instance keys, what the plan does to it."""

    address: str  # instance address, e.g. module.m["a"].google_service_account.registry_sa["a"]
    config_address: str  # without instance keys, e.g. module.m.google_service_account.registry_sa
    index: str | int | None  # the resource's own for_each/count key
    module_names: tuple[str, ...]  # the module calls it sits in, outermost first
    module_keys: tuple[str | int | None, ...]  # the keys of those module instances
    actions: tuple[str, ...]
    previous_address: str | None = None  # where a pending `moved` block moves it from

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResourceChange:
        module_address = str(data.get("module_address") or "")
        steps = parse_module_address(module_address)
        kind = "data." if data.get("mode") == "data" else ""
        prefix = "".join(f"module.{name}." for name, _ in steps)
        return cls(
            address=str(data.get("address", "")),
            config_address=f"{prefix}{kind}{data.get('type')}.{data.get('name')}",
            index=data.get("index"),
            module_names=tuple(name for name, _ in steps),
            module_keys=tuple(key for _, key in steps),
            actions=tuple((data.get("change") or {}).get("actions") or ()),
            previous_address=str(data["previous_address"]) if data.get("previous_address") else None,
        )

    @classmethod
    def at(cls, address: str) -> ResourceChange | None:
        """An unchanged instance at `address` (e.g. a move's old address), or None when that is no instance
        address."""
        match = INSTANCE_ADDRESS.fullmatch(address)
        if match is None:
            return None
        raw = match.group("key")
        return cls.from_dict({
            "address": address, "module_address": match.group("module").rstrip("."),
            "mode": "data" if match.group("data") else "managed", "type": match.group("type"),
            "name": match.group("name"), "index": None if raw is None else json.loads(raw),
        })  # fmt: skip

    @property
    def action(self) -> str:
        """create, update, delete, replace, no-op or read."""
        if len(self.actions) == 2 and set(self.actions) == {"create", "delete"}:
            return "replace"
        return self.actions[0] if self.actions else "no-op"

    @property
    def moved(self) -> bool:
        return bool(self.previous_address) and self.previous_address != self.address

    @property
    def is_change(self) -> bool:
        """A move is a change even without another action: apply rewrites the state's addresses."""
        return self.action not in IGNORED_ACTIONS or self.moved

    def describe(self) -> tuple[str, str, str]:
        """(verb, subject, detail) for a plan listing: `move OLD → NEW` (then what else happens to it)."""
        if not self.moved:
            return self.action, self.address, ""
        then = f"then {self.action}" if self.action != "no-op" else ""
        return "move", f"{self.previous_address} → {self.address}", then

    def __str__(self) -> str:
        verb, subject, detail = self.describe()
        return f"{verb} {subject}" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class PlanScope:
    """A plan split by ownership: the named hubs' registry changes, and every other change."""

    registry_resources: frozenset[str]  # config addresses whose for_each derives from container_repos
    owned: tuple[ResourceChange, ...]  # changes to the named hubs' registry instances (+ the flow's shared ones)
    foreign: tuple[ResourceChange, ...]  # every other change (other hubs' registries included)
    instances: tuple[ResourceChange, ...]  # every registry instance of the named hubs, changed or not

    @property
    def changes(self) -> tuple[ResourceChange, ...]:
        return self.owned + self.foreign

    def unexpected(
        self, expected: Callable[[ResourceChange], bool], *, allow_foreign: bool = False
    ) -> tuple[ResourceChange, ...]:
        """The changes a flow did not ask for: the named hubs' changes that `expected` rejects (a rotation expects
        only its key replaced, a removal only destroys), then every foreign change unless `allow_foreign`."""
        own = tuple(c for c in self.owned if not expected(c))
        return own + (() if allow_foreign else self.foreign)


def parse_module_address(address: str) -> list[tuple[str, str | int | None]]:
    """`module.a["x"].module.b` → [("a", "x"), ("b", None)]. Pure."""
    steps: list[tuple[str, str | int | None]] = []
    position = 0
    while position < len(address):
        match = MODULE_STEP.match(address, position)
        if match is None:
            raise ValueError(f"not a module address: {address!r}")
        raw = match.group(2)
        key: str | int | None = None if raw is None else (json.loads(raw) if raw.startswith('"') else int(raw))
        steps.append((match.group(1), key))
        position = match.end()
    return steps


def _derives(references: Iterable[str], sources: set[str]) -> bool:
    """Whether any reference is one of `sources` or an attribute/element of one."""
    for ref in references:
        for source in sources:
            if ref == source or ref.startswith((f"{source}.", f"{source}[")):
                return True
    return False


# References that carry no data of their own into a for_each (functions are not references at all).
_NEUTRAL = ("each.", "count.", "path.", "terraform.")


def _derives_only(references: Iterable[str], sources: set[str]) -> bool:
    """Whether the references derive from `sources` and from nothing else: a for_each that merges container_repos
    with another hub-keyed map (`merge({for cr in var.container_repos: …}, {for hub, p in var.hub_permissions:
    …})`) has instances that are not registries, whose changes must be judged as foreign (the safe side)."""
    refs = [ref for ref in references if not ref.startswith(_NEUTRAL)]
    return bool(refs) and all(_derives([ref], sources) for ref in refs)


def _refs(block: Mapping[str, Any] | None) -> list[str]:
    return [str(r) for r in ((block or {}).get("references") or [])]


def _resource_address(resource: Mapping[str, Any]) -> str:
    kind = "data." if resource.get("mode") == "data" else ""
    return f"{kind}{resource.get('type')}.{resource.get('name')}"


@dataclass(frozen=True)
class Registry:
    """What of a module's configuration the container_repos list instantiates."""

    resources: frozenset[str]  # config addresses keyed per entry: their instance key (or module key) names a hub
    wide: frozenset[str]  # config addresses counted over the whole list (`count = length(…) > 0 ? 1 : 0`)
    per_entry_modules: frozenset[str]  # module call paths (module.a.module.b) instantiated once per entry


@dataclass
class _Found:
    resources: set[str]
    wide: set[str]
    per_entry_modules: set[str]


def _walk(module: Mapping[str, Any], prefix: str, sources: set[str], everything: bool, wide: bool,
          module_locals: Locals, found: _Found) -> None:  # fmt: skip
    """Collect registry resources of one module. `sources`: references that derive from container_repos here;
    `everything`: the module itself is instantiated per container_repos entry; `wide`: it is counted over the
    list. A local derives when its expression does (read from the .tf files: `show -json` lacks it); a module
    whose locals are unknown has none that derive (the safe side)."""
    resources = list(module.get("resources") or [])
    locals_here = {f"local.{name}": list(refs) for name, refs in (module_locals.get(prefix) or {}).items()}
    derived: set[str] = set()  # registry resources and locals, as references
    changed = True
    while changed:  # fixed point: locals and for_each read registry resources and locals in any order
        changed = False
        for local, refs in locals_here.items():
            if local not in derived and _derives_only(refs, sources | derived):
                derived.add(local)
                changed = True
        for resource in resources:
            address = _resource_address(resource)
            if address in derived:
                continue
            if everything or _derives_only(_refs(resource.get("for_each_expression")), sources | derived):
                derived.add(address)
                changed = True
    registry = {address for address in derived if not address.startswith("local.")}
    found.resources.update(f"{prefix}{address}" for address in registry)
    for resource in resources:
        address = _resource_address(resource)
        if address not in registry and (
            wide or _derives_only(_refs(resource.get("count_expression")), sources | derived)
        ):
            found.wide.add(f"{prefix}{address}")
    for name, call in (module.get("module_calls") or {}).items():
        # an input or for_each mixing container_repos with anything else is not the registry's (the safe side)
        child_sources = {
            f"var.{variable}"
            for variable, expression in (call.get("expressions") or {}).items()
            if isinstance(expression, Mapping) and _derives_only(_refs(expression), sources | derived)
        }
        path = f"{prefix}module.{name}"
        per_entry = _derives_only(_refs(call.get("for_each_expression")), sources | derived)
        if per_entry:
            found.per_entry_modules.add(path)
        counted = _derives_only(_refs(call.get("count_expression")), sources | derived)
        _walk(call.get("module") or {}, f"{path}.", child_sources, everything or per_entry,
              (wide or counted) and not (everything or per_entry), module_locals, found)  # fmt: skip


def registry_of(
    configuration: Mapping[str, Any],
    *,
    variable: str = REGISTRY_VARIABLE,
    module_locals: Locals | None = None,
) -> Registry:
    """What `var.<variable>` instantiates in a configuration. `module_locals`: module prefix ("" root,
    "module.a." child) → local name → references (hcl_locals.module_locals); absent modules' locals are unknown."""
    found = _Found(set(), set(), set())
    _walk(configuration.get("root_module") or {}, "", {f"var.{variable}"}, False, False, module_locals or {}, found)
    return Registry(frozenset(found.resources), frozenset(found.wide), frozenset(found.per_entry_modules))


def registry_resources(
    configuration: Mapping[str, Any],
    *,
    variable: str = REGISTRY_VARIABLE,
    module_locals: Locals | None = None,
) -> frozenset[str]:
    """Config addresses (e.g. `google_service_account.registry_sa`) whose for_each derives from `var.<variable>`."""
    return registry_of(configuration, variable=variable, module_locals=module_locals).resources


def hub_of(
    change: ResourceChange, registry: frozenset[str], per_entry_modules: frozenset[str] = frozenset()
) -> str | None:
    """The container_repos entry a registry instance belongs to, or None (not a registry resource, or no key).

    The key of a per-entry module instance names the entry; otherwise the resource's own key does, either the
    entry itself or `<entry>/<more>` (one binding per entry and member, as in our terraform/gcp).
    """
    if change.config_address not in registry:
        return None
    path = ""
    for name, key in zip(change.module_names, change.module_keys, strict=True):
        path = f"{path}module.{name}"
        if path in per_entry_modules:
            return key if isinstance(key, str) else None
        path += "."
    if isinstance(change.index, str):
        return change.index.split("/", 1)[0]
    return None


def resource_changes(plan: Mapping[str, Any]) -> list[ResourceChange]:
    """Every managed or data resource instance of the plan (no-ops included), in plan order."""
    return [ResourceChange.from_dict(item) for item in plan.get("resource_changes") or []]


def _move_stays_with(change: ResourceChange, hub: str, registry: Registry) -> bool:
    """Whether a move of a hub's registry instance stays inside that registry: its old address is the same hub's
    registry instance under the current configuration, or nothing else changes (the object already matches the
    registry's configuration, so it is the registry's object whatever its old name). A move from an address the
    configuration no longer holds, with an update or replace, could bring in anything (a hub's workload service
    account moved onto its registry account would be replaced): foreign."""
    old = ResourceChange.at(change.previous_address or "")
    if old is not None and hub_of(old, registry.resources, registry.per_entry_modules) == hub:
        return True
    return change.action == "no-op"


def scope(
    plan: Mapping[str, Any],
    hubs: Iterable[str],
    *,
    variable: str = REGISTRY_VARIABLE,
    module_locals: Locals | None = None,
    wide_action: str | None = None,
) -> PlanScope:
    """Split a plan (`show -json <planfile>`) into the named hubs' registry changes and all other changes.

    A change is owned when its resource's for_each derives from `var.<variable>` in the plan's configuration
    (through locals too, given `module_locals`) and its instance key is one of `hubs`. Everything else, including
    a hub-keyed disk or service account, and another hub's registry, is foreign.

    A resource counted over the whole list (`count = length(var.container_repos) > 0 ? 1 : 0`) belongs to no
    single hub: it is created with a cluster's first registry and destroyed with its last. Its change is owned
    when its action is `wide_action` (create when adding a hub, delete when removing one). Its update or replace
    stays foreign: it serves every hub's registry, and nothing in a plan tells the update the added hub causes
    from a pending one that changes the other hubs' registries too.
    """
    wanted = set(hubs)
    registry = registry_of(plan.get("configuration") or {}, variable=variable, module_locals=module_locals)
    owned: list[ResourceChange] = []
    foreign: list[ResourceChange] = []
    instances: list[ResourceChange] = []
    for change in resource_changes(plan):
        hub = hub_of(change, registry.resources, registry.per_entry_modules)
        mine = hub in wanted
        if mine and change.action != "read":
            instances.append(change)
        if not change.is_change:
            continue
        if change.config_address in registry.wide:
            mine = change.action == wide_action and not change.moved
        elif mine and change.moved:
            mine = _move_stays_with(change, str(hub), registry)
        (owned if mine else foreign).append(change)
    return PlanScope(registry.resources, tuple(owned), tuple(foreign), tuple(instances))


KEYS_OUTPUT = "registry_sa_keys"


def output_sources(configuration: Mapping[str, Any], output: str) -> frozenset[str]:
    """Config addresses of the resources a root output reads, followed through module outputs
    (`module.m.keys` → the references of output `keys` in module m). Pure."""
    found: set[str] = set()

    def follow(module: Mapping[str, Any], prefix: str, name: str, seen: frozenset[str]) -> None:
        if f"{prefix}{name}" in seen:
            return
        block = (module.get("outputs") or {}).get(name) or {}
        for ref in _refs(block.get("expression")):
            parts = ref.split(".")
            if parts[0] == "module" and len(parts) >= 2:
                call_name = parts[1].split("[")[0]
                child = ((module.get("module_calls") or {}).get(call_name) or {}).get("module") or {}
                # `module.m.out` reads one output; `module.m` (the whole object) reads them all.
                outputs = [parts[2].split("[")[0]] if len(parts) >= 3 else list(child.get("outputs") or {})
                for child_output in outputs:
                    follow(child, f"{prefix}module.{call_name}.", child_output, seen | {f"{prefix}{name}"})
            elif parts[0] not in ("var", "local", "each", "count", "path", "terraform", "self") and len(parts) >= 2:
                kind = "data." if parts[0] == "data" else ""
                rest = parts[1:] if kind else parts
                if len(rest) >= 2:
                    found.add(f"{prefix}{kind}{rest[0]}.{rest[1].split('[')[0]}")

    follow(configuration.get("root_module") or {}, "", output, frozenset())
    return frozenset(found)


def key_resources(
    configuration: Mapping[str, Any],
    *,
    output: str = KEYS_OUTPUT,
    variable: str = REGISTRY_VARIABLE,
    module_locals: Locals | None = None,
) -> frozenset[str]:
    """The registry resources whose instances are the hubs' keys: those the key output reads (our module's
    `google_service_account_key.registry_sa_keys`, 2i2c's of the same name, or a fixture's stand-in), so rotation
    needs no resource name written into provision."""
    return output_sources(configuration, output) & registry_resources(
        configuration, variable=variable, module_locals=module_locals
    )


def hub_keys(
    plan: Mapping[str, Any],
    hub: str,
    *,
    output: str = KEYS_OUTPUT,
    variable: str = REGISTRY_VARIABLE,
    module_locals: Locals | None = None,
) -> list[ResourceChange]:
    """The hub's key instances in a plan (changed or not): what `-replace` must name to rotate its key."""
    keys = key_resources(plan.get("configuration") or {}, output=output, variable=variable, module_locals=module_locals)
    instances = scope(plan, [hub], variable=variable, module_locals=module_locals).instances
    return [c for c in instances if c.config_address in keys]
