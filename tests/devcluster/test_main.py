"""``python -m devcluster``: starts, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request

import pytest

from devcluster.__main__ import config_from, parse_args
from devcluster.cluster import static_node
from devcluster.config import ClusterConfig
from devcluster.controllers.nodes import standard_labels
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
    # an EKS stand-in's nodes carry the well-known labels, as ASG nodes do
    labels = nodes["items"][0]["metadata"]["labels"]
    assert labels["topology.kubernetes.io/zone"] == "us-east-1a"
    assert labels["topology.kubernetes.io/region"] == "us-east-1"
    assert labels["node.kubernetes.io/instance-type"] == "m5.xlarge"
    assert labels["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
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


def test_static_nodes_get_the_labels_asg_nodes_get():
    """Zones in turn, the region, the instance type matching their capacity;
    labels given in the partial node win."""
    config = ClusterConfig(zones=("z-a", "z-b"), region="r-1")
    first = static_node({"metadata": {"name": "one"}}, 0, config)
    second = static_node(
        {"metadata": {"name": "two", "labels": {"role": "core"}}}, 1, config
    )
    asg = standard_labels("x", "m5.xlarge", "amd64", "z-a", "r-1", "on-demand")
    assert set(first["metadata"]["labels"]) == set(asg)
    assert first["metadata"]["labels"]["topology.kubernetes.io/zone"] == "z-a"
    assert second["metadata"]["labels"]["topology.kubernetes.io/zone"] == "z-b"
    assert second["metadata"]["labels"]["role"] == "core"
    assert first["metadata"]["labels"]["kubernetes.io/hostname"] == "one"


def test_image_users_on_the_command_line():
    args = parse_args(
        ["--image-user", "example.org/nb=1000:100", "--image-user", "a=5"]
    )
    assert config_from(args).image_users == (("example.org/nb", "1000:100"), ("a", "5"))
    with pytest.raises(SystemExit, match="IMAGE=UID"):
        config_from(parse_args(["--image-user", "example.org/nb=jovyan"]))


def test_image_env_on_the_command_line():
    """Each ``--image-env IMAGE=NAME=VALUE`` is one variable; the value may hold
    ``=`` and be empty."""
    args = parse_args(
        [
            "--image-env",
            "example.org/nb=HOME=/home/jovyan",
            "--image-env",
            "example.org/nb=OPTS=a=b",
            "--image-env",
            "a=EMPTY=",
        ]
    )
    assert config_from(args).image_env == (
        ("example.org/nb", "HOME=/home/jovyan"),
        ("example.org/nb", "OPTS=a=b"),
        ("a", "EMPTY="),
    )
    for wrong in ("example.org/nb=HOME", "example.org/nb==x", "=HOME=/"):
        with pytest.raises(SystemExit, match="IMAGE=NAME=VALUE"):
            config_from(parse_args(["--image-env", wrong]))
