"""The hub's configuration: every JupyterHub, authenticator and spawner trait.

This module owns what ``jupyterhub_config.py`` sets. :func:`apply` turns the
:class:`~wbspawner.hub.settings.Settings` (from the environment) and the validated
profiles into trait values on a traitlets ``Config``: the hub and proxy
addresses, LDAP login with group mapping and auth state, the ``workbench``
spawner with its profiles source, homes and timeouts.

Config is only ever *set* here: values are new lists and dicts built for the
config, never the settings' or profiles' own objects, and nothing is appended
to or merged into what the config held before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from wbspawner.hub import culler_service as culler_hub
from wbspawner.hub import ssh_service as ssh_hub
from wbspawner.hub import warmer_service as warmer_hub
from wbspawner.hub.gateway_service import apply_hub_wiring, hub_wiring
from wbspawner.hub.ldap import (
    GroupMapper,
    all_groups,
    authenticator_config,
    not_in_group_message,
)
from wbspawner.hub.settings import Settings
from wbspawner.hub.spending import template_var
from wbspawner.model import Profiles
from wbspawner.pages.layout import TEMPLATES as PAGES_TEMPLATES
from wbspawner.spawn.manifests import HOME_PVC_TEMPLATE, SAVE_BEFORE_STOP

TEMPLATES = Path(__file__).with_name("templates")
"""The hub's own page templates, each extending JupyterHub's."""

SPAWNER_CLASS = "workbench"
"""Entry point name of :class:`wbspawner.hub.spawner.WorkbenchSpawner`."""
AUTHENTICATOR_CLASS = "wbspawner.hub.login.WorkbenchLDAPAuthenticator"
"""ldapauthenticator's ``LDAPAuthenticator``, saying when groups refuse a login."""
HTTP_TIMEOUT = 120
"""Seconds a started server may take to answer HTTP (Jupyter imports are slow)."""


class StaticProfiles:
    """Profiles that never change, in the shape of a ``ProfilesSource``.

    Used when :func:`apply` is given no source (tests, benchmarks); the hub itself
    passes a ``wbspawner.profiles.loader.ProfilesSource`` for the hot reload.
    """

    def __init__(self, profiles: Profiles) -> None:
        self.profiles = profiles
        self.last_error: Any = None

    def current(self) -> Profiles:
        """Return the profiles given at construction."""
        return self.profiles


def proxy_default_target(settings: Settings) -> str:
    """Return where the proxy sends requests no route matches: the hub itself.

    JupyterHub starts configurable-http-proxy, then listens, starts its services
    (up to each one's ``timeout``) and only then adds the proxy's route to the
    hub. Without a default target every request in that window is a 404 the
    proxy logs as an error (and asks the hub, maybe not listening yet, for the
    error page); with it the hub answers as soon as it listens, as in z2jh,
    whose proxy runs with ``--default-target`` pointing at the hub.

    Args:
        settings: the hub settings (its connect or bind URL).

    Returns:
        ``scheme://host:port`` of the hub; an empty or wildcard host (the hub
        listens everywhere) becomes 127.0.0.1, where the proxy the hub started
        reaches it.
    """
    parts = urlsplit(settings.hub_connect_url or settings.hub_bind_url)
    host = parts.hostname or ""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme or "http", netloc, "", "", ""))


def _hub(c: Any, settings: Settings) -> None:
    state = Path(settings.state_dir)
    c.JupyterHub.bind_url = settings.public_url
    c.JupyterHub.hub_bind_url = settings.hub_bind_url
    if settings.hub_connect_url:
        c.JupyterHub.hub_connect_url = settings.hub_connect_url
    # SQLite in the state directory unless WBSPAWNER_HUB_DB_URL names a server
    # (PostgreSQL in production: docs/deploy-eks.md).
    c.JupyterHub.db_url = settings.hub_db
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    # Servers are pods that outlive a hub restart; the hub finds them again.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.allow_named_servers = False
    c.JupyterHub.spawner_class = SPAWNER_CLASS
    c.JupyterHub.authenticator_class = AUTHENTICATOR_CLASS
    # The home page says why the cluster stopped a server and what the user
    # spent (templates/home.html); every page's Services menu lists the
    # warmer's admin pages (wbspawner/pages/templates/page.html).
    c.JupyterHub.template_paths = [str(TEMPLATES), str(PAGES_TEMPLATES)]
    c.ConfigurableHTTPProxy.api_url = settings.proxy_api_url
    c.ConfigurableHTTPProxy.command = [
        *settings.proxy_command,
        f"--default-target={proxy_default_target(settings)}",
    ]
    c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
    c.ConfigurableHTTPProxy.should_start = True


def _authenticator(c: Any, settings: Settings, profiles: Profiles) -> None:
    for name, value in authenticator_config(settings.ldap, profiles).items():
        setattr(c.LDAPAuthenticator, name, value)
    message = not_in_group_message(all_groups(profiles))
    c.WorkbenchLDAPAuthenticator.not_allowed_message = message
    # Requires JUPYTERHUB_CRYPT_KEY: auth_state carries the uid/gid pods run as.
    c.Authenticator.enable_auth_state = True
    c.Authenticator.manage_groups = True
    c.Authenticator.allow_all = False
    c.Authenticator.post_auth_hook = GroupMapper.build(settings.ldap, profiles)


