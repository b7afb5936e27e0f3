"""The fault campaign's shared pieces: its stack, its faults, its verdicts.

Used by ``tests/integration/test_hub_faults.py`` (one test per fault kind) and
``bench/bench_faults.py`` (the campaign, with figures), so both inject the
same faults into the same stack and judge recovery the same way:

- :func:`fault_stack`: a stack of its own (slapd, devcluster with the 16 and
  64 GiB pools in one zone, the hub and the accounting on a PostgreSQL the
  caller may restart), warm settings without schedules (:data:`WARM`);
- faults: :func:`nodes_cordoned` (a spawn must wait for a node to boot),
  :func:`api_chaos` (devcluster answers a share of requests with errors),
  ``kill -9`` of the hub (``hub_harness.crash_hub``) or of its warmer
  (:func:`warmer_pids`);
- verdicts: :func:`user_state` (is a user consistently running or stopped
  across the hub, the cluster and the accounting?), :func:`settle` (wait until
  they are) and :func:`orphans` (pods, placeholders or volumes nobody owns).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from devcluster.apiserver import chaos
from devcluster.demo.workbench import NAMESPACE, Kube, Workbench
from devcluster.services.descendants import descendants
from devcluster.services.postgres import PostgresServer
from tests.integration.hub_harness import (
    HubUser,
    crash_hub,
    edit_profiles,
    pod_of,
    pvc_of,
    server_model,
    stack_on_profiles,
    start_hub_again,
    wait_until,
)
from wbspawner.costs.accounting import list_open, open_db

WARM = """warm:
  timezone: UTC
  mode: placeholders
  budget_per_hour: 2.50
  demand_window_s: 3600
  habit_days: 28
  habit_margin_min: 20
  schedules: []
"""
"""Warm settings without schedules: only recent spawns keep nodes warm here."""


def open_records(bench: Workbench, user: str) -> list[Any]:
    """Return the user's open server records in the accounting database."""
    with open_db(bench.cost_db)() as session:
        return [r for r in list_open(session, "server") if r.user == user]


@contextmanager
def nodes_cordoned(kube: Kube) -> Iterator[None]:
    """Cordon every node there is (``spec.unschedulable``), uncordon them after.

    A pod created meanwhile waits for a node the autoscaler boots (cordoned
    nodes count for nothing in its simulation, as in Cluster Autoscaler), even
    when an earlier test or the warmer left a node of its pool running.
    """

    def set_unschedulable(name: str, value: bool) -> None:
        response = kube.http.patch(
            f"{kube.url}/api/v1/nodes/{name}",
            json={"spec": {"unschedulable": value}},
            headers={"Content-Type": "application/merge-patch+json"},
            timeout=10,
        )
        response.raise_for_status()

    names = [n["metadata"]["name"] for n in kube.get("/api/v1/nodes")["items"]]
    for name in names:
        set_unschedulable(name, True)
    try:
        yield
    finally:
        for name in names:
            if kube.get(f"/api/v1/nodes/{name}") is not None:
                set_unschedulable(name, False)


def pod_ready(kube: Kube, user: str) -> dict[str, Any] | None:
    """Return the user's server pod once its Ready condition is true."""
    pod = pod_of(kube, user)
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return pod if ready else None


@contextmanager
def api_chaos(
    kube: Kube, rate: float, seed: int, **settings: Any
) -> Iterator[dict[str, Any]]:
    """Fail a share of the hub's and the warmer's API requests meanwhile.

    The test's own requests carry the exempt header. ``settings`` are
    devcluster's other chaos settings (``kinds``, ``methods``, ``timeout_s``).
    Yields a dict that holds, once the block ends, what devcluster injected
    (``seen``, ``injected``).
    """
    kube.http.headers[chaos.EXEMPT_HEADER] = "1"
    url = f"{kube.url}{chaos.PATH}"
    body = {"rate": rate, "seed": seed, **settings}
    kube.http.put(url, json=body, timeout=10).raise_for_status()
    found: dict[str, Any] = {}
    try:
        yield found
    finally:
        found.update(kube.http.get(url, timeout=10).json())
        kube.http.put(url, json={"rate": 0}, timeout=10).raise_for_status()


