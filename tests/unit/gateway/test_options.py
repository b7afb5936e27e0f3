"""Dask Gateway options: worker sizes, the pods they make, refusals and limits."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import kubernetes_validate
import pytest
from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
from dask_gateway_server.backends.local import LocalClusterConfig
from dask_gateway_server.models import User

from wbspawner.catalog.pricing import preferred_cost
from wbspawner.errors import UserFacingError
from wbspawner.gateway.billing import worker_price
from wbspawner.gateway.limits import UsageLedger, max_workers_bounds
from wbspawner.gateway.options import (
    ClusterUsage,
    OptionsContext,
    check_limits,
    cluster_options_for,
    limits_for,
    threads_for,
    usage_from_config,
    worker_sizes_for,
)
from wbspawner.gateway.workers import worker_resources, workers_per_node
from wbspawner.model import DaskLimits, Profiles
from wbspawner.spawn.manifests import PRICE_ANNOTATION

K8S = "1.33"
BOB = User("bob", groups=["jupyter-users"])
GINA = User("gina", groups=["jupyter-users", "gpu-users"])
ALICE = User("alice", groups=["jupyter-users", "jupyter-admins"])
SIZES = ["m64-quarter", "m64-whole", "m128-half", "gpu-t4", "gpu-a10g"]


def _configure(
    profiles: Profiles, user: User, request: dict[str, Any], **ctx: Any
) -> dict[str, Any]:
    options = cluster_options_for(profiles, user, OptionsContext(**ctx))
    return dict(options.get_configuration(options.parse_options(request), user))


# ------------------------------------------------------------------ worker sizes


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in SIZES])
def test_workers_of_a_size_pack_one_node(profiles: Profiles, name: str) -> None:
    size = next(s for s in profiles.dask.worker_sizes if s.name == name)
    pool = profiles.pools[size.pool]
    each = worker_resources(size, pool)
    n = size.workers_per_node
    assert n * each.cpu_m <= pool.request.cpu_m < n * (each.cpu_m + 1)
    assert n * each.memory_mib <= pool.request.memory_mib < n * (each.memory_mib + 1)
    assert each.gpus == (1 if pool.is_gpu else 0)  # one GPU per worker
    assert threads_for(each) == max(1, round(each.cpu_m / 1000))


def test_gpu_worker_threads_match_the_cores_per_gpu(profiles: Profiles) -> None:
    size = next(s for s in profiles.dask.worker_sizes if s.name == "gpu-a10g")
    pool = profiles.pools[size.pool]
    each = worker_resources(size, pool)
    assert pool.gpu_count == 4
    assert threads_for(each) == round(pool.request.cpu_m / pool.gpu_count / 1000)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        pytest.param(BOB, SIZES[:3], id="bob-cpu-only"),
        pytest.param(GINA, SIZES, id="gina-gpu-users"),
        pytest.param(ALICE, SIZES, id="alice-admin"),
        pytest.param(User("carol"), [], id="carol-no-group"),
    ],
)
def test_worker_sizes_follow_groups(
    profiles: Profiles, user: User, expected: list[str]
) -> None:
    admin = "jupyter-admins" in user.groups
    assert [s.name for s in worker_sizes_for(profiles, user.groups, admin)] == expected


# -------------------------------------------------------------- Kubernetes pods


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in SIZES])
def test_a_worker_is_billed_the_share_of_the_node_its_pod_requests(
    dask_pod: Callable[..., dict[str, Any]], profiles: Profiles, name: str
) -> None:
    size = next(s for s in profiles.dask.worker_sizes if s.name == name)
    pool = profiles.pools[size.pool]
    share = workers_per_node(size, pool)  # each worker is 1/share of a node
    request = {"worker_size": name, "max_workers": 2}
    pod = dask_pod(_configure(profiles, GINA, request), worker=True, instance="wb")
    requests = pod["spec"]["containers"][0]["resources"]["requests"]
    # The pod asks for 1/share of the node: share of them fill it, one more not.
    memory_mib = int(requests["memory"]) // 2**20
    assert memory_mib * share <= pool.request.memory_mib < memory_mib * (share + 1)
    cpu_m = round(float(requests["cpu"]) * 1000)
    assert cpu_m * share <= pool.request.cpu_m < cpu_m * (share + 1)
    assert int(requests.get("nvidia.com/gpu", 0)) * share == pool.gpu_count
    # It is billed, and its pod annotated with, the same share of the node's price.
    node = preferred_cost(pool, None, profiles.cost).per_hour
    price = worker_price(profiles, name)
    assert price is not None and price.per_hour == pytest.approx(node / share)
    annotated = float(pod["metadata"]["annotations"][PRICE_ANNOTATION])
    assert annotated == pytest.approx(pool.price_per_hour / share, abs=1e-4)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in SIZES])
def test_kube_worker_pod_lands_on_its_pool_and_validates(
    dask_pod: Callable[..., dict[str, Any]], profiles: Profiles, name: str
) -> None:
    size = next(s for s in profiles.dask.worker_sizes if s.name == name)
    pool = profiles.pools[size.pool]
    overrides = _configure(profiles, GINA, {"worker_size": name, "max_workers": 2})
    pod = dask_pod(overrides, worker=True, instance="wb")
    kubernetes_validate.validate(pod, K8S, strict=True)
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"wbspawner.io/pool": pool.name}
    tolerations = {(t["key"], t.get("value"), t["effect"]) for t in spec["tolerations"]}
    assert ("wbspawner.io/pool", pool.name, "NoSchedule") in tolerations
    assert ("wbspawner.io/capacity", "spot", "NoSchedule") in tolerations
    assert (("nvidia.com/gpu", None, "NoSchedule") in tolerations) == pool.is_gpu
    preferred = spec["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred[0]["preference"]["matchExpressions"][0]["values"] == ["spot"]
    container = spec["containers"][0]
    res = container["resources"]
    assert res["requests"] == res["limits"]
    each = worker_resources(size, pool)
    assert int(res["requests"]["memory"]) == each.memory_mib * 2**20
    assert float(res["requests"]["cpu"]) == pytest.approx(each.cpu_m / 1000)
    assert res["requests"].get("nvidia.com/gpu") == ("1" if pool.is_gpu else None)
    assert container["args"][container["args"].index("--nthreads") + 1] == str(
        threads_for(each)
    )
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["metadata"]["labels"]["wbspawner.io/user"] == "gina"


def test_kube_scheduler_pod_runs_on_the_scheduler_pool(
    dask_pod: Callable[..., dict[str, Any]], profiles: Profiles
) -> None:
    overrides = _configure(profiles, BOB, {"worker_size": "m128-half"})
    pod = dask_pod(overrides, worker=False, instance="wb")
    kubernetes_validate.validate(pod, K8S, strict=True)
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"wbspawner.io/pool": profiles.dask.scheduler_pool}
    res = spec["containers"][0]["resources"]
    assert float(res["limits"]["cpu"]) == profiles.dask.scheduler_cores
    assert int(res["limits"]["memory"]) == profiles.dask.scheduler_memory_gib * 2**30
    assert "nvidia.com/gpu" not in res["limits"]


def test_kube_overrides_use_the_notebook_image_and_known_traits(
    profiles: Profiles,
) -> None:
    image = "quay.io/jupyter/datascience-notebook:2026-07-20"
    overrides = _configure(profiles, BOB, {"image": image})
    assert overrides["image"] == image
    assert set(overrides) <= set(KubeClusterConfig.class_trait_names())
    assert overrides["idle_timeout"] == profiles.dask.idle_timeout_s


@pytest.mark.parametrize("backend", ["local", "kube"])
@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in SIZES])
def test_gateway_caps_the_cluster_at_max_workers(
    profiles: Profiles, backend: str, name: str
) -> None:
    overrides = _configure(
        profiles, GINA, {"worker_size": name, "max_workers": 3}, backend=backend
    )
    cls = KubeClusterConfig if backend == "kube" else LocalClusterConfig
    assert set(overrides) <= set(cls.class_trait_names())
    assert cls(**overrides).cluster_max_workers == 3


def test_local_backend_gets_whole_cores_and_no_pod_pieces(profiles: Profiles) -> None:
    overrides = _configure(
        profiles, BOB, {"worker_size": "m64-quarter"}, backend="local"
    )
    assert isinstance(overrides["worker_cores"], int)
    assert overrides["worker_cores"] == overrides["worker_threads"] == 2
    assert "image" not in overrides
    assert not any(k.endswith("_extra_pod_config") for k in overrides)


# ------------------------------------------------------------------ refusals


def test_bob_asking_for_a_gpu_worker_is_told_which_group_he_needs(
    profiles: Profiles,
) -> None:
    with pytest.raises(UserFacingError, match=r"'gpu-t4' is not available.*gpu-users"):
        _configure(profiles, BOB, {"worker_size": "gpu-t4"})


def test_unknown_size_lists_the_sizes(profiles: Profiles) -> None:
    with pytest.raises(UserFacingError, match="Unknown worker size 'huge'.*m64-whole"):
        _configure(profiles, BOB, {"worker_size": "huge"})


def test_user_in_no_group_may_not_start_clusters(profiles: Profiles) -> None:
    with pytest.raises(UserFacingError, match="may not start Dask clusters"):
        _configure(profiles, User("carol"), {"worker_size": "m64-quarter"})


def test_unlisted_image_is_refused_but_admins_may_use_any(profiles: Profiles) -> None:
    with pytest.raises(UserFacingError, match="'evil/miner:1' is not one of"):
        _configure(profiles, BOB, {"image": "evil/miner:1"})
    assert _configure(profiles, ALICE, {"image": "own/image:2"})["image"] == (
        "own/image:2"
    )


def test_empty_image_means_the_default(profiles: Profiles) -> None:
    overrides = _configure(profiles, BOB, {"image": ""})
    assert overrides["image"] == "quay.io/jupyter/scipy-notebook:2026-07-20"


# ------------------------------------------------------------------ limits


def _with_limits(profiles: Profiles, **changes: Any) -> Profiles:
    frozen = {k: MappingProxyType(v) for k, v in changes.items()}
    return dataclasses.replace(
        profiles, dask=dataclasses.replace(profiles.dask, **frozen)
    )


def test_limits_user_over_loosest_group_over_default(profiles: Profiles) -> None:
    tight = DaskLimits(max_clusters=1, max_workers=3)
    custom = _with_limits(
        profiles,
        user_limits={"bob": tight},
        group_limits={
            "a": DaskLimits(max_clusters=3, max_cores=10, max_gpus=None),
            "b": DaskLimits(max_clusters=4, max_cores=None, max_gpus=2),
        },
    )
    assert limits_for(custom, "bob", ["a"]) == tight
    assert limits_for(custom, "eve", ["a", "b"]) == DaskLimits(max_clusters=4)
    assert limits_for(custom, "eve", ["c"]) == profiles.dask.limits
    assert limits_for(profiles, "gina", GINA.groups).max_gpus == 8
    assert limits_for(profiles, "alice", ALICE.groups).max_clusters == 5
    assert limits_for(profiles, "bob", BOB.groups) == profiles.dask.limits


LIMITS = DaskLimits(
    max_clusters=2, max_workers=10, max_cores=20, max_memory_gib=100, max_gpus=2
)
RUNNING = ClusterUsage(name="c1", workers=6, cores=12, memory_gib=60, gpus=1)
WORKER = ClusterUsage(workers=1, cores=2, memory_gib=10, gpus=0)


@pytest.mark.parametrize(
    ("existing", "requested", "message"),
    [
        pytest.param(
            [RUNNING, dataclasses.replace(RUNNING, name="c2")],
            ClusterUsage(workers=1, cores=1, memory_gib=1),
            r"at most 2 Dask cluster\(s\).*already run 2 \(c1, c2\)",
            id="clusters",
        ),
        pytest.param(
            [RUNNING],
            ClusterUsage(workers=5, cores=5, memory_gib=5),
            "limit of 10 workers.*already hold 6.*max_workers=4 or fewer",
            id="workers",
        ),
        pytest.param(
            [RUNNING],
            ClusterUsage(workers=4, cores=9, memory_gib=5),
            "limit of 20 CPU cores.*needs up to 9.*max_workers=3 or fewer",
            id="cores",
        ),
        pytest.param(
            [RUNNING],
            ClusterUsage(workers=4, cores=4, memory_gib=42),
            "limit of 100 GiB of memory.*already hold 60",
            id="memory",
        ),
        pytest.param(
            [RUNNING],
            ClusterUsage(workers=2, cores=2, memory_gib=2, gpus=2),
            "limit of 2 GPUs",
            id="gpus",
        ),
    ],
)
def test_check_limits_names_the_limit_and_the_way_out(
    existing: list[ClusterUsage], requested: ClusterUsage, message: str
) -> None:
    with pytest.raises(UserFacingError, match=message):
        check_limits(LIMITS, existing, requested, per_worker=WORKER)


def test_check_limits_passes_within_limits() -> None:
    check_limits(LIMITS, [RUNNING], ClusterUsage(workers=4, cores=8, memory_gib=40))
    check_limits(DaskLimits(), [RUNNING] * 9, ClusterUsage(workers=99, gpus=9))


def test_gpus_without_gpu_limit_say_ask_an_admin() -> None:
    with pytest.raises(UserFacingError, match="not part of your Dask limits"):
        check_limits(DaskLimits(max_gpus=0), [], ClusterUsage(workers=1, gpus=1))


def test_handler_counts_running_clusters(profiles: Profiles) -> None:
    running = usage_from_config(
        "bob-1",
        _configure(profiles, BOB, {"worker_size": "m64-quarter", "max_workers": 15}),
    )
    assert running.workers == 15
    with pytest.raises(UserFacingError, match="max_workers=5 or fewer"):
        _configure(profiles, BOB, {"worker_size": "m64-quarter"}, existing=(running,))
    _configure(
        profiles,
        BOB,
        {"worker_size": "m64-quarter", "max_workers": 5},
        existing=(running,),
    )


def test_usage_counts_scheduler_workers_and_gpus(profiles: Profiles) -> None:
    overrides = _configure(profiles, GINA, {"worker_size": "gpu-t4", "max_workers": 3})
    usage = usage_from_config("g", overrides)
    each = worker_resources(profiles.dask.worker_sizes[3], profiles.pools["gpu-t4"])
    assert usage.workers == 3
    assert usage.gpus == 3
    assert usage.cores == pytest.approx(
        profiles.dask.scheduler_cores + 3 * each.cpu_m / 1000
    )
    assert usage.memory_gib == pytest.approx(
        profiles.dask.scheduler_memory_gib + 3 * each.memory_mib / 1024, abs=1e-3
    )


@pytest.mark.parametrize(
    ("limits", "per_cluster", "expected"),
    [
        pytest.param(
            DaskLimits(max_clusters=2, max_workers=20), 50, (10, 20), id="share"
        ),
        pytest.param(DaskLimits(), 50, (50, 50), id="no-limits"),
        pytest.param(DaskLimits(max_workers=0), 50, (1, 1), id="at-least-one"),
        pytest.param(DaskLimits(max_clusters=5, max_workers=50), 8, (1, 8), id="cap"),
    ],
)
def test_max_workers_bounds(
    limits: DaskLimits, per_cluster: int, expected: tuple[int, int]
) -> None:
    assert max_workers_bounds(limits, per_cluster) == expected


def test_ledger_counts_recent_clusters_until_listed_or_old() -> None:
    now = [100.0]
    ledger = UsageLedger(hold_s=60, clock=lambda: now[0])
    ledger.remember("bob", ClusterUsage(name="new", workers=2))
    old = ClusterUsage(name="old", workers=1)
    assert [u.name for u in ledger.merge("bob", [old])] == ["old", "new"]
    now[0] += 61
    assert [u.name for u in ledger.merge("bob", [old])] == ["old"]
    ledger.remember("bob", ClusterUsage(name="listed"))
    assert [u.name for u in ledger.merge("bob", [ClusterUsage(name="listed")])] == [
        "listed"
    ]
    assert ledger.merge("bob", []) == ()


def test_kube_scheduler_pod_never_runs_on_spot(
    dask_pod: Callable[..., dict[str, Any]], profiles: Profiles
) -> None:
    """Workers prefer spot; a scheduler requires on-demand (a reclaim ends it all)."""
    overrides = _configure(profiles, BOB, {"worker_size": "m128-half"})
    scheduler = dask_pod(overrides, worker=False, instance="wb")["spec"]["affinity"]
    terms = scheduler["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {
                    "key": "wbspawner.io/capacity",
                    "operator": "In",
                    "values": ["on-demand"],
                }
            ]
        }
    ]
    assert (
        "preferredDuringSchedulingIgnoredDuringExecution"
        not in scheduler["nodeAffinity"]
    )
    worker = dask_pod(overrides, worker=True, instance="wb")["spec"]["affinity"]
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution" not in worker["nodeAffinity"]
    )
