"""Benchmark of the devcluster Kubernetes API: request rates and watch fan-out.

Starts ``python -m devcluster`` as a separate process (no moto, ``sim`` kubelet,
no nodes, so nothing but the API works) and drives it over HTTP from this
process with aiohttp:

* requests/s for pod create (validated), get and list (of all pods);
* watch fan-out: N watchers on the pods of a namespace while M pods are created,
  events delivered per second (all watchers together) and the lag from the
  create call to each watcher seeing the event (max and p50).

Writes ``bench/results/devcluster.json``.
Run: ``.venv/bin/python bench/bench_devcluster.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "devcluster.json"
NS = "/api/v1/namespaces/jhub"


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"component": "singleuser-server"},
            "annotations": {"bench/created": repr(time.time())},
        },
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "jupyter/base:1",
                    "args": ["jupyterhub-singleuser"],
                    "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                    "resources": {
                        "requests": {"cpu": "1", "memory": "1Gi"},
                        "limits": {"cpu": "2", "memory": "2Gi"},
                    },
                    "env": [{"name": f"VAR_{n}", "value": str(n)} for n in range(10)],
                }
            ]
        },
    }


def start_server(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable,
        "-m",
        "devcluster",
        "--no-moto",
        "--kubelet",
        "sim",
        "--state-dir",
        str(tmp),
        "--kubeconfig",
        str(tmp / "kubeconfig"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("devcluster did not start")
    return proc, json.loads(line)["api"]


async def rate(label: str, n: int, concurrency: int, call: Any) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await call(i)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    per_s = n / (time.perf_counter() - began)
    print(f"{label:<28} {per_s:9.1f} req/s  ({n} requests, concurrency {concurrency})")
    return per_s


async def request_rates(
    session: aiohttp.ClientSession, url: str, n: int, conc: int
) -> dict[str, float]:
    async def create(i: int) -> None:
        async with session.post(f"{url}{NS}/pods", json=pod(f"rate-{i}")) as resp:
            assert resp.status == 201, await resp.text()

    async def get(i: int) -> None:
        async with session.get(f"{url}{NS}/pods/rate-{i % n}") as resp:
            assert resp.status == 200
            await resp.read()

    async def list_all(_: int) -> None:
        async with session.get(f"{url}{NS}/pods") as resp:
            assert resp.status == 200
            await resp.read()

    async def delete(i: int) -> None:
        async with session.delete(f"{url}{NS}/pods/rate-{i}") as resp:
            assert resp.status == 200

    return {
        "create_per_s": await rate("create pod (validated)", n, conc, create),
        "get_per_s": await rate("get pod", n * 2, conc, get),
        "list_per_s": await rate(f"list {n} pods", 50, min(conc, 4), list_all),
        "delete_per_s": await rate("delete pod", n, conc, delete),
    }


async def watcher(
    session: aiohttp.ClientSession,
    url: str,
    rv: str,
    want: int,
    lags: list[float],
    ready: asyncio.Event,
) -> int:
    got = 0
    query = (
        f"watch=1&resourceVersion={rv}&timeoutSeconds=300"
        "&labelSelector=component%3Dsingleuser-server"
    )
    async with session.get(
        f"{url}{NS}/pods?{query}", timeout=aiohttp.ClientTimeout(total=300)
    ) as resp:
        ready.set()
        async for line in resp.content:
            event = json.loads(line)
            created = float(event["object"]["metadata"]["annotations"]["bench/created"])
            lags.append(time.time() - created)
            got += 1
            if got >= want:
                break
    return got


async def fan_out(
    session: aiohttp.ClientSession, url: str, pods: int, watchers: int, conc: int
) -> dict[str, Any]:
    async with session.get(f"{url}{NS}/pods?limit=1") as resp:
        rv = (await resp.json())["metadata"]["resourceVersion"]
    lags: list[float] = []
    readies = [asyncio.Event() for _ in range(watchers)]
    tasks = [
        asyncio.create_task(watcher(session, url, rv, pods, lags, r)) for r in readies
    ]
    await asyncio.gather(*(r.wait() for r in readies))
    began = time.perf_counter()

    async def create(i: int) -> None:
        async with session.post(f"{url}{NS}/pods", json=pod(f"fan-{i}")) as resp:
            assert resp.status == 201, await resp.text()

    await rate("create pod while watched", pods, conc, create)
    counts = await asyncio.wait_for(asyncio.gather(*tasks), 300)
    took = time.perf_counter() - began
    delivered = sum(counts)
    result = {
        "watchers": watchers,
        "pods": pods,
        "events_delivered": delivered,
        "events_per_s": delivered / took,
        "max_lag_ms": 1000 * max(lags),
        "p50_lag_ms": 1000 * statistics.median(lags),
        "seconds": took,
    }
    print(
        f"watch fan-out: {delivered} events to {watchers} watchers in {took:.2f}s "
        f"= {result['events_per_s']:.0f} events/s, "
        f"lag p50 {result['p50_lag_ms']:.1f} ms, "
        f"max {result['max_lag_ms']:.1f} ms"
    )
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-devcluster-") as tmp:
        began = time.perf_counter()
        proc, url = await asyncio.to_thread(start_server, Path(tmp))
        startup = time.perf_counter() - began
        print(f"devcluster up at {url} in {startup:.2f}s (pid {proc.pid})")
        try:
            connector = aiohttp.TCPConnector(limit=args.concurrency + args.watchers + 4)
            async with aiohttp.ClientSession(connector=connector) as session:
                rates = await request_rates(
                    session, url, args.requests, args.concurrency
                )
                fan = await fan_out(
                    session, url, args.pods, args.watchers, args.concurrency
                )
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(20)
    return {
        "startup_s": startup,
        **rates,
        "watch_fan_out": fan,
        "concurrency": args.concurrency,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = asyncio.run(main(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
