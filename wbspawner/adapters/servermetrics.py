"""HTTP to a user's own server: the memory it uses, from its own metrics.

The notebook images carry jupyter-resource-usage, whose server extension answers
``GET <server>/api/metrics/v1`` with the memory of the server and every process
under it (``rss``, bytes: what JupyterLab's memory indicator shows the user)
and the limit it is shown against (``limits.memory.rss``, from the pod's
``MEM_LIMIT``). The hub asks with the server's own API token
(``Spawner.api_token``), straight at the pod's address, with
``no_track_activity=1`` so that its readings never keep an idle server from
being culled. A server that does not answer is a reason for the log, never an
error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

METRICS_PATH = "api/metrics/v1?no_track_activity=1"
"""Below the server's base URL (``/user/<name>/``); not the user's activity."""
MIB = 2**20


@dataclass(frozen=True, slots=True)
class MemoryUse:
    """A server's memory as its metrics report it."""

    used_mib: int
    limit_mib: int | None
    """The limit JupyterLab shows (``None``: the server has none)."""


async def memory_use(
    server_url: str, token: str, timeout: float = 5.0
) -> tuple[MemoryUse | None, str | None]:
    """Return a server's memory use, or why it is not known.

    Args:
        server_url: the server's URL with its base path (``Server.url``).
        token: the server's own API token.
        timeout: seconds for the whole request.

    Returns:
        ``(use, None)``, or ``(None, why)`` for the log.
    """
    url = server_url.rstrip("/") + "/" + METRICS_PATH
    request = HTTPRequest(
        url,
        headers={"Authorization": f"token {token}"},
        connect_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except (OSError, HTTPClientError) as err:
        return None, f"{url} did not answer: {err}"
    if response.code != 200:
        body = (response.body or b"")[:200].decode(errors="replace")
        return None, f"{url} answered {response.code}: {body}"
    try:
        data = json.loads(response.body)
        used = int(data["rss"])
        limit = int(((data.get("limits") or {}).get("memory") or {}).get("rss") or 0)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        return None, f"{url} answered no memory figure: {err!r}"
    return MemoryUse(used_mib=-(-used // MIB), limit_mib=limit // MIB or None), None
