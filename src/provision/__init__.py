"""provision: give a JupyterHub an image registry (kept import-free so `provision --help` stays fast)."""

try:
    # Written by setuptools-scm from the git tag at install time (a wheel, or `pip install -e .`).
    from provision._version import __version__ as __version__
except ImportError:  # a source tree on PYTHONPATH that was never installed
    __version__ = "0+unknown"
