"""Scale benchmark: a thousand users on one hub, a burst, and the warmer at size.

The real hub (JupyterHub + configurable-http-proxy through the repository's
``jupyterhub_config.py``, its database and the accounting database on a private
PostgreSQL, logins against a private slapd holding the users) on devcluster
with its kubelet in ``sim`` mode (no process per pod; :mod:`sim_servers`
answers the hub's check that a server is up, on the pod's own address). The
stack is :class:`devcluster.demo.workbench.Workbench`, the one the hub tests
and ``make demo`` run, without the warmer and the culler (part c measures the
warmer; the culler would stop idle simulated servers).

* Users: ``--users N`` LDAP people in ``jupyter-users``, each with a home (an
  EBS volume in moto, its PV and claim) made beforehand in one of the three
  zones in turn, as after earlier days; sizes ``small``/``medium``/``large``/
  ``xlarge``/``xxlarge`` of the shipped profiles in a fixed mix. The shipped
  pools are kept with ``max_nodes`` raised to what the mix needs (one user,
  one node).
* (a) Ramp: the N users arrive over ``--ramp-min`` simulated minutes (seeded
  random times); each logs in through the login form (LDAP) as a browser
  does, then its server is started through the REST API with an admin's token
  (``POST /hub/api/users/<name>/server {"profile": ...}``) and polled until the
  hub says it is ready.
* (b) Burst: ``--burst`` of those users stop, then all start at once, against
  JupyterHub's ``concurrent_spawn_limit`` (100); a ``429`` is retried after its
  ``Retry-After``, as the spawn page in a browser does.
* (c) Warmer: observe and plan for ``--warm-pools`` pools × 3 zones and
  ``--warm-nodes`` nodes (:mod:`scale_warmer`, pure).

Reported: lost spawns (never ready, or not running at the end), spawn → ready
(simulated s) and the part of it beyond the node's boot, hub API latency, hub
and proxy memory (RSS) and the hub's CPU, Kubernetes API requests per second
by client (devcluster's counter), accounting rows against spawns. Delays are
simulated (node boot 180 s, image pull 60 s) at ``--time-factor`` real seconds
per simulated second.

Writes ``bench/results/scale.json``.
Run: ``.venv/bin/python bench/bench_scale.py [--users N] [--burst B]``.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: the repository's packages
    sys.path.insert(0, str(REPO))
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

from provenance import commit, machine  # noqa: E402
from scale_warmer import measure as measure_warmer  # noqa: E402
from sim_servers import SimServers  # noqa: E402

from devcluster.demo.workbench import NAMESPACE, REGION, Workbench  # noqa: E402
from devcluster.services.descendants import descendants  # noqa: E402
from devcluster.services.ldap import LdapServer  # noqa: E402
from devcluster.services.ldap_seed import (  # noqa: E402
    DEMO_USERS,
    USERS_GROUP,
    DemoUser,
)
from devcluster.services.moto_server import DUMMY_KEY_ID, DUMMY_SECRET  # noqa: E402
from devcluster.services.postgres import PostgresServer  # noqa: E402
from wbspawner.homes.objects import zone_affinity  # noqa: E402
from wbspawner.profiles.loader import load_profiles  # noqa: E402

RESULTS = REPO / "bench" / "results" / "scale.json"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
SIZE_MIX = (("small", 25), ("medium", 40), ("large", 20), ("xlarge", 10))
SIZE_MIX += (("xxlarge", 5),)
"""Sizes users pick and their weights (of the shipped sizes jupyter-users may use)."""
HOME_GIB = 10
CNI = ("--cni-warm-ip-target=2", "--cni-minimum-ip-target=4")
"""The VPC CNI settings the subnet check counts with: at a thousand users the
default (a spare ENI per node) needs more addresses per zone than devcluster's
/18 subnets have (docs/scale.md), as an operator's cluster would."""
AGENT = "wbspawner-bench"
"""The benchmark's own User-Agent (its API calls are not the hub's)."""
POLL_S = 2.0
"""Real seconds between two reads of a spawning user's server."""
NODE_BOOT_S = 180.0
SPAWN_GIVE_UP_S = 600.0
"""Real seconds after which a spawn that is still not ready counts as lost."""


