"""A user's Jupyter server at its own address, with the server's own token.

The hub talks to a server straight at the pod's address it already knows
(``Server.url``), with the server's own API token (``Spawner.api_token``, which
may access that server and nothing else). :class:`OwnServer` holds those calls:

- :meth:`OwnServer.notice`: ``POST wbspawner/notices``; the notebook images
  carry ``packages/wb-lab-notices``, whose server extension shows the notice in
  every JupyterLab tab of the server (saving open documents when it asks);
- :meth:`OwnServer.memory`: ``GET api/metrics/v1``; the images carry
  jupyter-resource-usage, which answers with the memory of the server and every
  process under it (``rss``, bytes: what JupyterLab's memory indicator shows)
  and the limit it is shown against (``limits.memory.rss``, from the pod's
  ``MEM_LIMIT``). Asked with ``no_track_activity``, so that the hub's readings
  never keep an idle server from being culled.

A server that does not answer is a reason for the hub's log, never an error:
each call returns why it failed instead of raising.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from wbspawner.adapters.jupyterserver.base import NO_TRACK, OWN_TIMEOUT, auth, join

NOTICES_PATH = "wbspawner/notices"
"""Below the server's base URL (``/user/<name>/``)."""
METRICS_PATH = "api/metrics/v1?" + urlencode(NO_TRACK)
"""Below the server's base URL; not the user's activity."""
MIB = 2**20


@dataclass(frozen=True, slots=True)
class MemoryUse:
    """A server's memory as its metrics report it."""

    used_mib: int
    limit_mib: int | None
    """The limit JupyterLab shows (``None``: the server has none)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A server's answer: the HTTP status and body (``None``: it did not answer)."""

    url: str
    code: int | None
    body: bytes
    why: str | None = None
    """Why there is no answer, for the log."""

    def unexpected(self, code: int) -> str | None:
        """Return why this is not an answer with ``code``; ``None`` if it is."""
        if self.code is None:
            return self.why
        if self.code != code:
            text = self.body[:200].decode(errors="replace")
            return f"{self.url} answered {self.code}: {text}"
        return None


class OwnServer:
    """Calls to one user's server at its own address.

    Args:
        server_url: the server's URL with its base path (``Server.url``).
        token: the server's own API token.
        timeout: seconds for a whole request.
    """

    def __init__(
        self, server_url: str, token: str, timeout: float = OWN_TIMEOUT
    ) -> None:
        self.server_url = server_url
        self.token = token
        self.timeout = timeout

    async def _fetch(self, path: str, body: Mapping[str, Any] | None = None) -> Answer:
        url = join(self.server_url, path)
        headers = auth(self.token)
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            url,
            method="GET" if body is None else "POST",
            body=None if body is None else json.dumps(dict(body)),
            headers=headers,
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as err:
            return Answer(url, None, b"", f"{url} did not answer: {err}")
        return Answer(url, response.code, response.body or b"")

    async def notice(self, notice: Mapping[str, Any]) -> str | None:
        """Send one notice to the server's JupyterLab tabs.

        Args:
            notice: ``id``, ``kind``, ``message``, ``save`` (and ``deadline``).

        Returns:
            ``None`` when the server took it, else why not (for the log).
        """
        answer = await self._fetch(NOTICES_PATH, notice)
        return answer.unexpected(201)

    async def memory(self) -> tuple[MemoryUse | None, str | None]:
        """Return the server's memory use, or why it is not known.

        Returns:
            ``(use, None)``, or ``(None, why)`` for the log.
        """
        answer = await self._fetch(METRICS_PATH)
        why = answer.unexpected(200)
        if why is not None:
            return None, why
        try:
            data = json.loads(answer.body)
            used = int(data["rss"])
            limits = (data.get("limits") or {}).get("memory") or {}
            limit = int(limits.get("rss") or 0)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            return None, f"{answer.url} answered no memory figure: {err!r}"
        return MemoryUse(used_mib=-(-used // MIB), limit_mib=limit // MIB or None), None
