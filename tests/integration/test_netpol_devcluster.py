"""Per-owner Dask network policies written to devcluster, then evaluated.

The hub's real ``WorkbenchSpawner`` builds bob's and alice's server pods against
an in-process devcluster (real HTTP on loopback) and hands its ``kube`` (the
adapter over KubeSpawner's own API client) to ``ensure_dask_network_policies``,
as ``WorkbenchSpawner.start`` does. Dask
pods come from the real dask-gateway controller with wbspawner's options, and
the gateway's own pods from the real chart rendered by helm. The policies read
back from the cluster, plus the static baseline file, then decide who reaches
whom.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_asyncio.config.kube_config as kube_config
import pytest
import yaml
from dask_gateway_server.models import User
from jupyterhub.objects import Hub, Server
from kubernetes_asyncio.client import ApiClient, Configuration, NetworkingV1Api
from kubespawner import KubeSpawner, clients
from traitlets.config import Config

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from tests.integration.helm_support import (
    HELM_VALUES,
    REPO,
    one,
    render_gateway,
    render_hub,
)
from wbspawner.adapters.kube import Kube
from wbspawner.gateway.netpol import (
    GatewaySelector,
    PodRef,
    allows,
    dask_network_policies,
)
from wbspawner.gateway.netpol_kube import ensure_dask_network_policies
from wbspawner.gateway.options import OptionsContext, cluster_options_for
from wbspawner.hub.spawner import WorkbenchSpawner
from wbspawner.model import Profiles
from wbspawner.profiles.loader import load_profiles

pytestmark = pytest.mark.integration

STATIC = HELM_VALUES / "dask-networkpolicy.yaml"
DASK_NS, HUB_NS = "dask-gateway", "jhub"
POLICIES = f"/apis/networking.k8s.io/v1/namespaces/{DASK_NS}/networkpolicies"
AUTH_STATE = {"uidNumber": 10002, "gidNumber": 100}
LOG = logging.getLogger("test.netpol")


@pytest.fixture(scope="module")
def profiles() -> Profiles:
    return load_profiles([REPO / "profiles"])


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    config = ClusterConfig(
        time_factor=0.01,
        state_dir=str(tmp_path / "state"),
        static_nodes=({"metadata": {"name": "core"}},),
        namespaces=("default", "kube-system", HUB_NS, DASK_NS),
    )
    async with Cluster(config, controllers=False) as c:
        yield c


class _Source:
    def __init__(self, profiles: Profiles) -> None:
        self.profiles, self.last_error = profiles, None

    def current(self) -> Profiles:
        return self.profiles


class _User:
    """The parts of a hub user the spawner reads."""

    def __init__(self, name: str) -> None:
        self.name = self.escaped_name = name
        self.id, self.admin = 7, False
        self.groups = [SimpleNamespace(name="jupyter-users")]
        self.server = Server()
        self.url = f"/user/{name}/"

    async def get_auth_state(self) -> dict[str, Any]:
        return dict(AUTH_STATE)


@pytest.fixture
async def make_spawner(
    cluster: Cluster,
    profiles: Profiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Callable[[str], WorkbenchSpawner]]:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    clients.load_config.cache_clear()

    def make(name: str) -> WorkbenchSpawner:
        c = Config()
        c.WorkbenchSpawner.profiles_source = lambda: _Source(profiles)
        c.KubeSpawner.namespace = HUB_NS
        c.KubeSpawner.k8s_api_host = cluster.url
        c.KubeSpawner.pvc_name_template = "home-{username}"
        return WorkbenchSpawner(
            hub=Hub(), user=_User(name), config=c, api_token="t", oauth_client_id="c"
        )

    try:
        yield make
    finally:
        await KubeSpawner._stop_all_reflectors()
        clients.load_config.cache_clear()


async def _server_pod(spawner: WorkbenchSpawner) -> PodRef:
    """The labels of the pod the spawner would create for its user."""
    spawner.user_options = {"profile": "large", "image": "datascience"}
    await spawner.load_user_options()
    pod = spawner.api.api_client.sanitize_for_serialization(
        await spawner.get_pod_manifest()
    )
    return PodRef(HUB_NS, pod["metadata"]["labels"])


def _dask_pod(
    profiles: Profiles, dask_pod: Callable[..., Any], user: str, worker: bool
) -> PodRef:
    owner = User(user, groups=["jupyter-users"])
    options = cluster_options_for(profiles, owner, OptionsContext())
    overrides = options.get_configuration(options.parse_options({}), owner)
    # The chart sets the instance to its full name, the release name here.
    pod = dask_pod(overrides, worker, namespace=DASK_NS, cluster=f"{user}0cafe")
    return PodRef(DASK_NS, pod["metadata"]["labels"])


def _gateway_pods() -> dict[str, PodRef]:
    """The gateway's own pods, by component, as the real chart labels them."""
    rendered = render_gateway()
    pods = {}
    for doc in rendered:
        if doc["kind"] == "Deployment":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            pods[labels["app.kubernetes.io/component"]] = PodRef(DASK_NS, labels)
    assert set(pods) == {"gateway", "traefik", "controller"}, pods
    return pods