@dataclass
class SpawnRecord:
    """One spawn as the benchmark saw it (times: this process's monotonic clock)."""

    user: str
    size: str
    zone: str
    phase: str
    asked: float = 0.0
    accepted: float | None = None
    ready: float | None = None
    throttled: int = 0
    status: int | None = None
    failed: str = ""


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> dict[str, Any]:
    """p50, p90, p99 and max of ``values`` × ``scale``."""
    out: dict[str, Any] = {"n": len(values)}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        v = percentile(values, q)
        out[name] = None if v is None else round(v * scale, digits)
    return out


# ---------------------------------------------------------------- the stack


def scale_users(n: int, seed: int) -> list[tuple[DemoUser, str, str]]:
    """N directory users with their size and home zone (zones in turn)."""
    rng = random.Random(seed)
    slugs = [s for s, _ in SIZE_MIX]
    weights = [w for _, w in SIZE_MIX]
    out = []
    for i in range(n):
        uid = f"u{i:04d}"
        person = DemoUser(
            uid=uid,
            name=f"Scale User{i:04d}",
            password=f"{uid}-pw",
            uid_number=20000 + i,
            groups=(USERS_GROUP,),
        )
        out.append((person, rng.choices(slugs, weights)[0], ZONES[i % len(ZONES)]))
    return out


def write_profiles(into: Path, users: list[tuple[DemoUser, str, str]]) -> list[str]:
    """Copy the shipped profiles with each used pool's ``max_nodes`` raised.

    Returns:
        The pools the users' sizes need (their node groups are made).
    """
    shutil.copytree(REPO / "profiles", into)
    profiles = load_profiles([into])
    need: dict[str, int] = {}
    for _, slug, _ in users:
        size = profiles.size(slug)
        assert size is not None, slug
        pool = profiles.pool_of(size).name
        need[pool] = need.get(pool, 0) + 1
    text = (into / "10-pools.yaml").read_text()
    for pool, count in need.items():
        # one user per node, zones in turn: the pool's users in one zone + slack
        want = math.ceil(count / len(ZONES)) + 2
        text = re.sub(
            rf"(\n  {re.escape(pool)}:\n(?:    .*\n)*?    max_nodes: )\d+",
            lambda m, w=want: f"{m.group(1)}{w}",  # type: ignore[misc]
            text,
        )
    (into / "10-pools.yaml").write_text(text)
    return sorted(need)


@contextmanager
def scale_stack(
    state: Path, users: list[tuple[DemoUser, str, str]], time_factor: float
) -> Iterator[Workbench]:
    """PostgreSQL, slapd with the users, and the workbench on sim devcluster."""
    pools = write_profiles(state / "profiles", users)
    people = [DEMO_USERS[0], *(u for u, _, _ in users)]  # alice is the admin
    with PostgresServer(state / "postgres") as database:
        with LdapServer(state / "slapd", users=people, start_timeout=60) as ldap:
            with Workbench(
                state,
                time_factor=time_factor,
                pools=pools,
                ldap=ldap,
                warmer=False,
                culler_interval=None,
                hub_db_url=database.create_database("hub"),
                cost_db_url=database.create_database("costs"),
                kubelet="sim",
                pools_apply_args=CNI,
            ) as bench:
                yield bench


