"""The stock z2jh chart, installed with helm on devcluster with helm-values/.

The hub comes up from the chart's own Deployment, ConfigMap and Secret (z2jh's
jupyterhub_config.py and values, the hub image's wbspawner configuration), in
the environment built from images/hub/Dockerfile; the chart's proxy runs in
configurable-http-proxy's; bob logs in through the chart's ``proxy-public``
Service and starts a server (the singleuser image's environment, a node of his
pool, his home); his Dask computation survives a spot reclaim of a worker's node
(the chart's controller replaces the worker, Dask recomputes). Run by ``make
test-charts`` (``make test`` runs it too).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devcluster.services.ldap import DEMO_USERS
from tests.e2e.browser_support import (
    RUN_IN_KERNEL,
    fill_login,
    launch_chromium,
    new_context,
    screenshot,
)
from tests.integration.chart_harness import GATEWAY_NAMESPACE, ChartStack
from tests.integration.data_support import ROWS
from tests.integration.hub_harness import HubUser, wait_until
from tests.paths import REPO
from wbspawner.costs.accounting import UsageRecord, open_db

pytestmark = [pytest.mark.integration, pytest.mark.charts]

DASK_CELL = """
import json
import dask.array as da
from dask_gateway import Gateway


def read(bucket):
    # On a worker: its pod's IRSA web identity, no keys (s3fs through pandas).
    import os, pandas
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    keys = [k for k in names if k in os.environ]
    try:
        rows = pandas.read_csv(f"s3://{bucket}/x.csv").values.tolist()
    except PermissionError as err:
        rows = type(err).__name__
    return {"rows": rows, "keys": keys, "role": os.environ.get("AWS_ROLE_ARN", "")}


gateway = Gateway()  # nothing to type: the hub set DASK_GATEWAY__* for bob
cluster = gateway.new_cluster()
try:
    cluster.scale(1)
    client = cluster.get_client()
    client.wait_for_workers(1, timeout=300)
    total = da.arange(1_000_000, chunks=100_000).sum().compute()
    workers = client.run(lambda: __import__("socket").gethostname())
    print("DASK-SUM", int(total), "WORKERS", len(workers), flush=True)
    for bucket in ("team-a", "team-b"):
        read_by_worker = client.submit(read, bucket, pure=False).result(timeout=120)
        print("DASK-S3", bucket, json.dumps(read_by_worker), flush=True)
finally:
    cluster.shutdown()
