"""provision: give a JupyterHub an image registry (kept import-free so `provision --help` stays fast)."""

__version__ = "0.1.0"
