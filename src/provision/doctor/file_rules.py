"""Doctor's rules on single files, before any merge: YAML syntax, encryption, plaintext credentials, and values files
the deployer never uses because cluster.yaml does not list them."""

from __future__ import annotations

from pathlib import Path

from provision.doctor.findings import NO_HUB, Findings
from provision.doctor.values import plaintext_secrets
from provision.hubfiles.cluster import ValuesFile


def check_file(findings: Findings, file: ValuesFile, *, cluster: str, hub: str, users: list[str]) -> None:
    shared = f" (used by hubs {', '.join(users)})" if len(users) > 1 else ""
    if file.doc is None:
        findings.add("error", "invalid-yaml", cluster, hub, file.rel, "", f"{file.path.name} {file.error}{shared}")
        return
    if file.secret_by_name and not file.encrypted:
        findings.add(
            "error",
            "unencrypted-secret-file",
            cluster,
            hub,
            file.rel,
            "",
            f"{file.path.name} has `secret` in its name, so the deployer decrypts it with sops, but it has no "
            f"top-level sops: metadata: it is plaintext in git and the deploy fails; encrypt it with sops{shared}",
        )
    for key in plaintext_secrets({k: v for k, v in file.doc.items() if k != "sops"}):
        where = "a sops file that left this value unencrypted" if file.encrypted else "an unencrypted file"
        findings.add(
            "error",
            "plaintext-secret",
            cluster,
            hub,
            file.rel,
            key,
            f"a credential is in plaintext in {where}: move it to an encrypted enc-*.secret.values.yaml file "
            f"and rotate it, since git history keeps it{shared}",
        )


def check_listed(
    findings: Findings, path: Path, rel: str, *, cluster: str, hub_names: list[str], listers: list[str]
) -> None:
    """`rel`: the path as findings name it."""
    owner = owner_by_name(path.name, hub_names)
    if owner is not None and owner not in listers:
        findings.add(
            "warning",
            "unlisted-values-file",
            cluster,
            owner,
            rel,
            "",
            f"{path.name} is not listed in hub {owner}'s helm_chart_values_files, so the deployer never "
            "uses it; add it to the list in cluster.yaml (encrypted files last) or delete it",
        )
    elif not listers:
        findings.add(
            "warning",
            "unlisted-values-file",
            cluster,
            NO_HUB,
            rel,
            "",
            f"{path.name} is not listed in any hub's helm_chart_values_files, so the deployer never uses it; "
            "list it in cluster.yaml or delete it",
        )


def owner_by_name(filename: str, hub_names: list[str]) -> str | None:
    """The hub a file belongs to by its name: `<hub>.values.yaml` or `enc-<hub>.secret.values.yaml`."""
    for hub in hub_names:
        if filename in (f"{hub}.values.yaml", f"enc-{hub}.secret.values.yaml"):
            return hub
    return None
