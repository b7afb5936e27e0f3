"""What the hub needs so that notebooks reach Dask Gateway with no configuration.

This module owns the hub side of the gateway:

- the ``dask-gateway`` service, hidden from the home page: the hub's proxy sends
  ``/services/dask-gateway`` to the dashboards front (:mod:`wbspawner.gateway.
  front`), which passes the gateway's API through and lets only a cluster's
  owner or a hub admin see its dashboard. In local mode the hub runs the front
  itself (a managed service); in production it runs beside the hub (the
  ``dask-dashboards`` Deployment) and the service is external, with a short
  start-up ``timeout`` (JupyterHub 6 otherwise waits 30 s for it). Its OAuth
  needs no confirmation page (it is the hub's own component);
- the roles: users' ``access:services!service=dask-gateway`` (the gateway's
  JupyterHub authenticator refuses tokens without it) and the gateway's own
  least-privilege role for its reaper (``list:users``, ``read:servers``); the
  front, the same service, needs nothing more (it asks the hub who sent a
  request with that request's own token, which any token may);
- the server token's scopes (``Spawner.server_token_scopes``): the default
  ``server`` role's plus the gateway access;
- the notebook environment: ``DASK_GATEWAY__ADDRESS`` (through the hub's
  proxy), ``__PROXY_ADDRESS``, ``__PUBLIC_ADDRESS``, ``__AUTH__TYPE=jupyterhub``
  and the notebook's own image as the default ``image`` cluster option.

:func:`hub_wiring` is pure. :func:`apply_hub_wiring` merges the result into a
traitlets config without dropping what the hub configuration already set (a
service or role of the same name is updated, lists are extended once).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from wbspawner.gateway.config import (
    ACCESS_SCOPE,
    ENV,
    PREFIX,
    SERVICE_NAME,
    GatewaySettings,
)

SERVER_ROLE_SCOPES = ("users:activity!user", "access:servers!server")
"""Scopes of JupyterHub's default ``server`` role (a server token's default)."""
REAPER_ROLE = "dask-gateway-reaper"
REAPER_SCOPES = ("list:users", "read:servers")
"""What the gateway's reaper needs: who has an active server."""
SERVICE_TIMEOUT_S = 2
"""Seconds the hub waits for an external front at start before carrying on."""
MANAGED_TIMEOUT_S = 10
"""Seconds the hub waits for the front it starts itself (local mode)."""

EnvValue = str | Callable[[Any], str]


def notebook_image(spawner: Any) -> str:
    """Return the image of a user's server (the default Dask image).

    JupyterHub calls callables in ``Spawner.environment`` with the spawner.

    Args:
        spawner: the user's spawner (KubeSpawner has ``image``).

    Returns:
        The image, or ``""`` when the spawner has none (the gateway then uses
        the user's default image).
    """
    return str(getattr(spawner, "image", "") or "")


@dataclass(frozen=True, slots=True, kw_only=True)
class HubWiring:
    """The hub configuration that wires the gateway in."""

    service: Mapping[str, Any]
    """Entry of ``c.JupyterHub.services``."""
    roles: tuple[Mapping[str, Any], ...]
    """Entries of ``c.JupyterHub.load_roles`` (scopes merge into same-name roles)."""
    server_token_scopes: tuple[str, ...]
    """``c.Spawner.server_token_scopes``."""
    environment: Mapping[str, EnvValue] = field(default_factory=dict)
    """Extra ``Spawner.environment`` of every server."""


def _hub_address(public_url: str) -> str:
    """Return the public URL with a host (``http://:8000`` → 127.0.0.1)."""
    parts = urlsplit(public_url)
    if parts.hostname:
        return public_url.rstrip("/")
    netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
    return urlunsplit((parts.scheme or "http", netloc, "", "", "")).rstrip("/")


def hub_wiring(
    gateway: GatewaySettings | None, public_url: str, hub_pid: int | None = None
) -> HubWiring | None:
    """Return the hub configuration for the gateway, or ``None`` when not wired.

    Args:
        gateway: the gateway settings (``None`` or no ``url``: no gateway).
        public_url: where users reach the hub's proxy.
        hub_pid: the hub's PID: a front the hub starts (local mode) stops when
            that hub dies without stopping it (``None``: it does not watch).

    Returns:
        The wiring.
    """
    if gateway is None or not gateway.url:
        return None
    service = _service(gateway, hub_pid)
    address = gateway.address or _hub_address(public_url) + PREFIX
    env: dict[str, EnvValue] = {
        "DASK_GATEWAY__ADDRESS": address,
        "DASK_GATEWAY__PUBLIC_ADDRESS": gateway.public_address or address,
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
        # The client reads default cluster options from its dask config; the
        # notebook's own image keeps workers' libraries equal to the notebook's.
        "DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE": notebook_image,
    }
    if gateway.proxy_address:
        env["DASK_GATEWAY__PROXY_ADDRESS"] = gateway.proxy_address
    return HubWiring(
        service=service,
        roles=(
            {"name": "user", "scopes": ["self", ACCESS_SCOPE]},
            {
                "name": REAPER_ROLE,
                "description": "Dask Gateway stops clusters of stopped servers",
                "scopes": list(REAPER_SCOPES),
                "services": [SERVICE_NAME],
            },
        ),
        server_token_scopes=(*SERVER_ROLE_SCOPES, ACCESS_SCOPE),
        environment=env,
    )


