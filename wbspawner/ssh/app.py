"""``python -m wbspawner.ssh``: the SSH and SFTP service, a JupyterHub service.

This module owns the service process: its settings (traits with help and
command-line aliases, the directory's from the hub's own ``WBSPAWNER_LDAP_*``
variables), the host key, and the asyncssh server that ties the login
(:mod:`wbspawner.ssh.server`), the sessions (:mod:`wbspawner.ssh.sessions`)
and SFTP (:mod:`wbspawner.ssh.sftp`) together. It runs until SIGINT/SIGTERM
or until the hub that started it is gone.

The hub starts it in the demo (``WBSPAWNER_SSH_PORT``); on EKS it is its own
Deployment (``helm-values/ssh.yaml``) and the hub only registers it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import asyncssh
from traitlets import Bool, Float, Int, Unicode, default

from wbspawner.adapters.directory import Directory, DirectoryConfig
from wbspawner.adapters.hubapi import HubApi
from wbspawner.adapters.jupyterserver import JupyterServer, JupyterServers, ServerError
from wbspawner.adapters.parent import until_signal, watch_parent
from wbspawner.profiles.loader import ProfilesSource
from wbspawner.service import ProfilesService
from wbspawner.ssh.policy import allowed_groups
from wbspawner.ssh.server import Checks, LoginServer
from wbspawner.ssh.sessions import Servers, run_session
from wbspawner.ssh.sftp import ContentsSFTPServer

LDAP_ENV = "WBSPAWNER_LDAP_"
"""Prefix of the hub's directory variables, which this service reads too."""


def _env(name: str, fallback: str = "") -> str:
    return os.environ.get(LDAP_ENV + name, "").strip() or fallback


