"""Benchmark of the fault campaign (issue 19): faults at random points, and recovery.

One real stack (``tests.integration.fault_support.fault_stack``: slapd,
devcluster at ``--time-factor`` 0.05 with the 16 and 64 GiB pools in one zone,
the hub and the accounting on a private PostgreSQL, the warmer as a hub
service), the same the fault tests run, and the same faults and verdicts
(:mod:`tests.integration.fault_support`). Each kind of fault, seeded:

1. ``hub_kill``: ``kill -9`` of the hub at a random moment from the spawn
   request to a few seconds after the pod is Ready, then the hub started
   again: bob must end running (hub ready, pod Ready, routed, accounting open)
   or stopped (no pod, home kept, accounting closed);
2. ``warmer_kill``: ``kill -9`` of the warmer as its first placeholder of two
   appears, the other's creation held up (70 % of creations wait 3 s and fail
   meanwhile): the warmer the hub starts again converges, no placeholder twice;
3. ``api_chaos``: 10 % of the hub's and the warmer's Kubernetes API requests
   answered 429, 500 or (after 5 s) 504 during a short workday of spawns and
   stops by bob and alice: no spawn lost; retries counted (what devcluster
   injected, per kind);
4. ``postgres_restart``: PostgreSQL stopped while a pod waits for its node
   (alternately started again before the pod is Ready and 5 s after);
5. ``ldap_down``: slapd stopped at a login: 503 with a plain message, the hub
   stays up, the same login works once slapd is back;
6. ``aws``: AWS throttling and InsufficientInstanceCapacity during ``pools
   apply`` and a home move: the repository's tests of those run (they inject
   the errors into a moto server at botocore's ``before-send``) and their
   counts and times are recorded.

Per kind: runs, failures, recovery time p50/max (seconds from the fault's end
to a settled state), orphans (pods, placeholders, claims or volumes nobody
owns, counted after each run) and lost accounting records (a running server
without an open record, or a stopped one with a record left open).

Writes ``bench/results/faults.json``.
Run: ``.venv/bin/python bench/bench_faults.py [--hub-kills N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "faults.json"
if str(REPO) not in sys.path:  # run as a script: the repository's packages
    sys.path.insert(0, str(REPO))

from provenance import commit, machine  # noqa: E402

if TYPE_CHECKING:
    from devcluster.demo.workbench import Workbench
    from devcluster.services.postgres import PostgresServer
    from tests.integration.hub_harness import HubUser

AFTER_READY_S = 4.0
"""The latest kill comes this long after a spawn's measured request-to-Ready."""
POOLS_TESTS = "tests/integration/test_pools_moto.py"
AWS_TESTS = (
    *(
        f"{POOLS_TESTS}::test_{name}"
        for name in (
            "throttling_is_retried_then_explained",
            "insufficient_capacity_is_explained",
            "an_apply_that_fails_half_way_converges_when_run_again",
            "capacity_failures_of_launched_groups_are_reported",
        )
    ),
    "tests/unit/homes/test_volumes.py",
)
"""The existing AWS fault tests: pools apply (throttling, ICE, a failure half
way then a re-run) and a home move's EC2 calls (throttling, server errors)."""


def spread(values: Sequence[float]) -> dict[str, Any]:
    """p50 and max of the values measured."""
    got = sorted(values)
    if not got:
        return {"n": 0, "p50": None, "max": None}
    return {
        "n": len(got),
        "p50": round(statistics.median(got), 2),
        "max": round(got[-1], 2),
    }


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A kind's figures from its runs."""
    return {
        "runs": len(runs),
        "failures": sum(1 for r in runs if r["failed"]),
        "recovery_s": spread([r["recovery_s"] for r in runs if "recovery_s" in r]),
        "orphans": sum(r.get("orphans", 0) for r in runs),
        "lost_accounting_records": sum(r.get("lost_accounting", 0) for r in runs),
    }


# ------------------------------------------------------------------ the kinds
def lost_accounting(bench: Workbench, user: HubUser, verdict: str) -> int:
    """1 when the accounting disagrees with where the user settled, else 0."""
    from tests.integration.fault_support import open_records

    records = len(open_records(bench, user.name))
    if verdict == "running":
        return 0 if records == 1 else 1
    if verdict == "stopped":
        return 0 if records == 0 else 1
    return 0  # unsettled: counted as a failure, not guessed at


def left_over(bench: Workbench, users: list[HubUser]) -> int:
    from tests.integration.fault_support import orphans

    found = orphans(bench, users, wanted=None)
    if found["count"]:
        print(f"  orphans: {found}", flush=True)
    return int(found["count"])