def front_command(hub_pid: int | None = None) -> list[str]:
    """Return the command of the dashboards front (this Python's).

    Args:
        hub_pid: the managing hub's PID, which the front watches (``None``: none).
    """
    command = [sys.executable, "-m", "wbspawner.gateway.front"]
    if hub_pid is not None:
        command.append(f"--DashboardFront.parent_pid={hub_pid}")
    return command


def _service(gateway: GatewaySettings, hub_pid: int | None) -> dict[str, Any]:
    """Return the ``dask-gateway`` service: the front, managed in local mode."""
    service: dict[str, Any] = {
        "name": SERVICE_NAME,
        "url": gateway.front_url,
        "display": False,
        "oauth_no_confirm": True,
        "timeout": SERVICE_TIMEOUT_S,
    }
    if gateway.api_token:
        service["api_token"] = gateway.api_token
    if gateway.mode == "local":
        # The hub gives a managed service its token and hub API URL
        # (JUPYTERHUB_API_TOKEN / _URL); the front reads the rest from these.
        service["command"] = front_command(hub_pid)
        service["environment"] = {
            "WBSPAWNER_MODE": gateway.mode,
            f"{ENV}URL": gateway.url,
            f"{ENV}FRONT_URL": gateway.front_url,
        }
        service["timeout"] = MANAGED_TIMEOUT_S
    return service


def _merged_list(current: Any, extra: list[Any], key: str) -> list[Any]:
    """Return ``current`` (a list or unset) with ``extra`` merged in by ``key``."""
    out = [dict(x) if isinstance(x, Mapping) else x for x in (current or [])]
    for item in extra:
        same = next(
            (x for x in out if isinstance(x, dict) and x.get(key) == item[key]), None
        )
        if same is None:
            out.append(dict(item))
            continue
        for k, v in item.items():
            if isinstance(v, list) and isinstance(same.get(k), list):
                same[k] = same[k] + [x for x in v if x not in same[k]]
            elif not (k == "api_token" and same.get(k)):  # keep a token already set
                same[k] = v
    return out


def _with_scopes(
    scopes_of: Callable[[Any], Any], wanted: tuple[str, ...]
) -> Callable[[Any], list[str]]:
    """Return a ``server_token_scopes`` callable that adds ``wanted``."""

    def scopes(spawner: Any) -> list[str]:
        have = list(scopes_of(spawner))
        return have + [s for s in wanted if s not in have]

    return scopes


def _get(section: Any, name: str) -> Any:
    """Return a trait value already set in a config section, else ``None``."""
    return section[name] if name in section else None


def apply_hub_wiring(
    c: Any, wiring: HubWiring | None, spawner_section: str = "Spawner"
) -> None:
    """Merge the wiring into a traitlets config.

    Services and roles of the same name are updated (list values extended, a
    token already set kept); server token scopes the hub configuration set get
    only the gateway access added; the environment is extended.

    Args:
        c: the hub's traitlets config.
        wiring: from :func:`hub_wiring`; ``None`` does nothing.
        spawner_section: the config section whose ``environment`` and
            ``server_token_scopes`` the hub configuration sets (e.g.
            ``KubeSpawner``); the values already there are kept.
    """
    if wiring is None:
        return
    hub = c.JupyterHub
    hub.services = _merged_list(_get(hub, "services"), [wiring.service], "name")
    hub.load_roles = _merged_list(_get(hub, "load_roles"), list(wiring.roles), "name")
    spawner = c[spawner_section]
    current = _get(spawner, "server_token_scopes")
    wanted = wiring.server_token_scopes
    if current is None:
        spawner.server_token_scopes = list(wanted)
        _merge_env(spawner, wiring)
        return
    # Scopes the hub configuration chose stay as they are; only the access is added.
    wanted = (ACCESS_SCOPE,)
    if callable(current):
        spawner.server_token_scopes = _with_scopes(current, wanted)
    else:
        scopes = list(current)
        spawner.server_token_scopes = scopes + [s for s in wanted if s not in scopes]
    _merge_env(spawner, wiring)


def _merge_env(spawner: Any, wiring: HubWiring) -> None:
    env = dict(_get(spawner, "environment") or {})
    env.update(wiring.environment)
    spawner.environment = env
