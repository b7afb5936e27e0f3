"""The warmer's place in the hub: its service entry and its two roles.

This module owns what ``hubconfig.apply`` adds for the warmer, as plain data:

- :func:`service`: a hub-managed service (the hub starts ``python -m
  wbspawner.warmer``, routes ``/services/warmer/`` to it and gives it an API
  token and OAuth client), with the settings it needs on its command line (its
  memory file in the hub's state directory, so that it outlives a restart);
- :func:`roles`: the service's own role with only the scopes it uses
  (``list:users``, ``read:users:name``, ``read:servers``: each user's last size
  from ``user_options``), and a role that grants
  ``access:services!service=warmer`` to the admin groups only, so the page and
  the JSON API answer 403 to everyone else (as the idle-culler's example config
  and z2jh give the culler only the scopes it needs).

Pure: nothing here reads the environment or touches a config object.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from wbspawner.hub.settings import Settings

SERVICE_NAME = "warmer"
MEMORY_FILE = "warmer-memory.json"
"""The warmer's memory (recent spawns, shortages), in the hub's state directory."""
DEFAULT_URL = "http://127.0.0.1:10101"
SERVICE_SCOPES = ("list:users", "read:users:name", "read:servers")
"""What the warmer reads from the hub: every user's last server options."""
PASSTHROUGH_ENV = (
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)
"""Environment a hub-managed service does not inherit but the warmer needs
(Kubernetes in-cluster config, kubeconfig, AWS credentials for ``asg-min``)."""


def command(settings: Settings, extra_args: Sequence[str] = ()) -> list[str]:
    """Return the warmer's command line for the hub's settings.

    Args:
        settings: the hub's settings (profiles, namespace, API host, files).
        extra_args: more ``--WarmerApp.<trait>=<value>`` arguments.

    Returns:
        The command.
    """
    cmd = [sys.executable, "-m", "wbspawner.warmer"]
    cmd += [f"--profiles={p}" for p in settings.profiles_paths]
    cmd.append(f"--namespace={settings.namespace}")
    if settings.k8s_api_host:
        cmd.append(f"--WarmerApp.k8s_api_host={settings.k8s_api_host}")
    if settings.warm_status_file:
        cmd.append(f"--warm-status-file={settings.warm_status_file}")
    if settings.wait_times_file:
        cmd.append(f"--WarmerApp.wait_times_file={settings.wait_times_file}")
    if settings.spot_prices_file:
        cmd.append(f"--WarmerApp.spot_prices_file={settings.spot_prices_file}")
    # Beside the hub's database (a volume in the hub's pod): a warmer the hub
    # restarts keeps the recent spawns and shortages, so the warm nodes too.
    memory = PurePosixPath(settings.state_dir) / MEMORY_FILE
    cmd.append(f"--WarmerApp.memory_file={memory}")
    return cmd + list(extra_args)


def service(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    url: str = DEFAULT_URL,
    extra_args: Sequence[str] = (),
    name: str = SERVICE_NAME,
    hub_pid: int | None = None,
) -> dict[str, Any]:
    """Return the warmer's entry for ``c.JupyterHub.services``.

    Args:
        settings: the hub's settings.
        environ: the hub's environment; only :data:`PASSTHROUGH_ENV` is passed on.
        url: where the service listens (the proxy routes its prefix there).
        extra_args: more command-line arguments.
        name: the service name (also in its URL prefix and access scope).
        hub_pid: the hub's PID: the warmer stops when that hub dies without
            stopping it (``None``: it does not watch).

    Returns:
        A new dict.
    """
    host = urlparse(url).hostname or "127.0.0.1"
    args = list(extra_args)
    if hub_pid is not None:
        args.append(f"--WarmerApp.parent_pid={hub_pid}")
    if not _is_ip(host) and host != "localhost":
        args.append("--WarmerApp.bind_ip=0.0.0.0")  # a name (a k8s Service): all
    env = {k: v for k, v in (environ or {}).items() if k in PASSTHROUGH_ENV}
    # in the environment, not on the command line the hub logs (a URL may hold
    # a password)
    env["WBSPAWNER_COST_DB_URL"] = settings.cost_db
    return {
        "name": name,
        "url": url,
        "command": command(settings, args),
        "environment": env,
        "oauth_no_confirm": True,
        "display": True,
        # How long JupyterHub 6 waits for the service at start; a managed service
        # that is not up by then stops the hub. Importing the warmer (jsonschema's
        # format checkers build a grammar at import) takes seconds on a busy
        # node, so keep JupyterHub's own default rather than a shorter wait.
        "timeout": 30,
    }


def roles(
    admin_groups: Sequence[str], name: str = SERVICE_NAME
) -> list[dict[str, Any]]:
    """Return the warmer's roles for ``c.JupyterHub.load_roles``.

    Args:
        admin_groups: groups whose members may open the warmer's page.
        name: the service name.

    Returns:
        The service's least-privilege role and the admins' access role.
    """
    return [
        {
            "name": f"{name}-service",
            "description": "What the warmer reads: users' last server options.",
            "scopes": list(SERVICE_SCOPES),
            "services": [name],
        },
        {
            "name": f"{name}-admins",
            "description": "Open the warmer's page and JSON API.",
            "scopes": [f"access:services!service={name}"],
            "groups": list(admin_groups),
        },
    ]


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