class SSHApp(ProfilesService):
    """SSH and SFTP into a user's own server, with keys from the directory."""

    name = "wbspawner-ssh"
    description = "SSH and SFTP into users' servers (a JupyterHub service)."

    ip = Unicode("127.0.0.1", config=True, help="Address to listen on.")
    port = Int(2222, config=True, help="TCP port to listen on.")
    host_key_file = Unicode(
        config=True,
        help="""The server's private host key (OpenSSH format).

        On EKS it comes from a Secret; it must stay the same across restarts,
        or every client warns that the host key changed.""",
    )
    create_host_key = Bool(
        False,
        config=True,
        help="Create an Ed25519 host key in ``host_key_file`` when there is none "
        "(the demo; never on EKS, where the Secret holds it).",
    )
    proxy_url = Unicode(
        "http://127.0.0.1:8000",
        config=True,
        help="""Where the service reaches users' servers through the proxy.

        Its token's role has ``access:servers``; on EKS ``http://proxy-public``.""",
    )
    public_url = Unicode(
        config=True,
        help="The hub's address people know, named in messages (default: proxy_url).",
    )
    api_token_file = Unicode(
        config=True,
        help="""A file holding the service's hub token (a mounted Secret).

        Overrides ``api_token`` ($JUPYTERHUB_API_TOKEN) when set: on EKS the
        token is a file, never an environment variable every child inherits.""",
    )
    start_timeout = Float(
        600.0, config=True, help="Seconds a server started for a session may take."
    )
    ldap_server = Unicode(config=True, help="LDAP host ($WBSPAWNER_LDAP_SERVER).")
    ldap_port = Int(config=True, help="LDAP port ($WBSPAWNER_LDAP_PORT).")
    ldap_tls = Unicode(
        config=True,
        help="``starttls`` (default), ``ldaps`` or ``insecure`` ($WBSPAWNER_LDAP_TLS).",
    )
    ldap_ca_file = Unicode(
        config=True, help="CA bundle of the LDAP server ($WBSPAWNER_LDAP_CA_FILE)."
    )
    ldap_bind_dn_template = Unicode(
        config=True,
        help="``;``-separated DN templates of people, ``{username}`` replaced "
        "($WBSPAWNER_LDAP_BIND_DN_TEMPLATE).",
    )
    ldap_group_dn_template = Unicode(
        config=True,
        help="DN of a hub group, ``{group}`` replaced "
        "($WBSPAWNER_LDAP_GROUP_DN_TEMPLATE).",
    )
    ldap_lookup_user = Unicode(
        config=True,
        help="DN of the account that reads people's keys "
        "($WBSPAWNER_LDAP_LOOKUP_USER; empty: anonymous reads).",
    )
    ldap_password_file = Unicode(
        config=True,
        help="File with that account's password ($WBSPAWNER_LDAP_BIND_PASSWORD_FILE).",
    )
    ldap_user_search_base = Unicode(
        config=True,
        help="Where the lookup account searches ($WBSPAWNER_LDAP_USER_SEARCH_BASE).",
    )
    ldap_user_attribute = Unicode(
        config=True,
        help="Attribute holding the login name ($WBSPAWNER_LDAP_USER_ATTRIBUTE).",
    )

    aliases = {
        "profiles": "SSHApp.profiles_dir",
        "ip": "SSHApp.ip",
        "port": "SSHApp.port",
        "host-key": "SSHApp.host_key_file",
        "api-token-file": "SSHApp.api_token_file",
        "proxy-url": "SSHApp.proxy_url",
        "public-url": "SSHApp.public_url",
        "log-level": "Application.log_level",
    }

    @default("ldap_server")
    def _default_ldap_server(self) -> str:
        return _env("SERVER")

    @default("ldap_tls")
    def _default_ldap_tls(self) -> str:
        return _env("TLS", "starttls")

    @default("ldap_port")
    def _default_ldap_port(self) -> int:
        return int(_env("PORT", "636" if self.ldap_tls == "ldaps" else "389"))

    @default("ldap_ca_file")
    def _default_ldap_ca_file(self) -> str:
        return _env("CA_FILE")

    @default("ldap_bind_dn_template")
    def _default_ldap_bind_dn_template(self) -> str:
        return _env("BIND_DN_TEMPLATE")

    @default("ldap_group_dn_template")
    def _default_ldap_group_dn_template(self) -> str:
        return _env("GROUP_DN_TEMPLATE")

    @default("ldap_lookup_user")
    def _default_ldap_lookup_user(self) -> str:
        return _env("LOOKUP_USER")

    @default("ldap_password_file")
    def _default_ldap_password_file(self) -> str:
        return _env("BIND_PASSWORD_FILE")

    @default("ldap_user_search_base")
    def _default_ldap_user_search_base(self) -> str:
        return _env("USER_SEARCH_BASE")

    @default("ldap_user_attribute")
    def _default_ldap_user_attribute(self) -> str:
        return _env("USER_ATTRIBUTE", "uid")

    @default("public_url")
    def _default_public_url(self) -> str:
        return self.proxy_url

    def directory_config(self) -> DirectoryConfig:
        """Return the directory settings of the traits."""
        password = None
        if self.ldap_password_file:
            password = Path(self.ldap_password_file).read_text().strip()
        return DirectoryConfig(
            server=self.ldap_server,
            port=self.ldap_port,
            tls=self.ldap_tls,
            ca_file=self.ldap_ca_file or None,
            user_dn_templates=tuple(
                t for t in self.ldap_bind_dn_template.split(";") if t.strip()
            ),
            group_dn_template=self.ldap_group_dn_template,
            lookup_user=self.ldap_lookup_user or None,
            lookup_password=password,
            user_search_base=self.ldap_user_search_base or None,
            user_attribute=self.ldap_user_attribute,
        )

    def host_key(self) -> asyncssh.SSHKey:
        """Return the host key, creating it first when asked to."""
        path = Path(self.host_key_file)
        if not path.exists() and self.create_host_key:
            key = asyncssh.generate_private_key("ssh-ed25519")
            path.parent.mkdir(parents=True, exist_ok=True)
            key.write_private_key(str(path))
            path.chmod(0o600)
            self.log.info("SSH host key created in %s", path)
        return asyncssh.read_private_key(str(path))

    async def serve(self) -> None:
        """Listen until SIGINT/SIGTERM or until the hub that started it is gone."""
        if self.api_token_file:
            self.api_token = Path(self.api_token_file).read_text().strip()
        stop = asyncio.Event()
        watch = watch_parent(self.parent_pid, stop, self.log, "ssh")
        source = ProfilesSource(self.profiles_dir, None, self.log)
        source.current()  # invalid profiles stop the service here

        def groups() -> tuple[str, ...]:
            profiles = source.current()
            return allowed_groups(profiles.admin_groups, profiles.user_groups)

        hub = HubApi(self.api_url, self.api_token, timeout=10.0)
        users = JupyterServers(self.proxy_url, self.api_token)
        checks = Checks(Directory(self.directory_config()), hub, groups)
        servers = Servers(
            hub=hub,
            servers=users,
            public_url=self.public_url.rstrip("/"),
            start_timeout=self.start_timeout,
        )
        listener = await asyncssh.create_server(
            lambda: LoginServer(checks, self.log),
            self.ip,
            self.port,
            server_host_keys=[self.host_key()],
            process_factory=lambda process: run_session(process, servers, self.log),
            sftp_factory=lambda chan: ContentsSFTPServer(
                chan, _resolver(chan, servers)
            ),
            allow_scp=False,
            encoding=None,
        )
        self.log.info("SSH service listening on %s:%s", self.ip, self.port)
        # asyncssh's own lines (a failed key exchange, a handler's error) go to
        # the service's log; its per-connection chatter stays out
        library = asyncssh.logger.logger
        library.setLevel(logging.WARNING)
        library.handlers = list(self.log.handlers)
        library.propagate = False
        try:
            await until_signal(stop)
            self.log.info("SSH service stopping")
        finally:
            listener.close()
            await listener.wait_closed()
            if watch is not None:
                watch.stop()
            await hub.close()
            await users.close()

    def start(self) -> None:
        """Run the service until it is told to stop."""
        asyncio.run(self.serve())


def _resolver(chan: Any, servers: Servers) -> Any:
    """Return what finds (or starts) the SFTP user's server at first use."""
    name = str(chan.get_extra_info("username"))

    def say(text: str) -> None:
        chan.write_stderr(text.encode())

    async def resolve() -> JupyterServer:
        try:
            return await servers.running(name, say)
        except ServerError as err:
            say(str(err))
            raise

    return resolve
