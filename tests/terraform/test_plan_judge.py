"""Which plan changes belong to which hubs' registries: on plans made by the real tofu, and on small JSON cases."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from provision.terraform import hcl_locals, plan_judge

MODULE = """\
terraform {
  backend "local" {}
}
variable "container_repos" {
  type    = list(string)
  default = []
}
variable "persistent_disks" {
  type    = map(number)
  default = {}
}
locals {
  readers = { for name in var.container_repos : "${name}/reader" => name }
}
resource "terraform_data" "registry" {
  for_each = toset(var.container_repos)
  input    = each.key
}
resource "terraform_data" "registry_sa" {
  for_each = toset(var.container_repos)
  input    = each.key
}
# for_each over another registry resource (2i2c's keys iterate over google_service_account.registry_sa)
resource "terraform_data" "registry_sa_keys" {
  for_each = terraform_data.registry_sa
  input    = each.value.output
}
# keyed by hub name, but a home-directory disk
resource "terraform_data" "nfs_homedirs" {
  for_each = var.persistent_disks
  input    = each.value
}
# derives from container_repos only through a local: not in the plan's configuration (hcl_locals reads it)
resource "terraform_data" "via_local" {
  for_each = local.readers
  input    = each.value
}
# one instance per registry and per disk (2i2c's hub-keyed permissions merged in): not all registries, so foreign
resource "terraform_data" "mixed" {
  for_each = merge(
    { for cr in var.container_repos : cr => "registry" },
    { for hub, size in var.persistent_disks : hub => size },
  )
  input    = each.value
}
# the list handed to a module, and a module instantiated per entry
module "passed" {
  source = "./child"
  names  = var.container_repos
  other  = keys(var.persistent_disks)
}
module "per_hub" {
  source   = "./child"
  for_each = toset(var.container_repos)
  names    = []
  other    = [each.key]
}
# what rotation reads: the keys, found from the output that reads them (here also through a module output)
output "registry_sa_keys" {
  value     = { for name, key in terraform_data.registry_sa_keys : name => key.output }
  sensitive = true
}
output "child_keys" {
  value = module.passed.keys
}
"""
CHILD = """\
variable "names" {
  type = list(string)
}
variable "other" {
  type = list(string)
}
resource "terraform_data" "from_names" {
  for_each = toset(var.names)
  input    = each.key
}
resource "terraform_data" "from_other" {
  for_each = toset(var.other)
  input    = each.key
}
output "keys" {
  value = terraform_data.from_other
}
"""


@pytest.fixture(scope="module")
def plan(tofu: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`show -json` of a real plan that adds hub `staging` with a disk, next to the existing hub `prod`."""
    root = tmp_path_factory.mktemp("tfplan")
    (root / "main.tf").write_text(MODULE)
    (root / "child").mkdir()
    (root / "child" / "main.tf").write_text(CHILD)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TF_")}, "TF_CLI_CONFIG_FILE": os.devnull}

    def tf(*args: str) -> str:
        return subprocess.run([tofu, *args], cwd=root, env=env, capture_output=True, text=True, check=True).stdout

    tf("init", "-input=false", "-no-color")
    tf("apply", "-input=false", "-no-color", "-auto-approve", '-var=container_repos=["prod"]')
    tf("plan", "-input=false", "-no-color", "-out=tfplan",
       '-var=container_repos=["prod", "staging"]', '-var=persistent_disks={staging = 10}')  # fmt: skip
    return json.loads(tf("show", "-no-color", "-json", "tfplan"))  # type: ignore[no-any-return]


def test_registry_resources_follow_for_each_through_resources_and_modules(plan: dict[str, Any]) -> None:
    assert plan_judge.registry_resources(plan["configuration"]) == {
        "terraform_data.registry",
        "terraform_data.registry_sa",
        "terraform_data.registry_sa_keys",
        "module.passed.terraform_data.from_names",
        "module.per_hub.terraform_data.from_names",
        "module.per_hub.terraform_data.from_other",
    }


def test_scope_splits_by_resource_not_by_key(plan: dict[str, Any]) -> None:
    scope = plan_judge.scope(plan, ["staging"])
    assert sorted(c.address for c in scope.owned) == [
        'module.passed.terraform_data.from_names["staging"]',
        'module.per_hub["staging"].terraform_data.from_other["staging"]',
        'terraform_data.registry["staging"]',
        'terraform_data.registry_sa["staging"]',
        'terraform_data.registry_sa_keys["staging"]',
    ]
    assert sorted(c.address for c in scope.foreign) == [
        'module.passed.terraform_data.from_other["staging"]',  # fed by persistent_disks
        'terraform_data.mixed["staging"]',  # container_repos merged with persistent_disks: not only registries
        'terraform_data.nfs_homedirs["staging"]',  # same key, not a registry
        'terraform_data.via_local["staging/reader"]',  # through a local, its expression not read: refused
    ]
    assert all(c.action == "create" for c in scope.changes)
    # prod's registry exists and is unchanged: an instance of prod's, not a change.
    prod = plan_judge.scope(plan, ["prod"])
    assert {c.address for c in prod.instances} >= {'terraform_data.registry_sa_keys["prod"]'}
    assert not prod.owned


