"""Replaying a workday trace on devcluster, for ``bench/bench_warmer.py``.

- ``load_trace``: the trace YAML (users, sizes, homes, last sizes, past starts,
  sessions);
- ``start_cluster`` / ``setup_world``: ``python -m devcluster`` in its own
  process (sim kubelet) and its node groups, StorageClass and users' homes;
- ``Recorder``: watches nodes and pods over the API, and keeps when each node
  lived and when each user pod got bound and ready (simulated seconds);
- ``replay``: creates and deletes the users' pods at their times.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from warm_world import ScaledClock, home_objects, new_home, user_pod

from devcluster.demo.node_groups import aws_clients, create_node_groups
from devcluster.demo.workbench import Kube, prepare_cluster
from devcluster.services.procs import Proc
from wbspawner.model import CAPACITY_LABEL, POOL_LABEL, ZONE_LABEL, Profiles
from wbspawner.profiles.loader import parse_yaml

REPO = Path(__file__).resolve().parents[1]
NS = "jhub"
PAST_DAYS = 20
"""The trace's ``past_starts`` are spread over this many days before the day."""


@dataclass(frozen=True)
class Session:
    user: str
    size: str
    home: str | None
    start_s: float
    stop_s: float


@dataclass
class Trace:
    start: datetime
    end_s: float
    sessions: list[Session]
    homes: dict[str, str]
    last_sizes: dict[str, str]
    sizes: set[str]
    past_starts: dict[str, list[datetime]] = field(default_factory=dict)
    """User → their recorded server starts before the day (for the warmer)."""


def load_trace(path: Path) -> Trace:
    data, problems = parse_yaml(str(path), path.read_text())
    assert not problems and isinstance(data, dict), problems
    tz = ZoneInfo(data["timezone"])
    day = datetime.fromisoformat(str(data["day"]))

    def at(hhmm: str) -> datetime:
        h, m = (int(x) for x in hhmm.split(":"))
        return day.replace(hour=h, minute=m, tzinfo=tz)

    start = at(data["start"])
    sessions = []
    for u in data["users"]:
        for text in u["sessions"]:
            a, b = text.split("-")
            sessions.append(
                Session(
                    u["name"],
                    u["size"],
                    u["home"],
                    (at(a) - start).total_seconds(),
                    (at(b) - start).total_seconds(),
                )
            )
    return Trace(
        start=start,
        end_s=(at(data["end"]) - start).total_seconds(),
        sessions=sorted(sessions, key=lambda s: s.start_s),
        homes={u["name"]: u["home"] for u in data["users"] if u["home"]},
        last_sizes={u["name"]: u["last_size"] for u in data["users"] if u["last_size"]},
        sizes={u["size"] for u in data["users"]},
        past_starts={
            u["name"]: [
                at(hhmm) - timedelta(days=1 + i % PAST_DAYS)
                for i, hhmm in enumerate(u.get("past_starts") or [])
            ]
            for u in data["users"]
            if u.get("past_starts")
        },
    )


# ------------------------------------------------------------------ the cluster


@dataclass
class Cluster:
    proc: Proc
    api: str
    moto: str
    kubeconfig: Path


LAUNCHER = """
import dataclasses, sys
import devcluster.__main__ as main
from devcluster.controllers.autoscaler.asg import AsgActuator

# Cluster Autoscaler's AWS provider caches the groups it reads and refreshes
# them every minute; devcluster reads every group from moto every loop, which
# at this speed-up keeps a core busy. Cache the read for a simulated minute or
# until the autoscaler itself changes a group (nothing else changes groups in
# this benchmark).
import time
scan = float(sys.argv.pop(1))
factor = float(sys.argv[sys.argv.index("--time-factor") + 1])
read = AsgActuator.groups
def groups(self):
    cached = getattr(self, "_cached", None)
    if cached is None or time.monotonic() - cached[0] > 60 * factor:
        self._cached = cached = (time.monotonic(), read(self))
    return cached[1]
AsgActuator.groups = groups
for name in ("set_desired", "terminate"):
    def writer(write):
        def call(self, *args, **kwargs):
            self._cached = None
            return write(self, *args, **kwargs)
        return call
    setattr(AsgActuator, name, writer(getattr(AsgActuator, name)))

plain = main.config_from
main.config_from = lambda args: dataclasses.replace(plain(args), scan_interval_s=scan)
sys.exit(main.main())
"""
"""``python -m devcluster`` with an autoscaler scan interval its CLI does not
offer, and with the autoscaler's reads of the groups cached (see the comment)."""


