"""Benchmark of the warmer: spawn waits and warm cost over a replayed workday.

A workday of logins (``bench/traces/workday.yaml``: about 40 people, a mix of
sizes, homes spread over three zones, lunch breaks, two new people, three who
do not come) is replayed on devcluster (its own process: API, scheduler,
Cluster Autoscaler over moto groups made like ``wbspawner pools``, kubelet in
``sim`` mode) with realistic delays in simulated time (node boot 180 s, image
pull 60 s, scale-down after 600 s unneeded), four times:

- ``none``: no warming;
- ``z2jh``: one-shape placeholders as zero-to-jupyterhub makes them: a fixed
  number of placeholder pods of the default size's pool, without a zone, kept
  all day (a StatefulSet), on nodes where a continuous image puller has pulled
  the image;
- ``warmer``: the warmer service's loop (``WarmerApp``, every 30 simulated s)
  with the shipped profiles whose warm section is
  ``bench/traces/workday-warm.yaml``, reading users' last sizes from a
  stand-in hub API and their habits from an accounting database holding the
  trace's past starts;
- ``oracle``: knows the trace; for each spawn it holds one placeholder (the
  warmer's own pod) in the spawn's pool, zone and capacity type from one node
  boot plus image pull plus an autoscaler loop before it until the user's pod
  is made (``bench/warm_oracle.py``): the ceiling of readiness, the floor of
  extra cost.

By default five seeded days of ``bench/make_workday_trace.py`` are replayed
(``--days``; team size 20–200, arrival spread, size changes, new people; the
warm settings the same for all, ``bench/warm_days.py``) and the JSON holds each
day's row per scenario, the mean day and the worst; ``--days 0`` replays
``--trace`` alone with every spawn's wait and every node.

Each spawn's wait is the simulated time from creating the user's pod (as
KubeSpawner does) to the pod being Running and ready; ``on_running_node`` is
the share of spawns whose node was up before the spawn (independent of how
fast devcluster's loops run). The compute cost is every pool node's price
(``wbspawner.catalog.pricing``, spot at the assumed discount) over the day.

The scenarios replay one after the other, each on its own cluster process, at
time factor 0.01 (a day in about seven minutes, some 28 for the four);
only spot groups are made (spot is never short here) and the autoscaler's reads
of the groups are cached as Cluster Autoscaler's AWS provider caches them.
``--parallel --time-factor 0.004`` replays the four at once in about three
minutes for a quick look, but on two cores devcluster's loops then lag by
several simulated seconds, which shows as slower spawns (compare
``ready_within_15s`` with ``on_running_node``). ``idle_before_first_user`` is
what warming costs beyond the users' own time: per pool, node-hours and USD of
nodes before their first user pod, and the nodes no user ever got.
Writes ``bench/results/warmer.json`` and ``bench/results/warmer.svg``.

Run: ``.venv/bin/python bench/bench_warmer.py [--days 0] [--parallel
--time-factor 0.004]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from warm_days import (  # noqa: E402
    day_rows,
    make_days,
    plot_days,
    summary,
    variation_row,
)
from warm_oracle import Oracle, lead_time  # noqa: E402
from warm_replay import (  # noqa: E402
    NS,
    Api,
    Recorder,
    Spawn,
    Trace,
    diagnose,
    load_trace,
    replay,
    setup_world,
    start_cluster,
)
from warm_world import ScaledClock, z2jh_placeholder  # noqa: E402

from wbspawner.catalog.pricing import hourly_cost  # noqa: E402
from wbspawner.costs.accounting import (  # noqa: E402
    Start,
    open_db,
    record,
    record_stop,
)
from wbspawner.model import Profiles  # noqa: E402
from wbspawner.profiles.loader import load_profiles, parse_yaml  # noqa: E402

TRACE = REPO / "bench" / "traces" / "workday.yaml"
WARM = REPO / "bench" / "traces" / "workday-warm.yaml"
RESULTS = REPO / "bench" / "results" / "warmer.json"
PLOT = REPO / "bench" / "results" / "warmer.svg"
READY_WITHIN_S = 15.0
SCENARIOS = ("none", "z2jh", "warmer", "oracle")
NODE_BOOT_S, IMAGE_PULL_S = 180, 60
"""devcluster's simulated node boot and image pull (``--kubelet sim``)."""
Z2JH_REPLICAS = 3