def make_homes(bench: Workbench, users: list[tuple[DemoUser, str, str]]) -> None:
    """Give every user a home in their zone: EBS volume, PV and bound claim."""
    import boto3

    assert bench.cluster is not None and bench.kube is not None
    ec2 = boto3.client(
        "ec2",
        endpoint_url=bench.cluster.moto,
        region_name=REGION,
        aws_access_key_id=DUMMY_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET,
    )
    storage_class = load_profiles([bench.profiles_dir]).homes.storage_class
    for person, _, zone in users:
        volume = ec2.create_volume(
            AvailabilityZone=zone, Size=HOME_GIB, VolumeType="gp3"
        )["VolumeId"]
        claim = f"home-{person.uid}"
        pv_name = f"pv-home-{person.uid}"
        bench.kube.create(
            "/api/v1/persistentvolumes",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv_name},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "capacity": {"storage": f"{HOME_GIB}Gi"},
                    "claimRef": {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "namespace": NAMESPACE,
                        "name": claim,
                    },
                    "csi": {
                        "driver": "ebs.csi.aws.com",
                        "volumeHandle": volume,
                        "fsType": "ext4",
                    },
                    "nodeAffinity": zone_affinity(zone),
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": storage_class,
                    "volumeMode": "Filesystem",
                },
            },
        )
        bench.kube.create(
            f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": claim,
                    "annotations": {"hub.jupyter.org/username": person.uid},
                },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{HOME_GIB}Gi"}},
                    "storageClassName": storage_class,
                    "volumeName": pv_name,
                },
            },
        )


def admin_token(bench: Workbench) -> str:
    """Log alice (an admin) in through the form; return an API token of hers."""
    from tests.integration.hub_harness import logged_in

    return logged_in(bench, "alice").token()


# ---------------------------------------------------------------- the driver


class Hub:
    """The hub's REST API with an admin's token; every call's latency is kept."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http = http
        self.url = url
        self.headers = {"Authorization": f"token {token}", "User-Agent": AGENT}
        self.latency: dict[str, list[float]] = {}
        self.statuses: dict[str, dict[int, int]] = {}

    async def call(
        self, kind: str, method: str, path: str, body: Any = None
    ) -> tuple[int, Any, dict[str, str]]:
        """Call ``/hub/api`` + ``path``; return status, JSON body, headers."""
        began = time.monotonic()
        async with self.http.request(
            method, f"{self.url}/hub/api{path}", json=body, headers=self.headers
        ) as resp:
            text = await resp.text()
            status, headers = resp.status, dict(resp.headers)
        self.latency.setdefault(kind, []).append(time.monotonic() - began)
        counts = self.statuses.setdefault(kind, {})
        counts[status] = counts.get(status, 0) + 1
        try:
            return status, json.loads(text) if text else None, headers
        except ValueError:
            return status, text, headers

    async def login(self, user: str, password: str) -> float:
        """Log in through the form with a browser's cookies; return seconds."""
        began = time.monotonic()
        jar = aiohttp.CookieJar(unsafe=True)  # the hub is at an IP address
        async with aiohttp.ClientSession(
            cookie_jar=jar, headers={"User-Agent": AGENT}
        ) as browser:
            async with browser.get(f"{self.url}/hub/login") as page:
                found = re.search(r'name="_xsrf" value="([^"]+)"', await page.text())
            assert found, "the login form has no _xsrf field"
            form = {
                "username": user,
                "password": password,
                "_xsrf": html.unescape(found.group(1)),
            }
            async with browser.post(
                f"{self.url}/hub/login?next=", data=form, allow_redirects=False
            ) as resp:
                if resp.status != 302:
                    raise RuntimeError(f"login of {user}: HTTP {resp.status}")
        took = time.monotonic() - began
        self.latency.setdefault("login", []).append(took)
        return took


async def start_server(hub: Hub, rec: SpawnRecord) -> None:
    """Ask for the server, retrying 429s after Retry-After; then wait until ready."""
    rec.asked = time.monotonic()
    while True:
        status, body, headers = await hub.call(
            "spawn", "POST", f"/users/{rec.user}/server", {"profile": rec.size}
        )
        rec.status = status
        if status != 429:
            break
        rec.throttled += 1
        await asyncio.sleep(float(headers.get("Retry-After", "30")))
    if status not in (201, 202):
        rec.failed = f"HTTP {status}: {str(body)[:200]}"
        return
    rec.accepted = time.monotonic()
    while time.monotonic() - rec.asked < SPAWN_GIVE_UP_S:
        status, model, _ = await hub.call("poll", "GET", f"/users/{rec.user}")
        server = (model or {}).get("servers", {}).get("") if status == 200 else None
        if server and server.get("ready"):
            rec.ready = time.monotonic()
            return
        if status == 200 and not server:
            rec.failed = "the server stopped before it was ready"
            return
        await asyncio.sleep(POLL_S)
    rec.failed = f"not ready within {SPAWN_GIVE_UP_S:g} s"


