"""Who may log in by SSH: asyncssh's server side of the authentication.

This module owns :class:`LoginServer`, one per connection: it offers public
key and password authentication and decides each attempt:

- a key is accepted when it is one of the ``sshPublicKey`` values of the
  person's directory entry (:mod:`wbspawner.adapters.directory`);
- a password is accepted when it is a hub API token of that same person (the
  hub says whose it is);
- then the person must be in one of the hub's groups, as at the hub's login
  page; someone who is not is refused with a banner saying why (sent only
  after their key or token was right, so it tells a stranger nothing).

A directory that does not answer refuses everyone with a banner saying so.
The decisions are :mod:`wbspawner.ssh.policy`'s; this is the shell around them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncssh

from wbspawner.adapters.directory import Account, Directory, DirectoryError
from wbspawner.adapters.hubapi import HubApi, HubError, checked
from wbspawner.ssh.policy import authorized, refusal

DIRECTORY_DOWN = (
    "The directory cannot be reached, so nobody can log in right now; try again "
    "in a minute. If it lasts, tell an admin.\r\n"
)


@dataclass(frozen=True, slots=True)
class Checks:
    """What a login is checked against.

    Attributes:
        directory: people's keys and groups.
        hub: whose a token is.
        groups: returns the hub groups whose members may log in (the
            profiles' current ones).
    """

    directory: Directory
    hub: HubApi
    groups: Callable[[], Sequence[str]]


class LoginServer(asyncssh.SSHServer):
    """Authentication of one SSH connection.

    Args:
        checks: the directory, the hub and the groups.
        log: the service's logger.
    """

    def __init__(self, checks: Checks, log: logging.Logger) -> None:
        self.checks = checks
        self.log = log
        self._conn: asyncssh.SSHServerConnection | None = None
        self._accounts: dict[str, Account | None] = {}
        self._told = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        """Keep the connection (for banners)."""
        self._conn = conn

    def begin_auth(self, username: str) -> bool:
        """Require authentication of everyone."""
        return True

    def public_key_auth_supported(self) -> bool:
        """Offer keys."""
        return True

    def password_auth_supported(self) -> bool:
        """Offer passwords (hub tokens)."""
        return True

    def kbdint_auth_supported(self) -> bool:
        """Offer no keyboard-interactive login: a token is a plain password."""
        return False

    def _tell(self, text: str) -> None:
        if self._conn is not None and not self._told:
            self._told = True
            self._conn.send_auth_banner(text)

    async def _account(self, name: str) -> Account | None:
        if name not in self._accounts:
            self._accounts[name] = await asyncio.to_thread(
                self.checks.directory.account, name, tuple(self.checks.groups())
            )
        return self._accounts[name]

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """Accept a key of the person's directory entry, if they may log in."""
        try:
            return await self._key_ok(username, key)
        except Exception:  # asyncssh would drop the connection without a word
            self.log.exception("SSH login of %r: the key check failed", username)
            return False

    async def validate_password(self, username: str, password: str) -> bool:
        """Accept the person's own hub token, if they may log in."""
        try:
            return await self._token_ok(username, password)
        except Exception:  # asyncssh would drop the connection without a word
            self.log.exception("SSH login of %r: the token check failed", username)
            return False

    async def _key_ok(self, username: str, key: asyncssh.SSHKey) -> bool:
        offered = key.export_public_key("openssh").decode()
        try:
            account = await self._account(username)
        except DirectoryError as err:
            return self._directory_down(username, err)
        if account is None or not authorized(offered, account.keys):
            self.log.info(
                "SSH login of %r refused: key %s is not in the directory entry",
                username,
                key.get_fingerprint(),
            )
            return False
        return self._admit(username, account, "key")

    async def _token_ok(self, username: str, password: str) -> bool:
        try:
            owner = await checked(self.checks.hub.owner_of(password))
        except HubError as err:
            self.log.warning(
                "SSH login of %r: the hub did not answer (%s)", username, err
            )
            return False
        if owner != username:
            self.log.info("SSH login of %r refused: not their hub token", username)
            return False
        try:
            account = await self._account(username)
        except DirectoryError as err:
            return self._directory_down(username, err)
        return self._admit(username, account, "token")

    def _admit(self, name: str, account: Account | None, how: str) -> bool:
        member_of = None if account is None else account.groups
        why = refusal(name, member_of, tuple(self.checks.groups()))
        if why is not None:
            self.log.info("SSH login of %r refused: %s", name, why)
            self._tell(why + "\r\n")
            return False
        self.log.info("SSH login of %r with their %s", name, how)
        return True

    def _directory_down(self, name: str, err: DirectoryError) -> bool:
        self.log.warning(
            "SSH login of %r refused: directory unreachable (%s)", name, err
        )
        self._tell(DIRECTORY_DOWN)
        return False
