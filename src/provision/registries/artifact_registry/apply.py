"""Applying a judged plan, and saying what the state holds when the apply fails or is interrupted.

An apply that stops halfway leaves some of a hub's registry resources in the state. The hub's entry in the tfvars
must then stay: without it, the next plan (for another hub, or a bare `terraform apply`) destroys them. So after a
failure the state is read (`state list`, no values) and the hub's instances found through the plan's
configuration, as the plan judge finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provision.console import Reporter
from provision.errors import Interrupted
from provision.terraform import plan_judge
from provision.terraform.runner import Terraform, TerraformError, TerraformInterrupted


@dataclass(frozen=True)
class Target:
    """What the apply is for: the entry `name` of `attribute` in `tfvars`, in `workspace`."""

    name: str
    attribute: str
    tfvars: Path
    workspace: str


class ApplyInterrupted(Interrupted):
    """Ctrl-C during apply, passed on to terraform, which stopped gracefully (exit 130). `keeps_entry`: the state
    holds (or may hold) the hub's resources, so its tfvars entry must stay."""

    def __init__(self, message: str, *, keeps_entry: bool, done: tuple[str, ...] = (), hint: str | None = None):
        super().__init__(message, done=done, hint=hint)
        self.keeps_entry = keeps_entry


class ApplyFailed(TerraformError):
    """terraform apply failed; `keeps_entry` as for ApplyInterrupted."""

    def __init__(self, cause: TerraformError, *, keeps_entry: bool, done: tuple[str, ...], hint: str) -> None:
        super().__init__(cause.message, cmd=cause.cmd, returncode=cause.returncode, hint=hint)
        self.diagnostics, self.stderr_tail, self.done = cause.diagnostics, cause.stderr_tail, done + cause.done
        self.keeps_entry = keeps_entry


def apply(tf: Terraform, plan_file: Path, target: Target, reporter: Reporter) -> None:
    """Apply the saved plan. Raises ApplyFailed or ApplyInterrupted (Ctrl-C), saying what the state holds."""
    try:
        tf.apply(plan_file)
    except TerraformInterrupted:
        held = _held(tf, plan_file, target, reporter)
        raise _interrupted(target, held) from None
    except TerraformError as exc:
        held = _held(tf, plan_file, target, reporter)
        raise _failed(exc, target, held) from None


def _held(tf: Terraform, plan_file: Path, target: Target, reporter: Reporter) -> list[str] | None:
    """The hub's registry instances the state holds now, or None when the state could not be read."""
    try:
        wanted = plan_judge.scope(tf.show_plan(plan_file), [target.name], variable=target.attribute).instances
        present = set(tf.state_list())
    except (TerraformError, KeyboardInterrupt) as exc:
        reporter.warn(f"could not read the state after the apply stopped ({exc})")
        return None
    return [c.address for c in wanted if c.address in present]


def _what_stays(target: Target, held: list[str] | None) -> tuple[str, ...]:
    if held is None:
        return (
            f"the state could not be read to see what the apply created, so {target.name!r} stays in "
            f"{target.attribute} of {target.tfvars} (taking it out could make the next apply destroy resources)",
        )
    if not held:
        return ()
    return (
        f"the state of workspace {target.workspace} now holds {len(held)} registry resource(s) of {target.name!r} "
        f"({', '.join(held)}), so {target.name!r} stays in {target.attribute} of {target.tfvars} (taking it out "
        "would make the next apply destroy them)",
    )


def _interrupted(target: Target, held: list[str] | None) -> ApplyInterrupted:
    keeps = held is None or bool(held)
    if not keeps:
        return ApplyInterrupted(
            f"interrupted during terraform apply, before any registry resource of {target.name!r} was created",
            keeps_entry=False,
        )
    return ApplyInterrupted(
        "interrupted during terraform apply; terraform stopped after saving its state",
        keeps_entry=True,
        done=_what_stays(target, held),
        hint="run the same command to finish: it plans and applies only what is missing",
    )


def _failed(exc: TerraformError, target: Target, held: list[str] | None) -> ApplyFailed:
    keeps = held is None or bool(held)
    if not keeps:
        hint = "no registry resource of this hub was created; fix the cause and run the same command again"
    else:
        hint = (
            "fix the cause and run the same command to finish (it plans and applies only what is missing), or "
            f"`provision remove gcp` for {target.name!r} to destroy what was created"
        )
    if exc.hint:  # the engine's failure explained (a key policy): that comes first
        hint = f"{exc.hint.rstrip('.')}. {hint[0].upper()}{hint[1:]}"
    return ApplyFailed(exc, keeps_entry=keeps, done=_what_stays(target, held), hint=hint)
