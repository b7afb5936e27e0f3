"""The kubelet: pod IPs, readiness, status, events, exits, deletion, volumes."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request

import pytest

from devcluster.cluster import Cluster
from tests.devcluster.cluster_support import Api, wait_for
from tests.devcluster.kubelet.kubelet_support import NS, bound_claim
from tests.devcluster.kubelet.kubelet_support import alive as _alive
from tests.devcluster.kubelet.kubelet_support import get_pod as _pod
from tests.devcluster.kubelet.kubelet_support import missing as _missing
from tests.devcluster.kubelet.kubelet_support import phase as _phase
from tests.devcluster.kubelet.kubelet_support import ready as _ready
from tests.devcluster.kubelet.kubelet_support import reasons as _reasons
from tests.devcluster.kubelet.kubelet_support import script as _script
from tests.devcluster.kubelet.kubelet_support import server as _server


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
        return resp.status


async def test_pods_run_on_their_own_ip(api: Api):
    for name in ("a", "b"):
        status, _ = await api.call("POST", f"{NS}/pods", _server(name))
        assert status == 201
    pods = [await _ready(api, name) for name in ("a", "b")]
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 2 and all(ip.startswith("127.0.1.") for ip in ips)
    for ip in ips:
        assert await asyncio.to_thread(_get, f"http://{ip}:8888/") == 200
    pod = pods[0]
    assert (
        pod["status"]["phase"] == "Running" and pod["status"]["hostIP"] == "127.0.0.1"
    )
    cs = pod["status"]["containerStatuses"][0]
    assert {
        "image",
        "imageID",
        "restartCount",
        "ready",
        "started",
        "state",
        "containerID",
    } <= set(cs)
    assert "running" in cs["state"] and cs["started"] is True
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Ready"] == "True" and conditions["PodScheduled"] == "True"
    # The readiness probe may fail once while the server starts ("Unhealthy",
    # a Warning, as a kubelet reports it); the lifecycle events come in order.
    lifecycle = [r for r in await _reasons(api, "a") if r != "Unhealthy"]
    assert lifecycle == ["Pulling", "Pulled", "Created", "Started"]


async def test_image_pull_cached_per_node(api: Api):
    await api.call(
        "POST", f"{NS}/pods", _script("one", "print('hi')", restartPolicy="Never")
    )
    await _phase(api, "one", "Succeeded")
    await api.call(
        "POST", f"{NS}/pods", _script("two", "print('hi')", restartPolicy="Never")
    )
    await _phase(api, "two", "Succeeded")
    _, events = await api.call(
        "GET", f"{NS}/events?fieldSelector=involvedObject.name%3Dtwo"
    )
    pulled = [e["message"] for e in events["items"] if e["reason"] == "Pulled"]
    assert pulled == ['Container image "python:3.11" already present on machine']


async def test_logs_endpoint(api: Api):
    code = "print('line1'); print('line2'); print('line3')"
    await api.call("POST", f"{NS}/pods", _script("logger", code, restartPolicy="Never"))
    await _phase(api, "logger", "Succeeded")
    status, text = await api.call("GET", f"{NS}/pods/logger/log")
    assert status == 200 and text == "line1\nline2\nline3\n"
    _, text = await api.call("GET", f"{NS}/pods/logger/log?tailLines=1&container=main")
    assert text == "line3\n"
    status, doc = await api.call("GET", f"{NS}/pods/logger/log?container=nope")
    assert status == 400 and "is not valid for pod logger" in doc["message"]


@pytest.mark.parametrize(
    ("code", "policy", "phase", "exit_code", "reason"),
    [
        pytest.param(
            "raise SystemExit(3)", "Never", "Failed", 3, "Error", id="fail-never"
        ),
        pytest.param(
            "pass", "OnFailure", "Succeeded", 0, "Completed", id="ok-onfailure"
        ),
        pytest.param(
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
            "Never",
            "Failed",
            137,
            "Error",
            id="killed",
        ),
    ],
)
async def test_exit_codes(api: Api, code, policy, phase, exit_code, reason):
    await api.call("POST", f"{NS}/pods", _script("job", code, restartPolicy=policy))
    pod = await _phase(api, "job", phase)
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == exit_code and term["reason"] == reason


async def test_restart_policy_always_restarts(api: Api):
    await api.call("POST", f"{NS}/pods", _script("crash", "raise SystemExit(1)"))

    async def restarted():
        cs = ((await _pod(api, "crash"))["status"].get("containerStatuses") or [{}])[0]
        return cs if cs.get("restartCount", 0) >= 2 else None

    cs = await wait_for(restarted, 15)
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert "BackOff" in await _reasons(api, "crash")


async def test_delete_waits_grace_then_kills(api: Api, cluster: Cluster):
    assert cluster.kubelet is not None
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    await api.call("POST", f"{NS}/pods", _script("stubborn", stubborn))
    await _phase(api, "stubborn", "Running")

    async def up() -> bool:  # SIGTERM is ignored from here on
        return (await api.call("GET", f"{NS}/pods/stubborn/log"))[1] == "up\n"

    await wait_for(up, 10)
    pid = cluster.kubelet.pids()[0]
    began = time.monotonic()
    status, pod = await api.call("DELETE", f"{NS}/pods/stubborn?gracePeriodSeconds=100")
    assert status == 200 and pod["metadata"]["deletionTimestamp"]
    await asyncio.sleep(0.4)
    os.kill(pid, 0)  # still alive inside its 1 s (100 simulated s) grace period
    await wait_for(lambda: not _alive(pid), 5)
    assert time.monotonic() - began >= 0.9
    await wait_for(lambda: _missing(api, "stubborn"), 5)
    assert "Killing" in await _reasons(api, "stubborn")


async def test_delete_of_cooperative_process_is_quick(api: Api, cluster: Cluster):
    assert cluster.kubelet is not None
    await api.call("POST", f"{NS}/pods", _server("quick"))
    await _ready(api, "quick")
    pid = cluster.kubelet.pids()[0]
    began = time.monotonic()
    await api.call("DELETE", f"{NS}/pods/quick?gracePeriodSeconds=3000")  # 30 s real
    await wait_for(lambda: _missing(api, "quick"), 5)
    assert time.monotonic() - began < 3 and not _alive(pid)


def _home_pod(name: str, code: str) -> dict:
    return _script(
        name,
        code,
        restartPolicy="Never",
        container={
            "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
            "env": [
                {"name": "HOME", "value": "/home/jovyan"},
                {"name": "NOTES", "value": "/home/jovyan/notes.txt"},
            ],
        },
        volumes=[
            {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}
        ],
    )


async def test_pvc_volume_persists_across_pods(api: Api, cluster: Cluster):
    assert cluster.kubelet is not None
    await bound_claim(api, "claim-alice")
    write = "import os; open(os.environ['NOTES'], 'w').write('hello ' + os.getcwd())"
    await api.call("POST", f"{NS}/pods", _home_pod("writer", write))
    await _phase(api, "writer", "Succeeded")
    home = cluster.kubelet.volume_dir("pv-claim-alice")
    assert (home / "notes.txt").read_text() == f"hello {home}"
    read = "import os; print(open(os.path.expanduser('~/notes.txt')).read())"
    await api.call("POST", f"{NS}/pods", _home_pod("reader", read))
    await _phase(api, "reader", "Succeeded")
    _, text = await api.call("GET", f"{NS}/pods/reader/log")
    assert text.strip() == f"hello {home}"


async def test_env_refs_and_address_rewrite(api: Api):
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"token": "t0k"},
    }
    await api.call("POST", f"{NS}/secrets", secret)
    env = [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
        {"name": "GREETING", "value": "hi $(POD)"},
        {"name": "JUPYTERHUB_SERVICE_URL", "value": "http://0.0.0.0:8888/user/alice/"},
    ]
    code = (
        "import os; print(*[os.environ[k] for k in ('POD','IP','TOKEN','GREETING',"
        "'JUPYTERHUB_SERVICE_URL','HOSTNAME')], sep='|')"
    )
    await api.call(
        "POST",
        f"{NS}/pods",
        _script("envy", code, restartPolicy="Never", container={"env": env}),
    )
    pod = await _phase(api, "envy", "Succeeded")
    _, text = await api.call("GET", f"{NS}/pods/envy/log")
    ip = pod["status"]["podIP"]
    assert text.strip().split("|") == [
        "envy",
        ip,
        "t0k",
        "hi envy",
        f"http://{ip}:8888/user/alice/",
        "envy",
    ]


async def test_sim_mode_runs_nothing(api: Api, cluster: Cluster):
    assert cluster.kubelet is not None
    pod = _server("simmed")
    pod["metadata"]["annotations"] = {"devcluster.io/kubelet-mode": "sim"}
    await api.call("POST", f"{NS}/pods", pod)
    ready = await _ready(api, "simmed")
    assert ready["status"]["podIP"] and cluster.kubelet.pids() == []
    await api.call("DELETE", f"{NS}/pods/simmed")
    await wait_for(lambda: _missing(api, "simmed"), 5)


async def test_node_ready_and_node_loss_kills_pods(api: Api, cluster: Cluster):
    assert cluster.store is not None and cluster.kubelet is not None
    _, node = await api.call("GET", "/api/v1/nodes/core")
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    cluster.store.create("nodes", None, {"metadata": {"name": "doomed"}})
    await api.call("POST", f"{NS}/pods", _server("victim", node="doomed"))
    await _ready(api, "victim")
    pid = cluster.kubelet.pids()[0]
    cluster.store.delete("nodes", None, "doomed")
    await wait_for(lambda: _missing(api, "victim"), 5)
    await wait_for(lambda: not _alive(pid), 5)
