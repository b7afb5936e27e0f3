"""The hub on a bad day: faults injected into the running stack, and the recovery.

One stack for the module: its own slapd, devcluster with moto node groups for
the 16 and 64 GiB pools in one zone, warm settings without schedules (only
recent spawns keep nodes warm), the warmer as a hub-managed service, JupyterHub
+ configurable-http-proxy through the repository's ``jupyterhub_config.py``.
Each test injects one fault of issue 19 as an operator would meet it (``kill
-9`` of the hub at several points of a spawn or of the warmer mid-actuation,
PostgreSQL stopped during a spawn, API errors, slapd stopped) and checks what
users and admins see afterwards, over HTTP, the Kubernetes API and the
accounting database. The stack, the faults and the verdicts are
:mod:`tests.integration.fault_support`'s, which ``bench/bench_faults.py`` runs
as a campaign. Each test leaves the stack running for the next, in any order.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devcluster.demo.workbench import Workbench
from devcluster.services.postgres import PostgresServer
from tests.integration.fault_support import (
    api_chaos,
    counts_the_spawn,
    fault_stack,
    kill_hub_during_spawn,
    kill_warmer_mid_actuation,
    nodes_cordoned,
    open_records,
    orphans,
    placeholders,
    pod_ready,
    warmer_pids,
    warmer_status,
)
from tests.integration.hub_harness import (
    HubUser,
    crash_hub,
    hub_log,
    login_error_on,
    pod_of,
    server_model,
    start_hub_again,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(420),
    pytest.mark.usefixtures("bob_left_stopped"),
]

DIRECTORY_DOWN = "The directory cannot be reached"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL server of the module's own: a test restarts it."""
    with PostgresServer(tmp_path_factory.mktemp("faults-postgres")) as server:
        yield server


@pytest.fixture(scope="module")
def bench(
    database: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Workbench]:
    with fault_stack(tmp_path_factory.mktemp("faults"), database) as workbench:
        yield workbench


def test_hub_killed_during_a_spawn_finds_the_server_after_restart(
    bench: Workbench, bob: HubUser
) -> None:
    """A hub killed while the pod waits for its node: the restarted hub finds
    the pod where it runs (its IP, port 8888), keeps it, and accounts for it."""
    kube = bench.kube
    assert kube is not None and bench.hub is not None
    # The hub answers the POST only after its slow-spawn timeout (10 s), by
    # which time a node may have booted (9 s here): the request runs beside
    # the test, which kills the hub as soon as the pod exists.
    with nodes_cordoned(kube), ThreadPoolExecutor(1) as request:
        post = request.submit(
            bob.api, "POST", "/users/bob/server", json={"profile": "medium"}
        )

        def created() -> dict[str, Any] | None:
            if post.done():  # answered first: refused, or the wait was short
                raise AssertionError(f"the hub answered {post.result().text}")
            return pod_of(kube, "bob")

        pod = wait_until(created, 30, "bob's pod created", 0.1)
        assert not pod["status"].get("podIP"), "the pod ran before the hub was killed"
        old = bench.hub
        environ = crash_hub(bench)
    start_hub_again(bench, old, environ)

    def ready() -> dict[str, Any] | None:
        server = server_model(bob)
        return server if server.get("ready") else None

    try:
        wait_until(ready, 90, "bob's server ready in the restarted hub", 1.0)
    except TimeoutError as err:
        raise AssertionError(f"{err}; the hub shows {server_model(bob)}") from None
    bob.wait_ready(timeout=30)
    now = pod_of(kube, "bob")
    assert now is not None
    assert now["metadata"]["uid"] == pod["metadata"]["uid"], "the pod was replaced"
    log = hub_log(bench)
    assert "never showed up" not in log
    records = open_records(bench, "bob")
    assert [(r.size, r.pool, r.node) for r in records] == [
        ("medium", "cpu16", now["spec"]["nodeName"])
    ]
    bob.stop(kube)
    assert open_records(bench, "bob") == []


