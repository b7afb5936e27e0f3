"""Probes and lifecycle hooks: what the kubelet checks and runs around a container.

A probe or hook handler is ``exec`` (a command in the container, success is exit
code 0), ``httpGet`` (a GET to the pod's IP by default, success is a status from
200 to 399, redirects not followed), ``tcpSocket`` (a connection opens) or, for
hooks, ``sleep``. ``Prober`` keeps one probe's schedule and counts (its
``initialDelaySeconds``, ``periodSeconds``, ``successThreshold`` and
``failureThreshold``, with the kubelet's defaults); the result and the message of
a failure are worded like the kubelet's ``Unhealthy`` events. Delays and periods
are simulated seconds (scaled by ``time_factor``); ``timeoutSeconds`` is not,
because it bounds real work (a process that has to start, a server that has to
answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

ExecRunner = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]
"""``(command, timeout) -> (exit code, output)``: a command in the container."""

_MAX_OUTPUT = 10 * 1024
"""The kubelet keeps at most this much of an exec probe's output."""
_MIN_PERIOD_S = 0.05
"""Probes never run more often than this (real seconds), however fast time runs."""


@dataclass(frozen=True)
class Result:
    """One probe or hook run: success, and the message of a failure."""

    ok: bool
    message: str = ""


def named_port(container: Mapping[str, Any], port: Any) -> int | None:
    """Resolve a handler's ``port`` (a number or a container port's name)."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    return None


async def _http_get(
    action: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str, timeout: float
) -> Result:
    port = named_port(container, action.get("port"))
    host = action.get("host") or pod_ip
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = str(action.get("path") or "/")
    url = f"{scheme}://{host}:{port}{path}"
    if port is None:
        return Result(False, f"unknown port {action.get('port')!r}")
    headers = {"User-Agent": "kube-probe/1.33", "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        headers[str(header.get("name"))] = str(header.get("value", ""))

    def get() -> int:
        conn_type = (
            http.client.HTTPSConnection
            if scheme == "https"
            else http.client.HTTPConnection
        )
        conn = conn_type(host, port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    try:
        code = await asyncio.wait_for(asyncio.to_thread(get), timeout + 1.0)
    except TimeoutError:
        return Result(
            False,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded '
            "while awaiting headers)",
        )
    except OSError as exc:
        return Result(False, f'Get "{url}": dial tcp {host}:{port}: {_reason(exc)}')
    except http.client.HTTPException as exc:
        return Result(False, f'Get "{url}": {exc!r}')
    if 200 <= code < 400:
        return Result(True)
    return Result(False, f"HTTP probe failed with statuscode: {code}")


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    return str(exc.strerror or exc)


async def _tcp(
    action: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str, timeout: float
) -> Result:
    port = named_port(container, action.get("port"))
    host = action.get("host") or pod_ip
    if port is None:
        return Result(False, f"unknown port {action.get('port')!r}")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return Result(False, f"dial tcp {host}:{port}: i/o timeout")
    except OSError as exc:
        return Result(False, f"dial tcp {host}:{port}: {_reason(exc)}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Result(True)


async def _exec(action: Mapping[str, Any], run: ExecRunner, timeout: float) -> Result:
    command = [str(a) for a in action.get("command") or []]
    if not command:
        return Result(False, "exec: no command")
    try:
        code, output = await run(command, timeout)
    except TimeoutError:
        return Result(False, f"command {command!r} timed out")
    except OSError as exc:
        return Result(False, f"exec: {exc}")
    text = output[:_MAX_OUTPUT].decode(errors="replace")
    if code == 0:
        return Result(True, text)
    return Result(False, text or f"command {command!r} exited with {code}")


async def handle(
    handler: Mapping[str, Any],
    container: Mapping[str, Any],
    pod_ip: str,
    run: ExecRunner,
    timeout: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Result:
    """Run one probe or hook handler once.

    Args:
        handler: the probe or hook (``exec``, ``httpGet``, ``tcpSocket``, ``sleep``).
        container: the container (for named ports).
        pod_ip: where ``httpGet`` and ``tcpSocket`` go unless they name a host.
        run: runs an ``exec`` command in the container.
        timeout: seconds the handler may take.
        sleep: how a ``sleep`` handler waits (its seconds are simulated).
    """
    if "exec" in handler:
        return await _exec(handler["exec"], run, timeout)
    if "httpGet" in handler:
        return await _http_get(handler["httpGet"], container, pod_ip, timeout)
    if "tcpSocket" in handler:
        return await _tcp(handler["tcpSocket"], container, pod_ip, timeout)
    if "sleep" in handler:
        await sleep(float(handler["sleep"].get("seconds") or 0))
        return Result(True)
    if "grpc" in handler:
        return Result(False, "devcluster does not run grpc probes")
    return Result(False, "the handler has no action")


@dataclass
class Prober:
    """One probe of one container: its settings, schedule and counts.

    Args:
        kind: ``Readiness``, ``Liveness`` or ``Startup`` (for messages).
        spec: the probe as the container declares it.
    """

    kind: str
    spec: Mapping[str, Any]
    successes: int = 0
    failures: int = 0
    passing: bool = False

    @property
    def initial_delay(self) -> float:
        """``initialDelaySeconds`` (simulated)."""
        return float(self.spec.get("initialDelaySeconds") or 0)

    @property
    def period(self) -> float:
        """``periodSeconds`` (simulated; default 10)."""
        return float(self.spec.get("periodSeconds") or 10)

    @property
    def timeout(self) -> float:
        """``timeoutSeconds`` (real seconds; default 1)."""
        return float(self.spec.get("timeoutSeconds") or 1)

    def record(self, result: Result) -> bool | None:
        """Count a result; return the new state when it flips, else None.

        The probe passes after ``successThreshold`` successes in a row (1 for
        liveness and startup probes) and fails after ``failureThreshold``
        failures in a row (default 3).
        """
        if result.ok:
            self.successes, self.failures = self.successes + 1, 0
            needed = int(self.spec.get("successThreshold") or 1)
            if not self.passing and self.successes >= needed:
                self.passing = True
                return True
            return None
        self.successes, self.failures = 0, self.failures + 1
        if self.failures >= int(self.spec.get("failureThreshold") or 3):
            was = self.passing
            self.passing = False
            self.failures = 0
            return False if was or self.kind != "Readiness" else None
        return None


def real_period(simulated: float, factor: float) -> float:
    """Real seconds between probes (never below a floor, however fast time runs)."""
    return max(simulated * factor, _MIN_PERIOD_S)
