"""Checks of local inputs that every registry command makes before its first remote write."""

from __future__ import annotations

from provision.files import check_writable
from provision.hubfiles.edits import FilesRequest


def check_hub_files(files: FilesRequest) -> None:
    """Make sure every file the command will write can be written (created, or replaced through a temporary file
    beside it) before anything changes anywhere; hubfiles.preflight reads and parses them. Raises UsageError
    naming the file."""
    for label, path in (
        ("--values-file", files.values_file),
        ("--secret-file", files.secret_file),
        ("--cluster-config", files.cluster_config),
    ):
        if path is not None:
            check_writable(path, label=label)
