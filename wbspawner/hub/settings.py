"""Runtime settings of the hub: the one place environment variables are read.

This module owns the translation of the hub process's environment (and of the few
files Kubernetes mounts into it: the service-account namespace, the LDAP bind
password) into one frozen :class:`Settings` value. Everything else receives that
value; no other module reads ``os.environ``.

Reading happens only when :meth:`Settings.from_env` is called (never at import), so
tests pass a plain ``dict`` and need no reloads.

Variables (all optional unless stated; ``WBSPAWNER_`` prefix):

===============================  ====================================================
``MODE``                         ``production`` (default) or ``local`` (devcluster)
``PROFILES``                     profiles directories/files, ``os.pathsep``-separated
``CATALOG``                      instance catalogue JSON (default: the shipped one)
``STATE_DIR``                    hub database (SQLite), cookie secret, proxy pid file
``HUB_DB_URL``                   the hub's own database (SQLAlchemy URL, e.g.
                                 ``postgresql+psycopg://…``; default: a SQLite
                                 file in ``STATE_DIR``)
``HUB_DB_URL_FILE``              a file holding that URL (a mounted Secret: the
                                 URL carries the password); not with the above
``PUBLIC_URL``                   where users reach the proxy (``http://:8000``)
``HUB_BIND_URL``                 where the hub listens (``http://127.0.0.1:8081``)
``HUB_CONNECT_URL``              how servers reach the hub (default: bind URL)
``PROXY_API_URL``                configurable-http-proxy's API (``http://127.0.0.1:8001``)
``PROXY_COMMAND``                the proxy's command line, ``os.pathsep``-separated
``NAMESPACE``                    Kubernetes namespace (default: the mounted one)
``K8S_API_HOST``                 Kubernetes API URL overriding the kubeconfig
``START_TIMEOUT``                seconds a spawn may take (default 900)
``PROFILES_CHECK_SECONDS``       how often the profiles are checked for edits (5)
``CAPACITY_GRACE_SECONDS``       how long "no node can be started" must last (30)
``LDAP_SERVER`` (required)       LDAP host name
``LDAP_PORT``                    default 389, or 636 with ``ldaps``
``LDAP_TLS``                     ``starttls`` (default), ``ldaps`` or ``insecure``
``LDAP_CA_FILE``                 CA bundle to verify the LDAP server
``LDAP_BIND_DN_TEMPLATE``        ``;``-separated, e.g. ``uid={username},ou=people,…``
``LDAP_GROUP_DN_TEMPLATE``       e.g. ``cn={group},ou=groups,dc=example,dc=org``
``LDAP_LOOKUP_USER``             service account DN for a lookup bind (optional)
``LDAP_BIND_PASSWORD_FILE``      file holding that account's password
``LDAP_USER_SEARCH_BASE``        search base for the lookup bind
``LDAP_USER_ATTRIBUTE``          attribute holding the login name (``uid``)
``SINGLEUSER_CMD``               local mode: the server command (default: beside
                                 the running Python)
``WARM_STATUS_FILE``             JSON ``{pool: {zone: ready nodes}}`` from the warmer
``WAIT_TIMES_FILE``              JSON of the cold starts the warmer observed (the
                                 form's waits); default: ``wait-times.json`` beside
                                 ``WARM_STATUS_FILE``
``SPOT_PRICES_FILE``             JSON ``{"type/zone": price}`` of observed spot prices
``WARMER_URL``                   where the warmer service listens; unset: no warmer
``AWS_ENDPOINT_URL``             AWS endpoint of the hub's own calls (a home's
                                 automatic move); unset: AWS itself
``CULLER_INTERVAL``              seconds between the idle culler's passes; unset: no
                                 culler (its rules are the profiles' ``culling``)
``CULLER_PROXY_URL``             where the culler reaches users' servers (the proxy;
                                 default: ``PUBLIC_URL`` on 127.0.0.1)
``DASK_NAMESPACE``               namespace of Dask pods (``dask-gateway``); the
                                 spawner writes each user's network policies there
``COST_DB_URL``                  accounting database (SQLAlchemy URL; default: a
                                 SQLite file in ``STATE_DIR``)
``COST_DB_URL_FILE``             a file holding that URL; not with the above
``SSH_PORT``                     the hub starts the SSH service on this port
                                 (the demo); unset: no SSH service of its own
``SSH_HOST_KEY_FILE``            that service's host key (created when absent;
                                 default: ``ssh_host_ed25519_key`` in ``STATE_DIR``)
``SSH_API_TOKEN_FILE``           the token of an SSH service that runs on its own
                                 (EKS: ``helm-values/ssh.yaml``); the hub registers
                                 it and its role
===============================  ====================================================
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from wbspawner.costs.database import url_in_state_dir
from wbspawner.errors import WbError
from wbspawner.gateway.config import GatewaySettings

PREFIX = "WBSPAWNER_"
"""Prefix of every environment variable wbspawner reads."""

HUB_DB_FILE = "jupyterhub.sqlite"
"""The hub's SQLite database in the state directory, when no URL is set."""
WAIT_TIMES_NAME = "wait-times.json"
"""The warmer's observed cold starts, by default beside its ``WARM_STATUS_FILE``."""

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
"""Where Kubernetes mounts the pod's namespace."""