def test_key_resources_are_the_registry_resources_the_keys_output_reads(plan: dict[str, Any]) -> None:
    configuration = plan["configuration"]
    assert plan_judge.key_resources(configuration) == {"terraform_data.registry_sa_keys"}
    assert plan_judge.output_sources(configuration, "child_keys") == {"module.passed.terraform_data.from_other"}
    # from_other in module.passed is fed by persistent_disks: read by an output, but not a registry resource.
    assert plan_judge.key_resources(configuration, output="child_keys") == frozenset()
    assert plan_judge.output_sources(configuration, "no_such_output") == frozenset()


def test_hub_keys_name_the_instance_to_replace(plan: dict[str, Any]) -> None:
    assert [(c.address, c.action) for c in plan_judge.hub_keys(plan, "prod")] == [
        ('terraform_data.registry_sa_keys["prod"]', "no-op")
    ]
    assert [(c.address, c.action) for c in plan_judge.hub_keys(plan, "staging")] == [
        ('terraform_data.registry_sa_keys["staging"]', "create")
    ]
    assert plan_judge.hub_keys(plan, "nobody") == []


def _change(address: str, actions: list[str], **extra: Any) -> dict[str, Any]:
    return {"address": address, "mode": "managed", "change": {"actions": actions}, **extra}


def test_actions_and_other_hubs() -> None:
    plan = {
        "configuration": {
            "root_module": {
                "resources": [
                    {
                        "address": "g.key",
                        "mode": "managed",
                        "type": "g",
                        "name": "key",
                        "for_each_expression": {"references": ["var.container_repos"]},
                    },
                    {
                        "address": "g.binding",
                        "mode": "managed",
                        "type": "g",
                        "name": "binding",
                        "for_each_expression": {"references": ['g.key["x"]', "g.key"]},
                    },
                    {
                        "address": "g.counted",
                        "mode": "managed",
                        "type": "g",
                        "name": "counted",
                        "count_expression": {"references": ["var.container_repos"]},
                    },
                ]  # fmt: skip
            }
        },
        "resource_changes": [
            _change('g.key["a"]', ["delete", "create"], type="g", name="key", index="a"),
            _change('g.key["b"]', ["delete"], type="g", name="key", index="b"),
            _change('g.binding["a/member"]', ["update"], type="g", name="binding", index="a/member"),
            _change("g.counted[0]", ["create"], type="g", name="counted", index=0),
            _change('g.key["c"]', ["no-op"], type="g", name="key", index="c"),
        ],
    }
    scope = plan_judge.scope(plan, ["a"])
    assert [(c.action, c.address) for c in scope.owned] == [
        ("replace", 'g.key["a"]'),
        ("update", 'g.binding["a/member"]'),
    ]
    # Another hub's registry, and a resource counted (not keyed) over the list, are foreign.
    assert [c.address for c in scope.foreign] == ['g.key["b"]', "g.counted[0]"]
    # A rotation of a's key expects only that replace; everything else is unexpected, foreign changes unless allowed.
    rotation = scope.unexpected(lambda c: c.address == 'g.key["a"]' and c.action == "replace")
    assert [c.address for c in rotation] == ['g.binding["a/member"]', 'g.key["b"]', "g.counted[0]"]
    allowed = scope.unexpected(lambda c: c.action in ("replace", "update"), allow_foreign=True)
    assert allowed == ()


@pytest.mark.parametrize(
    ("address", "steps"),
    [
        ("", []),
        ("module.a", [("a", None)]),
        ('module.a["x.y"].module.b[2]', [("a", "x.y"), ("b", 2)]),
        ('module.a["q\\"uote"]', [("a", 'q"uote')]),
    ],
)
def test_parse_module_address(address: str, steps: list[tuple[str, object]]) -> None:
    assert plan_judge.parse_module_address(address) == steps