@pytest.mark.parametrize(
    "at_s",
    [
        pytest.param(0.3, id="at-submit"),
        pytest.param(16.0, id="after-ready"),
    ],
)
def test_hub_killed_at_any_point_leaves_the_user_running_or_stopped(
    bench: Workbench, bob: HubUser, alice: HubUser, at_s: float
) -> None:
    """kill -9 of the hub at the form's submit (before the pod exists) and a
    few seconds after the pod is Ready: after the restart bob is either
    running (hub ready, pod Ready, routed, accounting open) or stopped (no
    pod, home kept, accounting closed), and nothing is left that nobody owns."""
    found = kill_hub_during_spawn(bench, bob, at_s)
    assert found["verdict"] in ("running", "stopped"), found
    left = orphans(bench, [bob, alice], wanted=None)
    assert left["count"] == 0, left


def test_a_warmer_killed_mid_actuation_converges_without_duplicates(
    bench: Workbench, alice: HubUser
) -> None:
    """kill -9 of the warmer as its first placeholder of two appears (the
    other's creation held up by the API server): the one the hub starts again
    makes up the rest, and no placeholder is ever held twice or beyond the plan."""
    found = kill_warmer_mid_actuation(bench, alice, nodes=2)
    assert found["wanted"] >= 2, found
    assert len(set(found["held"])) == len(found["held"]) == found["wanted"], found
    assert found["most_seen"] == found["wanted"], found


def test_postgres_restarted_during_a_spawn_loses_nothing(
    bench: Workbench, bob: HubUser, database: PostgresServer
) -> None:
    """PostgreSQL stopped while bob's pod waits for its node and started again:
    the hub and the accounting reconnect (pre-ping), bob's server becomes
    ready in the hub, keeps its pod, and is accounted from start to stop."""
    kube = bench.kube
    assert kube is not None and bench.hub is not None
    log_size = len(hub_log(bench))
    with nodes_cordoned(kube), ThreadPoolExecutor(1) as request:
        post = request.submit(
            bob.api, "POST", "/users/bob/server", json={"profile": "medium"}
        )
        pod = wait_until(lambda: pod_of(kube, "bob"), 30, "bob's pod created", 0.1)
        assert not pod["status"].get("podIP"), "the pod ran before the fault"
        database.stop()
        try:
            # Down while the pod waits for its node: the hub's pooled
            # connections die, and its next requests must reconnect.
            time.sleep(3)
            assert bench.hub.running, "the hub exited without its database"
        finally:
            database.start()
        answered = post.result(timeout=120)
    assert answered.status_code in (201, 202), answered.text

    def ready() -> dict[str, Any] | None:
        server = server_model(bob)
        return server if server.get("ready") else None

    try:
        wait_until(ready, 90, "bob's server ready after the database restart", 1.0)
    except TimeoutError as err:
        raise AssertionError(f"{err}; the hub shows {server_model(bob)}") from None
    bob.wait_ready(timeout=30)
    now = pod_of(kube, "bob")
    assert now is not None and now["metadata"]["uid"] == pod["metadata"]["uid"]
    records = open_records(bench, "bob")
    assert [(r.size, r.node) for r in records] == [("medium", now["spec"]["nodeName"])]
    bob.stop(kube)
    assert open_records(bench, "bob") == []
    assert bench.hub.running
    since = hub_log(bench)[log_size:]
    assert "never showed up" not in since