def _spawner(c: Any, settings: Settings, profiles: Profiles, source: Any) -> None:
    c.KubeSpawner.namespace = settings.namespace
    if settings.k8s_api_host:
        c.KubeSpawner.k8s_api_host = settings.k8s_api_host
    c.KubeSpawner.start_timeout = settings.start_timeout
    c.KubeSpawner.http_timeout = HTTP_TIMEOUT
    # Homes: one claim per user, created on first start, never deleted by the hub.
    c.KubeSpawner.pvc_name_template = HOME_PVC_TEMPLATE
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.storage_class = profiles.homes.storage_class
    c.KubeSpawner.delete_pvc = False
    c.KubeSpawner.default_url = "/lab"
    # Before a pod goes, its JupyterLab tabs save every open document.
    c.KubeSpawner.lifecycle_hooks = SAVE_BEFORE_STOP
    if settings.is_local:
        # devcluster runs the pod's command as a local process (as root).
        c.KubeSpawner.cmd = list(settings.singleuser_cmd or ())
        c.KubeSpawner.args = list(settings.singleuser_args)
    c.WorkbenchSpawner.profiles_source = lambda: source
    c.WorkbenchSpawner.warm_status_file = settings.warm_status_file
    c.WorkbenchSpawner.wait_times_file = settings.wait_times_file
    c.WorkbenchSpawner.spot_prices_file = settings.spot_prices_file
    c.WorkbenchSpawner.capacity_grace_seconds = settings.capacity_grace_seconds
    c.WorkbenchSpawner.cost_db_url = settings.cost_db
    c.WorkbenchSpawner.aws_endpoint_url = settings.aws_endpoint_url
    # Each user's Dask pods accept only their own server and workers (production:
    # the gateway's Kubernetes backend; local mode runs Dask as processes).
    pods = settings.dask_gateway is not None and not settings.is_local
    c.WorkbenchSpawner.dask_namespace = settings.dask_namespace if pods else None


def _warmer(
    c: Any, settings: Settings, profiles: Profiles, environ: Mapping[str, str]
) -> None:
    """Register the warmer as a hub-managed service, page for admins only."""
    if not settings.warmer_url:
        return
    # This file runs in the hub's process: the warmer stops if that process dies
    # without stopping it (JupyterHub starts services in their own session).
    service = warmer_hub.service(
        settings, environ=environ, url=settings.warmer_url, hub_pid=os.getpid()
    )
    c.JupyterHub.services = [service]
    c.JupyterHub.load_roles = warmer_hub.roles(profiles.admin_groups)


def _culler(c: Any, settings: Settings, environ: Mapping[str, str]) -> None:
    """Register wbspawner's idle culler as a hub-managed service (if wanted)."""
    if settings.culler_interval is None:
        return
    service = culler_hub.service(
        settings, settings.culler_interval, environ=environ, hub_pid=os.getpid()
    )
    services = c.JupyterHub.services if "services" in c.JupyterHub else []
    roles = c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else []
    c.JupyterHub.services = [*services, service]
    c.JupyterHub.load_roles = [*roles, *culler_hub.roles()]


def _ssh(c: Any, settings: Settings, environ: Mapping[str, str]) -> None:
    """Register the SSH service (started by the hub in the demo) and its role."""
    service = ssh_hub.service(settings, environ=environ, hub_pid=os.getpid())
    if service is None:
        return
    services = c.JupyterHub.services if "services" in c.JupyterHub else []
    roles = c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else []
    c.JupyterHub.services = [*services, service]
    c.JupyterHub.load_roles = [*roles, *ssh_hub.roles()]


def apply(
    c: Any,
    settings: Settings,
    profiles: Profiles,
    *,
    source: Any = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Set every trait of the hub, the authenticator and the spawner.

    Args:
        c: the traitlets ``Config`` of ``jupyterhub_config.py``.
        settings: the settings read from the environment.
        profiles: the validated profiles (groups, homes) at hub start.
        source: the profiles source the spawner asks at every form and start (a
            ``ProfilesSource`` that re-reads edits); ``None`` keeps ``profiles``.
        environ: the hub's environment, of which hub-managed services get the
            Kubernetes and AWS variables; ``None``: ``os.environ``.
    """
    _hub(c, settings)
    _authenticator(c, settings, profiles)
    profiles_source = source or StaticProfiles(profiles)
    _spawner(c, settings, profiles, profiles_source)
    c.JupyterHub.template_vars = {
        "wb_spending": template_var(settings.cost_db, profiles_source.current)
    }
    hub_environ = os.environ if environ is None else environ
    _warmer(c, settings, profiles, hub_environ)
    _culler(c, settings, hub_environ)
    _ssh(c, settings, hub_environ)
    # Dask Gateway: the hub service, users' access scope, notebook environment.
    apply_hub_wiring(
        c,
        hub_wiring(settings.dask_gateway, settings.public_url, hub_pid=os.getpid()),
        "KubeSpawner",
    )


class ExpectedSpawnErrorFilter(logging.Filter):
    """Keep expected spawn refusals out of the log as tracebacks.

    A ``SpawnException`` is a refusal the user is told about (a forbidden size, no
    capacity); JupyterHub says such errors never log a traceback, yet 6.1 logs
    one in two places: the spawn-form handler logs every failure with
    ``exc_info``, and a spawn that fails after the user was sent to the pending
    page leaves a task whose exception asyncio reports as "never retrieved".
    This filter drops the traceback of the first and the second record entirely
    (JupyterHub has already logged the refusal); everything else passes as is.
    FIXME(https://github.com/jupyterhub/jupyterhub/issues/5494)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether to log the record, without a refusal's traceback."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or type(exc).__name__ != "SpawnException":
            return True
        if record.name == "asyncio":
            return False
        record.exc_info = None
        record.exc_text = None
        return True


LOGGERS = ("JupyterHub", "asyncio")
"""Loggers that report expected spawn refusals with a traceback."""


def quiet_expected_spawn_errors() -> None:
    """Install :class:`ExpectedSpawnErrorFilter` on the hub's loggers, once."""
    for name in LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, ExpectedSpawnErrorFilter) for f in log.filters):
            log.addFilter(ExpectedSpawnErrorFilter())
