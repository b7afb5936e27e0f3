"""wbspawner's idle culler on the real stack, with timeouts of seconds.

The hub runs the culler as its service (a pass a second); users' servers are
real JupyterLab servers with wb-lab-notices on devcluster, reached through the
proxy. Rules: the warning arrives in JupyterLab with the $/hour before the cull;
"Keep running" resets the idle clock; a busy kernel keeps its server until its
maximum age; each size has its timeout; the culled user's Dask cluster stops;
the cull is recorded with cause ``cull``; the costs page shows the saving; a
server pod the hub has no server for is deleted and its record closed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from devcluster.demo.workbench import NAMESPACE, Workbench
from devcluster.services.ldap import LdapServer
from tests.integration.hub_harness import (
    HubUser,
    error_on,
    hub_log,
    logged_in,
    pod_of,
    stack_on_profiles,
    user_gateway,
    wait_until,
)
from tests.integration.kernel_support import execute, kernels_url, start_kernel
from wbspawner.costs.accounting import UsageRecord, open_db, record_start
from wbspawner.costs.page import CostsQuery, render_costs
from wbspawner.costs.web import load_report

pytestmark = [pytest.mark.integration, pytest.mark.timeout(360)]

CULLING = """culling:
  idle_timeout_s: 14
  warn_before_s: 7
  max_busy_age_s: 30
  orphan_grace_s: 3
  sizes:
    medium: {idle_timeout_s: 20}
