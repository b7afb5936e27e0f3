"""AWS state lost under a running workbench (moto reset, as after its restart).

A stack of its own (its moto is wiped, so nothing else may share it): slapd,
devcluster with moto node groups for the 64 GiB pool in one zone, JupyterHub +
configurable-http-proxy. bob runs with a home (an EBS volume behind a Retain
PV) and a node boots for gina; then every AWS resource is gone at once: node
groups, instances, volumes. What follows must be plain: gina's spawn fails early
saying no node can be started, devcluster's autoscaler carries on without a
traceback, and ``wbspawner home list`` flags bob's home whose volume no longer
exists, without deleting it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devcluster.demo.workbench import NAMESPACE, Workbench
from tests.integration.hub_harness import logged_in, pod_of, pvc_of, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, object]:
    return {
        "time_factor": 0.05,  # gina's node boots for ~9 s: time to lose AWS meanwhile
        "pools": ["mem64"],
        "zones": ["us-east-1b"],
        "capacity_grace_s": 1.0,
        "warmer": False,
    }


def reset_moto(workbench: Workbench) -> None:
    """Wipe every resource of devcluster's moto server (``/moto-api/reset``)."""
    assert workbench.cluster is not None
    request = urllib.request.Request(
        f"{workbench.cluster.moto}/moto-api/reset", method="POST", data=b""
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        response.read()


def wbspawner(workbench: Workbench, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run the ``wbspawner`` command against the stack, as an admin would."""
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/root"),
        **workbench.cli_env,
    }
    done = subprocess.run(
        [str(BIN / "wbspawner"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def homes(workbench: Workbench) -> dict[str, dict[str, object]]:
    """Return ``wbspawner home list --json`` by user."""
    rows = json.loads(wbspawner(workbench, "home", "list", "--json").stdout)
    return {str(row["user"]): row for row in rows}


def reasons(workbench: Workbench, pod: str) -> list[str]:
    """Return the reasons of a pod's events so far, oldest first."""
    assert workbench.kube is not None
    events = workbench.kube.get(
        f"/api/v1/namespaces/{NAMESPACE}/events",
        fieldSelector=f"involvedObject.name={pod}",
    )["items"]
    return [str(e["reason"]) for e in events]


def test_aws_state_lost_is_told_plainly_and_deletes_nothing(
    workbench: Workbench,
) -> None:
    """bob runs, gina's node is booting: AWS forgets everything. gina's spawn
    fails within a minute saying no node can be started; devcluster's
    autoscaler logs no traceback; bob's home is flagged, and kept."""
    kube = workbench.kube
    assert kube is not None and workbench.cluster is not None
    bob = logged_in(workbench, "bob")
    bob.form()
    assert bob.spawn({"profile": "large"}).status_code == 302
    bob.wait_ready(timeout=150)
    claim = pvc_of(kube, "bob")
    assert claim is not None and claim["status"]["phase"] == "Bound"
    pv_name = claim["spec"]["volumeName"]
    volume = str(homes(workbench)["bob"]["volume_id"])
    assert volume.startswith("vol-")

    gina = logged_in(workbench, "gina")
    gina.form()
    started = time.monotonic()
    assert gina.spawn({"profile": "large"}).status_code == 302
    wait_until(
        lambda: "TriggeredScaleUp" in reasons(workbench, "jupyter-gina"),
        60,
        "a node booting for gina",
    )
    devcluster_log = workbench.state_dir / "devcluster.log"
    log_before = devcluster_log.read_text(errors="replace")
    reset_moto(workbench)  # node groups, instances (the booting one), volumes: gone

    events = gina.progress(timeout=170)
    took = time.monotonic() - started
    last = events[-1]
    assert last.get("failed") is True, events
    assert "No node group can start a 64 GiB node" in last["message"], last
    assert took < 60, f"the spawn took {took:.0f} s to fail: {last['message']}"
    wait_until(lambda: pod_of(kube, "gina") is None, 30, "gina's pod removed")

    def since_reset() -> str:
        return devcluster_log.read_text(errors="replace")[len(log_before) :]

    # The instance booting for gina is gone: the autoscaler gives it up when
    # its boot time is over (about 9 s here), without a traceback.
    wait_until(
        lambda: "is gone before it joined" in since_reset(),
        60,
        "the autoscaler giving up gina's node",
    )
    assert "Traceback" not in since_reset(), since_reset()[-3000:]

    after = homes(workbench)["bob"]
    assert after["volume_id"] == volume
    assert after["volume_missing"] is True and "missing" in str(after["status"])
    listed = wbspawner(workbench, "home", "list")
    assert f"EBS volume {volume} does not exist" in listed.stdout + listed.stderr
    # Flagged, never deleted: the claim and the PV that names the volume stay.
    assert pvc_of(kube, "bob") is not None
    pv = kube.get(f"/api/v1/persistentvolumes/{pv_name}")
    assert pv is not None and pv["spec"]["csi"]["volumeHandle"] == volume
