"""HTTP to a user's own server: a notice for its JupyterLab tabs.

The notebook images carry ``packages/wb-lab-notices``, whose server extension
takes ``POST <server>/wbspawner/notices`` and shows the notice in every
JupyterLab tab of the server (saving open documents when it asks). The hub
sends one with the server's own API token (``Spawner.api_token``, which may
access that server and nothing else), straight to the pod's address the hub
already talks to. A notice that cannot be sent is a line in the hub's log, never
an error: the server is stopping either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

NOTICES_PATH = "wbspawner/notices"
"""Below the server's base URL (``/user/<name>/``)."""


async def send_notice(
    server_url: str, token: str, notice: Mapping[str, Any], timeout: float = 5.0
) -> str | None:
    """Send one notice to a server's JupyterLab tabs.

    Args:
        server_url: the server's URL with its base path (``Server.url``).
        token: the server's own API token.
        notice: ``id``, ``kind``, ``message``, ``save`` (and ``deadline``).
        timeout: seconds for the whole request.

    Returns:
        ``None`` when the server took it, else why not (for the log).
    """
    url = server_url.rstrip("/") + "/" + NOTICES_PATH
    request = HTTPRequest(
        url,
        method="POST",
        body=json.dumps(dict(notice)),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        connect_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except (OSError, HTTPClientError) as err:
        return f"{url} did not answer: {err}"
    if response.code != 201:
        body = (response.body or b"")[:200].decode(errors="replace")
        return f"{url} answered {response.code}: {body}"
    return None
