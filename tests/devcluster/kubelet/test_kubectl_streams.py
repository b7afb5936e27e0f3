"""kubectl 1.35 against devcluster's kubelet: exec -it, port-forward, logs -f.

kubectl speaks the protocols of a real cluster here: exec over the v5 websocket
channel protocol (with a terminal and its resizes for ``-it``), port-forward as
SPDY/3.1 tunnelled in a websocket (KEP-4006), and a streamed ``follow`` log.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import urllib.request
from pathlib import Path

import pexpect

from devcluster.cluster import Cluster
from tests.devcluster.cluster_support import Api, wait_for
from tests.devcluster.kubelet.kubelet_support import NS, phase, ready, script, server


def _kubeconfig(cluster: Cluster, tmp_path: Path) -> str:
    return str(cluster.write_kubeconfig(tmp_path / "kubeconfig"))


async def test_kubectl_exec_it_runs_a_shell_on_a_terminal(
    api: Api, cluster: Cluster, kubectl: Path, tmp_path: Path
):
    """``kubectl exec -it … -- sh -c``: a terminal both ways, the exit code back."""
    await api.call("POST", f"{NS}/pods", server("web"))
    await ready(api, "web")
    kubeconfig = _kubeconfig(cluster, tmp_path)

    def session() -> tuple[str, int]:
        child = pexpect.spawn(
            str(kubectl),
            [
                f"--kubeconfig={kubeconfig}",
                "exec",
                "-it",
                "web",
                "--",
                "sh",
                "-c",
                "test -t 0 && echo on-a-tty; read answer; echo got-$answer; exit 4",
            ],
            timeout=30,
            encoding="utf-8",
        )
        child.expect("on-a-tty")
        child.sendline("hello")
        child.expect("got-hello")
        child.expect(pexpect.EOF)
        child.close()
        return child.before or "", int(child.exitstatus or 0)

    _, code = await asyncio.to_thread(session)
    assert code == 4


async def test_kubectl_exec_pipes_and_exit_code(
    api: Api, cluster: Cluster, kubectl: Path, tmp_path: Path
):
    """Without -t, stdout and stderr stay apart and the exit code comes back."""
    await api.call("POST", f"{NS}/pods", server("web"))
    await ready(api, "web")
    kubeconfig = _kubeconfig(cluster, tmp_path)
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(kubectl),
            f"--kubeconfig={kubeconfig}",
            "exec",
            "-i",
            "web",
            "--",
            "sh",
            "-c",
            "cat; echo to-stderr >&2; exit 3",
        ],
        input="from stdin\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "from stdin\n"
    assert "to-stderr" in done.stderr


async def test_kubectl_port_forward(
    api: Api, cluster: Cluster, kubectl: Path, tmp_path: Path
):
    """``kubectl port-forward`` reaches the pod's port (SPDY in a websocket)."""
    await api.call("POST", f"{NS}/pods", server("web"))
    await ready(api, "web")
    kubeconfig = _kubeconfig(cluster, tmp_path)
    proc = subprocess.Popen(
        [
            str(kubectl),
            f"--kubeconfig={kubeconfig}",
            "port-forward",
            "--address=127.0.0.1",
            "pod/web",
            ":8888",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        found = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8888", line)
        assert found, line

        def get() -> tuple[int, str]:
            url = f"http://127.0.0.1:{found.group(1)}/"
            with urllib.request.urlopen(url, timeout=10) as resp:  # loopback only
                return resp.status, resp.read().decode()

        for _ in range(2):  # two connections over the same session
            status, body = await asyncio.to_thread(get)
            assert status == 200 and "Directory listing" in body
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
        stderr = proc.stderr.read() if proc.stderr else ""
    assert "error" not in stderr.lower(), stderr

    def upgrades() -> list[tuple[str, str, int]]:
        # a websocket request is logged when its session ends, after kubectl's
        return [r for r in cluster.requests if "/portforward" in r[1]]

    found = await wait_for(upgrades, 10)
    assert all(r[0] == "GET" and r[2] == 101 for r in found), found


async def test_kubectl_logs_follow(
    api: Api, cluster: Cluster, kubectl: Path, tmp_path: Path
):
    """``kubectl logs -f`` prints lines as they come and returns when the
    container ends."""
    code = (
        "import time\n"
        "for i in range(3):\n"
        "    print(f'line {i}', flush=True); time.sleep(0.4)\n"
    )
    await api.call("POST", f"{NS}/pods", script("talker", code, restartPolicy="Never"))
    await phase(api, "talker", "Running")
    kubeconfig = _kubeconfig(cluster, tmp_path)
    proc = await asyncio.create_subprocess_exec(
        str(kubectl),
        f"--kubeconfig={kubeconfig}",
        "logs",
        "-f",
        "talker",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 10)
    assert first == b"line 0\n"
    assert proc.returncode is None, "the log should still be streaming"
    rest, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    assert rest == b"line 1\nline 2\n"
