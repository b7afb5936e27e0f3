"""Configuration of ``dask-gateway-server`` for the workbench, and its settings.

This module owns two things:

- :class:`GatewaySettings`: what the gateway (and the hub's wiring of it) needs
  from the environment, parsed from a mapping by :meth:`GatewaySettings.from_env`
  (the shells pass ``os.environ``; nothing here reads it on its own).
- :func:`configure`: sets a traitlets config ``c`` for ``dask-gateway-server``:
  the workbench backend (``UnsafeLocalBackend`` processes in local mode, never
  ``LocalBackend``; Kubernetes pods in production), the scheduler and worker
  commands of distributed 2026 (``dask scheduler`` / ``dask worker``), addresses
  and the hub prefix, JupyterHub authentication, the idle timeout and the
  reaper. Config is only set, never appended to.

Variables (``WBSPAWNER_DASK_GATEWAY_`` prefix unless stated):

======================  ==========================================================
``URL``                 the gateway's HTTP proxy, as the dashboards front reaches it
``FRONT_URL``           the dashboards front (:mod:`wbspawner.gateway.front`), as
                        the hub's proxy reaches it: the hub's service URL; needed
                        whenever ``URL`` is set
``PROXY_ADDRESS``       ``gateway://host:port`` of the TCP proxy, for notebooks
``ADDRESS``             notebooks' gateway URL (default: hub public URL + prefix)
``PUBLIC_ADDRESS``      dashboard links' base (default: like ``ADDRESS``)
``API_TOKEN``           the gateway's hub service token (or ``API_TOKEN_FILE``;
                        the gateway also takes ``JUPYTERHUB_API_TOKEN``)
``HUB_API_URL``         the hub API (gateway side; or ``JUPYTERHUB_API_URL``)
``AUTH``                ``jupyterhub`` (default) or ``simple`` (+ ``PASSWORD``)
``API_BIND``            local: private API address (``127.0.0.1:8787``)
``HTTP_BIND``           local: HTTP proxy address (``127.0.0.1:8000``)
``TCP_BIND``            local: scheduler proxy address (``127.0.0.1:8786``)
``STATE_DIR``           local: database and cluster directories (default: memory);
                        needs ``DASK_GATEWAY_ENCRYPT_KEYS``
``DEFAULT_IMAGE``       image when the client sends none
``REAP_INTERVAL``       seconds between reaper rounds (30; 0: off)
``REAP_GRACE``          seconds a new cluster is kept without a server (60)
======================  ==========================================================

Shared with the hub: ``WBSPAWNER_MODE``, ``WBSPAWNER_PROFILES``,
``WBSPAWNER_CATALOG``, ``WBSPAWNER_NAMESPACE``. In production the profiles may
also come as variables ``WBSPAWNER_PROFILES_INLINE_<NAME>`` (one per file, from
the profiles ConfigMap): the dask-gateway chart cannot mount volumes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast

from wbspawner.errors import WbError
from wbspawner.model import Profiles

ENV = "WBSPAWNER_DASK_GATEWAY_"
INLINE = "WBSPAWNER_PROFILES_INLINE_"
SERVICE_NAME = "dask-gateway"
"""Name of the gateway's JupyterHub service (and its proxy route)."""
PREFIX = f"/services/{SERVICE_NAME}"
"""Path of the gateway behind the hub's proxy."""
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
"""What a hub token needs to use the gateway (and its dashboards)."""
DEFAULT_PROFILES = ("/etc/wbspawner/profiles",)
DEFAULT_API_BIND = "127.0.0.1:8787"
DEFAULT_HTTP_BIND = "127.0.0.1:8000"
DEFAULT_TCP_BIND = "127.0.0.1:8786"
BACKENDS = {
    "local": "wbspawner.gateway.backends.WorkbenchUnsafeLocalBackend",
    "production": "wbspawner.gateway.backends.WorkbenchKubeBackend",
}