"""
"""A notebook cell: a cluster through the chart's gateway, a sum on its worker,
and the worker reading bob's group's bucket (and refused another group's)."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartStack]:
    built = REPO / ".cache" / "images" / "hub"
    assert (built / "bin").is_dir(), (
        "the image environments are missing: make image-envs"
    )
    running = ChartStack(tmp_path_factory.mktemp("charts")).start()
    try:
        yield running
    finally:
        running.stop()


def stop_bob(user: HubUser) -> None:
    """Stop whatever bob runs or is starting, and wait until the hub has none.

    The module's tests run in any order and share bob: each of his tests
    starts from a stopped server and leaves one (a browser's Stop button
    returns before the hub has finished stopping).
    """

    def stopped() -> bool:
        model = user.api("GET", "/users/bob").json()
        if model.get("pending"):
            return False
        if model.get("server"):
            answer = user.api("DELETE", "/users/bob/server")
            assert answer.status_code in (202, 204), (answer.status_code, answer.text)
            return False
        return True

    wait_until(stopped, 180, "bob's server stopped", 1.0)


@pytest.fixture
def bob(stack: ChartStack) -> Iterator[HubUser]:
    """bob, logged in through ``proxy-public``, with no server before and after."""
    account = next(u for u in DEMO_USERS if u.uid == "bob")
    user = HubUser(hub_url(stack), account.uid, account.password)
    assert user.login().status_code == 302, stack.diagnostics()
    stop_bob(user)
    yield user
    stop_bob(user)


def test_the_hub_rolls_out_from_the_charts_deployment(stack: ChartStack) -> None:
    """``kubectl rollout status`` as an operator would wait for the install."""
    for deployment in ("hub", "proxy"):
        done = stack.kubectl_run(
            "rollout",
            "status",
            f"deployment/{deployment}",
            "--timeout=240s",
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, stack.diagnostics()
    pods = json.loads(stack.kubectl_run("get", "pods", "-o", "json").stdout)["items"]
    hub = next(p for p in pods if p["metadata"]["labels"].get("component") == "hub")
    (container,) = hub["spec"]["containers"]
    assert container["image"] == "ghcr.io/wbspawner/hub:0.1.0"
    assert container["securityContext"]["runAsUser"] == 1000


def test_the_gateway_rolls_out_from_the_dask_gateway_chart(stack: ChartStack) -> None:
    """The chart's CRDs are established and its three Deployments roll out.

    helm installs a chart's ``crds/`` first and waits for each definition's
    ``Established`` condition; traefik (devcluster's stand-in) answers its
    ``/ping`` readiness probe, and the API pod is Ready once it serves.
    """
    crds = stack.kubectl_run("get", "crd", "-o", "json").stdout
    established = {
        crd["metadata"]["name"]
        for crd in json.loads(crds)["items"]
        if any(
            c["type"] == "Established" and c["status"] == "True"
            for c in crd["status"]["conditions"]
        )
    }
    assert {"daskclusters.gateway.dask.org", "ingressroutetcps.traefik.io"} <= (
        established
    )
    for deployment in ("controller", "api", "traefik"):
        done = stack.kubectl_run(
            "rollout",
            "status",
            f"deployment/{deployment}-dask-gateway",
            "--timeout=240s",
            check=False,
            timeout=300,
            namespace=GATEWAY_NAMESPACE,
        )
        assert done.returncode == 0, stack.diagnostics()
    routes = stack.kubectl_run(
        "get", "ingressroutes", "-o", "name", namespace=GATEWAY_NAMESPACE
    ).stdout
    assert "ingressroute.traefik.io/api-dask-gateway" in routes


HUB = "system:serviceaccount:jhub:hub"
HUB_NEEDS = [
    # KubeSpawner, through the chart's own Role
    ("create", "pods", "jhub"),
    ("delete", "persistentvolumeclaims", "jhub"),
    ("watch", "events", "jhub"),
    # wbspawner's hub, through helm-values/hub-rbac.yaml
    ("get", "nodes", ""),  # a server's node: zone, capacity, interruption taints
    ("list", "nodes", ""),  # the warmer's view of the pools
    ("list", "events", "default"),  # a Node's SpotInterruption, outside jhub
    ("list", "events", "kube-system"),  # the autoscaler's failed scale-ups
    ("get", "persistentvolumes", ""),  # a home's zone
    ("create", "persistentvolumes", ""),  # a moved home's new volume
    ("patch", "persistentvolumes", ""),  # the move's mark, rebinding
    ("delete", "persistentvolumes", ""),  # an unbound volume a move leaves
    ("create", "priorityclasses.scheduling.k8s.io", ""),  # the warmer's
    ("patch", "persistentvolumeclaims", "jhub"),  # a moved home's claim
]
"""What the hub's ServiceAccount must be allowed (verb, resource, namespace)."""
HUB_MUST_NOT = [
    ("delete", "nodes", ""),
    ("create", "clusterroles.rbac.authorization.k8s.io", ""),
    ("get", "secrets", "kube-system"),
]


def test_the_hubs_service_account_may_do_what_wbspawner_does_and_no_more(
    stack: ChartStack,
) -> None:
    """``kubectl auth can-i --as`` the hub's ServiceAccount, answered from the
    chart's Role and helm-values/hub-rbac.yaml as the RBAC authorizer would."""

    def can(verb: str, resource: str, namespace: str) -> str:
        done = stack.kubectl_run(
            "auth",
            "can-i",
            verb,
            resource,
            f"--as={HUB}",
            check=False,
            namespace=namespace or "jhub",  # cluster-scoped: any
        )
        return done.stdout.strip()

    assert {need: can(*need) for need in HUB_NEEDS} == {
        need: "yes" for need in HUB_NEEDS
    }
    assert {bar: can(*bar) for bar in HUB_MUST_NOT} == {
        bar: "no" for bar in HUB_MUST_NOT
    }


def test_bob_logs_in_through_the_charts_proxy_service(stack: ChartStack) -> None:
    """The login form and LDAP (StartTLS) through Service proxy-public."""
    url = hub_url(stack)
    bob = next(u for u in DEMO_USERS if u.uid == "bob")
    user = HubUser(url, bob.uid, bob.password)
    answer = user.login()
    assert answer.status_code == 302, stack.diagnostics()
    assert "/hub/login" not in answer.headers.get("Location", "")
    home = user.http.get(f"{url}/hub/home", timeout=10)
    assert home.status_code == 200 and "bob" in home.text


def test_bob_starts_a_server_through_the_charts_hub(
    stack: ChartStack, bob: HubUser
) -> None:
    """KubeSpawner in the chart's hub starts bob's pod; it answers through the proxy."""
    user = bob
    account = next(u for u in DEMO_USERS if u.uid == "bob")
    user.form()
    started = user.spawn({"profile": "medium"})
    assert started.status_code in (200, 302), started.text[-2000:]
    events = user.progress(timeout=300)
    assert events and events[-1].get("ready"), (events, stack.diagnostics())
    assert user.wait_ready(timeout=120).status_code == 200
    pods = json.loads(stack.kubectl_run("get", "pods", "-o", "json").stdout)["items"]
    pod = next(p for p in pods if p["metadata"]["name"] == "jupyter-bob")
    (container,) = pod["spec"]["containers"]
    assert container["image"].startswith("ghcr.io/wbspawner/singleuser:")
    assert container["securityContext"]["runAsUser"] == account.uid_number


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


def open_lab(context: BrowserContext, url: str) -> Page:
    """bob logs in, starts a medium server from the form and has JupyterLab open."""
    page = context.new_page()
    fill_login(page, url, "bob")
    page.click("#login_submit")
    page.wait_for_url(re.compile(r"/hub/(spawn|home)"))
    page.goto(f"{url}/hub/spawn")
    page.click("#profile-item-medium")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(r"/user/bob/lab"), timeout=300_000)
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)
    return page


