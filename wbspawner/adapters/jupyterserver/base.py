"""What every call to a user's Jupyter server shares.

One place for: joining a server's base URL (``/user/<name>/``) with an API path,
the ``Authorization`` header (a service's token or the server's own),
jupyter_server's ``no_track_activity`` flag, the timeouts, and
:class:`ServerError`, the one error a call raises.
"""

from __future__ import annotations

import json

NO_TRACK = {"no_track_activity": "1"}
"""jupyter_server's query argument: this request is not the user's activity."""
PROXY_TIMEOUT = 30.0
"""Seconds one request through the proxy may take (the SSH service's default)."""
CULLER_TIMEOUT = 10.0
"""Seconds one of the culler's requests may take."""
OWN_TIMEOUT = 5.0
"""Seconds one of the hub's requests to a server's own address may take."""


class ServerError(Exception):
    """A user's server did not answer as asked.

    Args:
        message: what went wrong.
        status: the HTTP status, when the server answered.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def join(base: str, path: str = "") -> str:
    """Return ``path`` below a server's base URL (``…/user/<name>/``)."""
    return f"{base.rstrip('/')}/{path}"


def server_base(proxy_url: str, server_path: str) -> str:
    """Return a server's base URL behind the proxy, ending in ``/``."""
    return f"{proxy_url.rstrip('/')}/{server_path.strip('/')}/"


def auth(token: str) -> dict[str, str]:
    """Return the header that carries an API token."""
    return {"Authorization": f"token {token}"}


def error_message(text: str, status: int) -> str:
    """Return the server's own message from an error body, else the status."""
    try:
        body = json.loads(text)
    except ValueError:
        return f"HTTP {status}"
    reason = body.get("message") if isinstance(body, dict) else None
    return str(reason) if reason else f"HTTP {status}"