async def z2jh_loop(api: Any, profiles: Profiles, period: float) -> None:
    """The StatefulSet controller: keep ``Z2JH_REPLICAS`` placeholders existing."""
    size = next(s for s in profiles.sizes if s.default)
    image = next(i.image for i in size.images if i.default)
    while True:
        for i in range(Z2JH_REPLICAS):
            await api.post(
                f"/api/v1/namespaces/{NS}/pods",
                z2jh_placeholder(profiles, i, image, NS),
            )
        await asyncio.sleep(period)


async def fake_hub(last_sizes: dict[str, str]) -> tuple[Any, str]:
    """A stand-in hub API answering ``GET /hub/api/users`` with users' last sizes."""
    from tornado import web

    users = [
        {"name": u, "servers": {"": {"user_options": {"profile": s}, "ready": False}}}
        for u, s in sorted(last_sizes.items())
    ]

    class Users(web.RequestHandler):
        def get(self) -> None:
            self.finish({"items": users, "_pagination": {"next": None}})

    server = web.Application([(r"/hub/api/users", Users)]).listen(0, "127.0.0.1")
    port = next(iter(server._sockets.values())).getsockname()[1]
    return server, f"http://127.0.0.1:{port}/hub/api"


async def warmer_loop(app: Any, period: float) -> None:
    while True:
        await app.reconcile()
        await asyncio.sleep(period)


def seed_starts(db_url: str, trace: Trace, profiles: Profiles) -> None:
    """Record the trace's past starts in the accounting database, as the hub would.

    Each start is a server of the user's remembered size in their home's zone,
    stopped an hour later; the warmer learns when people usually start from these.
    """
    factory = open_db(db_url)
    with factory() as db:
        for user, starts in sorted(trace.past_starts.items()):
            size = profiles.size(trace.last_sizes[user])
            pool = profiles.pool_of(size)
            zone = trace.homes.get(user, "")
            price = hourly_cost(pool, "spot", None, profiles.cost, (zone,)).per_hour
            for at in starts:
                start = Start(
                    user=user,
                    size=size.slug,
                    pool=pool.name,
                    capacity_type="spot",
                    price_per_hour=price,
                    at=at,
                    zone=zone,
                )
                record(db, start)
                record_stop(db, user, at + timedelta(hours=1))


def node_cost(rec: Recorder, profiles: Profiles, end_s: float) -> dict[str, float]:
    """USD of every pool node over the day, by pool."""
    out: dict[str, float] = {}
    for node in rec.nodes.values():
        pool = profiles.pools[node["pool"]]
        cap = "spot" if node["capacity"] == "spot" else "on-demand"
        price = hourly_cost(pool, cap, None, profiles.cost, (node["zone"],)).per_hour
        hours = (min(node["down"] or end_s, end_s) - node["up"]) / 3600
        out[pool.name] = out.get(pool.name, 0.0) + price * max(hours, 0.0)
    return out


