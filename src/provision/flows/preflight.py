"""Checks of local inputs that every registry command makes before its first remote write."""

from __future__ import annotations

from provision import clusterrepo
from provision.files import check_writable
from provision.flows.hubfiles import FilesRequest


def check_hub_files(files: FilesRequest) -> None:
    """Read and parse every file the command will edit, and make sure each can be written, before anything changes
    anywhere: a bad values file must not surface after a credential was created. Raises UsageError or
    ClusterRepoError (naming the file, never its content)."""
    if files.values_file is not None:
        clusterrepo.plan_values_edit(files.values_file, {})  # reads it (if it exists) and checks the round trip
        check_writable(files.values_file, label="--values-file")
    if files.secret_file is not None:
        check_writable(files.secret_file, label="--secret-file")
    if files.cluster_config is not None and files.hub is not None:
        listed = [p for p in (files.values_file, files.secret_file) if p is not None]
        clusterrepo.plan_registration(files.cluster_config, files.hub, listed)
        check_writable(files.cluster_config, label="--cluster-config")
