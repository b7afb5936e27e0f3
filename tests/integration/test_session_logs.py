"""A normal demo session leaves no traceback and no error line in any log.

One stack as ``make demo`` runs it (:class:`devcluster.demo.workbench.Workbench`:
devcluster, Dask Gateway, the hub with configurable-http-proxy and the warmer,
on the session's slapd). bob logs in, opens the spawn page, starts a 16 GiB
server, creates a Dask cluster from his server's environment, computes with it,
shuts it down and stops his server. The session outlasts the first renewal of
the Dask Gateway proxy's route watch (every 60 s), as real sessions do.

Then every log the stack wrote (``*.log`` under its state directory: hub, proxy
and warmer in ``hub.log``, ``gateway.log``, ``devcluster.log``, the pods' logs)
holds no traceback and no line at ERROR level; the stack's own processes log
nothing at CRITICAL either. A Jupyter server announces its own stop at CRITICAL
("received signal 15, stopping"), as the hub does its shutdown, so the pods'
logs, and every log once the stack stopped, are held to tracebacks and ERROR.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devcluster.demo.workbench import Workbench
from tests.integration.hub_harness import HubUser, server_environ

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

WATCH_RENEWAL_S = 60
"""dask-gateway-proxy gives up on its route watch (a long GET) after this long."""
PODS = "cluster/pods/"
"""Where devcluster's kubelet writes the pods' logs, under the state directory."""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEVELS = {
    "ERROR": (
        r"^\[E \d{4}-",  # JupyterHub, tornado, dask-gateway and its Go proxy
        r"\[ConfigProxy\] error:",  # configurable-http-proxy
        r"^\[\w+\] ERROR \|",  # traitlets applications (the warmer)
        r"^[\d-]+ [\d:,]+ ERROR ",  # devcluster
        r"^ERROR[: ]",  # Python's default format
    ),
    "CRITICAL": (
        r"^\[C \d{4}-",
        r"\[ConfigProxy\] crit",
        r"^\[\w+\] CRITICAL \|",
        r"^[\d-]+ [\d:,]+ CRITICAL ",
        r"^CRITICAL[: ]",
    ),
}

NOTEBOOK = """\
from dask_gateway import Gateway
import dask.array as da

with Gateway() as gateway:
    cluster = gateway.new_cluster(max_workers=1)
    cluster.scale(1)
    with cluster.get_client() as client:
        client.wait_for_workers(1, timeout=120)
        print("SUM", int(da.arange(100_000, chunks=10_000).sum().compute()))
    cluster.shutdown()
"""


def problems(text: str, levels: tuple[str, ...] = ("ERROR", "CRITICAL")) -> list[str]:
    """Return the lines of a log that are a traceback or at one of ``levels``."""
    patterns = [re.compile(p) for level in levels for p in _LEVELS[level]]
    found = []
    for raw in text.splitlines():
        line = _ANSI.sub("", raw)
        if "Traceback (most recent call last)" in line or any(
            p.search(line) for p in patterns
        ):
            found.append(line)
    return found


def stack_logs(root: Path) -> list[Path]:
    """Return the stack's process logs (not files in users' home volumes)."""
    homes = root / "cluster" / "volumes"
    return sorted(p for p in root.rglob("*.log") if homes not in p.parents)


def read_logs(root: Path) -> dict[str, str]:
    """Return the stack's logs as they are now, by path under ``root``."""
    return {
        str(path.relative_to(root)): path.read_text(encoding="utf-8", errors="replace")
        for path in stack_logs(root)
    }


def problems_in(logs: dict[str, str], levels: tuple[str, ...]) -> dict[str, list[str]]:
    """Return each log's problem lines, for the logs that have any."""
    found = {name: problems(text, levels)[:20] for name, text in logs.items()}
    return {name: lines for name, lines in found.items() if lines}


@dataclass
class Session:
    """The stack after the session, and its logs as they were then."""

    bench: Workbench
    logs: dict[str, str]


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["cpu16"], "zones": ["us-east-1b"], "capacity_grace_s": 1.0}