class GatewaySettingsError(WbError):
    """The gateway's environment is incomplete or contradictory."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    """Everything the gateway and its hub wiring need from the environment."""

    mode: Literal["production", "local"] = "production"
    """``local``: UnsafeLocalBackend processes; ``production``: Kubernetes pods."""
    profiles_paths: tuple[str, ...] = DEFAULT_PROFILES
    catalog_path: str | None = None
    url: str | None = None
    """The gateway's HTTP proxy as the dashboards front reaches it; ``None``: the
    hub does not wire the gateway in."""
    front_url: str | None = None
    """The dashboards front as the hub's proxy reaches it (the ``dask-gateway``
    service's URL); the front listens on its port."""
    proxy_address: str | None = None
    """``gateway://host:port`` notebooks reach schedulers through."""
    address: str | None = None
    """Notebooks' ``DASK_GATEWAY__ADDRESS``; ``None``: public hub URL + prefix."""
    public_address: str | None = None
    """Base of dashboard links shown to users; ``None``: like ``address``."""
    api_token: str | None = None
    """The gateway's hub service token (never logged)."""
    hub_api_url: str | None = None
    auth: Literal["jupyterhub", "simple"] = "jupyterhub"
    password: str | None = None
    """Shared password of ``simple`` auth (tests only)."""
    api_bind: str = DEFAULT_API_BIND
    """Local mode: the gateway's private API (``c.DaskGateway.address``)."""
    http_bind: str = DEFAULT_HTTP_BIND
    """Local mode: the HTTP proxy (``c.Proxy.address``) the hub forwards to."""
    tcp_bind: str = DEFAULT_TCP_BIND
    """Local mode: the scheduler proxy (``c.Proxy.tcp_address``)."""
    state_dir: str | None = None
    default_image: str | None = None
    namespace: str | None = None
    extra_path: tuple[str, ...] = ()
    """Local mode: directories put first on PATH of schedulers and workers."""
    reap_interval_s: float = 30.0
    reap_grace_s: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewaySettings:
        """Build the settings from an environment mapping.

        Args:
            environ: usually ``os.environ``; tests pass a ``dict``.

        Returns:
            The settings.

        Raises:
            GatewaySettingsError: a value is invalid or a needed one is missing.
        """

        def get(name: str, fallback: str | None = None) -> str | None:
            value = environ.get(ENV + name, "").strip()
            if not value and fallback:
                value = environ.get(fallback, "").strip()
            return value or None

        mode = (environ.get("WBSPAWNER_MODE") or "production").strip().lower()
        auth = (get("AUTH") or "jupyterhub").lower()
        state_dir = get("STATE_DIR")
        _check(environ, mode, auth, state_dir, get("PASSWORD"))
        if get("URL") and not get("FRONT_URL"):
            raise GatewaySettingsError(
                f"{ENV}URL is set but {ENV}FRONT_URL is not: without the dashboards "
                "front (python -m wbspawner.gateway.front) every Dask cluster's "
                "dashboard is open to anyone who reaches the hub"
            )
        profiles = tuple(
            p for p in (environ.get("WBSPAWNER_PROFILES") or "").split(os.pathsep) if p
        )
        return cls(
            mode=cast(Literal["production", "local"], mode),
            profiles_paths=profiles or DEFAULT_PROFILES,
            catalog_path=environ.get("WBSPAWNER_CATALOG") or None,
            url=get("URL"),
            front_url=get("FRONT_URL"),
            proxy_address=get("PROXY_ADDRESS"),
            address=get("ADDRESS"),
            public_address=get("PUBLIC_ADDRESS"),
            api_token=_token(get("API_TOKEN"), get("API_TOKEN_FILE"))
            or (environ.get("JUPYTERHUB_API_TOKEN") or None),
            hub_api_url=get("HUB_API_URL", "JUPYTERHUB_API_URL"),
            auth=cast(Literal["jupyterhub", "simple"], auth),
            password=get("PASSWORD"),
            api_bind=get("API_BIND") or DEFAULT_API_BIND,
            http_bind=get("HTTP_BIND") or DEFAULT_HTTP_BIND,
            tcp_bind=get("TCP_BIND") or DEFAULT_TCP_BIND,
            state_dir=state_dir,
            default_image=get("DEFAULT_IMAGE"),
            namespace=environ.get("WBSPAWNER_NAMESPACE") or None,
            extra_path=(str(Path(sys.executable).parent),) if mode == "local" else (),
            reap_interval_s=_seconds(get("REAP_INTERVAL"), "REAP_INTERVAL", 30.0),
            reap_grace_s=_seconds(get("REAP_GRACE"), "REAP_GRACE", 60.0),
        )


def _check(
    environ: Mapping[str, str],
    mode: str,
    auth: str,
    state_dir: str | None,
    password: str | None,
) -> None:
    if mode not in ("production", "local") or auth not in ("jupyterhub", "simple"):
        raise GatewaySettingsError(
            f"WBSPAWNER_MODE must be production or local (got {mode!r}) and "
            f"{ENV}AUTH jupyterhub or simple (got {auth!r})"
        )
    if state_dir and not environ.get("DASK_GATEWAY_ENCRYPT_KEYS"):
        raise GatewaySettingsError(
            f"{ENV}STATE_DIR keeps clusters in a database file, which needs "
            "DASK_GATEWAY_ENCRYPT_KEYS (a Fernet key: python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key()"
            ".decode())')"
        )
    if auth == "simple" and not password:
        raise GatewaySettingsError(f"{ENV}AUTH=simple needs {ENV}PASSWORD")


def _token(value: str | None, path: str | None) -> str | None:
    if value or not path:
        return value
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as err:
        raise GatewaySettingsError(
            f"{ENV}API_TOKEN_FILE {path!r} cannot be read: {err.strerror}"
        ) from None