def test_a_for_each_mixing_container_repos_with_another_map_is_not_a_registry_resource() -> None:
    """2i2c-shaped: one resource per registry *and* per hub permission. Its instances are not all registries, so a
    pending permission change for a hub is foreign to `provision gcp` (refused), not applied with the registry."""
    configuration = {
        "root_module": {
            "resources": [
                {"address": "g.repo", "mode": "managed", "type": "g", "name": "repo",
                 "for_each_expression": {"references": ["var.container_repos"]}},
                {"address": "g.iam", "mode": "managed", "type": "g", "name": "iam",
                 "for_each_expression": {"references": ["var.container_repos", "var.hub_cloud_permissions"]}},
                {"address": "g.key", "mode": "managed", "type": "g", "name": "key",
                 "for_each_expression": {"references": ["g.repo", "each.key"]}},
            ]  # fmt: skip
        }
    }
    assert plan_judge.registry_resources(configuration) == frozenset({"g.repo", "g.key"})


class _Module:
    """A fixture module in a temporary folder, driven by the real tofu (local backend)."""

    def __init__(self, root: Any, tofu: str, files: dict[str, str]) -> None:
        self.root, self.tofu = root, tofu
        self.write(files)
        self.tf("init", "-input=false", "-no-color")

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            (self.root / name).write_text(text)

    def tf(self, *args: str) -> str:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("TF_")}, "TF_CLI_CONFIG_FILE": os.devnull}
        return subprocess.run(
            [self.tofu, *args], cwd=self.root, env=env, capture_output=True, text=True, check=True
        ).stdout

    def apply(self, *var: str) -> None:
        self.tf("apply", "-input=false", "-no-color", "-auto-approve", *(f"-var={v}" for v in var))

    def plan(self, *var: str) -> dict[str, Any]:
        self.tf("plan", "-input=false", "-no-color", "-out=tfplan", *(f"-var={v}" for v in var))
        return json.loads(self.tf("show", "-no-color", "-json", "tfplan"))  # type: ignore[no-any-return]

    def scope(self, plan: dict[str, Any], hub: str, **kwargs: Any) -> plan_judge.PlanScope:
        module_locals = hcl_locals.module_locals(self.root, plan["configuration"])
        return plan_judge.scope(plan, [hub], module_locals=module_locals, **kwargs)


def _addresses(changes: tuple[plan_judge.ResourceChange, ...]) -> list[str]:
    return sorted(str(c) for c in changes)


LOCALS_MODULE = """\
variable "container_repos" {
  type    = list(string)
  default = []
}
variable "persistent_disks" {
  type    = map(number)
  default = {}
}
variable "shared_marker" {
  type    = string
  default = "v1"
}
locals {
  repos   = toset(var.container_repos)
  chained = local.repos
  named   = { for repo in local.chained : repo => "${repo}-registry" }
  # one entry per registry and per disk: not only registries
  mixed = merge({ for repo in var.container_repos : repo => "registry" }, var.persistent_disks)
}
resource "terraform_data" "via_local" {
  for_each = local.repos
  input    = each.key
}
resource "terraform_data" "via_chain" {
  for_each = local.named
  input    = each.value
}
resource "terraform_data" "via_mixed" {
  for_each = local.mixed
  input    = each.value
}
# what every registry shares: created with the cluster's first registry, destroyed with its last
resource "terraform_data" "shared" {
  count = length(var.container_repos) > 0 ? 1 : 0
  input = var.shared_marker
}
module "child" {
  source = "./child"
  names  = var.container_repos
}
"""
LOCALS_CHILD = """\
variable "names" {
  type = list(string)
}
locals {
  keyed = { for name in var.names : name => upper(name) }
}
resource "terraform_data" "from_local" {
  for_each = local.keyed
  input    = each.value
}
"""


@pytest.fixture
def locals_module(tofu: str, tmp_path: Any) -> _Module:
    return _Module(tmp_path, tofu, {"main.tf": LOCALS_MODULE, "child/main.tf": LOCALS_CHILD})


def test_locals_are_read_from_the_module_files(locals_module: _Module) -> None:
    plan = locals_module.plan('container_repos=["staging"]')
    assert hcl_locals.module_locals(locals_module.root, plan["configuration"]) == {
        "": {
            "repos": ("var.container_repos",),
            "chained": ("local.repos",),
            "named": ("local.chained",),
            "mixed": ("var.container_repos", "var.persistent_disks"),
        },
        "module.child.": {"keyed": ("var.names",)},
    }
    # A registry or git module is installed elsewhere: its locals are unknown, so nothing derives through them.
    remote = {"root_module": {"module_calls": {"r": {"source": "terraform-google-modules/x/google", "module": {}}}}}
    assert hcl_locals.module_locals(locals_module.root, remote) == {"": hcl_locals.read_locals(locals_module.root)}