def test_bob_computes_with_dask_through_both_charts_in_a_browser(
    stack: ChartStack, browser: Browser, bob: HubUser
) -> None:
    """Chromium logs bob in through ``proxy-public``, starts (or finds) his
    server and runs a notebook cell in it: ``Gateway()`` with no argument
    reaches the chart's gateway through the dashboards front, the chart's
    controller starts the scheduler and a worker, and the client reaches the
    scheduler through the chart's traefik (TLS passthrough by SNI)."""
    url = bob.url
    context = new_context(browser)
    try:
        page = open_lab(context, url)
        screenshot(page, "charts", "01-jupyterlab")
        result = page.evaluate(
            RUN_IN_KERNEL,
            {"base": "/user/bob/", "code": DASK_CELL, "timeoutMs": 420_000},
        )
        # bob stops his server (the module's tests run in any order)
        page.goto(f"{url}/hub/home")
        page.locator("#stop").click()
        expect(page.locator("#start")).to_be_visible(timeout=90_000)
    finally:
        context.close()
    assert result["error"] is None, (result, stack.diagnostics())
    assert f"DASK-SUM {sum(range(1_000_000))} WORKERS 1" in result["stdout"]
    # The worker read team-a with its pod's role (the gateway gave it the
    # ServiceAccount of bob's grants) and no keys; team-b was refused.
    reads = {
        line.split()[1]: json.loads(line.split(maxsplit=2)[2])
        for line in result["stdout"].splitlines()
        if line.startswith("DASK-S3 ")
    }
    assert set(reads) == {"team-a", "team-b"}, result
    assert reads["team-a"]["rows"] == ROWS, reads
    assert reads["team-b"]["rows"] == "PermissionError", reads
    for read in reads.values():
        assert read["keys"] == [], reads
        role = read["role"]
        assert re.fullmatch(r"arn:aws:iam::\d+:role/wbspawner-.+-data-.+", role), reads
    done = stack.kubectl_run(
        "get", "daskclusters", "-o", "json", namespace=GATEWAY_NAMESPACE
    )
    clusters = json.loads(done.stdout)["items"]
    assert clusters, "the gateway made no DaskCluster object"
    # The chart's gateway recorded bob's workers in the hub's accounting
    # database (the cost-url of the Secret wbspawner-db in its namespace).
    with open_db(stack.cost_url)() as session:
        kinds = {
            (r.kind, r.user)
            for r in session.query(UsageRecord).filter(UsageRecord.user == "bob")
        }
    assert kinds >= {("server", "bob"), ("dask", "bob")}, kinds