Mode = Literal["production", "local"]
TlsStrategy = Literal["starttls", "ldaps", "insecure"]
ReadText = Callable[[str], "str | None"]


class SettingsError(WbError):
    """The hub's environment is incomplete or contradictory; the hub must not start."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LdapSettings:
    """How the hub talks to the directory."""

    server: str
    """Host name or address of the LDAP server."""
    port: int
    """TCP port (389 for StartTLS or plain, 636 for LDAPS)."""
    tls: TlsStrategy
    """``starttls`` before the bind, ``ldaps`` on connect, ``insecure`` (local only)."""
    ca_file: str | None
    """CA bundle that signs the server's certificate; ``None``: system CAs."""
    bind_dn_templates: tuple[str, ...]
    """DN templates tried in order; ``{username}`` is replaced."""
    group_dn_template: str
    """Turns a hub group name into its LDAP DN; ``{group}`` is replaced."""
    lookup_user: str | None = None
    """DN of a service account that looks users up before binding, if used."""
    lookup_password: str | None = None
    """That account's password (read from a mounted file), never logged."""
    user_search_base: str | None = None
    """Where the lookup searches for users."""
    user_attribute: str = "uid"
    """Attribute that holds the login name."""

    def group_dn(self, group: str) -> str:
        """Return the LDAP DN of a hub group name.

        Args:
            group: hub group name, e.g. ``jupyter-users``.

        Returns:
            Its DN, e.g. ``cn=jupyter-users,ou=groups,dc=example,dc=org``.
        """
        return self.group_dn_template.format(group=group)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the hub configuration needs from its environment."""

    mode: Mode = "production"
    """``local`` runs single-user servers as local processes (devcluster)."""
    profiles_paths: tuple[str, ...] = ("/etc/wbspawner/profiles",)
    """Profiles directories or files, merged in order."""
    catalog_path: str | None = None
    """Instance catalogue JSON; ``None``: the catalogue shipped in the package."""
    state_dir: str = "/srv/jupyterhub"
    """Directory of the hub database (SQLite), cookie secret and proxy pid file."""
    hub_db_url: str | None = None
    """The hub's database URL; ``None``: ``jupyterhub.sqlite`` in the state
    directory (see :attr:`hub_db`)."""
    public_url: str = "http://:8000"
    """Where users reach the proxy."""
    hub_bind_url: str = "http://127.0.0.1:8081"
    """Where the hub itself listens."""
    hub_connect_url: str | None = None
    """How single-user servers reach the hub; ``None``: the bind URL."""
    proxy_api_url: str = "http://127.0.0.1:8001"
    """configurable-http-proxy's REST API."""
    proxy_command: tuple[str, ...] = ("configurable-http-proxy",)
    """How to start configurable-http-proxy."""
    namespace: str = "jupyterhub"
    """Kubernetes namespace of user pods and homes."""
    k8s_api_host: str | None = None
    """Kubernetes API URL overriding the kubeconfig's server."""
    start_timeout: int = 900
    """Seconds a spawn may take; a cold node boots in minutes."""
    profiles_check_seconds: float = 5.0
    """Minimum seconds between two checks of the profiles files for edits."""
    capacity_grace_seconds: float = 30.0
    """Seconds the autoscaler must refuse a node before a spawn fails early."""
    singleuser_cmd: tuple[str, ...] | None = None
    """Local mode only: the single-user server's command."""
    singleuser_args: tuple[str, ...] = ()
    """Local mode only: extra arguments (we run as root there)."""
    warm_status_file: str | None = None
    """JSON file the warmer writes: ready warm nodes per pool and zone."""
    wait_times_file: str | None = None
    """JSON file the warmer writes: the last cold starts per pool and zone."""
    spot_prices_file: str | None = None
    """JSON file of observed spot prices (``"type/zone": USD per hour``)."""
    ldap: LdapSettings
    """Directory settings."""
    dask_gateway: GatewaySettings | None = None
    """Dask Gateway wiring; ``None`` when ``WBSPAWNER_DASK_GATEWAY_URL`` is unset."""
    warmer_url: str | None = None
    """Where the hub-managed warmer service listens; ``None``: no warmer."""
    aws_endpoint_url: str | None = None
    """AWS endpoint of the hub's own calls (moving a home); ``None``: AWS."""
    culler_interval: float | None = None
    """Seconds between the culler's passes; ``None``: no culler."""
    culler_proxy_url: str | None = None
    """Where the culler reaches the proxy; ``None``: the public URL, locally."""
    dask_namespace: str = "dask-gateway"
    """Namespace of the Dask Gateway's scheduler and worker pods."""
    cost_db_url: str | None = None
    """Accounting database URL; ``None``: ``wbspawner-costs.sqlite`` in the state
    directory (see :attr:`cost_db`)."""
    ssh_port: int | None = None
    """Port of the SSH service the hub starts itself; ``None``: none."""
    ssh_host_key_file: str | None = None
    """That service's host key file; ``None``: in the state directory."""
    ssh_api_token: str | None = None
    """Token of an SSH service running on its own (read from a file)."""

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], read_text: ReadText | None = None
    ) -> Settings:
        """Build the settings from an environment mapping.

        Args:
            environ: usually ``os.environ``; tests pass a ``dict``.
            read_text: reads a mounted file, ``None`` when it is absent (tests pass
                a fake); defaults to reading the file system.

        Returns:
            The settings.

        Raises:
            SettingsError: a required variable is missing, a number does not
                parse, or an insecure LDAP connection was asked for outside a
                local test setup.
        """
        read = read_text or _read_file
        env = _Env(environ)
        mode = cast(Mode, env.choice("MODE", ("production", "local"), "production"))
        local = mode == "local"
        namespace = env.get("NAMESPACE") or (
            (read(SERVICE_ACCOUNT_NAMESPACE) or "").strip() or "jupyterhub"
        )
        cmd = env.list("SINGLEUSER_CMD", os.pathsep)
        return cls(
            mode=mode,
            profiles_paths=env.list("PROFILES", os.pathsep)
            or ("/etc/wbspawner/profiles",),
            catalog_path=env.get("CATALOG"),
            state_dir=env.get("STATE_DIR") or "/srv/jupyterhub",
            hub_db_url=_url_from_env(env, "HUB_DB_URL", read),
            public_url=env.get("PUBLIC_URL") or "http://:8000",
            hub_bind_url=env.get("HUB_BIND_URL") or "http://127.0.0.1:8081",
            hub_connect_url=env.get("HUB_CONNECT_URL"),
            proxy_api_url=env.get("PROXY_API_URL") or "http://127.0.0.1:8001",
            proxy_command=env.list("PROXY_COMMAND", os.pathsep)
            or ("configurable-http-proxy",),
            namespace=namespace,
            k8s_api_host=env.get("K8S_API_HOST"),
            start_timeout=env.integer("START_TIMEOUT", 900),
            profiles_check_seconds=env.number("PROFILES_CHECK_SECONDS", 5.0),
            capacity_grace_seconds=env.number("CAPACITY_GRACE_SECONDS", 30.0),
            singleuser_cmd=(cmd or (_beside_python("jupyterhub-singleuser"),))
            if local
            else None,
            singleuser_args=("--ServerApp.allow_root=True",) if local else (),
            warm_status_file=env.get("WARM_STATUS_FILE"),
            wait_times_file=env.get("WAIT_TIMES_FILE")
            or _beside(env.get("WARM_STATUS_FILE"), WAIT_TIMES_NAME),
            spot_prices_file=env.get("SPOT_PRICES_FILE"),
            ldap=_ldap_from_env(env, local, read),
            dask_gateway=GatewaySettings.from_env(environ)
            if environ.get("WBSPAWNER_DASK_GATEWAY_URL")
            else None,
            warmer_url=env.get("WARMER_URL"),
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL"),
            culler_interval=float(env.get("CULLER_INTERVAL") or 0) or None,
            culler_proxy_url=env.get("CULLER_PROXY_URL"),
            dask_namespace=env.get("DASK_NAMESPACE") or "dask-gateway",
            cost_db_url=_url_from_env(env, "COST_DB_URL", read),
            ssh_port=env.integer("SSH_PORT", 0) or None,
            ssh_host_key_file=env.get("SSH_HOST_KEY_FILE"),
            ssh_api_token=_url_from_env(env, "SSH_API_TOKEN", read),
        )

    @property
    def hub_db(self) -> str:
        """The hub's database URL in force (``JupyterHub.db_url``)."""
        if self.hub_db_url:
            return self.hub_db_url
        return f"sqlite:///{Path(self.state_dir) / HUB_DB_FILE}"

    @property
    def cost_db(self) -> str:
        """The accounting database URL in force."""
        if self.cost_db_url:
            return self.cost_db_url
        return url_in_state_dir(self.state_dir)

    @property
    def is_local(self) -> bool:
        """Whether servers run as local processes on devcluster."""
        return self.mode == "local"


