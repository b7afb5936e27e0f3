"""The culler's place in the hub: its service entry and its role.

This module owns what ``hubconfig.apply`` adds for the idle culler, as plain
data, the way :mod:`wbspawner.hub.warmer_service` does for the warmer:

- :func:`service`: a hub-managed service without a URL (the hub starts
  ``python -m wbspawner.culler`` and gives it an API token) with the settings it
  needs on its command line, and the Kubernetes variables of the hub's
  environment: its sweep of orphan server pods lists and deletes pods with the
  hub's own Kubernetes identity (which KubeSpawner already needs for that);
- :func:`roles`: the service's role with only the scopes it uses:
  ``list:users`` and ``read:users:name`` (who has a server),
  ``read:users:activity`` and ``read:servers`` (servers' sizes and last
  activity), ``access:servers`` (their kernels, and the warning notice) and
  ``delete:servers`` (the stop). It is the chart's stock culler's set plus
  ``access:servers``; it has no admin scope.

Pure: nothing here reads the environment or touches a config object.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from wbspawner.hub.settings import Settings

SERVICE_NAME = "culler"
SERVICE_SCOPES = (
    "list:users",
    "read:users:name",
    "read:users:activity",
    "read:servers",
    "access:servers",
    "delete:servers",
)
"""What the culler may do: see servers and their use, reach them, stop them."""
KUBE_ENV = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
"""Environment a hub-managed service does not inherit but the culler's sweep of
orphan pods needs (the kubeconfig, or the in-cluster configuration)."""


def proxy_url(public_url: str) -> str:
    """Return where a service on the hub's machine reaches the proxy.

    Args:
        public_url: the hub's public URL, e.g. ``http://:8000`` (all addresses).

    Returns:
        The same URL with an empty or wildcard host as 127.0.0.1.
    """
    parts = urlsplit(public_url)
    host = parts.hostname or ""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme or "http", host + port, "", "", ""))


def service(
    settings: Settings,
    interval: float,
    *,
    environ: Mapping[str, str] | None = None,
    hub_pid: int | None = None,
) -> dict[str, Any]:
    """Return the culler's entry for ``c.JupyterHub.services``.

    Args:
        settings: the hub's settings (profiles, public URL, accounting).
        interval: seconds between two passes.
        environ: the hub's environment; only :data:`KUBE_ENV` is passed on.
        hub_pid: the hub's PID: the culler stops when that hub dies.

    Returns:
        A new dict.
    """
    cmd = [sys.executable, "-m", "wbspawner.culler"]
    cmd += [f"--profiles={p}" for p in settings.profiles_paths]
    proxy = settings.culler_proxy_url or proxy_url(settings.public_url)
    cmd += [f"--interval={interval:g}", f"--proxy-url={proxy}"]
    cmd.append(f"--namespace={settings.namespace}")  # server pods to sweep
    if settings.k8s_api_host:
        cmd.append(f"--CullerApp.k8s_api_host={settings.k8s_api_host}")
    if hub_pid is not None:
        cmd.append(f"--CullerApp.parent_pid={hub_pid}")
    env = {k: v for k, v in (environ or {}).items() if k in KUBE_ENV}
    # in the environment, not on the command line the hub logs
    env["WBSPAWNER_COST_DB_URL"] = settings.cost_db
    return {"name": SERVICE_NAME, "command": cmd, "environment": env}


def roles(name: str = SERVICE_NAME) -> list[dict[str, Any]]:
    """Return the culler's role for ``c.JupyterHub.load_roles``."""
    return [
        {
            "name": f"{name}-service",
            "description": "What the idle culler needs: servers, their use, stop.",
            "scopes": list(SERVICE_SCOPES),
            "services": [name],
        }
    ]