async def stop_server(hub: Hub, user: str) -> str:
    """Stop a user's server and wait until the hub has none; '' or what failed."""
    status, body, _ = await hub.call("stop", "DELETE", f"/users/{user}/server")
    if status not in (202, 204):
        return f"stop {user}: HTTP {status} {str(body)[:200]}"
    for _ in range(int(SPAWN_GIVE_UP_S / POLL_S)):
        status, model, _ = await hub.call("poll", "GET", f"/users/{user}")
        if status == 200 and not model.get("servers"):
            return ""
        await asyncio.sleep(POLL_S)
    return f"stop {user}: still stopping after {SPAWN_GIVE_UP_S:g} s"


async def ramp(
    hub: Hub,
    users: list[tuple[DemoUser, str, str]],
    ramp_real_s: float,
    seed: int,
) -> list[SpawnRecord]:
    """Each user logs in and starts a server at a random time within the ramp."""
    rng = random.Random(seed + 1)
    offsets = sorted(rng.uniform(0, ramp_real_s) for _ in users)
    records = [
        SpawnRecord(user=u.uid, size=s, zone=z, phase="ramp") for u, s, z in users
    ]
    began = time.monotonic()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, began + offsets[i] - time.monotonic()))
        person = users[i][0]
        try:
            await hub.login(person.uid, person.password)
        except Exception as exc:  # noqa: BLE001 (a failed login is a lost spawn)
            records[i].failed = f"login: {exc!r}"
            return
        await start_server(hub, records[i])

    await asyncio.gather(*(one(i) for i in range(len(users))))
    return records


async def burst(
    hub: Hub, ramp_records: list[SpawnRecord], count: int
) -> tuple[list[SpawnRecord], list[str]]:
    """Stop ``count`` running servers, then start them all at once."""
    chosen = [r for r in ramp_records if r.ready is not None][:count]
    errors = [
        e
        for e in await asyncio.gather(*(stop_server(hub, r.user) for r in chosen))
        if e
    ]
    records = [
        SpawnRecord(user=r.user, size=r.size, zone=r.zone, phase="burst")
        for r in chosen
    ]
    await asyncio.gather(*(start_server(hub, r) for r in records))
    return records, errors


# ---------------------------------------------------------------- measurements


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proxy_pid(hub_pid: int) -> int | None:
    """The configurable-http-proxy (node) process the hub started."""
    for proc in descendants(hub_pid):
        words = proc.command.split()
        if words and "node" in words[0] and "configurable-http-proxy" in proc.command:
            return proc.pid
    return None


class Sampler:
    """Peak and last RSS of the hub, its proxy and devcluster, every ``period`` s."""

    def __init__(self, pids: dict[str, int | None], period: float = 2.0) -> None:
        self.pids = {k: v for k, v in pids.items() if v}
        self.period = period
        self.peak: dict[str, float] = {}
        self.last: dict[str, float] = {}

    async def run(self) -> None:
        while True:
            for name, pid in self.pids.items():
                rss = _rss_mib(pid)
                if rss is not None:
                    self.peak[name] = max(self.peak.get(name, 0.0), rss)
                    self.last[name] = rss
            await asyncio.sleep(self.period)


async def request_counts(http: aiohttp.ClientSession, api: str) -> dict[str, Any]:
    """devcluster's requests by client and verb so far."""
    async with http.get(f"{api}/devcluster/v1/requests") as resp:
        resp.raise_for_status()
        return dict(await resp.json())


def _rates(
    before: dict[str, Any], after: dict[str, Any], real_s: float, tf: float
) -> dict[str, Any]:
    """Requests per real and simulated second by client (the bench's own left out)."""
    out: dict[str, Any] = {}
    for agent, verbs in after["by_agent"].items():
        if agent == AGENT:
            continue
        old = before["by_agent"].get(agent, {})
        delta = {v: n - old.get(v, 0) for v, n in verbs.items() if n - old.get(v, 0)}
        if delta:
            total = sum(delta.values())
            out[agent] = {
                "requests": delta,
                "per_real_s": round(total / real_s, 2),
                "per_simulated_s": round(total / (real_s / tf), 3),
            }
    return out