def stop_all(bench: Workbench, users: list[HubUser]) -> None:
    """Leave every user stopped for the next run."""
    from tests.integration.hub_harness import leave_stopped

    for user in users:
        leave_stopped(bench, user)


def spawn_to_ready(bench: Workbench, user: HubUser) -> float:
    """Seconds from a spawn request to the pod's Ready, as the kills will find
    it (every node cordoned: the pod waits for a node to boot); then stopped."""
    from tests.integration.fault_support import nodes_cordoned, pod_ready
    from tests.integration.hub_harness import wait_until

    assert bench.kube is not None
    kube = bench.kube
    with nodes_cordoned(kube):
        began = time.monotonic()
        user.api("POST", f"/users/{user.name}/server", json={"profile": "medium"})
        wait_until(lambda: pod_ready(kube, user.name), 120, "Ready", 0.1)
        spent = time.monotonic() - began
    user.wait_ready(timeout=60)
    user.stop(kube)
    return spent


def hub_kills(
    bench: Workbench, users: list[HubUser], count: int, rng: random.Random
) -> tuple[list[dict[str, Any]], float]:
    from tests.integration.fault_support import kill_hub_during_spawn

    bob = users[0]
    ready_s = spawn_to_ready(bench, bob)
    print(f"hub_kill: a spawn is Ready {ready_s:.1f} s after its request", flush=True)
    runs = []
    for index in range(count):
        at_s = rng.uniform(0.0, ready_s + AFTER_READY_S)
        found = kill_hub_during_spawn(bench, bob, at_s)
        found["lost_accounting"] = lost_accounting(bench, bob, found["verdict"])
        found["orphans"] = left_over(bench, users)
        found["failed"] = found["verdict"] == "unsettled" or bool(
            found["lost_accounting"] or found["orphans"]
        )
        found["index"] = index
        runs.append(found)
        print(f"hub_kill {json.dumps(found)}", flush=True)
        stop_all(bench, users)
    return runs, ready_s


def warmer_kills(
    bench: Workbench, users: list[HubUser], count: int
) -> list[dict[str, Any]]:
    from tests.integration.fault_support import kill_warmer_mid_actuation

    admin = users[1]
    runs = []
    for index in range(count):
        try:
            found = kill_warmer_mid_actuation(bench, admin, nodes=2)
        except (TimeoutError, AssertionError, ValueError) as err:
            found = {"error": str(err), "failed": True}
        else:
            extra = found["most_seen"] - found["wanted"]
            found["orphans"] = max(extra, 0) + left_over(bench, users)
            found["failed"] = bool(found["orphans"]) or len(found["held"]) < 2
        found["index"] = index
        runs.append(found)
        print(f"warmer_kill {json.dumps(found)}", flush=True)
    return runs


