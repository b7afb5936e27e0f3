"""``python -m devcluster``: starts, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request

from tests.devcluster.cluster_support import wait_for


def _call(url: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:  # loopback only
        return json.loads(resp.read())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


async def test_main_starts_serves_and_stops_on_sigterm(devcluster_proc):
    proc, info = devcluster_proc
    assert info["api"].startswith("http://127.0.0.1:") and info["pid"] == proc.pid
    kubeconfig = open(info["kubeconfig"]).read()
    assert f"server: {info['api']}" in kubeconfig and "namespace: jhub" in kubeconfig
    nodes = _call(info["api"] + "/api/v1/nodes")
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["core"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper"},
        "spec": {
            "nodeName": "core",
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11",
                    "command": [sys.executable, "-c", "import time; time.sleep(120)"],
                }
            ],
        },
    }
    _call(info["api"] + "/api/v1/namespaces/jhub/pods", "POST", pod)

    def running() -> bool:
        got = _call(info["api"] + "/api/v1/namespaces/jhub/pods/sleeper")
        return got["status"]["phase"] == "Running"

    await wait_for(running, 20)
    children = [
        int(p)
        for p in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
    ]
    assert children, "the pod process should be a child of devcluster"
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(15) == 0
    assert time.monotonic() - began < 10
    assert not any(_alive(pid) for pid in children)
    assert "devcluster stopped" in proc.stdout.read()