def accounting(cost_db: str) -> dict[str, int]:
    """Server rows in the accounting database: all, and those still open."""
    from sqlalchemy import create_engine, text

    engine = create_engine(cost_db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE stopped_at IS NULL)"
                    " FROM wbspawner_usage WHERE kind = 'server'"
                )
            ).one()
    finally:
        engine.dispose()
    return {"server_rows": int(rows[0]), "open_server_rows": int(rows[1])}


_STALL = re.compile(r"Event loop was unresponsive for at least ([0-9.]+)s")
_SPAWN_ERROR = re.compile(r"Unhandled error starting \S+ server: (.*)")


def hub_log_findings(log: Path) -> dict[str, Any]:
    """What the hub's log says about stalls and failed spawns (counts, worst)."""
    stalls: list[float] = []
    errors: dict[str, int] = {}
    retries = 0
    for line in log.read_text(errors="replace").splitlines():
        if found := _STALL.search(line):
            stalls.append(float(found.group(1)))
        elif found := _SPAWN_ERROR.search(line):
            # the reason without the object's name: "no answer ... (GET /api/...)"
            reason = re.sub(r"\(\w+ /[^)]*\)", "(...)", found.group(1))[:160]
            errors[reason] = errors.get(reason, 0) + 1
        elif "Kubernetes API " in line and "; try " in line:
            retries += 1
    return {
        "event_loop_stalls_over_1s": len(stalls),
        "event_loop_stall_max_s": max(stalls, default=0.0),
        "spawn_errors": errors,
        "kubernetes_api_retries": retries,
    }


def spawn_figures(
    records: list[SpawnRecord], sims: SimServers, tf: float
) -> dict[str, Any]:
    """Lost spawns and spawn → ready (simulated s), also beyond the node's boot."""
    done = [r for r in records if r.ready is not None]
    total = [r.ready - r.asked for r in done if r.ready is not None]
    beyond, boot_waits = [], 0
    for r in done:
        assert r.ready is not None
        node = sims.pod_node.get(r.user)
        node_ready = sims.node_ready.get(node or "", r.asked)
        if node_ready > r.asked:
            boot_waits += 1
        beyond.append(r.ready - max(r.asked, node_ready))
    from_accept = [r.ready - r.accepted for r in done if r.ready and r.accepted]
    start = min((r.asked for r in records), default=0.0)
    lost = [r for r in records if r.ready is None]
    first = min((r.asked for r in lost), default=None)
    return {
        "first_lost_at_simulated_min": None
        if first is None
        else round((first - start) / tf / 60, 1),
        "ready_before_first_lost": None
        if first is None
        else sum(1 for r in done if r.ready is not None and r.ready <= first),
        "spawns": len(records),
        "ready": len(done),
        "lost": len(records) - len(done),
        "lost_why": sorted({r.failed for r in records if r.failed})[:10],
        "waited_for_a_node_boot": boot_waits,
        "spawn_to_ready_simulated_s": spread(total, 1 / tf),
        "beyond_node_boot_simulated_s": spread(beyond, 1 / tf),
        "beyond_node_boot_real_s": spread(beyond, 1.0, 2),
        "accepted_to_ready_simulated_s": spread(from_accept, 1 / tf),
        "throttled_429": sum(r.throttled for r in records),
        "spawns_throttled": sum(1 for r in records if r.throttled),
    }


async def _hub_users(hub: Hub, state: str) -> list[dict[str, Any]]:
    """Every user model with a server in ``state`` (``ready`` or ``active``)."""
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        status, page, _ = await hub.call(
            "list", "GET", f"/users?state={state}&limit=200&offset={offset}"
        )
        assert status == 200, page
        items = page["items"] if isinstance(page, dict) else page
        found += items
        if len(items) < 200:
            return found
        offset += 200


