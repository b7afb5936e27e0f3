"""How many API requests each client made, by verb: who loads the apiserver.

The apiserver's own metric (``apiserver_request_total``) is labelled by verb
and resource, and audit logs name the user agent; here one counter keyed by
the client's user agent (its product token, e.g. ``OpenAPI-Generator``) and
the verb (``get``, ``list``, ``watch``, ``create``, ...) serves both purposes:
the scale benchmark reads it to report the requests per second the hub sends.
``GET`` :data:`PATH` returns the counts and when counting began.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

PATH = "/devcluster/v1/requests"

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def verb_of(method: str, has_name: bool, watch: bool) -> str:
    """Return the Kubernetes verb of a request (as the apiserver's metrics name it)."""
    if method == "GET":
        if watch:
            return "watch"
        return "get" if has_name else "list"
    return _VERBS.get(method, method.lower())


def agent_of(user_agent: str) -> str:
    """Return the product token of a ``User-Agent`` header (``-`` when none)."""
    return user_agent.split("/", 1)[0].strip() or "-"


class RequestCounts:
    """Requests seen per (user agent, verb) since the server started."""

    def __init__(self) -> None:
        self.started = time.time()
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, user_agent: str, verb: str) -> None:
        """Count one request."""
        self.counts[(agent_of(user_agent), verb)] += 1

    def report(self) -> dict[str, Any]:
        """Return ``{"since": epoch seconds, "by_agent": {agent: {verb: count}}}``."""
        by_agent: dict[str, dict[str, int]] = {}
        for (agent, verb), n in sorted(self.counts.items()):
            by_agent.setdefault(agent, {})[verb] = n
        return {"since": self.started, "by_agent": by_agent}
