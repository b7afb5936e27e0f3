"""HTTP to users' servers through the proxy, with a service's token.

This module owns the culler's calls to a user's running server, at
``<proxy>/user/<name>/`` (the hub grants ``access:servers`` to the service's
role, which jupyterhub-singleuser checks):

- :meth:`UserServers.status`: ``GET api/status`` (jupyter_server's own last
  activity: the user's API requests, kernel messages, terminals);
- :meth:`UserServers.kernels`: ``GET api/kernels`` (each kernel's
  ``execution_state``);
- :meth:`UserServers.notice`: ``POST wbspawner/notices`` (the warning shown in
  JupyterLab, see ``packages/wb-lab-notices``).

Every call carries ``no_track_activity=1``, so that the culler's own requests
never count as the user's activity in jupyter_server. It holds no policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

NO_TRACK = {"no_track_activity": "1"}
"""jupyter_server's query argument: this request is not the user's activity."""


class UserServers:
    """Calls to users' servers through the proxy.

    Args:
        proxy_url: where the proxy serves users, e.g. ``http://127.0.0.1:8000``.
        token: the service's API token.
        timeout: seconds per request.
    """

    def __init__(self, proxy_url: str, token: str, timeout: float = 10.0) -> None:
        self.proxy_url = proxy_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _url(self, server_path: str, path: str) -> str:
        return f"{self.proxy_url}/{server_path.strip('/')}/{path}"

    async def _call(
        self, method: str, url: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        async with self._client().request(
            method,
            url,
            params=NO_TRACK,
            json=dict(body) if body is not None else None,
            headers={"Authorization": f"token {self.token}"},
            raise_for_status=True,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            return await resp.json(content_type=None)

    async def status(self, server_path: str) -> dict[str, Any]:
        """Return the server's ``api/status`` (``last_activity``, ``kernels``...).

        Args:
            server_path: the server's URL path, ``/user/<name>/``.

        Raises:
            aiohttp.ClientError: the server did not answer, or not with 2xx.
            TimeoutError: it took longer than the timeout.
        """
        body = await self._call("GET", self._url(server_path, "api/status"))
        return body if isinstance(body, dict) else {}

    async def kernels(self, server_path: str) -> list[dict[str, Any]]:
        """Return the server's kernels (``id``, ``execution_state``, ...).

        Raises:
            aiohttp.ClientError: the server did not answer, or not with 2xx.
            TimeoutError: it took longer than the timeout.
        """
        body = await self._call("GET", self._url(server_path, "api/kernels"))
        return (
            [k for k in body if isinstance(k, dict)] if isinstance(body, list) else []
        )

    async def notice(self, server_path: str, notice: Mapping[str, Any]) -> None:
        """Show a notice in the server's JupyterLab tabs.

        Raises:
            aiohttp.ClientError: the server did not answer, or not with 2xx.
            TimeoutError: it took longer than the timeout.
        """
        await self._call("POST", self._url(server_path, "wbspawner/notices"), notice)