DASK_RECLAIM_CELL = """
import time

import dask.array as da
from dask_gateway import Gateway

gateway = Gateway()
options = gateway.cluster_options()
options.worker_size = "m64-whole"  # one worker per node: two nodes
cluster = gateway.new_cluster(options)
try:
    cluster.scale(2)
    client = cluster.get_client()
    client.wait_for_workers(2, timeout=300)
    # About 60 s of one-second blocks, whatever threads the workers have.
    blocks = 60 * sum(client.nthreads().values())


    def slow(block):
        time.sleep(1.0)
        return block


    print("DASK-BLOCKS", blocks, flush=True)
    total = da.ones((blocks, 1000), chunks=(1, 1000)).map_blocks(slow).sum()
    print("DASK-SUM", int(total.compute()), flush=True)
finally:
    cluster.shutdown()
"""
"""A notebook cell: two workers on two nodes, a computation of about 60 s."""

START_IN_KERNEL = """
({run, args}) => {
  window.wbDask = null;
  (0, eval)("(" + run + ")")(args).then(
    (result) => { window.wbDask = result; },
    (err) => { window.wbDask = {error: String(err), stdout: ""}; });
  return true;
}
"""
"""Start :data:`RUN_IN_KERNEL` without waiting; its result lands in ``wbDask``."""


def dask_workers(stack: ChartStack, running: bool = True) -> dict[str, str]:
    """Return the (running) Dask worker pods, with their nodes."""
    out = stack.kubectl_run(
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=dask-worker",
        "-o",
        "json",
        namespace=GATEWAY_NAMESPACE,
    ).stdout
    return {
        p["metadata"]["name"]: p["spec"].get("nodeName", "")
        for p in json.loads(out)["items"]
        if not running
        or (
            p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
            and p["spec"].get("nodeName")
        )
    }


def test_a_dask_computation_survives_a_reclaim_of_a_workers_spot_node(
    stack: ChartStack, browser: Browser, bob: HubUser
) -> None:
    """bob's notebook computes on two spot workers; one's node gets a spot
    interruption notice mid-computation (``python -m devcluster.drill``): the
    chart's controller replaces the drained worker, Dask recomputes what was
    lost, and the sum is right."""
    url = bob.url
    context = new_context(browser)
    try:
        page = open_lab(context, url)
        args = {"base": "/user/bob/", "code": DASK_RECLAIM_CELL, "timeoutMs": 480_000}
        page.evaluate(START_IN_KERNEL, {"run": RUN_IN_KERNEL, "args": args})

        def two_running() -> dict[str, str] | None:
            found = dask_workers(stack)
            return found if len(found) == 2 else None

        workers = wait_until(two_running, 300, "two Dask workers running")
        time.sleep(8)  # the computation is under way (about 60 s in all)
        victim, node = sorted(workers.items())[0]
        labels = json.loads(
            stack.kubectl_run("get", "node", node, "-o", "json").stdout
        )["metadata"]["labels"]
        assert labels["wbspawner.io/capacity"] == "spot"
        drill = subprocess.run(
            [
                sys.executable,
                "-m",
                "devcluster.drill",
                "spot-interruption",
                node,
                "--kubeconfig",
                str(stack.kubeconfig),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert drill.returncode == 0, drill.stderr
        # The controller replaces the drained worker (while the cluster runs).
        replaced = wait_until(
            lambda: set(dask_workers(stack, running=False)) - set(workers),
            60,
            "a replacement worker pod",
        )
        result = wait_until(
            lambda: page.evaluate("window.wbDask"), 480, "the computation's end"
        )
        page.goto(f"{url}/hub/home")
        page.locator("#stop").click()
        expect(page.locator("#start")).to_be_visible(timeout=90_000)
    finally:
        context.close()
    assert result["error"] is None, (result, stack.diagnostics())
    blocks = re.search(r"DASK-BLOCKS (\d+)", result["stdout"])
    assert blocks, result
    assert f"DASK-SUM {int(blocks.group(1)) * 1000}" in result["stdout"], result
    assert victim not in replaced


def hub_url(stack: ChartStack) -> str:
    """Return the hub's URL through proxy-public once it answers there."""
    url = f"http://{stack.service_ip('proxy-public')}"

    def health() -> bool:
        try:
            return requests.get(f"{url}/hub/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_until(health, 240, "the hub answering through proxy-public")
    return url
