"""What a logged-in SSH user gets: their server, then a shell or a command in it.

This module owns the part of the SSH service after the login:

- :class:`Servers`: find the user's running server through the hub API, or
  start it with their default size when none runs (telling them so, and
  waiting a bounded time), and hand back its
  :class:`~wbspawner.adapters.jupyterserver.JupyterServer`;
- :func:`run_session`: the session of ``ssh bob@hub`` (a shell: a Jupyter
  terminal in the server, both ways, resized with the client's window) and of
  ``ssh bob@hub CMD`` (the command, its output and its exit status, through
  :mod:`wbspawner.ssh.commands`).

The decisions (texts, markers) are pure functions elsewhere; this is the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncssh

from wbspawner.adapters.hubapi import HubApi, HubError, checked
from wbspawner.adapters.jupyterserver import (
    JupyterServer,
    JupyterServers,
    ServerError,
    Terminal,
)
from wbspawner.ssh.commands import MarkedOutput, command_line, new_tag
from wbspawner.ssh.policy import (
    never_logged_in_message,
    not_started_message,
    starting_message,
)

POLL_S = 2.0
"""Seconds between two looks at a server that is starting."""

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Servers:
    """Users' servers, through the hub API and the proxy.

    Attributes:
        hub: the hub API with the service's token.
        servers: users' servers through the proxy, with the same token (its
            role has ``access:servers``).
        public_url: the hub's address people know (in messages).
        start_timeout: seconds a server started for a session may take.
    """

    hub: HubApi
    servers: JupyterServers
    public_url: str
    start_timeout: float = 600.0

    def _server(self, path: str) -> JupyterServer:
        return self.servers.server(path)

    async def _state(self, name: str) -> tuple[bool, dict[str, Any] | None]:
        """Return (user known to the hub, their default server's model)."""
        try:
            user = await checked(self.hub.user(name))
        except HubError as err:
            raise ServerError(f"the hub did not answer ({err})") from None
        if user is None:
            return False, None
        return True, (user.get("servers") or {}).get("")

    async def running(self, name: str, say: Say) -> JupyterServer:
        """Return the user's running server, starting it if none runs.

        Args:
            name: the user.
            say: shows a line to the user (the session's standard error).

        Raises:
            ServerError: the user is unknown to the hub, or the server did not
                start; the message says what to do.
        """
        known, server = await self._state(name)
        if not known:
            raise ServerError(never_logged_in_message(name, self.public_url))
        if server and server.get("ready"):
            return self._server(str(server["url"]))
        if not server:
            say(starting_message(name, self.public_url))
            try:
                await checked(self.hub.start_server(name))
            except HubError as err:
                why = f"the hub refused ({err})"
                raise ServerError(
                    not_started_message(name, self.public_url, why)
                ) from None
        return await self._wait(name, say)

    async def _wait(self, name: str, say: Say) -> JupyterServer:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            _, server = await self._state(name)
            if server and server.get("ready"):
                say("Your server is ready.\r\n")
                return self._server(str(server["url"]))
            if not server:
                why = "the start failed (the hub's page says why)"
                raise ServerError(
                    not_started_message(name, self.public_url, why)
                ) from None
            say(".")
        why = f"it was not ready after {self.start_timeout:g} s"
        raise ServerError(not_started_message(name, self.public_url, why))


async def run_session(
    process: asyncssh.SSHServerProcess[bytes], servers: Servers, log: logging.Logger
) -> None:
    """Serve one SSH session: a shell or one command in the user's server.

    Args:
        process: asyncssh's session (standard streams, terminal, command).
        servers: finds or starts the user's server.
        log: the service's logger.
    """
    name = str(process.get_extra_info("username"))

    def say(text: str) -> None:
        process.stderr.write(text.encode())

    try:
        api = await servers.running(name, say)
        terminal_name = await api.new_terminal()
        terminal = await api.attach(terminal_name)
    except ServerError as err:
        log.warning("SSH session of %s: no server (%s)", name, str(err).strip())
        say(f"{str(err).rstrip()}\r\n")
        process.exit(1)
        return
    command = process.command
    log.info("SSH %s of %s", "command" if command else "shell", name)
    try:
        if command:
            status = await _command(process, terminal, command)
        else:
            status = await _shell(process, terminal)
    finally:
        await terminal.close()
        await _forget(api, terminal_name, log)
    process.exit(status)


async def _forget(api: JupyterServer, terminal_name: str, log: logging.Logger) -> None:
    try:
        await api.delete_terminal(terminal_name)
    except ServerError as err:
        log.warning("terminal %s not deleted: %s", terminal_name, err)


async def _shell(process: asyncssh.SSHServerProcess[bytes], terminal: Terminal) -> int:
    """Connect the client to the terminal until either side ends; return 0."""
    size = process.get_terminal_size()
    if size and size[0] and size[1]:
        await terminal.resize(size[1], size[0])

    async def output() -> None:
        while (text := await terminal.read()) is not None:
            process.stdout.write(text.encode())

    async def keys() -> None:
        while True:
            try:
                data = await process.stdin.read(4096)
            except asyncssh.TerminalSizeChanged as change:
                await terminal.resize(change.height, change.width)
                continue
            if not data:
                return
            await terminal.write(data.decode("utf-8", "replace"))

    tasks = [asyncio.ensure_future(output()), asyncio.ensure_future(keys())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    return 0


async def _command(
    process: asyncssh.SSHServerProcess[bytes], terminal: Terminal, command: str
) -> int:
    """Run one command in the terminal; return its exit status (255: lost)."""
    tag = new_tag()
    reader = MarkedOutput(tag)
    await terminal.write(command_line(command, tag))
    while not reader.done:
        text = await terminal.read()
        if text is None:
            break
        out = reader.feed(text)
        if out:
            process.stdout.write(out.encode())
    return reader.status if reader.status is not None else 255
