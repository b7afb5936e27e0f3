"""What the warmer reads from the hub: each user's last server size.

This module owns the one hub API call of the warmer, ``GET /users`` with
stopped servers included (scopes ``list:users``, ``read:users:name``,
``read:servers``), paged, and reading the size slug KubeSpawner stores in the
default server's ``user_options["profile"]``. The policy uses it to know which
pool each user with a home is likely to start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from wbspawner.model import Profiles

PAGE = 200


def sizes_from_users(users: list[Any]) -> dict[str, str]:
    """Return user → size slug of their default server's last spawn.

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


async def last_sizes(api_url: str, token: str, timeout: float = 10.0) -> dict[str, str]:
    """Return user → size slug of their last spawn, from the hub API.

    Args:
        api_url: the hub API URL (``.../hub/api``).
        token: the service's API token.
        timeout: seconds per request.

    Returns:
        Users whose last options name a size.

    Raises:
        tornado.httpclient.HTTPClientError: the hub refused or failed.
    """
    client = AsyncHTTPClient()
    users: list[Any] = []
    offset = 0
    while True:
        query = urlencode(
            {"include_stopped_servers": "1", "limit": PAGE, "offset": offset}
        )
        response = await client.fetch(
            HTTPRequest(
                f"{api_url.rstrip('/')}/users?{query}",
                headers={
                    "Authorization": f"token {token}",
                    "Accept": "application/jupyterhub-pagination+json",
                },
                request_timeout=timeout,
            )
        )
        body = json.loads(response.body)
        items = body.get("items", []) if isinstance(body, dict) else body
        users.extend(items)
        nxt = (
            (body.get("_pagination") or {}).get("next")
            if isinstance(body, dict)
            else None
        )
        if not nxt or not items:
            break
        offset = int(nxt.get("offset", offset + len(items)))
    return sizes_from_users(users)


async def last_pools(api_url: str, token: str, profiles: Profiles) -> dict[str, str]:
    """Return user → pool of their last size (sizes no longer offered are left out).

    Args:
        api_url: the hub API URL.
        token: the service's API token.
        profiles: the profiles (size → pool).

    Returns:
        Pools by user.
    """
    out: dict[str, str] = {}
    for user, slug in (await last_sizes(api_url, token)).items():
        size = profiles.size(slug)
        if size is not None:
            out[user] = size.pool
    return out
