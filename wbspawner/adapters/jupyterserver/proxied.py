"""A user's Jupyter server through the hub's proxy, with a service's token.

The server is at ``<proxy>/user/<name>/``; the service's role holds
``access:servers``, which jupyterhub-singleuser checks. :class:`JupyterServer`
holds every call a service makes there:

- the culler's (each with ``no_track_activity``, so that they never count as
  the user's activity): :meth:`JupyterServer.status` (``api/status``: the
  server's own last activity), :meth:`JupyterServer.kernels` (each kernel's
  ``execution_state``), :meth:`JupyterServer.notice` (``POST wbspawner/notices``:
  the warning shown in JupyterLab, see ``packages/wb-lab-notices``);
- the SSH service's (the user's own activity): terminals (jupyter_server's
  terminals API and its websocket): :meth:`JupyterServer.new_terminal`,
  :meth:`JupyterServer.attach` (a :class:`Terminal`: type, read, resize) and
  :meth:`JupyterServer.delete_terminal`; files (the contents API, what
  JupyterLab's file browser shows): :meth:`JupyterServer.model`,
  :meth:`JupyterServer.save`, :meth:`JupyterServer.delete`,
  :meth:`JupyterServer.rename`.

Every call is bounded by a timeout except reading a terminal, which waits for
the user. It holds no policy. :class:`ServerError` is every failure, with the
HTTP status when there was one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from wbspawner.adapters.jupyterserver.base import (
    NO_TRACK,
    PROXY_TIMEOUT,
    ServerError,
    auth,
    error_message,
    server_base,
)

CHUNK_BYTES = 4 * 2**20
"""Bytes of a file saved in one request (jupyter_server's chunked saves)."""


class Terminal:
    """An open terminal websocket (jupyter_server's terminado messages)."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket

    async def write(self, text: str) -> None:
        """Type ``text`` into the terminal."""
        await self._socket.send_str(json.dumps(["stdin", text]))

    async def resize(self, rows: int, cols: int) -> None:
        """Tell the terminal its size."""
        await self._socket.send_str(json.dumps(["set_size", rows, cols]))

    async def read(self) -> str | None:
        """Return the terminal's next output; ``None`` when the terminal ended."""
        while True:
            message = await self._socket.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                return None
            kind, *args = json.loads(message.data)
            if kind == "stdout" and args:
                return str(args[0])
            if kind == "disconnect":
                return None

    async def close(self) -> None:
        """Close the websocket."""
        await self._socket.close()


def _path(path: str) -> str:
    return quote(path.strip("/"), safe="/")


class JupyterServer:
    """Calls to one user's server through the proxy.

    Args:
        proxy_url: where the proxy serves users, e.g. ``http://127.0.0.1:8000``.
        server_path: the server's URL path, ``/user/<name>/``.
        token: the service's API token.
        session: an aiohttp session the caller owns and closes.
        timeout: seconds per request.
    """

    def __init__(
        self,
        proxy_url: str,
        server_path: str,
        token: str,
        session: aiohttp.ClientSession,
        timeout: float = PROXY_TIMEOUT,
    ) -> None:
        self.base = server_base(proxy_url, server_path)
        self.token = token
        self.session = session
        self.timeout = timeout

    @property
    def _headers(self) -> dict[str, str]:
        return auth(self.token)

    async def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        *,
        track: bool = True,
    ) -> Any:
        """One request; ``track=False``: not the user's activity."""
        query = dict(params or {}) if track else {**(params or {}), **NO_TRACK}
        try:
            async with self.session.request(
                method,
                self.base + path,
                json=dict(body) if body is not None else None,
                params=query,
                headers=self._headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                if resp.status >= 300:
                    text = (await resp.text())[:300]
                    raise ServerError(error_message(text, resp.status), resp.status)
                if resp.status == 204:
                    return None
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ServerError(f"the server did not answer ({err})") from None

    async def status(self) -> dict[str, Any]:
        """Return the server's ``api/status`` (``last_activity``, ``kernels``...)."""
        body = await self._call("GET", "api/status", track=False)
        return body if isinstance(body, dict) else {}

    async def kernels(self) -> list[dict[str, Any]]:
        """Return the server's kernels (``id``, ``execution_state``, ...)."""
        body = await self._call("GET", "api/kernels", track=False)
        return (
            [k for k in body if isinstance(k, dict)] if isinstance(body, list) else []
        )

    async def notice(self, notice: Mapping[str, Any]) -> None:
        """Show a notice in the server's JupyterLab tabs."""
        await self._call("POST", "wbspawner/notices", notice, track=False)

    async def new_terminal(self) -> str:
        """Start a terminal; return its name."""
        body = await self._call("POST", "api/terminals")
        return str(body["name"])

    async def delete_terminal(self, name: str) -> None:
        """End a terminal (its shell gets SIGHUP); one already gone is fine."""
        try:
            await self._call("DELETE", f"api/terminals/{quote(name)}")
        except ServerError as err:
            if err.status != 404:
                raise

    async def attach(self, name: str) -> Terminal:
        """Open a terminal's websocket."""
        url = self.base + f"terminals/websocket/{quote(name)}"
        try:
            socket = await self.session.ws_connect(
                url,
                headers=self._headers,
                timeout=aiohttp.ClientWSTimeout(self.timeout),
            )
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ServerError(f"the terminal did not open ({err})") from None
        return Terminal(socket)

    async def model(self, path: str, *, content: bool = False) -> dict[str, Any]:
        """Return the contents model of a file or directory.

        Args:
            path: relative to the server's root (the home).
            content: with the content (files as base64, directories listed).

        Raises:
            ServerError: 404 when there is no such path.
        """
        params = {"content": "1" if content else "0"}
        if content:
            params["format"] = "base64"
        model = await self._call("GET", f"api/contents/{_path(path)}", params=params)
        return dict(model)

    async def listing(self, path: str) -> list[dict[str, Any]]:
        """Return the models of a directory's entries (without content)."""
        params = {"content": "1"}
        model = await self._call("GET", f"api/contents/{_path(path)}", params=params)
        return [dict(m) for m in model.get("content") or []]

    async def read(self, path: str) -> bytes:
        """Return a file's bytes."""
        model = await self.model(path, content=True)
        if model.get("type") == "directory":
            raise ServerError(f"{path} is a directory", 400)
        if model.get("format") == "base64":
            return base64.b64decode(model.get("content") or "")
        return str(model.get("content") or "").encode()

    async def save(self, path: str, data: bytes, chunk: int | None = None) -> None:
        """Write a file (or one chunk of it: 1, 2, ..., -1 for the last).

        Args:
            path: relative to the server's root.
            data: the bytes (of this chunk).
            chunk: jupyter_server's chunk number; ``None``: the whole file.
        """
        body: dict[str, Any] = {
            "type": "file",
            "format": "base64",
            "content": base64.b64encode(data).decode(),
        }
        if chunk is not None:
            body["chunk"] = chunk
        await self._call("PUT", f"api/contents/{_path(path)}", body)

    async def make_directory(self, path: str) -> None:
        """Create a directory."""
        await self._call("PUT", f"api/contents/{_path(path)}", {"type": "directory"})

    async def delete(self, path: str) -> None:
        """Delete a file or an (empty) directory."""
        await self._call("DELETE", f"api/contents/{_path(path)}")

    async def rename(self, old: str, new: str) -> None:
        """Rename (move) a file or directory."""
        await self._call(
            "PATCH", f"api/contents/{_path(old)}", {"path": new.strip("/")}
        )


class JupyterServers:
    """Users' servers behind one proxy, with one HTTP session.

    Args:
        proxy_url: where the proxy serves users.
        token: the service's API token.
        timeout: seconds per request.
    """

    def __init__(
        self, proxy_url: str, token: str, timeout: float = PROXY_TIMEOUT
    ) -> None:
        self.proxy_url = proxy_url
        self.token = token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def server(self, server_path: str) -> JupyterServer:
        """Return the server at ``server_path`` (``/user/<name>/``)."""
        if self._session is None:  # made here, inside the running event loop
            self._session = aiohttp.ClientSession()
        return JupyterServer(
            self.proxy_url, server_path, self.token, self._session, self.timeout
        )

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