class _Env:
    """Typed access to ``WBSPAWNER_*`` variables; empty values count as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(PREFIX + name, "").strip()
        return value or None

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise SettingsError(f"{PREFIX}{name} must be set")
        return value

    def list(self, name: str, sep: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in (self.get(name) or "").split(sep) if p.strip())

    def integer(self, name: str, default: int) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(
                f"{PREFIX}{name} must be a whole number, got {raw!r}"
            ) from None
        if value <= 0:
            raise SettingsError(f"{PREFIX}{name} must be positive, got {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(
                f"{PREFIX}{name} must be a number, got {raw!r}"
            ) from None
        if not value >= 0:
            raise SettingsError(f"{PREFIX}{name} must not be negative, got {raw!r}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = (self.get(name) or default).lower()
        if value not in allowed:
            raise SettingsError(
                f"{PREFIX}{name} must be one of {', '.join(allowed)}, got {value!r}"
            )
        return value


def _url_from_env(env: _Env, name: str, read: ReadText) -> str | None:
    """A database URL from ``name`` or, when ``name_FILE`` is set, from that file."""
    direct, path = env.get(name), env.get(f"{name}_FILE")
    if direct and path:
        raise SettingsError(f"set {PREFIX}{name} or {PREFIX}{name}_FILE, not both")
    if path is None:
        return direct
    text = read(path)
    if text is None or not text.strip():
        raise SettingsError(f"{PREFIX}{name}_FILE {path!r} cannot be read or is empty")
    return text.strip()


def _ldap_from_env(env: _Env, local: bool, read: ReadText) -> LdapSettings:
    server = env.require("LDAP_SERVER")
    tls = cast(
        TlsStrategy,
        env.choice("LDAP_TLS", ("starttls", "ldaps", "insecure"), "starttls"),
    )
    if tls == "insecure" and not (local and _is_loopback(server)):
        # Credentials would cross the network in clear text. Only the private
        # test server of a local setup may be reached that way.
        raise SettingsError(
            f"{PREFIX}LDAP_TLS=insecure is only allowed with {PREFIX}MODE=local "
            f"and an LDAP server on the loopback interface (got {server!r}); "
            "use starttls or ldaps"
        )
    templates = env.list("LDAP_BIND_DN_TEMPLATE", ";")
    lookup_user = env.get("LDAP_LOOKUP_USER")
    if not templates and not lookup_user:
        raise SettingsError(
            f"set {PREFIX}LDAP_BIND_DN_TEMPLATE (or {PREFIX}LDAP_LOOKUP_USER)"
        )
    password_file = env.get("LDAP_BIND_PASSWORD_FILE")
    password = None
    if password_file:
        text = read(password_file)
        if text is None:
            raise SettingsError(
                f"{PREFIX}LDAP_BIND_PASSWORD_FILE {password_file!r} cannot be read"
            )
        password = text.strip()
    return LdapSettings(
        server=server,
        port=env.integer("LDAP_PORT", 636 if tls == "ldaps" else 389),
        tls=tls,
        ca_file=env.get("LDAP_CA_FILE"),
        bind_dn_templates=templates,
        group_dn_template=env.require("LDAP_GROUP_DN_TEMPLATE"),
        lookup_user=lookup_user,
        lookup_password=password,
        user_search_base=env.get("LDAP_USER_SEARCH_BASE"),
        user_attribute=env.get("LDAP_USER_ATTRIBUTE") or "uid",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _beside(path: str | None, name: str) -> str | None:
    """Return ``name`` in the folder of ``path`` (``None`` without a path)."""
    return str(Path(path).with_name(name)) if path else None


def _beside_python(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _read_file(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return None
