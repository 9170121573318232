"""`python -m provision` entry point."""

from __future__ import annotations

from provision.cli import main

main()