def test_postgres_down_until_after_the_pod_is_ready_loses_nothing(
    bench: Workbench, bob: HubUser, database: PostgresServer
) -> None:
    """PostgreSQL stopped from the pod's creation until 5 s after it is Ready,
    so the spawn ends while the database is away: once it is back, bob's server
    is ready in the hub at its pod (reachable through the proxy), keeps its
    pod, and its run is accounted from start to stop."""
    kube = bench.kube
    assert kube is not None and bench.hub is not None
    log_size = len(hub_log(bench))
    with nodes_cordoned(kube), ThreadPoolExecutor(1) as request:
        post = request.submit(
            bob.api, "POST", "/users/bob/server", json={"profile": "medium"}
        )
        pod = wait_until(lambda: pod_of(kube, "bob"), 30, "bob's pod created", 0.1)
        assert not pod["status"].get("podIP"), "the pod ran before the fault"
        database.stop()
        try:
            wait_until(lambda: pod_ready(kube, "bob"), 90, "bob's pod Ready", 0.2)
            time.sleep(5)
            assert bench.hub.running, "the hub exited without its database"
        finally:
            database.start()
        post.result(timeout=120)  # answered while the database was away: any
    try:
        bob.wait_ready(timeout=90)
    except TimeoutError as err:
        raise AssertionError(f"{err}; the hub shows {server_model(bob)}") from None
    server = server_model(bob)
    assert server.get("ready") and not server.get("pending"), server
    now = pod_of(kube, "bob")
    assert now is not None and now["metadata"]["uid"] == pod["metadata"]["uid"]
    records = wait_until(
        lambda: open_records(bench, "bob"), 30, "bob's run accounted", 1.0
    )
    assert [(r.size, r.node) for r in records] == [("medium", now["spec"]["nodeName"])]
    bob.stop(kube)
    assert open_records(bench, "bob") == []
    assert bench.hub.running
    since = hub_log(bench)[log_size:]
    assert "never showed up" not in since


def test_a_flaky_api_server_loses_no_spawn(bench: Workbench, bob: HubUser) -> None:
    """One API request in five answered 429 (Retry-After), 500 or after a 5 s
    wait with 504, as a loaded apiserver does (twice the campaign's 10 %: the
    hub makes few requests, its reflectors watch): bob's server still starts
    and stops three times over, every start Ready in the hub with its pod,
    every stop leaving no pod, and the hub stays up."""
    kube = bench.kube
    assert kube is not None and bench.hub is not None
    log_size = len(hub_log(bench))
    with api_chaos(kube, 0.2, seed=19) as injected:
        for _ in range(3):
            started = bob.api("POST", "/users/bob/server", json={"profile": "medium"})
            assert started.status_code in (201, 202), started.text
            try:
                bob.wait_ready(timeout=120)
            except TimeoutError as err:
                raise AssertionError(f"{err}; hub: {server_model(bob)}") from None
            assert pod_of(kube, "bob") is not None
            bob.stop(kube)
            assert pod_of(kube, "bob") is None
            assert bench.hub.running
    assert sum(injected["injected"].values()) >= 3, injected
    since = hub_log(bench)[log_size:]
    assert "never showed up" not in since


def test_a_stop_whose_delete_fails_for_a_while_leaves_no_pod(
    bench: Workbench, bob: HubUser
) -> None:
    """Every pod delete answered 500 for 6 s, as an apiserver whose etcd
    hiccups: bob's stop still deletes his pod once the API answers again, and
    closes his accounting record. (KubeSpawner gives up at the first error;
    the hub then forgot the server while its pod ran on, billed and unseen.)"""
    kube = bench.kube
    assert kube is not None
    started = bob.api("POST", "/users/bob/server", json={"profile": "medium"})
    assert started.status_code in (201, 202), started.text
    bob.wait_ready(timeout=120)
    assert open_records(bench, "bob")
    log_size = len(hub_log(bench))
    settings = {"kinds": ["error"], "methods": ["DELETE"]}
    with api_chaos(kube, 1.0, seed=19, **settings) as injected:
        stopping = bob.api("DELETE", "/users/bob/server")
        assert stopping.status_code in (202, 204), stopping.text
        time.sleep(6.0)
    assert injected["injected"].get("error", 0) >= 1, injected
    wait_until(lambda: pod_of(kube, "bob") is None, 60, "bob's pod deleted", 0.5)
    wait_until(lambda: not server_model(bob), 30, "bob's server stopped in the hub")
    assert not open_records(bench, "bob")
    assert "the pod's delete failed" in hub_log(bench)[log_size:]


