"""``GET pods/{name}/log``: follow, previous, sinceSeconds/sinceTime, timestamps.

The parameters are those of PodLogOptions (kubernetes.io/docs/reference/
kubernetes-api/workload-resources/pod-v1/#read-log-of-the-specified-pod); the
files are in the CRI logging format (kubernetes/design-proposals
kubelet-cri-logging), one per run of a container, the previous one kept.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from devcluster.kubelet.logs import ContainerLogs, LogQuery, LogWriter, read_log
from tests.devcluster.cluster_support import Api, wait_for
from tests.devcluster.kubelet.kubelet_support import NS, get_pod, phase, script

_TICKS = (
    "import sys, time\n"
    "for i in range(3):\n"
    "    print(f'tick {i}', flush=True); time.sleep(0.3)\n"
)


async def _follow(api: Api, path: str) -> tuple[list[tuple[float, bytes]], float]:
    """Read a followed log as it streams: (time, chunk) pairs and when it ended."""
    chunks: list[tuple[float, bytes]] = []
    async with api.session.get(
        api.url + path, timeout=aiohttp.ClientTimeout(total=20)
    ) as resp:
        assert resp.status == 200, await resp.text()
        async for chunk in resp.content.iter_any():
            chunks.append((time.monotonic(), chunk))
    return chunks, time.monotonic()


async def test_follow_streams_until_the_container_ends(api: Api):
    """follow=true sends lines as they come and ends when the container does."""
    await api.call(
        "POST", f"{NS}/pods", script("ticker", _TICKS, restartPolicy="Never")
    )
    await phase(api, "ticker", "Running")
    began = time.monotonic()
    chunks, ended = await _follow(api, f"{NS}/pods/ticker/log?follow=true")
    text = b"".join(c for _, c in chunks).decode()
    assert text == "tick 0\ntick 1\ntick 2\n"
    first_tick = next(t for t, c in chunks if b"tick 0" in c)
    assert first_tick - began < ended - began - 0.3, "tick 0 came only at the end"
    assert (await get_pod(api, "ticker"))["status"]["phase"] in ("Running", "Succeeded")


async def test_previous_is_the_run_before_the_restart(api: Api):
    """previous=true reads the last terminated run; without one it is a 400."""
    code = "import os; print('run', os.getpid(), flush=True); raise SystemExit(1)"
    await api.call("POST", f"{NS}/pods", script("crasher", code))
    status, doc = await api.call("GET", f"{NS}/pods/crasher/log?previous=true")
    assert status == 400 and "previous terminated container" in doc["message"]

    async def restarted() -> bool:
        state = (await get_pod(api, "crasher"))["status"]["containerStatuses"][0]
        return state["restartCount"] >= 1 and "running" not in state["state"]

    await wait_for(restarted, 15)
    _, previous = await api.call("GET", f"{NS}/pods/crasher/log?previous=true")
    _, current = await api.call("GET", f"{NS}/pods/crasher/log")
    assert previous.startswith("run ") and current.startswith("run ")

    async def rerun() -> dict | None:
        state = (await get_pod(api, "crasher"))["status"]["containerStatuses"][0]
        return state if state["restartCount"] >= 2 else None

    state = await wait_for(rerun, 15)
    _, before = await api.call("GET", f"{NS}/pods/crasher/log?previous=true")
    _, now = await api.call("GET", f"{NS}/pods/crasher/log")
    assert before.startswith("run ") and now.startswith("run ")
    if "running" in state["state"]:
        assert before != now


async def test_since_and_timestamps(api: Api):
    """timestamps=true prefixes each line with its RFC 3339 time; sinceTime and
    sinceSeconds keep only the lines from then on."""
    code = (
        "import time\n"
        "print('early', flush=True); time.sleep(1.2); print('late', flush=True)\n"
        "time.sleep(60)\n"
    )
    await api.call("POST", f"{NS}/pods", script("timed", code))

    async def both() -> str | None:
        _, text = await api.call("GET", f"{NS}/pods/timed/log?timestamps=true")
        return text if isinstance(text, str) and "late" in text else None

    stamped = (await wait_for(both, 15)).splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["early", "late"]
    when = datetime.fromisoformat(stamped[1].split(" ")[0][:26] + "+00:00")
    assert abs((datetime.now(UTC) - when).total_seconds()) < 30
    since = stamped[1].split(" ")[0]
    _, text = await api.call("GET", f"{NS}/pods/timed/log?sinceTime={since}")
    assert text == "late\n"
    _, text = await api.call("GET", f"{NS}/pods/timed/log?sinceSeconds=1")
    assert text == "late\n"
    status, doc = await api.call("GET", f"{NS}/pods/timed/log?sinceSeconds=0")
    assert status == 400


async def test_cri_lines_longer_than_16k_are_pieces_joined_on_read(tmp_path: Path):
    logs = ContainerLogs()
    writer = logs.begin(tmp_path, 0)
    long = b"x" * (40 * 1024)
    writer.write("stdout", long[:10] + b"")
    writer.write("stdout", long[10:] + b"\nshort\n")
    writer.write("stderr", b"no newline at the end")
    writer.close()
    raw = (tmp_path / "0.log").read_bytes().splitlines()
    assert [line.split(b" ")[2] for line in raw] == [b"P", b"P", b"F", b"F", b"F"]
    chunks = await read_log("p", LogQuery("c"), logs)
    text = b"".join([c async for c in chunks])
    assert text == long + b"\nshort\nno newline at the end\n"


async def test_only_the_current_and_previous_runs_are_kept(tmp_path: Path):
    logs = ContainerLogs()
    for run in range(4):
        writer: LogWriter = logs.begin(tmp_path, run)
        writer.write("stdout", f"run {run}\n".encode())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.log", "3.log"]
    previous = await read_log("p", LogQuery("c", previous=True), logs, 3)
    assert b"".join([c async for c in previous]) == b"run 2\n"
    current = await read_log("p", LogQuery("c"), logs, 3)
    assert b"".join([c async for c in current]) == b"run 3\n"
