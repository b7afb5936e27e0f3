"""The one JupyterHub REST API client of wbspawner: users and their servers.

This module owns every call wbspawner's services make to the hub API: the
warmer reads each user's last server size, the Dask Gateway reaper which users
have an active server, the SSH service whose token a password is and starts a
server for a session. :class:`HubApi` sends the service's token, asks for
paged answers (``Accept: application/jupyterhub-pagination+json``) and follows
them, and bounds every request by a timeout; it uses aiohttp, which both the
warmer and ``dask-gateway-server`` (where the reaper runs) have. It holds no
policy: what a user's size means is the caller's business.

Scopes the calls need: ``list:users`` and ``read:servers`` (plus
``read:users:name``) on the service's role; the culler's
:meth:`HubApi.stop_server` needs ``delete:servers`` and its
:meth:`HubApi.user` ``read:users:activity`` for the servers' last activity.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

PAGINATION = "application/jupyterhub-pagination+json"
"""Accept header that makes the hub API page lists instead of truncating them."""
PAGE_SIZE = 200
"""Users asked per page (the hub may cap it lower; the next page follows)."""
DEFAULT_TIMEOUT = 20.0
"""Seconds one request may take."""

User = dict[str, Any]
"""A user model as the hub API returns it."""
T = TypeVar("T")


class HubError(Exception):
    """The hub did not answer, or not as asked (see :func:`checked`)."""


async def checked(call: Awaitable[T]) -> T:
    """Return what a :class:`HubApi` call returns; its HTTP errors as HubError.

    For callers that must not know the HTTP library (the SSH service).

    Raises:
        HubError: the hub did not answer, or with an error status, in time.
    """
    try:
        return await call
    except (aiohttp.ClientError, TimeoutError) as err:
        raise HubError(f"{type(err).__name__}: {err}") from None


class HubApi:
    """Typed calls to the hub's REST API with a service token.

    Args:
        api_url: the hub API, e.g. ``http://127.0.0.1:8081/hub/api``.
        token: the service's API token.
        session: an aiohttp session owned by the caller; ``None``: one is made
            on first use and closed by :meth:`close`.
        timeout: seconds per request.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> HubApi:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session, if this client made it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made here, inside the running event loop
            self._session = aiohttp.ClientSession()
        return self._session

    async def _pages(self, path: str, params: Mapping[str, str]) -> list[Any]:
        """Return the items of every page of a paged list.

        Raises:
            aiohttp.ClientError: the hub did not answer, or not with 200.
            TimeoutError: a page took longer than the timeout.
        """
        headers = {"Authorization": f"token {self.token}", "Accept": PAGINATION}
        items: list[Any] = []
        offset = 0
        while True:
            query = {**params, "offset": str(offset), "limit": str(PAGE_SIZE)}
            async with self._client().get(
                f"{self.api_url}{path}",
                params=query,
                headers=headers,
                raise_for_status=True,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                body = await resp.json()
            # A hub that does not page answers with a plain list.
            page = body.get("items", []) if isinstance(body, dict) else body
            items.extend(page)
            following = (
                (body.get("_pagination") or {}).get("next")
                if isinstance(body, dict)
                else None
            )
            if not following or not page:
                return items
            offset = int(following.get("offset", offset + len(page)))

    async def users(
        self, *, state: str | None = None, include_stopped_servers: bool = False
    ) -> list[User]:
        """Return every user model (``GET /users``, all pages).

        Args:
            state: ``active``, ``ready`` or ``inactive`` to filter by server
                state; ``None``: every user.
            include_stopped_servers: also list stopped servers, with their last
                ``user_options``.

        Returns:
            The user models.

        Raises:
            aiohttp.ClientError: the hub did not answer, or not with 200.
            TimeoutError: a page took longer than the timeout.
        """
        params = {}
        if state:
            params["state"] = state
        if include_stopped_servers:
            params["include_stopped_servers"] = "1"
        return [u for u in await self._pages("/users", params) if isinstance(u, dict)]

    async def active_users(self) -> set[str]:
        """Return the names of users with a pending or running server.

        Raises:
            aiohttp.ClientError: the hub did not answer, or not with 200.
            TimeoutError: a page took longer than the timeout.
        """
        return {
            str(user["name"])
            for user in await self.users(state="active")
            # A hub that hides servers (no read:servers) still names active users.
            if user.get("servers", {"": True})
        }

    async def user(self, name: str) -> User | None:
        """Return one user's model (``GET /users/<name>``); ``None``: no such user.

        Raises:
            aiohttp.ClientError: the hub did not answer, or not with 200 or 404.
            TimeoutError: the request took longer than the timeout.
        """
        async with self._client().get(
            f"{self.api_url}/users/{quote(name, safe='')}",
            headers={"Authorization": f"token {self.token}"},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            body = await resp.json()
        return body if isinstance(body, dict) else None

    async def stop_server(self, user: str, server_name: str = "") -> int:
        """Ask the hub to stop a user's server (``DELETE``).

        Args:
            user: the user.
            server_name: the server name (``""``: the default server).

        Returns:
            The hub's status: 204 stopped, 202 stopping, 400 not running.

        Raises:
            aiohttp.ClientError: the hub did not answer, or with another status.
            TimeoutError: the request took longer than the timeout.
        """
        path = f"/users/{quote(user, safe='')}/server"
        if server_name:
            path = (
                f"/users/{quote(user, safe='')}/servers/{quote(server_name, safe='')}"
            )
        async with self._client().delete(
            f"{self.api_url}{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            if resp.status not in (202, 204, 400):
                resp.raise_for_status()
            return resp.status

    async def start_server(self, user: str) -> int:
        """Ask the hub to start a user's default server with its default size.

        Args:
            user: the user.

        Returns:
            The hub's status: 201 started, 202 starting, 400 already running.

        Raises:
            aiohttp.ClientError: the hub did not answer, or with another status.
            TimeoutError: the request took longer than the timeout.
        """
        async with self._client().post(
            f"{self.api_url}/users/{quote(user, safe='')}/server",
            json={},
            headers={"Authorization": f"token {self.token}"},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            if resp.status not in (201, 202, 400):
                resp.raise_for_status()
            return resp.status

    async def owner_of(self, token: str) -> str | None:
        """Return the name of the user a token belongs to (``GET /user``).

        Args:
            token: a token someone presented (not the service's own).

        Returns:
            The user's name; ``None`` for an unknown token or a service's.

        Raises:
            aiohttp.ClientError: the hub did not answer, or not with 200/401/403.
            TimeoutError: the request took longer than the timeout.
        """
        async with self._client().get(
            f"{self.api_url}/user",
            headers={"Authorization": f"token {token}"},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            if resp.status in (401, 403):
                return None
            resp.raise_for_status()
            body = await resp.json()
        if not isinstance(body, dict) or body.get("kind", "user") != "user":
            return None
        name = body.get("name")
        return name if isinstance(name, str) else None

    async def last_sizes(self) -> dict[str, str]:
        """Return user → size slug of their default server's last spawn.

        Raises:
            aiohttp.ClientError: the hub did not answer, or not with 200.
            TimeoutError: a page took longer than the timeout.
        """
        return sizes_from_users(await self.users(include_stopped_servers=True))


def sizes_from_users(users: list[Any]) -> dict[str, str]:
    """Return user → size slug of their default server's last spawn.

    KubeSpawner keeps the chosen size in the server's ``user_options["profile"]``.

    Args:
        users: user models from ``GET /users?include_stopped_servers``.

    Returns:
        Users whose last options name a size.
    """
    out: dict[str, str] = {}
    for user in users:
        if not isinstance(user, Mapping):
            continue
        server = (user.get("servers") or {}).get("") or {}
        options = server.get("user_options") or {}
        slug = options.get("profile") if isinstance(options, Mapping) else None
        if isinstance(slug, str) and slug and isinstance(user.get("name"), str):
            out[user["name"]] = slug
    return out