def _seconds(raw: str | None, name: str, default: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise GatewaySettingsError(f"{ENV}{name} must be seconds >= 0, got {raw!r}")
    return value


def inline_profiles(
    settings: GatewaySettings, environ: Mapping[str, str], directory: Path
) -> GatewaySettings:
    """Write ``WBSPAWNER_PROFILES_INLINE_<NAME>`` variables out as profiles files.

    The dask-gateway chart cannot mount the profiles ConfigMap, so its keys
    reach the gateway pod as variables (``valueFrom.configMapKeyRef``).

    Args:
        settings: the settings so far.
        environ: the environment.
        directory: where to write ``<name>.yaml`` files (created).

    Returns:
        The settings, reading profiles from ``directory`` when any variable was
        set, else unchanged.
    """
    found = {
        k[len(INLINE) :].lower(): v for k, v in environ.items() if k.startswith(INLINE)
    }
    if not found:
        return settings
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(found.items()):
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    return replace(settings, profiles_paths=(str(directory),))


def configure(c: Any, settings: GatewaySettings, profiles: Profiles) -> None:
    """Set the gateway's configuration for the workbench.

    Args:
        c: the traitlets config of ``dask-gateway-server`` (``get_config()``).
        settings: the gateway settings.
        profiles: the validated profiles (the backend re-reads them when the
            files change; these give the defaults at start).
    """
    local = settings.mode == "local"
    c.DaskGateway.backend_class = BACKENDS[settings.mode]
    # distributed 2026 installs only the `dask` command; the old defaults
    # `dask-scheduler` / `dask-worker` no longer exist.
    c.ClusterConfig.scheduler_cmd = ["dask", "scheduler"]
    c.ClusterConfig.worker_cmd = ["dask", "worker"]
    c.ClusterConfig.idle_timeout = float(profiles.dask.idle_timeout_s)
    c.ClusterConfig.cluster_max_workers = profiles.dask.max_workers_per_cluster
    mixin = c.WorkbenchBackendMixin
    mixin.profiles_paths = list(settings.profiles_paths)
    mixin.catalog_path = settings.catalog_path
    mixin.default_image = settings.default_image or ""
    mixin.reap_interval = settings.reap_interval_s
    mixin.reap_grace = settings.reap_grace_s
    if settings.hub_api_url and settings.api_token:
        mixin.hub_api_url = settings.hub_api_url
        mixin.hub_api_token = settings.api_token
    if local:
        c.DaskGateway.address = settings.api_bind
        c.Proxy.address = settings.http_bind
        c.Proxy.tcp_address = settings.tcp_bind
        # The hub's proxy forwards /services/dask-gateway/... unchanged.
        c.Proxy.prefix = PREFIX
        c.WorkbenchUnsafeLocalBackend.extra_path = list(settings.extra_path)
        if settings.state_dir:
            state = Path(settings.state_dir)
            c.DBBackendBase.db_url = f"sqlite:///{state / 'gateway.sqlite'}"
            c.LocalBackend.clusters_directory = str(state / "clusters")
    elif settings.namespace:
        c.KubeClusterConfig.namespace = settings.namespace
    _configure_auth(c, settings)


def _configure_auth(c: Any, settings: GatewaySettings) -> None:
    if settings.auth == "simple":
        c.DaskGateway.authenticator_class = (
            "dask_gateway_server.auth.SimpleAuthenticator"
        )
        c.SimpleAuthenticator.password = settings.password
        return
    c.DaskGateway.authenticator_class = (
        "dask_gateway_server.auth.JupyterHubAuthenticator"
    )
    # With the service name set, a token needs access:services!service=dask-gateway.
    c.JupyterHubAuthenticator.jupyterhub_service_name = SERVICE_NAME
    if settings.hub_api_url:
        c.JupyterHubAuthenticator.jupyterhub_api_url = settings.hub_api_url
    if settings.api_token:
        c.JupyterHubAuthenticator.jupyterhub_api_token = settings.api_token


def configure_from_env(
    c: Any, environ: Mapping[str, str], inline_dir: Path | None = None
) -> GatewaySettings:
    """Read settings and profiles, then :func:`configure` and the accounting DB.

    Args:
        c: the traitlets config.
        environ: the environment (``os.environ``).
        inline_dir: where inline profiles are written (default: a directory
            under the system's temporary directory).

    Returns:
        The settings used.

    Raises:
        GatewaySettingsError: the environment is invalid.
        ProfileConfigError: the profiles are invalid (the gateway must not start).
    """
    from wbspawner.catalog.instances import load_catalog
    from wbspawner.profiles.loader import load_profiles

    settings = GatewaySettings.from_env(environ)
    if inline_dir is None:
        import tempfile

        inline_dir = Path(tempfile.gettempdir()) / f"wbspawner-profiles-{os.getpid()}"
    settings = inline_profiles(settings, environ, inline_dir)
    catalog = load_catalog(settings.catalog_path) if settings.catalog_path else None
    configure(c, settings, load_profiles(settings.profiles_paths, catalog))
    from wbspawner.gateway.accounting import configure_costs

    configure_costs(c, environ)  # the hub's accounting database
    return settings