async def _policies(client: ApiClient) -> list[dict[str, Any]]:
    """The policies in the Dask namespace, read over the API."""
    listed = await NetworkingV1Api(client).list_namespaced_network_policy(DASK_NS)
    return list(client.sanitize_for_serialization(listed)["items"])


def _client(cluster: Cluster) -> ApiClient:
    return ApiClient(Configuration(host=cluster.url))


async def _ensure(client: ApiClient, user: str) -> None:
    """Ensure ``user``'s policies through ``client``, logging to ``LOG``."""
    await ensure_dask_network_policies(
        Kube.of(client), DASK_NS, user, LOG, server_namespace=HUB_NS
    )


def _outcomes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What each write to ``LOG`` reported (created, updated, unchanged)."""
    return [r.args[-1] for r in caplog.records if r.name == LOG.name]


# --------------------------------------------------------------------- ensure


async def test_ensure_twice_writes_each_policy_once(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    async with _client(cluster) as client:
        await _ensure(client, "Bob.Smith")
        first = {p["metadata"]["name"]: p for p in await _policies(client)}
        await _ensure(client, "Bob.Smith")
        second = {p["metadata"]["name"]: p for p in await _policies(client)}
    built = dask_network_policies(
        DASK_NS,
        "Bob.Smith",
        server_namespace=HUB_NS,
        gateway_selector=GatewaySelector(namespace=DASK_NS),
    )
    assert sorted(first) == sorted(p["metadata"]["name"] for p in built)
    for policy in built:
        stored = second[policy["metadata"]["name"]]
        assert stored["spec"] == policy["spec"]
        assert stored["metadata"]["labels"] == policy["metadata"]["labels"]
    for name, policy in first.items():
        rv = second[name]["metadata"]["resourceVersion"]
        assert policy["metadata"]["resourceVersion"] == rv, "second call wrote"
    assert _outcomes(caplog) == ["created", "created", "unchanged", "unchanged"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_changed_policy_is_put_back(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    async with _client(cluster) as client:
        await _ensure(client, "bob")
        assert cluster.store is not None
        stored = cluster.store.get("networkpolicies", DASK_NS, "dask-scheduler-bob")
        widened = {**stored, "spec": {**stored["spec"], "ingress": [{}]}}
        cluster.store.replace("networkpolicies", DASK_NS, "dask-scheduler-bob", widened)
        await _ensure(client, "bob")
    restored = cluster.store.get("networkpolicies", DASK_NS, "dask-scheduler-bob")
    built = dask_network_policies(
        DASK_NS,
        "bob",
        server_namespace=HUB_NS,
        gateway_selector=GatewaySelector(namespace=DASK_NS),
    )
    assert restored["spec"] == built[0]["spec"]
    # INFO only: the unchanged worker policy is reported at DEBUG.
    assert _outcomes(caplog) == ["created", "created", "updated"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param("no-namespace", "HTTP 404", id="no-namespace"),
        pytest.param("forbidden", "HTTP 403", id="no-rbac"),
        pytest.param("api-down", "Cannot connect", id="api-down"),
        pytest.param("api-silent", "no answer within 0.5 s", id="api-silent"),
    ],
)
async def test_a_failure_is_logged_and_not_raised(
    cluster: Cluster,
    silent_server: str,
    caplog: pytest.LogCaptureFixture,
    case: str,
    expected: str,
) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    namespace = "nowhere" if case == "no-namespace" else DASK_NS
    if case == "forbidden":
        cluster.faults.fail_next("POST", "networkpolicies", 403, message="forbidden")
    async with contextlib.AsyncExitStack() as stack:
        url = cluster.url
        if case == "api-down":
            url = "http://127.0.0.1:9"
        elif case == "api-silent":
            url = silent_server
        client = await stack.enter_async_context(ApiClient(Configuration(host=url)))
        await ensure_dask_network_policies(
            Kube.of(client), namespace, "bob", LOG, server_namespace=HUB_NS, timeout=0.5
        )
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert expected in warning.getMessage()
    assert "stay closed until the next server start" in warning.getMessage()
    assert warning.exc_info is None  # expected trouble: no traceback


# ------------------------------------------------------------------ evaluation


async def test_who_reaches_whom_with_the_real_labels(
    dask_pod: Callable[..., Any],
    cluster: Cluster,
    profiles: Profiles,
    make_spawner: Callable[[str], WorkbenchSpawner],
) -> None:
    bob_spawner, alice_spawner = make_spawner("bob"), make_spawner("alice")
    bob_server = await _server_pod(bob_spawner)
    alice_server = await _server_pod(alice_spawner)
    for spawner in (bob_spawner, alice_spawner):
        # The call WorkbenchSpawner.start makes, with the spawner's own client.
        await ensure_dask_network_policies(
            spawner.kube,
            DASK_NS,
            spawner.user.name,
            spawner.log,
            server_namespace=spawner.namespace,
        )
    static = [d for d in yaml.safe_load_all(STATIC.read_text()) if d]
    async with _client(cluster) as client:
        policies = static + await _policies(client)
    assert len(policies) == len(static) + 4
    bob_sched = _dask_pod(profiles, dask_pod, "bob", worker=False)
    bob_worker = _dask_pod(profiles, dask_pod, "bob", worker=True)
    alice_sched = _dask_pod(profiles, dask_pod, "alice", worker=False)
    alice_worker = _dask_pod(profiles, dask_pod, "alice", worker=True)
    gateway = _gateway_pods()

    allowed = [
        (bob_server, bob_sched, 8786),
        (bob_server, bob_sched, 8787),
        (bob_worker, bob_sched, 8786),
        (gateway["traefik"], bob_sched, 8786),
        (gateway["traefik"], bob_sched, 8787),
        (gateway["gateway"], bob_sched, 8788),
        (bob_sched, bob_worker, 40123),
        (bob_worker, bob_worker, 40123),
        (bob_server, bob_worker, 8787),
        (alice_server, alice_sched, 8786),
        (alice_worker, alice_sched, 8786),
        (alice_server, gateway["traefik"], 8786),  # the gateway itself is open
    ]
    denied = [
        (alice_server, bob_sched, 8786),
        (alice_server, bob_sched, 8787),
        (alice_worker, bob_sched, 8786),
        (alice_sched, bob_sched, 8786),
        (alice_sched, bob_worker, 40123),
        (alice_worker, bob_worker, 40123),
        (alice_server, bob_worker, 8787),
        (bob_server, alice_sched, 8786),
        (bob_server, bob_worker, 40123),
        (bob_worker, bob_sched, 8788),
        (gateway["controller"], bob_sched, 8786),
        (gateway["traefik"], bob_worker, 40123),
    ]
    for source, target, port in allowed:
        assert allows(policies, source, target, port), (source, target, port)
    for source, target, port in denied:
        assert not allows(policies, source, target, port), (source, target, port)


def test_the_hub_service_account_is_the_one_the_chart_makes() -> None:
    hub = one(render_hub(), "Deployment", "hub")
    account = hub["spec"]["template"]["spec"]["serviceAccountName"]
    binding = next(
        d for d in yaml.safe_load_all(STATIC.read_text()) if d["kind"] == "RoleBinding"
    )
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": HUB_NS}
    ]