def warmer_pids(bench: Workbench) -> set[int]:
    """Return the PIDs of the warmer processes the hub runs."""
    assert bench.hub is not None
    return {
        p.pid for p in descendants(bench.hub.pid) if "wbspawner.warmer" in p.command
    }


def warmer_status(bench: Workbench, admin: HubUser) -> dict[str, Any] | None:
    """Return the warmer's status after a pass, or ``None`` while it has none."""
    response = requests.get(
        f"{bench.url}/services/warmer/api/status",
        headers={"Authorization": f"token {admin.token()}"},
        timeout=10,
    )
    if response.status_code != 200 or response.json()["plan"] is None:
        return None
    return dict(response.json())


def placeholders(bench: Workbench, pool: str | None = "mem64") -> list[dict[str, Any]]:
    """Return a pool's placeholders (``None``: every pool's), but those deleting."""
    assert bench.kube is not None
    selector = "wbspawner.io/role=placeholder"
    if pool is not None:
        selector += f",wbspawner.io/pool={pool}"
    pods = bench.kube.get(
        f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=selector
    )["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def counts_the_spawn(status: dict[str, Any] | None) -> bool:
    """Whether a warmer's plan counts a recent spawn of the 64 GiB pool."""
    decisions = (status or {}).get("plan", {}).get("decisions", [])
    return any(
        d["pool"] == "mem64" and "spawn(s) in the last 60 min" in d["message"]
        for d in decisions
    )


@contextlib.contextmanager
def fault_stack(
    state: Path, database: PostgresServer, **options: Any
) -> Iterator[Workbench]:
    """Run the fault campaign's stack in ``state`` on ``database``.

    Its own slapd (the campaign stops it) and the hub's and the accounting's
    databases on ``database`` (the campaign restarts it). Node boots take ~9 s
    (``time_factor`` 0.05), long enough to strike while a pod waits for its
    node. ``options`` override :class:`Workbench`'s keyword arguments.
    """
    settings: dict[str, Any] = {
        "time_factor": 0.05,
        "pools": ["cpu16", "mem64"],
        "zones": ["us-east-1b"],
        "capacity_grace_s": 1.0,
        "hub_db_url": database.create_database("hub"),
        "cost_db_url": database.create_database("costs"),
        **options,
    }
    with stack_on_profiles(state, {"40-warm.yaml": WARM}, **settings) as workbench:
        yield workbench


@dataclass(frozen=True)
class UserState:
    """Where a user's server is, as the hub, the cluster and the accounting see it."""

    verdict: str
    """``running``, ``stopped`` or ``unsettled`` (they disagree, or one is pending)."""
    detail: str


def user_state(bench: Workbench, user: HubUser) -> UserState:
    """Judge whether ``user`` is consistently running or stopped.

    Running: the hub has the server ready (nothing pending), its pod is Ready,
    the proxy routes to it (the server answers), and exactly one accounting
    record is open, on the pod's node. Stopped: the hub has no server, there
    is no pod, the home claim is kept, and no accounting record is open.
    """
    assert bench.kube is not None
    try:
        model = server_model(user)
    except (requests.RequestException, ValueError) as err:
        return UserState("unsettled", f"hub API: {err}")
    pod = pod_of(bench.kube, user.name)
    records = open_records(bench, user.name)
    seen = (
        f"hub={ {k: model.get(k) for k in ('ready', 'pending')} if model else None }, "
        f"pod={'ready' if pod_ready(bench.kube, user.name) else bool(pod)}, "
        f"open records={len(records)}"
    )
    if model and model.get("ready") and not model.get("pending"):
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        routed = user.server_status().status_code == 200
        if pod_ready(bench.kube, user.name) and routed and len(records) == 1:
            if records[0].node == node:
                return UserState("running", seen)
        return UserState("unsettled", f"{seen}, routed={routed}")
    if not model and pod is None and not records:
        if pvc_of(bench.kube, user.name) is None:
            return UserState("unsettled", f"{seen}, home claim gone")
        return UserState("stopped", seen)
    return UserState("unsettled", seen)


def settle(
    bench: Workbench, user: HubUser, timeout: float, every: float = 0.5
) -> tuple[UserState, float]:
    """Wait until ``user`` is running or stopped; return that and the seconds it took.

    Returns the last ``unsettled`` state when ``timeout`` passes first.
    """
    began = time.monotonic()
    while True:
        state = user_state(bench, user)
        spent = time.monotonic() - began
        if state.verdict != "unsettled" or spent > timeout:
            return state, spent
        time.sleep(every)


def warm_targets(status: dict[str, Any] | None, pool: str | None = None) -> int:
    """Placeholders the warmer's last plan wants in a pool (``None``: every pool)."""
    targets = ((status or {}).get("plan") or {}).get("targets") or []
    return sum(int(t["count"]) for t in targets if pool in (None, t["pool"]))


def warm_schedule(nodes: int) -> str:
    """:data:`WARM` with a schedule keeping ``nodes`` 64 GiB nodes warm, always."""
    return WARM.replace(
        "schedules: []",
        f"""schedules:
    - name: always-64
      pool: mem64
      windows:
        - days: daily
          start: "00:00"
          end: "24:00"
      nodes_per_zone: {nodes}
      zones: [us-east-1b]
      capacity_fallback: true""",
    )


def _newer(status: dict[str, Any] | None, than: datetime) -> dict[str, Any] | None:
    """The status if its last pass began after ``than``."""
    stamp = (status or {}).get("updated_at")
    if not stamp or datetime.fromisoformat(stamp.replace("Z", "+00:00")) <= than:
        return None
    return status


def kill_hub_during_spawn(
    bench: Workbench, user: HubUser, at_s: float, settle_s: float = 150
) -> dict[str, Any]:
    """Start ``user``'s server, ``kill -9`` the hub ``at_s`` seconds after the
    request, start the hub again, and judge where the user ends up.

    Every node is cordoned meanwhile, so the pod waits for a node to boot
    (~9 s) and then for its image (~3 s): ``at_s`` from 0 to ~15 spans the
    form's submit to a few seconds after Ready.

    Returns:
        ``at_s``, ``phase`` (what the pod was at the kill), ``verdict``
        (``running``/``stopped``/``unsettled``), ``recovery_s`` (from the
        restart to a settled state) and ``detail``.
    """
    kube = bench.kube
    assert kube is not None and bench.hub is not None
    with nodes_cordoned(kube), ThreadPoolExecutor(1) as request:
        request.submit(
            user.api, "POST", f"/users/{user.name}/server", json={"profile": "medium"}
        )  # answered or cut by the kill: what counts is where the user ends up
        time.sleep(at_s)
        pod = pod_of(kube, user.name)
        phase = "no pod" if pod is None else "pending"
        if pod_ready(kube, user.name):
            phase = "ready"
        old = bench.hub
        environ = crash_hub(bench)
    restarted = time.monotonic()
    start_hub_again(bench, old, environ)
    state, _ = settle(bench, user, settle_s)
    return {
        "at_s": round(at_s, 2),
        "phase": phase,
        "verdict": state.verdict,
        "recovery_s": round(time.monotonic() - restarted, 2),
        "detail": state.detail,
    }


def kill_warmer_mid_actuation(
    bench: Workbench, admin: HubUser, nodes: int = 2, timeout: float = 150
) -> dict[str, Any]:
    """Ask the warmer for ``nodes`` warm 64 GiB nodes, ``kill -9`` it as soon as
    its first placeholder exists, and wait until the warmer the hub starts
    again holds exactly what its plan wants; then take the schedule away.

    Until the kill, 70 % of creations wait 3 s and fail (504), so the warmer
    is most likely killed with some of its placeholders made and others still
    being asked for (``at_kill`` says how many were made).

    Returns:
        ``at_kill`` (placeholders when it was killed), ``wanted`` (what the
        new warmer's plan wants: ``nodes``, or more for recent spawns),
        ``held`` (names once converged), ``most_seen`` (the most placeholders
        seen at once), ``recovery_s`` (from the kill to converged).
    """

    def names() -> list[str]:
        return [p["metadata"]["name"] for p in placeholders(bench)]

    asked = datetime.now(UTC)
    assert bench.kube is not None
    slow = {"kinds": ["timeout"], "methods": ["POST"], "timeout_s": 3}
    before, most, wanted = set(names()), 0, 0
    try:
        with api_chaos(bench.kube, 0.7, seed=nodes, **slow):
            edit_profiles(bench, "40-warm.yaml", warm_schedule(nodes))
            wait_until(lambda: set(names()) - before, timeout, "a placeholder", 0.05)
            (pid,) = warmer_pids(bench)
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        at_kill = len(names())

        def converged() -> list[str] | None:
            nonlocal most, wanted
            held = names()
            most = max(most, len(held))
            if pid in warmer_pids(bench) or not warmer_pids(bench):
                return None
            status = _newer(warmer_status(bench, admin), asked)
            wanted = warm_targets(status, "mem64")
            if status is None or wanted < nodes:
                return None
            return held if len(set(held)) == len(held) == wanted else None

        held = wait_until(converged, timeout, "the new warmer converging", 0.5)
        recovery = time.monotonic() - killed
        time.sleep(2)  # a few more looks for a late duplicate
        most = max(most, len(placeholders(bench)))
    finally:
        edit_profiles(bench, "40-warm.yaml", WARM)
        after = datetime.now(UTC)

        def taken_away() -> bool:
            status = _newer(warmer_status(bench, admin), after)
            wanted = warm_targets(status, "mem64")
            return status is not None and len(placeholders(bench)) == wanted

        wait_until(taken_away, timeout, "the schedule's placeholders gone", 1.0)
    return {
        "at_kill": at_kill,
        "wanted": wanted,
        "held": sorted(held),
        "most_seen": most,
        "recovery_s": round(recovery, 2),
    }


def orphans(
    bench: Workbench, users: list[HubUser], wanted: int | None
) -> dict[str, Any]:
    """Count what nobody owns after the faults.

    - user pods whose user has no server in the hub (or with no known user);
    - placeholder names held twice, and placeholders beyond ``wanted`` (the
      warmer's plan; ``None``: not judged);
    - claims other than the users' homes, and volumes without a claim.
    """
    kube = bench.kube
    assert kube is not None
    pods = kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
    hub_servers = {u.name for u in users if server_model(u)}
    user_pods = [
        p
        for p in pods
        if (p["metadata"].get("labels") or {}).get("component") == "singleuser-server"
        and not p["metadata"].get("deletionTimestamp")
    ]
    orphan_pods = [
        p["metadata"]["name"]
        for p in user_pods
        if p["metadata"]["name"].removeprefix("jupyter-") not in hub_servers
    ]
    held = [p["metadata"]["name"] for p in placeholders(bench, pool=None)]
    twice = [n for n, c in Counter(held).items() if c > 1]
    extra = max(len(held) - wanted, 0) if wanted is not None else 0
    homes = {f"home-{u.name}" for u in users}
    claims = kube.get(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims")
    names = [c["metadata"]["name"] for c in claims["items"]]
    stray_claims = [n for n in names if n not in homes]
    volumes = kube.get("/api/v1/persistentvolumes")["items"]
    loose = [
        v["metadata"]["name"]
        for v in volumes
        if (v.get("status") or {}).get("phase") != "Bound"
    ]
    return {
        "pods": orphan_pods,
        "placeholders_twice": twice,
        "placeholders_beyond_plan": extra,
        "claims": stray_claims,
        "volumes": loose,
        "count": len(orphan_pods) + len(twice) + extra + len(stray_claims) + len(loose),
    }