@pytest.fixture(scope="module")
def session(workbench: Workbench) -> Session:
    """Run the demo session; return once bob's server has stopped."""
    # The stack (and its gateway) started before this.
    started = time.monotonic()
    bob = HubUser(workbench.url, "bob", "bob-pw")
    assert bob.login().status_code == 302
    bob.form()
    response = bob.spawn({"profile": "medium"})
    assert response.status_code == 302, response.text[:300]
    bob.wait_ready(timeout=150)
    # Users work for minutes; past one renewal of the proxy's route watch.
    time.sleep(max(0.0, started + WATCH_RENEWAL_S + 5 - time.monotonic()))
    done = subprocess.run(
        [sys.executable, "-c", NOTEBOOK],
        env=_notebook_environment(workbench, "bob"),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SUM 4999950000" in done.stdout
    assert workbench.kube is not None
    bob.stop(workbench.kube)
    time.sleep(2)  # let the last log lines land
    return Session(workbench, read_logs(workbench.state_dir))


def _notebook_environment(bench: Workbench, user: str) -> dict[str, str]:
    """This process's environment plus the hub's and gateway's for the server."""
    given = server_environ(bench, user)
    wanted = ("DASK_GATEWAY", "JUPYTERHUB_API")
    return {**os.environ, **{k: v for k, v in given.items() if k.startswith(wanted)}}


def test_the_sessions_logs_hold_no_traceback_and_no_error(session: Session) -> None:
    logs = session.logs
    assert {"hub.log", "gateway.log", "devcluster.log"} <= set(logs)
    pods = {name: text for name, text in logs.items() if name.startswith(PODS)}
    assert pods  # bob's server
    stack = {name: text for name, text in logs.items() if name not in pods}
    assert "[ConfigProxy]" in stack["hub.log"]  # the proxy and the warmer log here
    assert "Starting managed service warmer" in stack["hub.log"]
    assert problems_in(stack, ("ERROR", "CRITICAL")) == {}
    assert problems_in(pods, ("ERROR",)) == {}
    # The session went past a renewal: a route watch the proxy had left ended.
    assert "GET /api/v1/routes?watch=1" in logs["gateway.log"]


def test_after_the_stack_stopped_still_no_traceback(session: Session) -> None:
    session.bench.stop()
    logs = read_logs(session.bench.state_dir)
    assert "Received signal SIGTERM" in logs["hub.log"]
    assert problems_in(logs, ("ERROR",)) == {}


@pytest.mark.parametrize(
    ("line", "levels", "found"),
    [
        pytest.param("Traceback (most recent call last):", (), True, id="traceback"),
        pytest.param(
            "[E 2026-01-01 10:00:00.000 JupyterHub app:1] boom", ("ERROR",), True
        ),
        pytest.param(
            "\x1b[31m[E 2026-01-01 10:00:00.000 DaskGateway]\x1b[0m boom",
            ("ERROR",),
            True,
            id="coloured",
        ),
        pytest.param(
            "2026-01-01T10:00:00.000Z [ConfigProxy] \x1b[31merror\x1b[39m: 503 GET /",
            ("ERROR",),
            True,
            id="chp",
        ),
        pytest.param("[WarmerApp] ERROR | pass failed", ("ERROR",), True, id="app"),
        pytest.param(
            "2026-01-01 10:00:00,000 ERROR devcluster.x: y", ("ERROR",), True, id="dc"
        ),
        pytest.param(
            "[C 2026-01-01 10:00:00.000 JupyterHub app:1] Received signal SIGTERM",
            ("ERROR",),
            False,
            id="critical-not-asked",
        ),
        pytest.param(
            "[C 2026-01-01 10:00:00.000 JupyterHub app:1] x", ("CRITICAL",), True
        ),
        pytest.param(
            "[W 2026-01-01 10:00:00.000 JupyterHub] an error page", ("ERROR",), False
        ),
        pytest.param(
            "[I 2026-01-01 DaskGateway] Error creating cluster: refused",
            ("ERROR",),
            False,
            id="info-mentioning-error",
        ),
    ],
)
def test_the_scan_tells_problems_from_other_lines(
    line: str, levels: tuple[str, ...], found: bool
) -> None:
    assert bool(problems(f"ok\n{line}\nok\n", levels)) is found