async def settle(hub: Hub, timeout_s: float) -> int:
    """Wait until the hub has no server pending (a start or stop under way).

    Spawns the benchmark gave up on may still end either way; the end state
    is read once they have. Returns how many were still pending at the end
    of ``timeout_s`` (real seconds).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        pending = sum(
            1
            for u in await _hub_users(hub, "active")
            for server in (u.get("servers") or {}).values()
            if server.get("pending")
        )
        if not pending or time.monotonic() >= deadline:
            return pending
        await asyncio.sleep(5.0)


async def final_state(
    hub: Hub, http: aiohttp.ClientSession, api: str
) -> dict[str, Any]:
    """The hub's servers and the server pods, at the end.

    ``orphans``: server pods (not being deleted, in any phase) of users the hub
    has no server for, ready or pending: billed, unseen, nobody stops them.
    """
    ready = {u["name"] for u in await _hub_users(hub, "ready")}
    active = {u["name"] for u in await _hub_users(hub, "active")}
    async with http.get(
        f"{api}/api/v1/namespaces/{NAMESPACE}/pods",
        params={"labelSelector": "component=singleuser-server"},
    ) as resp:
        pods = (await resp.json())["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def user_of(pod: dict[str, Any]) -> str | None:
        return (pod["metadata"].get("annotations") or {}).get(
            "hub.jupyter.org/username"
        )

    running = {
        user_of(p) for p in live if (p.get("status") or {}).get("phase") == "Running"
    }
    orphans = sorted(str(user_of(p)) for p in live if user_of(p) not in active)
    return {
        "hub_ready": ready,
        "hub_active": active,
        "pods_running": running,
        "orphans": orphans,
    }


# ---------------------------------------------------------------- main


async def drive(
    bench: Workbench, args: argparse.Namespace, users: list[Any], ramp_min: float
) -> dict[str, Any]:
    """Run the ramp and the burst against the running stack; return the figures."""
    import jupyterhub

    assert bench.cluster is not None and bench.hub is not None
    api, tf = bench.cluster.api, args.time_factor
    token = await asyncio.to_thread(admin_token, bench)
    sims = SimServers(api, NAMESPACE, jupyterhub.__version__)
    connector = aiohttp.TCPConnector(limit=400)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers={"User-Agent": AGENT}
    ) as http:
        tasks = [asyncio.create_task(sims.run(http))]
        pids = {
            "hub": bench.hub.pid,
            "proxy": proxy_pid(bench.hub.pid),
            "devcluster": bench.cluster.proc.pid,
        }
        sampler = Sampler(pids)
        tasks.append(asyncio.create_task(sampler.run()))
        hub = Hub(http, bench.url, token)
        try:
            counts0, cpu0, t0 = (
                await request_counts(http, api),
                _cpu_s(bench.hub.pid),
                time.monotonic(),
            )
            ramp_records = await ramp(hub, users, ramp_min * 60 * tf, args.seed)
            counts1, cpu1, t1 = (
                await request_counts(http, api),
                _cpu_s(bench.hub.pid),
                time.monotonic(),
            )
            ramp_latency = {k: list(v) for k, v in hub.latency.items()}
            # now, before the burst moves its users to other pods and nodes
            ramp_figures = spawn_figures(ramp_records, sims, tf)
            burst_records, stop_errors = await burst(hub, ramp_records, args.burst)
            t2 = time.monotonic()
            counts2, cpu2 = await request_counts(http, api), _cpu_s(bench.hub.pid)
            pending_at_end = await settle(hub, args.settle_s)
            end = await final_state(hub, http, api)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await sims.close()
    expected = {r.user for r in ramp_records}
    lost_at_end = sorted(expected - (end["hub_ready"] & end["pods_running"]))
    spawns = len(ramp_records) + len(burst_records)
    started = sum(1 for r in ramp_records + burst_records if r.ready is not None)
    # a spawn the benchmark gave up on that the hub made ready afterwards
    last = {r.user: r for r in ramp_records + burst_records}
    late = sum(1 for u, r in last.items() if r.ready is None and u in end["hub_ready"])
    rows = await asyncio.to_thread(accounting, bench.cost_db)
    return {
        "ramp": {
            "real_s": round(t1 - t0, 1),
            **ramp_figures,
            "hub_api_ms": {k: spread(v, 1000, 1) for k, v in ramp_latency.items()},
            "kubernetes_requests_from_hub": _rates(counts0, counts1, t1 - t0, tf),
            "hub_cpu_share_of_one_core": round((cpu1 - cpu0) / (t1 - t0), 3)
            if cpu0 is not None and cpu1 is not None
            else None,
        },
        "burst": {
            "real_s": round(t2 - t1, 1),
            "stop_errors": stop_errors[:10],
            **spawn_figures(burst_records, sims, tf),
            "kubernetes_requests_from_hub": _rates(counts1, counts2, t2 - t1, tf),
            "hub_cpu_share_of_one_core": round((cpu2 - cpu1) / (t2 - t1), 3)
            if cpu1 is not None and cpu2 is not None
            else None,
        },
        "hub_api_ms_whole_run": {k: spread(v, 1000, 1) for k, v in hub.latency.items()},
        "hub_api_statuses": {
            k: dict(sorted(v.items())) for k, v in hub.statuses.items()
        },
        "rss_mib_peak": {k: round(v, 1) for k, v in sampler.peak.items()},
        "rss_mib_end": {k: round(v, 1) for k, v in sampler.last.items()},
        "end": {
            "users": len(expected),
            "hub_ready": len(end["hub_ready"] & expected),
            "pods_running": len(end["pods_running"] & expected),
            "servers_pending_at_end": pending_at_end,
            # a running pod whose server is not ready yet (a start under way)
            "pods_without_a_ready_server": len(
                (end["pods_running"] - end["hub_ready"]) & expected
            ),
            # a pod while the hub has no server for it at all: billed, unseen
            "orphan_pods": len(end["orphans"]),
            "orphan_users": end["orphans"][:20],
            "lost": len(lost_at_end),
            "lost_users": lost_at_end[:20],
        },
        "accounting": {
            **rows,
            "spawns": spawns,
            "spawns_ready": started + late,
            "spawns_ready_after_the_benchmark_gave_up": late,
            "rows_equal_spawns": rows["server_rows"] == spawns,
            "rows_equal_spawns_ready": rows["server_rows"] == started + late,
            "open_equal_running": rows["open_server_rows"] == len(end["pods_running"]),
        },
        "sim_server_errors": sims.errors[:10],
    }


def run_one(args: argparse.Namespace, n: int, ramp_min: float) -> dict[str, Any]:
    """Parts (a) and (b) with ``n`` users on a stack of their own."""
    users = scale_users(n, args.seed)
    state = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.tmp))
    out: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
        "users": n,
        "ramp_simulated_min": ramp_min,
    }
    try:
        t = time.monotonic()
        with scale_stack(state, users, args.time_factor) as bench:
            out["stack_real_s"] = round(time.monotonic() - t, 1)
            t = time.monotonic()
            make_homes(bench, users)
            out["homes_real_s"] = round(time.monotonic() - t, 1)
            out.update(asyncio.run(drive(bench, args, users, ramp_min)))
            out["hub_log"] = hub_log_findings(state / "hub.log")
    finally:
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    return out


def breaks(runs: list[dict[str, Any]]) -> list[str]:
    """One line per run that lost something: how far it went and what failed."""
    lines = []
    for r in runs:
        if _clean(r):
            continue
        ramp, log = r["ramp"], r["hub_log"]
        lines.append(
            f"{r['users']} users: {ramp['ready']} of {ramp['spawns']} ramp spawns "
            f"ready, {r['burst']['ready']} of {r['burst']['spawns']} burst spawns; "
            f"first lost spawn asked at simulated minute "
            f"{ramp['first_lost_at_simulated_min']} with "
            f"{ramp['ready_before_first_lost']} servers ready; "
            f"hub event loop stalls over 1 s: {log['event_loop_stalls_over_1s']}"
            f" (worst {log['event_loop_stall_max_s']} s); "
            f"spawn errors: {log['spawn_errors']}; orphan pods at the end: "
            f"{r['end'].get('orphan_pods')}; accounting rows "
            f"{r['accounting']['server_rows']} for "
            f"{r['accounting']['spawns_ready']} spawns ready"
        )
    return lines


def _clean(r: dict[str, Any]) -> bool:
    """Nothing lost, no orphan pod, one accounting row per spawn that was ready."""
    lost = r["ramp"]["lost"] + r["burst"]["lost"] + r["end"]["lost"]
    return (
        not lost
        and not r["end"].get("orphan_pods")
        and r["accounting"].get("rows_equal_spawns_ready", False)
    )


def run(
    args: argparse.Namespace, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Part (c), then (a) and (b) for each user count; the results document."""
    began = time.monotonic()
    load_before = os.getloadavg()
    shipped = load_profiles([REPO / "profiles"])
    warm = measure_warmer(shipped, args.warm_pools, args.warm_nodes, args.warm_runs)
    runs: list[dict[str, Any]] = earlier_runs(args) if args.add else []
    for n in args.users:
        runs = [r for r in runs if r["users"] != n]
        runs.append(run_one(args, n, args.ramp_min))
        runs.sort(key=lambda r: r["users"])
        if progress is not None:  # what is done so far survives a later break
            progress(document(args, warm, runs, load_before, began))
    return document(args, warm, runs, load_before, began)