def start_cluster(state: Path, factor: float, scan_s: float) -> Cluster:
    """Start devcluster (sim kubelet, no validation); return what it reported."""
    state.mkdir(parents=True, exist_ok=True)
    log = state / "devcluster.log"
    argv = [
        sys.executable,
        "-c",
        LAUNCHER,
        str(scan_s),
        "--time-factor",
        str(factor),
        "--kubelet",
        "sim",
        "--no-validate",
        "--static-node",
        "core",
        "--state-dir",
        str(state / "cluster"),
        "--kubeconfig",
        str(state / "kubeconfig"),
        "--namespace",
        NS,
    ]
    proc = Proc.start(argv, log, cwd=REPO, env={"PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        proc.check_running()
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                info = json.loads(line)
                return Cluster(proc, info["api"], info["moto"], state / "kubeconfig")
        time.sleep(0.1)
    proc.stop()
    raise TimeoutError("devcluster did not start")


def setup_world(cluster: Cluster, profiles: Profiles, trace: Trace) -> None:
    """Node groups for the trace's pools, the StorageClass and the users' homes."""
    kube = Kube(cluster.api)
    prepare_cluster(kube, profiles)
    pools = sorted({profiles.pool_of(profiles.size(s)).name for s in trace.sizes})  # type: ignore[arg-type]
    aws = aws_clients(cluster.moto)
    # Spot is never short in this trace, so only the spot groups are made: the
    # autoscaler reads every group from moto each loop, and half as many groups
    # keeps devcluster's loops on time at this speed-up.
    spot_only = dataclasses.replace(
        profiles,
        pools={
            n: dataclasses.replace(p, capacity_types=("spot",))
            for n, p in profiles.pools.items()
        },
    )
    create_node_groups(aws, spot_only, pools=pools)
    for user, zone in sorted(trace.homes.items()):
        volume = aws["ec2"].create_volume(
            AvailabilityZone=zone, Size=10, VolumeType="gp3"
        )
        pv, pvc = home_objects(
            user, zone, NS, profiles.homes.storage_class, volume["VolumeId"]
        )
        kube.create("/api/v1/persistentvolumes", pv)
        kube.create(f"/api/v1/namespaces/{NS}/persistentvolumeclaims", pvc)


# ------------------------------------------------------------------- recording


@dataclass
class Recorder:
    """Watches nodes and pods; keeps node lifetimes and when user pods got ready."""

    clock: ScaledClock
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    bound: dict[str, float] = field(default_factory=dict)
    node_of: dict[str, str] = field(default_factory=dict)
    first_user: dict[str, float] = field(default_factory=dict)
    """Node name → simulated second a user pod was first bound to it."""
    errors: list[str] = field(default_factory=list)

    def on_node(self, kind: str, node: dict[str, Any]) -> None:
        name, now = node["metadata"]["name"], self.clock.sim_seconds()
        labels = node["metadata"].get("labels") or {}
        if POOL_LABEL not in labels:
            return
        if kind == "ADDED" and name not in self.nodes:
            self.nodes[name] = {
                "pool": labels[POOL_LABEL],
                "zone": labels.get(ZONE_LABEL),
                "capacity": labels.get(CAPACITY_LABEL, "on-demand"),
                "up": now,
                "down": None,
            }
        elif kind == "DELETED" and name in self.nodes:
            self.nodes[name]["down"] = now

    def on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta, status = pod["metadata"], pod.get("status") or {}
        if (meta.get("labels") or {}).get("component") != "singleuser-server":
            return
        statuses = status.get("containerStatuses") or []
        if (pod.get("spec") or {}).get("nodeName"):
            self.bound.setdefault(meta["uid"], self.clock.sim_seconds())
            self.node_of[meta["uid"]] = pod["spec"]["nodeName"]
            self.first_user.setdefault(
                pod["spec"]["nodeName"], self.clock.sim_seconds()
            )
        if (
            kind != "DELETED"
            and status.get("phase") == "Running"
            and statuses
            and all(s.get("ready") for s in statuses)
        ):
            self.ready.setdefault(meta["uid"], self.clock.sim_seconds())

    async def watch(self, session: aiohttp.ClientSession, url: str, path: str) -> None:
        handler = self.on_node if "nodes" in path else self.on_pod
        version = ""
        while True:
            query = f"?watch=1&allowWatchBookmarks=false&timeoutSeconds=3600{version}"
            try:
                async with session.get(url + path + query, timeout=None) as response:
                    async for line in response.content:
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            version = ""
                            break
                        rv = obj["metadata"].get("resourceVersion")
                        version = f"&resourceVersion={rv}" if rv else ""
                        handler(event["type"], obj)
            except (TimeoutError, aiohttp.ClientError) as err:
                self.errors.append(f"watch {path}: {err}")
                await asyncio.sleep(0.05)


class Api:
    """Raw JSON calls to devcluster (the bench's own, like KubeSpawner's)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.session.post(self.url + path, json=body) as r:
            return r.status, await r.json()

    async def delete(self, path: str, grace: int = 1) -> int:
        query = f"?gracePeriodSeconds={grace}"
        async with self.session.delete(self.url + path + query) as r:
            return r.status


# ---------------------------------------------------------------------- replay


@dataclass
class Spawn:
    user: str
    size: str
    zone: str | None
    at: float
    uid: str


async def sleep_until(clock: ScaledClock, sim_s: float) -> None:
    delay = (sim_s - clock.sim_seconds()) * clock.factor
    if delay > 0:
        await asyncio.sleep(delay)


async def replay(
    api: Api,
    trace: Trace,
    profiles: Profiles,
    clock: ScaledClock,
    before_spawn: Callable[[Session], Awaitable[None]] | None = None,
) -> list[Spawn]:
    """Start and stop the users' servers at their times; return the spawns.

    ``before_spawn`` is awaited just before each server pod is created (the
    oracle frees the node it held for it).
    """
    events = [(s.start_s, 1, s) for s in trace.sessions] + [
        (s.stop_s, 0, s) for s in trace.sessions
    ]
    spawns: list[Spawn] = []
    made_homes: set[str] = set()
    for at, starting, s in sorted(events, key=lambda e: (e[0], e[1])):
        if at >= trace.end_s:
            break
        await sleep_until(clock, at)
        pods = f"/api/v1/namespaces/{NS}/pods"
        if not starting:
            await api.delete(f"{pods}/jupyter-{s.user}")
            continue
        if s.home is None and s.user not in made_homes:
            await api.post(
                f"/api/v1/namespaces/{NS}/persistentvolumeclaims",
                new_home(s.user, profiles, NS),
            )
            made_homes.add(s.user)
        if before_spawn is not None:
            await before_spawn(s)
        sent = clock.sim_seconds()
        status, pod = await api.post(
            pods, user_pod(s.user, s.size, profiles, s.home, NS)
        )
        assert status == 201, (status, pod)
        spawns.append(Spawn(s.user, s.size, s.home, sent, pod["metadata"]["uid"]))
    await sleep_until(clock, trace.end_s)
    return spawns


async def diagnose(
    api: Api, rec: Recorder, spawns: list[Spawn]
) -> list[dict[str, Any]]:
    """For spawns that took over a minute or never got ready: the pod's Events."""
    out = []
    for s in spawns:
        if rec.ready.get(s.uid, math.inf) - s.at < 60:
            continue
        async with api.session.get(
            f"{api.url}/api/v1/namespaces/{NS}/events",
            params={"fieldSelector": f"involvedObject.uid={s.uid}"},
        ) as r:
            events = (await r.json()).get("items") or []
        out.append(
            {
                "user": s.user,
                "at_s": round(s.at),
                "events": [f"{e.get('reason')}: {e.get('message')}" for e in events][
                    -6:
                ],
            }
        )
    return out