def test_a_crashed_hubs_warmer_goes_and_the_new_one_serves(
    bench: Workbench, alice: HubUser
) -> None:
    """kill -9 of the hub: its warmer stops within seconds (it would hold the
    service's port); the restarted hub's own warmer answers, without tracebacks."""
    hub = bench.hub
    assert hub is not None
    old = warmer_pids(bench)
    assert old, "the hub runs no warmer"
    log_size = len(hub_log(bench))
    environ = crash_hub(bench, timeout=5)  # its warmer too, within seconds
    start_hub_again(bench, hub, environ)
    status = wait_until(lambda: warmer_status(bench, alice), 60, "the new warmer")
    assert status["mode"] == "placeholders"
    new = warmer_pids(bench)
    assert new and not new & old
    since = hub_log(bench)[log_size:]
    assert "Address already in use" not in since
    assert "Traceback" not in since, since[-3000:]


def test_directory_down_at_login_says_so_and_logins_work_when_it_is_back(
    bench: Workbench,
) -> None:
    """slapd stopped: a login gets the login page with a plain message and a
    503 (not a 500), right or wrong password alike; the hub logs no traceback
    and stays up; when slapd is back, the same login works."""
    ldap = bench.ldap
    assert ldap is not None and bench.hub is not None
    log_size = len(hub_log(bench))
    ldap.stop()
    try:
        for password in ("bob-pw", "wrong"):
            response = HubUser(bench.url, "bob", password).login()
            assert response.status_code == 503, (password, response.status_code)
            message = login_error_on(response.text)
            assert message.startswith(DIRECTORY_DOWN), message
            assert "try again in a minute" in message, message
        assert bench.hub.running
        since = hub_log(bench)[log_size:]
        assert "Traceback" not in since, since[-3000:]
        assert "LDAPSocketOpenError" in since  # the log says what failed
    finally:
        ldap.start()
    assert HubUser(bench.url, "bob", "bob-pw").login().status_code == 302


def test_a_restarted_warmer_keeps_warm_capacity(
    bench: Workbench, bob: HubUser, alice: HubUser
) -> None:
    """kill -9 of the warmer: the one the hub starts again adopts the placeholder
    a recent spawn asked for (same pod, not deleted and made anew) and still
    counts that spawn, though its pod is gone."""
    kube = bench.kube
    assert kube is not None
    started = bob.api("POST", "/users/bob/server", json={"profile": "large"})
    assert started.status_code in (201, 202), started.text
    bob.wait_ready(timeout=150)
    # The warmer sees a spawn in a pass while its pod exists (every 30 s).
    wait_until(
        lambda: counts_the_spawn(warmer_status(bench, alice)),
        90,
        "the warmer counting bob's spawn",
        1.0,
    )
    bob.stop(kube)  # the spawn is now only in the warmer's memory
    held = wait_until(
        lambda: placeholders(bench), 90, "a placeholder for the recent spawn"
    )
    uids = sorted(p["metadata"]["uid"] for p in held)
    old = warmer_pids(bench)
    assert len(old) == 1
    os.kill(old.pop(), signal.SIGKILL)
    wait_until(lambda: warmer_pids(bench), 90, "the hub restarting its warmer", 1.0)

    def fresh_status() -> dict[str, Any] | None:
        status = warmer_status(bench, alice)
        # A new process: its errors and actions start empty, a first pass done.
        return status if status and status["updated_at"] else None

    status = wait_until(fresh_status, 60, "a first pass of the new warmer")
    assert counts_the_spawn(status), status["plan"]["decisions"]
    assert not [a for a in status["last_actions"] if a.startswith("delete")], status
    now = sorted(p["metadata"]["uid"] for p in placeholders(bench))
    assert now == uids, "the placeholders were deleted and made anew"