def earlier_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The runs already in ``--out`` (each keeps when and at which commit)."""
    if not args.out.exists():
        return []
    old = json.loads(args.out.read_text())
    return [
        {"measured_at": old["measured_at"], "commit": old["commit"], **r}
        for r in old.get("runs", [])
    ]


def document(
    args: argparse.Namespace,
    warm: dict[str, Any],
    runs: list[dict[str, Any]],
    load_before: tuple[float, float, float],
    began: float,
) -> dict[str, Any]:
    """The results file's content."""
    clean = [r["users"] for r in runs if _clean(r)]
    return {
        "benchmark": "scale",
        "commit": commit(),
        "machine": {
            **machine(),
            # other work on the machine (CI runs beside benchmarks here)
            "load_average_1_5_15_before": [round(x, 2) for x in load_before],
            "load_average_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {
            "users": [r["users"] for r in runs],
            "burst": args.burst,
            "ramp_simulated_min": args.ramp_min,
            "time_factor": args.time_factor,
            "node_boot_simulated_s": NODE_BOOT_S,
            "size_mix": dict(SIZE_MIX),
            "zones": list(ZONES),
            "hub_db": "postgresql",
            "accounting_db": "postgresql",
            "logins": "LDAP through the login form",
            "spawns": "REST API, admin token",
            "concurrent_spawn_limit": 100,
            "seed": args.seed,
        },
        "warmer": warm,
        "largest_without_loss": max(clean, default=None),
        "breaks": breaks(runs),
        "runs": runs,
        "wall_s": round(time.monotonic() - began, 1),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (defaults: the full run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=[1000],
        help="user counts, one run each, in this order",
    )
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument(
        "--add",
        action="store_true",
        help="keep the runs of other user counts already in --out",
    )
    parser.add_argument(
        "--ramp-min", type=float, default=60.0, help="simulated minutes"
    )
    parser.add_argument(
        "--time-factor",
        type=float,
        default=1 / 6,
        help="real seconds per simulated second (1/6: the hour in ten minutes)",
    )
    parser.add_argument("--warm-pools", type=int, default=100)
    parser.add_argument("--warm-nodes", type=int, default=1000)
    parser.add_argument("--warm-runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--settle-s",
        type=float,
        default=300.0,
        help="real seconds to wait, after the burst, for pending servers to end",
    )
    parser.add_argument("--tmp", default=None, help="where the stack's state goes")
    parser.add_argument("--keep", action="store_true", help="keep the stack's state")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped with SIGTERM, unwind as on Ctrl-C so that every process is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write(report: dict[str, Any]) -> None:
        args.out.write_text(json.dumps(report, indent=1) + "\n")

    report = run(args, write)
    write(report)
    print(
        json.dumps(
            {k: report.get(k) for k in ("warmer", "largest_without_loss", "breaks")},
            indent=1,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