def api_chaos_day(
    bench: Workbench, users: list[HubUser], spawns: int, seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A short workday under 10 % API errors: each spawn Ready, then stopped."""
    from tests.integration.fault_support import api_chaos, pod_of, settle

    assert bench.kube is not None
    runs: list[dict[str, Any]] = []
    with api_chaos(bench.kube, 0.1, seed=seed) as injected:
        for index in range(spawns):
            user = users[index % len(users)]
            began = time.monotonic()
            answer = user.api(
                "POST", f"/users/{user.name}/server", json={"profile": "medium"}
            )
            run: dict[str, Any] = {"index": index, "user": user.name}
            if answer.status_code not in (201, 202):
                run.update(failed=True, error=f"{answer.status_code} {answer.text}")
            else:
                state, _ = settle(bench, user, 150)
                run["verdict"] = state.verdict
                run["spawn_to_ready_s"] = round(time.monotonic() - began, 2)
                run["lost_accounting"] = lost_accounting(bench, user, state.verdict)
                run["failed"] = state.verdict != "running" or bool(
                    run["lost_accounting"]
                )
                user.stop(bench.kube, timeout=120)
                run["stopped_cleanly"] = pod_of(bench.kube, user.name) is None
            run["orphans"] = left_over(bench, users)
            runs.append(run)
            print(f"api_chaos {json.dumps(run)}", flush=True)
    for run in runs:
        if "spawn_to_ready_s" in run:
            run["recovery_s"] = run["spawn_to_ready_s"]
    return runs, {"seen": injected.get("seen"), "injected": injected.get("injected")}


def postgres_restarts(
    bench: Workbench, users: list[HubUser], database: PostgresServer, count: int
) -> list[dict[str, Any]]:
    from tests.integration.fault_support import (
        nodes_cordoned,
        pod_of,
        pod_ready,
        settle,
    )
    from tests.integration.hub_harness import wait_until

    kube = bench.kube
    assert kube is not None
    bob = users[0]
    runs = []
    for index in range(count):
        after_ready = index % 2 == 1
        run: dict[str, Any] = {
            "index": index,
            "back": "ready+5s" if after_ready else "pending",
        }
        with nodes_cordoned(kube):
            bob.api("POST", "/users/bob/server", json={"profile": "medium"})
            wait_until(lambda: pod_of(kube, "bob"), 30, "bob's pod created", 0.1)
            database.stop()
            try:
                if after_ready:
                    wait_until(lambda: pod_ready(kube, "bob"), 90, "pod Ready", 0.2)
                    time.sleep(5)
                else:
                    time.sleep(3)
            finally:
                database.start()
        back = time.monotonic()
        state, _ = settle(bench, bob, 150)
        run["verdict"] = state.verdict
        run["recovery_s"] = round(time.monotonic() - back, 2)
        run["lost_accounting"] = lost_accounting(bench, bob, state.verdict)
        run["hub_up"] = bench.hub is not None and bench.hub.running
        run["orphans"] = left_over(bench, users)
        run["failed"] = (
            state.verdict != "running"
            or not run["hub_up"]
            or bool(run["lost_accounting"] or run["orphans"])
        )
        runs.append(run)
        print(f"postgres_restart {json.dumps(run)}", flush=True)
        stop_all(bench, users)
    return runs


def ldap_outages(bench: Workbench, count: int) -> list[dict[str, Any]]:
    from tests.integration.hub_harness import HubUser, login_error_on, wait_until

    ldap = bench.ldap
    assert ldap is not None
    runs = []
    for index in range(count):
        password = "bob-pw" if index % 2 == 0 else "wrong"
        ldap.stop()
        try:
            answer = HubUser(bench.url, "bob", password).login()
            message = login_error_on(answer.text)
        finally:
            ldap.start()
        back = time.monotonic()

        def works() -> bool:
            return HubUser(bench.url, "bob", "bob-pw").login().status_code == 302

        try:
            wait_until(works, 60, "a login once slapd is back", 0.2)
            recovered = True
        except TimeoutError:
            recovered = False
        run = {
            "index": index,
            "password": "right" if password == "bob-pw" else "wrong",
            "status": answer.status_code,
            "message": message,
            "hub_up": bench.hub is not None and bench.hub.running,
            "recovery_s": round(time.monotonic() - back, 2),
        }
        run["failed"] = not (
            recovered
            and answer.status_code == 503
            and message.startswith("The directory cannot be reached")
            and run["hub_up"]
        )
        runs.append(run)
        print(f"ldap_down {json.dumps(run)}", flush=True)
    return runs


def aws_faults(tmp: Path) -> tuple[list[dict[str, Any]], str]:
    """Run the existing AWS fault tests; one run per test case, with its time."""
    report = tmp / "aws.xml"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--basetemp={tmp / 'aws-pytest'}",
        f"--junitxml={report}",
        *AWS_TESTS,
    ]
    subprocess.run(argv, cwd=REPO, timeout=600, check=False, capture_output=True)
    runs = []
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = any(case.find(tag) is not None for tag in ("failure", "error"))
        runs.append(
            {
                "test": f"{case.get('classname')}::{case.get('name')}",
                "failed": failed,
                "seconds": round(float(case.get("time") or 0), 2),
            }
        )
    return runs, " ".join(AWS_TESTS)


# ------------------------------------------------------------------ the campaign
NOTES = (
    "Recovery times are real seconds: hub_kill from the restart of the hub to a "
    "settled user (includes the hub's own start, ~5-10 s); warmer_kill from the "
    "kill to the new warmer holding what its plan wants (includes the hub's "
    "restart of the service and one warmer pass, every 30 s); postgres_restart "
    "from the database's start to bob running; ldap_down from slapd's start to a "
    "working login; api_chaos is each spawn's request to Ready under 10 % errors. "
    "devcluster simulates node boots (9 s here) and image pulls (3 s) at "
    "time_factor 0.05. The aws kind runs the repository's AWS fault tests "
    "(errors injected into a moto server at botocore's before-send) and records "
    "them as they are, with no stack: retries are botocore's, bounded by "
    "MAX_ATTEMPTS; 'converges on re-run' is the half-way apply test."
)


def campaign(
    bench: Workbench,
    database: PostgresServer,
    args: argparse.Namespace,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    from tests.integration.fault_support import warm_targets, warmer_status
    from tests.integration.hub_harness import logged_in

    rng = random.Random(args.seed)
    users = [logged_in(bench, "bob"), logged_in(bench, "alice")]
    kinds: dict[str, Any] = {}
    timings: dict[str, float] = {}

    def timed(name: str, call: Callable[[], Any]) -> Any:
        began = time.monotonic()
        progress(f"== {name}")
        out = call()
        timings[name] = round(time.monotonic() - began, 1)
        return out

    runs, ready_s = timed(
        "hub_kill", lambda: hub_kills(bench, users, args.hub_kills, rng)
    )
    phases = Counter(r["phase"] for r in runs)
    kinds["hub_kill"] = {
        **summarize(runs),
        "spawn_to_ready_s": round(ready_s, 2),
        "kill_window_s": [0, round(ready_s + AFTER_READY_S, 2)],
        "kills_by_phase": dict(phases),
        "outcomes": dict(Counter(r["verdict"] for r in runs)),
        "records": runs,
    }
    runs = timed("warmer_kill", lambda: warmer_kills(bench, users, args.warmer_kills))
    kinds["warmer_kill"] = {**summarize(runs), "records": runs}
    runs, injected = timed(
        "api_chaos", lambda: api_chaos_day(bench, users, args.chaos_spawns, args.seed)
    )
    retries = sum((injected.get("injected") or {}).values())
    kinds["api_chaos"] = {
        **summarize(runs),
        "rate": 0.1,
        "api_requests_seen": injected.get("seen"),
        "injected_by_kind": injected.get("injected"),
        "injected_total": retries,
        "records": runs,
    }
    runs = timed(
        "postgres_restart",
        lambda: postgres_restarts(bench, users, database, args.postgres_restarts),
    )
    kinds["postgres_restart"] = {**summarize(runs), "records": runs}
    runs = timed("ldap_down", lambda: ldap_outages(bench, args.ldap_outages))
    kinds["ldap_down"] = {**summarize(runs), "records": runs}
    with tempfile.TemporaryDirectory(prefix="bench-faults-aws-") as tmp:
        runs, tests = timed("aws", lambda: aws_faults(Path(tmp)))
    kinds["aws"] = {
        "runs": len(runs),
        "failures": sum(1 for r in runs if r["failed"]),
        "seconds": spread([r["seconds"] for r in runs]),
        "orphans": 0,
        "lost_accounting_records": 0,
        "tests": tests,
        "records": runs,
    }
    final = warmer_status(bench, users[1])
    from tests.integration.fault_support import orphans

    audit = orphans(bench, users, wanted=warm_targets(final) if final else None)
    return {"kinds": kinds, "final_audit": audit, "phase_s": timings}


def totals(kinds: dict[str, Any], audit: dict[str, Any]) -> dict[str, Any]:
    lost_spawns = sum(
        1
        for name in ("hub_kill", "api_chaos", "postgres_restart")
        for r in kinds[name]["records"]
        if r.get("verdict") not in ("running", "stopped")
    )
    return {
        "runs": sum(k["runs"] for k in kinds.values()),
        "failures": sum(k["failures"] for k in kinds.values()),
        "lost_spawns": lost_spawns,
        "orphans": sum(k["orphans"] for k in kinds.values()) + audit["count"],
        "lost_accounting_records": sum(
            k["lost_accounting_records"] for k in kinds.values()
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub-kills", type=int, default=10)
    parser.add_argument("--warmer-kills", type=int, default=2)
    parser.add_argument("--chaos-spawns", type=int, default=4)
    parser.add_argument("--postgres-restarts", type=int, default=2)
    parser.add_argument("--ldap-outages", type=int, default=2)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from devcluster.services.postgres import PostgresServer
    from tests.integration.fault_support import fault_stack

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        with (
            PostgresServer(Path(tmp) / "postgres") as database,
            fault_stack(Path(tmp) / "stack", database) as bench,
        ):
            print(f"stack up at {bench.url} in {time.monotonic() - began:.0f} s")
            run = campaign(bench, database, args)
    kinds, audit = run["kinds"], run["final_audit"]
    out = {
        "benchmark": "faults",
        "commit": commit(),
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": args.seed,
        "time_factor": 0.05,
        "notes": NOTES,
        "wall_s": round(time.monotonic() - began, 1),
        "phase_s": run["phase_s"],
        "totals": totals(kinds, audit),
        "final_audit": audit,
        "summary": {
            name: {k: v for k, v in kind.items() if k != "records"}
            for name, kind in kinds.items()
        },
        "kinds": kinds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["totals"], indent=1))
    print(f"wrote {args.out}")
    return 1 if out["totals"]["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