"""
"""small: warned 7 s after its last use, culled 7 s later; medium: 13 s and 20 s,
but a busy kernel keeps it for 30 s. A server pod the hub has no server for is
deleted once 3 s old."""


@pytest.fixture(scope="module")
def bench(
    ldap_server: LdapServer,
    stack_databases: Callable[[str], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Workbench]:
    with stack_on_profiles(
        tmp_path_factory.mktemp("culler"),
        {"70-culling.yaml": CULLING},
        time_factor=0.02,
        pools=["cpu4", "cpu16"],
        zones=["us-east-1b"],
        ldap=ldap_server,
        capacity_grace_s=1.0,
        warmer=False,
        culler_interval=1.0,
        **stack_databases("culler"),
    ) as workbench:
        yield workbench


def start(user: HubUser, size: str) -> None:
    user.form()
    response = user.spawn({"profile": size})
    assert response.status_code == 302, error_on(response.text) or response.text[:300]
    user.wait_ready(timeout=150)


def server_of(user: HubUser) -> dict[str, Any] | None:
    model = user.api("GET", f"/users/{user.name}").json()
    server: dict[str, Any] | None = (model.get("servers") or {}).get("")
    return server


def records(url: str, user: str) -> list[UsageRecord]:
    with open_db(url)() as session:
        query = session.query(UsageRecord).filter(
            UsageRecord.user == user, UsageRecord.kind == "server"
        )
        return list(query.order_by(UsageRecord.id))


class Events:
    """The server's event stream, as a JupyterLab tab receives it."""

    def __init__(self, user: HubUser) -> None:
        base = user.url.replace("http", "ws", 1)
        self.url = f"{base}/user/{user.name}/api/events/subscribe"
        self.headers = {"Authorization": f"token {user.token()}"}
        self.http = aiohttp.ClientSession(trust_env=False)
        self.socket: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> Events:
        self.socket = await self.http.ws_connect(self.url, headers=self.headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.socket is not None:
            await self.socket.close()
        await self.http.close()

    async def notice(self, timeout: float) -> tuple[float, dict[str, Any]]:
        """Return when the next cull notice came (monotonic) and the notice."""
        assert self.socket is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = json.loads(await self.socket.receive_str(timeout=left))
            except TimeoutError:
                break
            if event.get("schema_id") == "urn:wbspawner:events:notice":
                if event.get("kind") == "cull":
                    return time.monotonic(), event
        raise TimeoutError(f"no cull notice within {timeout:g} s")


def test_warning_keep_running_cull_dask_and_savings(bench: Workbench) -> None:
    alice = logged_in(bench, "alice")
    start(alice, "small")
    cluster = _dask_cluster(bench, alice.token())

    async def warned_kept_warned() -> tuple[float, dict[str, Any], float]:
        async with Events(alice) as events:
            await asyncio.to_thread(_use, alice)  # idle from now on
            first_at, first = await events.notice(timeout=30)
            answer = await asyncio.to_thread(
                alice.http.post,
                f"{alice.url}/user/alice/wbspawner/notices/{first['id']}/answer",
                json={"keep": True},
                headers={"Authorization": f"token {alice.token()}"},
                timeout=10,
            )
            assert answer.status_code == 204, answer.text
            second_at, _ = await events.notice(timeout=30)
            still = await asyncio.to_thread(server_of, alice)
            assert still is not None, "culled although kept"
            return first_at, first, second_at

    first_at, first, second_at = asyncio.run(warned_kept_warned())
    message = first["message"]
    assert message.startswith("This server has been idle for ")
    assert "it will stop at " in message and "Keep it running?" in message
    assert "and it costs $" in message and "/h." in message
    # Kept: still running past the first warning's stop time (7 s after it), and
    # warned again only timeout - warn_before_s (7 s) after the click.
    assert second_at - first_at >= 7 - 0.5
    wait_until(lambda: server_of(alice) is None, 30, "alice's server culled")
    culled_at = time.monotonic()
    assert culled_at - second_at >= 7 - 1  # never before warn_before_s
    rows = records(bench.cost_db, "alice")
    assert rows and rows[-1].stop_cause == "cull"
    wait_until(lambda: not _clusters(bench, alice.token(), cluster), 75, "reaped")

    now = datetime.now(UTC)
    query = CostsQuery(month=now.strftime("%Y-%m"), by="user")
    rows_, saved = load_report(bench.cost_db, query, now)
    mine = [s for s in saved if s.user == "alice"]
    assert len(mine) == 1 and mine[0].cost > 0
    page = render_costs(rows_, query.month, "user", savings=saved)
    assert "Culling saved $" in page and f"({len(saved)} idle server(s) stopped" in page
    # per size: small's own timeout (medium's: the other test)
    assert "the timeout of small is 14 seconds" in hub_log(bench)


def test_a_busy_kernel_keeps_its_server_until_the_maximum_age(bench: Workbench) -> None:
    bob = logged_in(bench, "bob")
    start(bob, "medium")
    kernel = _busy_kernel(bob, "import time; time.sleep(600)")
    busy_at = time.monotonic()

    async def first_notice() -> float:
        async with Events(bob) as events:
            at, _ = await events.notice(timeout=60)
            return at

    warned_at = asyncio.run(first_notice())
    # Not before the kernel has been busy for max_busy_age_s (30 s); without the
    # kernel a medium server is warned 13 s after its last use.
    assert warned_at - busy_at >= 30 - 2, kernel
    wait_until(lambda: server_of(bob) is None, 30, "bob's server culled")
    assert records(bench.cost_db, "bob")[-1].stop_cause == "cull"
    assert "the timeout of medium is 20 seconds" in hub_log(bench)


def test_a_pod_of_no_server_is_deleted_and_its_record_closed(
    bench: Workbench,
) -> None:
    """A server pod the hub does not know (as a failed start or stop leaves
    one) goes at the culler's next pass past the grace, with its open record
    closed as ``orphan`` and one line in the log; gina's running server stays."""
    kube = bench.kube
    assert kube is not None
    gina = logged_in(bench, "gina")
    start(gina, "small")
    kube.create(f"/api/v1/namespaces/{NAMESPACE}/pods", _server_pod("ghost"))
    with open_db(bench.cost_db)() as session:
        ago = datetime.now(UTC) - timedelta(minutes=5)
        record_start(
            session, "ghost", "small", "cpu4", "spot", "us-east-1b", "", 0.1, ago
        )

    def gone() -> bool:
        pod = pod_of(kube, "ghost")
        return pod is None or bool(pod["metadata"].get("deletionTimestamp"))

    wait_until(gone, 30, "the orphan pod deleted", 0.5)
    line = f"culler: deleted pod {NAMESPACE}/jupyter-ghost (user ghost, server default"
    wait_until(lambda: line in hub_log(bench), 10, "the deletion logged")
    assert "the hub has no server for it; accounting record" in hub_log(bench)
    (row,) = records(bench.cost_db, "ghost")
    assert row.stop_cause == "orphan" and row.stopped_at is not None
    assert server_of(gina) is not None
    gina_pod = pod_of(kube, "gina")
    assert gina_pod is not None and not gina_pod["metadata"].get("deletionTimestamp")
    gina.stop(kube)


def _server_pod(user: str) -> dict[str, Any]:
    """A pod as KubeSpawner makes a server's, for a node no group can start."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"jupyter-{user}",
            "labels": {
                "component": "singleuser-server",
                "hub.jupyter.org/username": user,
            },
            "annotations": {"hub.jupyter.org/username": user},
        },
        "spec": {
            "nodeSelector": {"wbspawner.test/no-such-node": "true"},
            "containers": [{"name": "notebook", "image": "wbspawner/none:1"}],
        },
    }


def _use(user: HubUser) -> None:
    """Use the server as a JupyterLab tab does (an API request)."""
    used = user.http.get(
        f"{user.url}/user/{user.name}/api/contents",
        headers={"Authorization": f"token {user.token()}"},
        timeout=10,
    )
    assert used.status_code == 200, used.text


def _dask_cluster(bench: Workbench, token: str) -> str:
    with user_gateway(bench, token) as gateway:
        cluster = gateway.new_cluster(max_workers=1, shutdown_on_close=False)
        return str(cluster.name)


def _clusters(bench: Workbench, token: str, name: str) -> bool:
    """Whether the cluster is still listed as running."""
    with user_gateway(bench, token) as gateway:
        return any(c.name == name for c in gateway.list_clusters())


def _busy_kernel(user: HubUser, code: str) -> str:
    """Start a kernel in the user's server and have it execute ``code``."""
    headers = {"Authorization": f"token {user.token()}"}
    base = kernels_url(user)
    kernel_id = start_kernel(user)
    execute(user, kernel_id, code)

    def busy() -> bool:
        listed = user.http.get(base, headers=headers, timeout=10).json()
        return any(
            k["id"] == kernel_id and k["execution_state"] == "busy" for k in listed
        )

    wait_until(busy, 60, "the kernel busy")
    return str(kernel_id)
