"""Probes: readiness gates Ready, liveness and startup failures restart the container.

Behaviour as in kubernetes.io/docs/concepts/configuration/liveness-readiness-
startup-probes/ and pods/pod-lifecycle/#container-probes; the thresholds'
counting is checked without a cluster.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devcluster.kubelet.probes import Prober, Result, named_port
from tests.devcluster.cluster_support import Api, wait_for
from tests.devcluster.kubelet.kubelet_support import (
    NS,
    PY,
    events,
    get_pod,
    ready,
    script,
    server,
)

_SLEEP = "import time; time.sleep(60)"


def _exists(path: Path) -> dict:
    return {
        "exec": {"command": [PY, "-c", f"import os, sys; os.stat({str(path)!r})"]},
        "periodSeconds": 5,
        "failureThreshold": 1,
    }


async def _container(api: Api, name: str) -> dict:
    return (await get_pod(api, name))["status"]["containerStatuses"][0]


async def test_exec_readiness_probe_gates_ready(api: Api, tmp_path: Path):
    """Ready follows the readiness probe both ways; a failure is an Unhealthy event."""
    marker = tmp_path / "ready"
    pod = script("gated", _SLEEP)
    pod["spec"]["containers"][0]["readinessProbe"] = _exists(marker)
    await api.call("POST", f"{NS}/pods", pod)

    async def unready_event() -> bool:
        return any(
            e["reason"] == "Unhealthy" and "Readiness probe failed" in e["message"]
            for e in await events(api, "gated")
        )

    await wait_for(unready_event, 10)
    state = await _container(api, "gated")
    assert state["state"].get("running") and state["ready"] is False
    marker.touch()
    pod = await ready(api, "gated")
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Ready"] == "True" and conditions["ContainersReady"] == "True"
    marker.unlink()

    async def unready() -> bool:
        return (await _container(api, "gated"))["ready"] is False

    await wait_for(unready, 10)


async def test_http_and_tcp_readiness_probes(api: Api):
    """httpGet (to the pod IP, a named port) and tcpSocket probes pass on a server."""
    for name, probe in (
        ("httpprobed", {"httpGet": {"path": "/", "port": "http"}}),
        ("tcpprobed", {"tcpSocket": {"port": 8888}}),
    ):
        pod = server(name)
        pod["spec"]["containers"][0]["ports"][0]["name"] = "http"
        pod["spec"]["containers"][0]["readinessProbe"] = {**probe, "periodSeconds": 5}
        await api.call("POST", f"{NS}/pods", pod)
        assert (await ready(api, name))["status"]["phase"] == "Running"


async def test_failed_liveness_probe_restarts_the_container(api: Api):
    """A container failing its liveness probe is killed and restarted, and its
    restart count goes up."""
    pod = script("sick", _SLEEP)
    pod["spec"]["containers"][0]["livenessProbe"] = {
        "httpGet": {"path": "/healthz", "port": 9},  # nothing listens there
        "periodSeconds": 5,
        "failureThreshold": 2,
    }
    await api.call("POST", f"{NS}/pods", pod)

    async def restarted() -> dict | None:
        state = await _container(api, "sick")
        return state if state["restartCount"] >= 1 else None

    state = await wait_for(restarted, 15)
    assert state["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM
    messages = [(e["reason"], e["message"]) for e in await events(api, "sick")]
    assert any(
        r == "Unhealthy" and m.startswith("Liveness probe failed: Get ")
        for r, m in messages
    )
    assert (
        "Killing",
        "Container main failed liveness probe, will be restarted",
    ) in messages


async def test_startup_probe_holds_back_started_and_ready(api: Api, tmp_path: Path):
    """Until the startup probe passes the container is not started (nor ready)."""
    marker = tmp_path / "started"
    pod = script("slowstart", _SLEEP)
    pod["spec"]["containers"][0]["startupProbe"] = {
        **_exists(marker),
        "failureThreshold": 1000,
    }
    await api.call("POST", f"{NS}/pods", pod)

    async def running() -> dict | None:
        state = await _container(api, "slowstart")
        return state if state["state"].get("running") else None

    state = await wait_for(running, 10)
    assert state["started"] is False and state["ready"] is False
    marker.touch()
    pod = await ready(api, "slowstart")
    assert pod["status"]["containerStatuses"][0]["started"] is True


@pytest.mark.parametrize(
    ("kind", "results", "flips"),
    [
        pytest.param(
            "Readiness",
            [True, False, False, False, True],
            [True, None, None, False, True],
            id="readiness-needs-3-failures",
        ),
        pytest.param(
            "Readiness",
            [False, False, False, False],
            [None, None, None, None],
            id="never-ready-no-flip",
        ),
        pytest.param(
            "Liveness",
            [False, False, False],
            [None, None, False],
            id="liveness-fails-at-threshold",
        ),
    ],
)
def test_prober_counts_like_the_kubelet(kind, results, flips):
    """successThreshold 1 and failureThreshold 3 are the defaults."""
    prober = Prober(kind, {})
    assert [prober.record(Result(ok)) for ok in results] == flips


def test_named_ports_resolve_from_the_container():
    container = {"ports": [{"name": "http", "containerPort": 8080}]}
    assert named_port(container, "http") == 8080
    assert named_port(container, 9090) == 9090
    assert named_port(container, "9090") == 9090
    assert named_port(container, "nope") is None
