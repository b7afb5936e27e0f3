"""A bad day for the API server: a share of requests fails, as on a loaded one.

A real apiserver under load answers some requests with ``429 TooManyRequests``
and a ``Retry-After`` header (API Priority and Fairness), some with ``500``
(an etcd hiccup, a webhook failing) and some only after a long wait, ending in
``504 Timeout``. Clients are expected to retry with backoff (client-go's
``rest.Request`` honours ``Retry-After``; reflectors relist and rewatch).

:class:`Chaos` decides, per request, whether it fails and how; the API server
asks it before serving any resource request (:mod:`devcluster.apiserver.app`).
It is off until someone sets a rate through :data:`PATH` (``PUT`` a JSON body
such as ``{"rate": 0.1, "seed": 7}``; ``GET`` reads the settings and what was
injected so far), so tests, benchmarks and an operator's drill on the demo can
turn it on from outside the process. Requests carrying :data:`EXEMPT_HEADER`
(the test's own observer, for instance) are never failed; ``methods`` limits
the failures to some HTTP methods (``["POST"]``: only creations, to strike a
controller in the middle of its writes). devcluster's own
controllers do not go over HTTP and are never failed either.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from devcluster.errors import ApiError

PATH = "/devcluster/v1/chaos"
"""Where the settings are read (``GET``) and set (``PUT``)."""
EXEMPT_HEADER = "X-Devcluster-Chaos-Exempt"
"""A request with this header (any value) is never failed."""
KINDS = ("throttle", "error", "timeout")
"""429 with Retry-After, 500, and a long wait ending in 504."""


@dataclass
class Chaos:
    """Which requests fail, and a count of what was injected."""

    rate: float = 0.0
    """Share of requests that fail (0 turns it off)."""
    seed: int = 0
    timeout_s: float = 5.0
    """How long a request that times out waits before its 504 (real seconds)."""
    retry_after_s: int = 1
    """The ``Retry-After`` of a 429."""
    kinds: tuple[str, ...] = KINDS
    """Which failures to draw from, evenly."""
    methods: tuple[str, ...] = ()
    """HTTP methods whose requests may fail (empty: every method)."""
    seen: int = 0
    """Requests decided on since the settings were last set."""
    injected: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def configure(self, body: Any) -> None:
        """Take new settings from a JSON body and start counting afresh.

        Raises:
            ApiError: 400 when a field is missing its type or out of range.
        """
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "chaos settings must be a JSON object")
        rate = body.get("rate", 0.0)
        if not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise ApiError(400, "BadRequest", "rate must be a number from 0 to 1")
        kinds = tuple(body.get("kinds") or KINDS)
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise ApiError(
                400, "BadRequest", f"unknown kinds {unknown}; known: {list(KINDS)}"
            )
        timeout_s = body.get("timeout_s", 5.0)
        if not isinstance(timeout_s, int | float) or not 0.0 <= timeout_s <= 60.0:
            raise ApiError(400, "BadRequest", "timeout_s must be from 0 to 60")
        methods = body.get("methods") or []
        if not isinstance(methods, list) or not all(
            isinstance(m, str) for m in methods
        ):
            raise ApiError(400, "BadRequest", "methods must be a list of HTTP methods")
        self.methods = tuple(m.upper() for m in methods)
        self.rate, self.kinds, self.timeout_s = float(rate), kinds, float(timeout_s)
        self.seed = int(body.get("seed", 0))
        self._rng = random.Random(self.seed)
        self.seen = 0
        self.injected = Counter()

    def settings(self) -> dict[str, Any]:
        """Return the settings and the counts, as ``GET`` shows them."""
        return {
            "rate": self.rate,
            "seed": self.seed,
            "timeout_s": self.timeout_s,
            "kinds": list(self.kinds),
            "methods": list(self.methods),
            "seen": self.seen,
            "injected": dict(self.injected),
        }

    def draw(self, method: str = "GET") -> str | None:
        """Return the failure for the next request (one of :data:`KINDS`), if any."""
        if self.rate <= 0.0 or (self.methods and method not in self.methods):
            return None
        self.seen += 1
        if self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(self.kinds)
        self.injected[kind] += 1
        return kind

    async def fail(self, kind: str) -> tuple[ApiError, dict[str, str]]:
        """Return the error to answer with (after waiting, for a timeout) and
        the extra response headers."""
        if kind == "throttle":
            error = ApiError(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                {"retryAfterSeconds": self.retry_after_s},
            )
            return error, {"Retry-After": str(self.retry_after_s)}
        if kind == "timeout":
            await asyncio.sleep(self.timeout_s)
            message = "Timeout: request did not complete within requested timeout"
            return ApiError(504, "Timeout", message), {}
        return ApiError(500, "InternalError", "Internal error occurred: chaos"), {}