def idle_before_use(
    rec: Recorder, profiles: Profiles, end_s: float
) -> dict[str, dict[str, float]]:
    """Per pool: node-hours and USD of nodes before their first user, and unused nodes.

    With no warming this is about zero (a node is made for a waiting user); with
    warming it is what keeping nodes warm costs beyond the users' own time.
    """
    out: dict[str, dict[str, float]] = {}
    for name, node in rec.nodes.items():
        pool = profiles.pools[node["pool"]]
        cap = "spot" if node["capacity"] == "spot" else "on-demand"
        price = hourly_cost(pool, cap, None, profiles.cost, (node["zone"],)).per_hour
        until = min(rec.first_user.get(name, node["down"] or end_s), end_s)
        hours = max(until - node["up"], 0.0) / 3600
        row = out.setdefault(
            pool.name, {"node_hours": 0.0, "usd": 0.0, "never_used_nodes": 0}
        )
        row["node_hours"] += hours
        row["usd"] += hours * price
        row["never_used_nodes"] += name not in rec.first_user
    return {
        k: {x: round(v, 2) for x, v in row.items()} for k, row in sorted(out.items())
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def run_scenario(
    kind: str, trace: Trace, profiles_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Replay the trace on a fresh devcluster with one kind of warming."""
    state = Path(tempfile.mkdtemp(prefix=f"bench-warmer-{kind}-"))
    profiles = load_profiles([profiles_dir])
    cluster = await asyncio.to_thread(
        start_cluster, state, args.time_factor, args.scan_interval
    )
    tasks: list[asyncio.Task[Any]] = []
    kube = hub = warmer = None
    try:
        await asyncio.to_thread(setup_world, cluster, profiles, trace)
        clock = ScaledClock(trace.start.astimezone(ZoneInfo("UTC")), args.time_factor)
        rec = Recorder(clock)
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30)
        ) as http:
            api = Api(http, cluster.api)
            for path in ("/api/v1/nodes", f"/api/v1/namespaces/{NS}/pods"):
                tasks.append(asyncio.create_task(rec.watch(http, cluster.api, path)))
            period = 30 * args.time_factor
            app = None
            before_spawn = None
            if kind == "oracle":
                lead = lead_time(NODE_BOOT_S, IMAGE_PULL_S, args.scan_interval)
                oracle = Oracle(api, trace, profiles, lead)
                before_spawn = oracle.before_spawn
                tasks.append(asyncio.create_task(oracle.run(clock)))
            elif kind == "z2jh":
                tasks.append(asyncio.create_task(z2jh_loop(api, profiles, period)))
            elif kind == "warmer":
                from wbspawner.adapters.kube import Kube as WarmerKube
                from wbspawner.warmer.app import WarmerApp

                hub, hub_url = await fake_hub(trace.last_sizes)
                db_url = f"sqlite:///{state / 'costs.sqlite'}"
                await asyncio.to_thread(seed_starts, db_url, trace, profiles)
                app = WarmerApp(
                    profiles_dir=[str(profiles_dir)],
                    namespace=NS,
                    clock=clock,
                    api_url=hub_url,
                    api_token="bench",
                    cost_db_url=db_url,
                    log_level="WARN",
                )
                kube = await WarmerKube.connect(str(cluster.kubeconfig))
                app.init_state(kube)
                warmer = app
                tasks.append(asyncio.create_task(warmer_loop(app, period)))
            spawns = await replay(api, trace, profiles, clock, before_spawn)
            stuck = await diagnose(api, rec, spawns)
        result = summarize(kind, trace, profiles, rec, spawns, app)
        result["slow_spawns_why"] = stuck
        return result
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if warmer is not None:
            await warmer.hub.close()  # its hub API session
        if kube is not None:
            await kube.close()
        if hub is not None:
            hub.stop()
        await asyncio.to_thread(cluster.proc.stop, 15)
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)


def _age(rec: Recorder, spawn: Spawn) -> float:
    """Seconds the spawn's node had been up when the spawn began (< 0: later)."""
    node = rec.nodes.get(rec.node_of.get(spawn.uid, ""))
    return spawn.at - node["up"] if node else -math.inf


def summarize(
    kind: str,
    trace: Trace,
    profiles: Profiles,
    rec: Recorder,
    spawns: list[Spawn],
    app: Any,
) -> dict[str, Any]:
    waits = [rec.ready.get(s.uid, math.inf) - s.at for s in spawns]
    finite = [w for w in waits if math.isfinite(w)]
    costs = node_cost(rec, profiles, trace.end_s)
    warm_errors = [dict(e) for e in app.errors] if app is not None else []
    return {
        "spawns": len(spawns),
        "never_ready": len(waits) - len(finite),
        "wait_s": {
            "p50": round(percentile(waits, 0.5), 1),
            "p90": round(percentile(waits, 0.9), 1),
            "p99": round(percentile(waits, 0.99), 1),
            "mean": round(statistics.fmean(finite), 1) if finite else None,
            "max": round(max(waits), 1) if waits else None,
        },
        "ready_within_15s": round(
            sum(1 for w in waits if w <= READY_WITHIN_S) / len(waits), 3
        ),
        "on_running_node": round(
            sum(1 for s in spawns if _age(rec, s) > 0) / len(spawns), 3
        ),
        "compute_cost_usd": round(sum(costs.values()), 2),
        "cost_by_pool_usd": {k: round(v, 2) for k, v in sorted(costs.items())},
        "idle_before_first_user": idle_before_use(rec, profiles, trace.end_s),
        "nodes_started": len(rec.nodes),
        "node_hours": round(
            sum(
                (min(n["down"] or trace.end_s, trace.end_s) - n["up"]) / 3600
                for n in rec.nodes.values()
            ),
            1,
        ),
        "waits": [
            {
                "user": s.user,
                "size": s.size,
                "zone": s.zone,
                "at_s": round(s.at),
                "wait_s": round(w, 1) if math.isfinite(w) else None,
                "bound_after_s": round(rec.bound[s.uid] - s.at, 1)
                if s.uid in rec.bound
                else None,
                "node_age_s": round(_age(rec, s)) if s.uid in rec.node_of else None,
            }
            for s, w in zip(spawns, waits, strict=True)
        ],
        "nodes": [
            {
                "pool": n["pool"],
                "zone": n["zone"],
                "capacity": n["capacity"],
                "up_s": round(n["up"]),
                "first_user_s": round(rec.first_user[name])
                if name in rec.first_user
                else None,
                "down_s": round(n["down"]) if n["down"] is not None else None,
            }
            for name, n in sorted(rec.nodes.items(), key=lambda kv: kv[1]["up"])
        ],
        "node_timeline": sorted(
            ([round(n["up"]), 1] for n in rec.nodes.values()),
        )
        + sorted([round(n["down"]), -1] for n in rec.nodes.values() if n["down"]),
        "warmer_errors": warm_errors[-10:],
        "warmer_last_decisions": [
            f"{d.pool} {d.zone or ''}: {d.message}" for d in app.plan.decisions
        ]
        if app is not None and app.plan is not None
        else [],
        "watch_errors": rec.errors[-5:],
    }


# ------------------------------------------------------------------------ main


def plot(results: dict[str, Any], trace: Trace) -> str:
    """Two charts in one SVG: the spawn-wait CDF and the pool nodes over the day."""
    from wbspawner.pages.svg import Series, line_chart_svg

    cdf, nodes = [], []
    for kind, r in results.items():
        waits = sorted(
            w["wait_s"] if w["wait_s"] is not None else 1e9 for w in r["waits"]
        )
        pts = [(0.0, 0.0)] + [
            (min(w, 400.0), (i + 1) / len(waits)) for i, w in enumerate(waits)
        ]
        cdf.append(Series(f"{kind}: {r['ready_within_15s']:.0%} ≤15 s", pts, step=True))
        count, line = 0, [(0.0, 0.0)]
        for t, d in sorted(r["node_timeline"]):
            count += d
            line.append((t / 3600, float(count)))
        nodes.append(Series(f"{kind}: ${r['compute_cost_usd']:.2f}", line, step=True))
    hours = int(trace.end_s // 3600)
    ticks = [
        (h, (trace.start + timedelta(hours=h)).strftime("%H:%M"))
        for h in range(0, hours + 1, 2)
    ]
    a = line_chart_svg(
        cdf,
        title="Spawn wait (simulated s), cumulative share of spawns",
        x_label="wait (s, capped at 400)",
        y_label="share of spawns",
        x_ticks=[(x, f"{x}") for x in (0, 15, 60, 120, 180, 240, 300, 360)],
    )
    b = line_chart_svg(
        nodes,
        title="Pool nodes over the day (and compute cost)",
        x_label="local time",
        y_label="nodes",
        x_ticks=ticks,
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="720" height="540">'
        f'<g>{a}</g><g transform="translate(0,280)">{b}</g></svg>'
    )


def bench_profiles(shipped: Path, warm: Path, into: Path) -> Path:
    """The shipped profiles with their ``warm`` section taken from ``warm``."""
    into.mkdir(parents=True, exist_ok=True)
    for path in sorted(shipped.glob("*.yaml")):
        data, _ = parse_yaml(str(path), path.read_text())
        if not (isinstance(data, dict) and "warm" in data):
            shutil.copy(path, into / path.name)
    shutil.copy(warm, into / "40-warm.yaml")
    return into


def trimmed(trace: Trace, until: str | None) -> Trace:
    if not until:
        return trace
    h, m = (int(x) for x in until.split(":"))
    end = (trace.start.replace(hour=h, minute=m) - trace.start).total_seconds()
    sessions = [s for s in trace.sessions if s.start_s < end]
    if not sessions:
        raise SystemExit(f"--until {until}: nobody starts a server before then")
    return dataclasses.replace(trace, end_s=end, sessions=sessions)


async def replay_day(
    trace: Trace, profiles_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Replay one day under each scenario; return scenario → figures."""
    runs = [run_scenario(kind, trace, profiles_dir, args) for kind in args.scenarios]
    if args.parallel:  # each cluster is its own process: the day replays once
        done = await asyncio.gather(*runs)
    else:
        done = [await r for r in runs]
    results: dict[str, Any] = dict(zip(args.scenarios, done, strict=True))
    for kind, r in results.items():
        print(
            f"{kind:7s} spawns {r['spawns']:3d}  p50 {r['wait_s']['p50']:6.1f}s  "
            f"p90 {r['wait_s']['p90']:6.1f}s  ≤15s {r['ready_within_15s']:.0%}  "
            f"on a running node {r['on_running_node']:.0%}  "
            f"cost ${r['compute_cost_usd']:.2f}",
            flush=True,
        )
    base = results.get("none", {}).get("compute_cost_usd")
    for r in results.values():
        r["extra_cost_vs_none"] = (
            round(r["compute_cost_usd"] / base - 1, 3) if base else None
        )
    return results


async def run_days(args: argparse.Namespace, profiles_dir: Path, tmp: Path) -> Any:
    """Replay ``args.days`` seeded days; return the per-day rows."""
    days = []
    made = make_days(args.days, args.days_seed, tmp, args.max_team)
    for i, (var, path) in enumerate(made):
        began = time.monotonic()
        print(f"day {i + 1}: {variation_row(var)}", flush=True)
        trace = trimmed(load_trace(path), args.until)
        results = await replay_day(trace, profiles_dir, args)
        days.append(
            {
                "day": i + 1,
                "variation": variation_row(var),
                "people": len({s.user for s in trace.sessions}),
                "real_s_per_scenario": round(
                    (time.monotonic() - began) / len(args.scenarios)
                ),
                "results": day_rows(results),
            }
        )
    return days


async def run(args: argparse.Namespace) -> dict[str, Any]:
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-warmer-profiles-") as tmp:
        profiles_dir = bench_profiles(args.profiles, args.warm, Path(tmp) / "profiles")
        if args.days:
            days = await run_days(args, profiles_dir, Path(tmp) / "days")
            measured: dict[str, Any] = {"days": days, "summary": summary(days)}
        else:
            trace = trimmed(load_trace(args.trace), args.until)
            measured = {"results": await replay_day(trace, profiles_dir, args)}
    print(f"({time.monotonic() - began:.0f} s real)")
    return {
        "benchmark": "warmer",
        "trace": f"{args.days} seeded days (seed {args.days_seed})"
        if args.days
        else _rel(args.trace),
        "profiles": _rel(args.profiles),
        "warm_settings": _rel(args.warm),
        "time_factor": args.time_factor,
        "parallel": args.parallel,
        "simulated": {
            "node_boot_s": NODE_BOOT_S,
            "image_pull_s": IMAGE_PULL_S,
            "oracle_lead_s": lead_time(NODE_BOOT_S, IMAGE_PULL_S, args.scan_interval),
            "scale_down_unneeded_s": 600,
            "warmer_interval_s": 30,
            "z2jh_placeholders": Z2JH_REPLICAS,
        },
        "target": {"ready_within_15s": 0.9, "extra_cost_vs_none": 0.10},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        **measured,
    }


def _rel(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--profiles", type=Path, default=REPO / "profiles")
    parser.add_argument(
        "--warm",
        type=Path,
        default=WARM,
        help="the warm section to use instead of the profiles' own",
    )
    parser.add_argument(
        "--time-factor",
        type=float,
        default=0.01,
        help="real seconds per simulated second",
    )
    parser.add_argument(
        "--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS)
    )
    parser.add_argument(
        "--scan-interval",
        type=float,
        default=10.0,
        help="the autoscaler's loop period, simulated seconds",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=5,
        help="seeded days to replay (make_workday_trace.seeded_days); 0: --trace",
    )
    parser.add_argument("--days-seed", type=int, default=1, help="draws the days")
    parser.add_argument(
        "--max-team", type=int, default=200, help="cap the drawn team sizes (20–200)"
    )
    parser.add_argument("--until", help="stop the day early (HH:MM), for quick runs")
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="replay the scenarios at once (quicker, less exact on two cores)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the clusters' logs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    # Stopped with SIGTERM, unwind as on Ctrl-C so every cluster is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    report = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    if args.days:
        args.plot.write_text(plot_days(report["days"]))
    else:
        args.plot.write_text(
            plot(report["results"], trimmed(load_trace(args.trace), args.until))
        )
    print(f"wrote {args.out} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
