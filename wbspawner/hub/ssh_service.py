"""The SSH service's place in the hub: its service entry and its role.

This module owns what ``hubconfig.apply`` adds for ``python -m wbspawner.ssh``
(:mod:`wbspawner.ssh.app`), as plain data:

- :func:`service`: in the demo (``WBSPAWNER_SSH_PORT``) a hub-managed service
  without a URL: the hub starts it with its API token, the directory's
  ``WBSPAWNER_LDAP_*`` variables and a host key in the hub's state directory
  (created at the first start); on EKS (``WBSPAWNER_SSH_API_TOKEN_FILE``) only
  the registration of the service running in its own Deployment
  (``helm-values/ssh.yaml``), with the token both share;
- :func:`roles`: the service's role with only what it uses: ``read:users:name``
  and ``read:servers`` (is a server running, where), ``servers`` (start the
  default size for a session) and ``access:servers`` (terminals and files of
  the user's server through the proxy). It has no admin scope; whose a
  presented token is, the hub tells anyone holding that token.

Pure: nothing here reads the environment or touches a config object.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from wbspawner.hub.culler_service import proxy_url
from wbspawner.hub.settings import Settings

SERVICE_NAME = "ssh"
SERVICE_SCOPES = ("read:users:name", "read:servers", "servers", "access:servers")
"""What the SSH service may do: see, start and reach users' servers."""
HOST_KEY_FILE = "ssh_host_ed25519_key"
"""The demo's host key, in the hub's state directory (kept across restarts)."""
LDAP_ENV_PREFIX = "WBSPAWNER_LDAP_"
"""The directory's settings, which the service reads as the hub does."""


def service(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    hub_pid: int | None = None,
) -> dict[str, Any] | None:
    """Return the SSH service's entry for ``c.JupyterHub.services``.

    Args:
        settings: the hub's settings (port, host key, token, profiles, URLs).
        environ: the hub's environment; its ``WBSPAWNER_LDAP_*`` are passed on.
        hub_pid: the hub's PID: a service the hub starts stops with that hub.

    Returns:
        A new dict, or ``None`` when there is no SSH service.
    """
    if settings.ssh_port is None:
        if settings.ssh_api_token is None:
            return None
        return {"name": SERVICE_NAME, "api_token": settings.ssh_api_token}
    key = settings.ssh_host_key_file or str(
        PurePosixPath(settings.state_dir) / HOST_KEY_FILE
    )
    public = proxy_url(settings.public_url)
    cmd = [sys.executable, "-m", "wbspawner.ssh"]
    cmd += [f"--profiles={p}" for p in settings.profiles_paths]
    cmd += [
        f"--port={settings.ssh_port}",
        f"--host-key={key}",
        "--SSHApp.create_host_key=True",
        f"--proxy-url={settings.culler_proxy_url or public}",
        f"--public-url={public}",
        f"--SSHApp.start_timeout={settings.start_timeout}",
    ]
    if hub_pid is not None:
        cmd.append(f"--SSHApp.parent_pid={hub_pid}")
    env = {k: v for k, v in (environ or {}).items() if k.startswith(LDAP_ENV_PREFIX)}
    return {"name": SERVICE_NAME, "command": cmd, "environment": env}


def roles(name: str = SERVICE_NAME) -> list[dict[str, Any]]:
    """Return the SSH service's role for ``c.JupyterHub.load_roles``."""
    return [
        {
            "name": f"{name}-service",
            "description": "What the SSH service needs: see, start, reach servers.",
            "scopes": list(SERVICE_SCOPES),
            "services": [name],
        }
    ]