def test_for_each_through_locals_and_the_first_hub_creating_what_registries_share(locals_module: _Module) -> None:
    plan = locals_module.plan('container_repos=["staging"]', "persistent_disks={staging = 10}")
    scope = locals_module.scope(plan, "staging", wide_action="create")
    assert _addresses(scope.owned) == [
        'create module.child.terraform_data.from_local["staging"]',
        "create terraform_data.shared[0]",  # counted over the whole list: the first hub creates it
        'create terraform_data.via_chain["staging"]',  # local → local → local
        'create terraform_data.via_local["staging"]',
    ]
    assert _addresses(scope.foreign) == ['create terraform_data.via_mixed["staging"]']  # registries and disks
    assert plan_judge.registry_of(plan["configuration"]).wide == {"terraform_data.shared"}
    # Without the locals (unread), nothing through them is provable: refused, the safe side.
    unread = plan_judge.scope(plan, ["staging"], wide_action="create")
    assert 'create terraform_data.via_local["staging"]' in _addresses(unread.foreign)
    # A flow that does not expect the shared resource to be created (a rotation) refuses it.
    assert "create terraform_data.shared[0]" in _addresses(locals_module.scope(plan, "staging").foreign)


def test_removing_the_last_hub_destroys_what_registries_share(locals_module: _Module) -> None:
    locals_module.apply('container_repos=["staging"]')
    plan = locals_module.plan("container_repos=[]")
    scope = locals_module.scope(plan, "staging", wide_action="delete")
    assert _addresses(scope.owned) == [
        'delete module.child.terraform_data.from_local["staging"]',
        "delete terraform_data.shared[0]",
        'delete terraform_data.via_chain["staging"]',
        'delete terraform_data.via_local["staging"]',
    ]
    assert _addresses(scope.foreign) == ['delete terraform_data.via_mixed["staging"]']
    assert scope.unexpected(lambda c: c.action == "delete", allow_foreign=True) == ()


def test_an_update_of_what_registries_share_is_foreign(locals_module: _Module) -> None:
    locals_module.apply('container_repos=["prod"]')
    plan = locals_module.plan('container_repos=["prod", "staging"]', "shared_marker=v2")
    scope = locals_module.scope(plan, "staging", wide_action="create")
    assert "update terraform_data.shared[0]" in _addresses(scope.foreign)
    assert "update terraform_data.shared[0]" not in _addresses(scope.owned)


MOVED_BEFORE = """\
variable "container_repos" {
  type    = list(string)
  default = []
}
variable "persistent_disks" {
  type    = map(number)
  default = {}
}
resource "terraform_data" "old_registry" {
  for_each = toset(var.container_repos)
  input    = each.key
}
resource "terraform_data" "old_sa" {
  for_each = toset(var.container_repos)
  input    = each.key
}
resource "terraform_data" "old_disk" {
  for_each = var.persistent_disks
  input    = each.key
}
"""
MOVED_AFTER = """\
variable "container_repos" {
  type    = list(string)
  default = []
}
variable "persistent_disks" {
  type    = map(number)
  default = {}
}
resource "terraform_data" "registry" {
  for_each = toset(var.container_repos)
  input    = each.key
}
moved {
  from = terraform_data.old_registry
  to   = terraform_data.registry
}
# moved and changed: where it came from is no longer configured, so nothing proves it was a registry
resource "terraform_data" "sa" {
  for_each = toset(var.container_repos)
  input    = "${each.key}-sa"
}
moved {
  from = terraform_data.old_sa
  to   = terraform_data.sa
}
# a hub's home-directory disk, keyed by the hub's name
resource "terraform_data" "homedir" {
  for_each = var.persistent_disks
  input    = each.key
}
moved {
  from = terraform_data.old_disk
  to   = terraform_data.homedir
}
"""


def test_moves_are_listed_and_only_the_hubs_registry_moves_are_its_own(tofu: str, tmp_path: Any) -> None:
    module = _Module(tmp_path, tofu, {"main.tf": MOVED_BEFORE})
    hubs = ('container_repos=["prod", "staging"]', "persistent_disks={staging = 10}")
    module.apply(*hubs)
    module.write({"main.tf": MOVED_AFTER})
    scope = module.scope(module.plan(*hubs), "staging", wide_action="create")
    assert _addresses(scope.owned) == [
        'move terraform_data.old_registry["staging"] → terraform_data.registry["staging"]'  # moved, unchanged
    ]
    assert _addresses(scope.foreign) == [
        'move terraform_data.old_disk["staging"] → terraform_data.homedir["staging"]',  # not a registry
        'move terraform_data.old_registry["prod"] → terraform_data.registry["prod"]',  # another hub's registry
        'move terraform_data.old_sa["prod"] → terraform_data.sa["prod"] (then update)',
        'move terraform_data.old_sa["staging"] → terraform_data.sa["staging"] (then update)',
    ]
    assert all(c.moved for c in scope.changes)
