"""Where configurable-http-proxy lives for local runs.

This module owns the lookup of the JupyterHub proxy (npm package
configurable-http-proxy) that ``scripts/setup-system.sh`` installs into the
repo-local folder ``.cache/node``; local hubs set
``c.ConfigurableHTTPProxy.command = chp_command(repo_root)``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

CHP_VERSION = "5.3.0"
"""The version scripts/setup-system.sh installs."""
NODE_PREFIX = Path(".cache") / "node"
"""npm prefix of the repo-local node packages, relative to the repository root."""

_HINT = "run scripts/setup-system.sh (or `make system`) to install it"


def repo_root() -> Path:
    """Return the root of this checkout (the folder holding ``devcluster/``)."""
    return Path(__file__).resolve().parents[2]  # devcluster/services/chp.py


def chp_command(root: str | os.PathLike[str] | None = None) -> list[str]:
    """Return the command that starts configurable-http-proxy.

    Args:
        root: Repository root (default: this checkout).

    Returns:
        ``[path-to-configurable-http-proxy]`` as a list, ready for traitlets or
        :class:`devcluster.services.procs.Proc`.

    Raises:
        RuntimeError: The proxy or ``node`` is not installed.
    """
    base = Path(root) if root is not None else repo_root()
    binary = base / NODE_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy"
    if not (binary.exists() and os.access(binary, os.X_OK)):
        raise RuntimeError(f"configurable-http-proxy not found at {binary}: {_HINT}")
    if shutil.which("node") is None:
        raise RuntimeError(
            f"node is not on PATH (configurable-http-proxy needs it): {_HINT}"
        )
    return [str(binary)]


def chp_version(root: str | os.PathLike[str] | None = None) -> str:
    """Return the installed configurable-http-proxy version (from package.json).

    Raises:
        RuntimeError: The proxy is not installed.
    """
    base = Path(root) if root is not None else repo_root()
    package = (
        base / NODE_PREFIX / "node_modules" / "configurable-http-proxy" / "package.json"
    )
    try:
        return str(json.loads(package.read_text())["version"])
    except FileNotFoundError:
        raise RuntimeError(f"{package} not found: {_HINT}") from None
