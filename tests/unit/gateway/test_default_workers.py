"""A cluster's default ``max_workers`` fits every limit of its user.

Issue item: gina (gpu-users: 8 GPUs, 2 clusters) was refused
``new_cluster(worker_size="gpu-t4")`` because the default, 20 workers // 2
clusters, ignored ``max_gpus``.
"""

from __future__ import annotations

from typing import Any

import pytest
from dask_gateway_server.models import User

from tests.paths import REPO
from wbspawner.gateway.limits import (
    ClusterUsage,
    default_workers,
    limits_for,
    usage_from_config,
)
from wbspawner.gateway.options import BackendKind, OptionsContext, cluster_options_for
from wbspawner.model import DaskLimits, Profiles
from wbspawner.profiles.loader import load_profiles

BOB = User("bob", groups=["jupyter-users"])
GINA = User("gina", groups=["jupyter-users", "gpu-users"])
ALICE = User("alice", groups=["jupyter-users", "jupyter-admins"])
SCHEDULER = ClusterUsage(cores=1, memory_gib=2)


@pytest.fixture(scope="module")
def profiles() -> Profiles:
    return load_profiles([REPO / "profiles"])


def configure(
    profiles: Profiles,
    user: User,
    request: dict[str, Any],
    backend: BackendKind = "kube",
) -> dict[str, Any]:
    options = cluster_options_for(profiles, user, OptionsContext(backend=backend))
    return dict(options.get_configuration(options.parse_options(request), user))


@pytest.mark.parametrize(
    ("limits", "worker", "expected"),
    [
        pytest.param(
            DaskLimits(max_clusters=2, max_workers=20),
            ClusterUsage(workers=1, cores=2, memory_gib=15),
            10,
            id="workers-only",
        ),
        pytest.param(
            DaskLimits(max_clusters=2, max_workers=20, max_gpus=8),
            ClusterUsage(workers=1, cores=4, memory_gib=15, gpus=1),
            4,
            id="gpus-shared-by-two-clusters",
        ),
        pytest.param(
            DaskLimits(max_clusters=2, max_workers=20, max_cores=80),
            ClusterUsage(workers=1, cores=7.9, memory_gib=60),
            4,
            id="cores-less-the-scheduler",
        ),
        pytest.param(
            DaskLimits(max_clusters=1, max_memory_gib=62),
            ClusterUsage(workers=1, cores=1, memory_gib=15),
            4,
            id="memory",
        ),
        pytest.param(
            DaskLimits(max_clusters=2, max_gpus=1),
            ClusterUsage(workers=1, gpus=1),
            1,
            id="at-least-one",
        ),
        pytest.param(
            DaskLimits(max_clusters=2, max_gpus=8),
            ClusterUsage(workers=1, cores=2, memory_gib=15),
            25,  # 50 per cluster, shared by 2 clusters
            id="cpu-workers-ignore-the-gpu-limit",
        ),
    ],
)
def test_default_workers_is_the_share_of_every_limit(
    limits: DaskLimits, worker: ClusterUsage, expected: int
) -> None:
    assert default_workers(limits, 50, worker, SCHEDULER) == expected


@pytest.mark.parametrize("backend", ["kube", "local"])
def test_ginas_default_gpu_cluster_fits_her_gpus(
    profiles: Profiles, backend: BackendKind
) -> None:
    overrides = configure(profiles, GINA, {"worker_size": "gpu-t4"}, backend)
    usage = usage_from_config("g", overrides)
    assert limits_for(profiles, "gina", GINA.groups).max_gpus == 8
    assert usage.gpus == usage.workers == 4  # two default clusters fit 8 GPUs


@pytest.mark.parametrize("backend", ["kube", "local"])
@pytest.mark.parametrize("user", [BOB, GINA, ALICE], ids=lambda u: u.name)
def test_two_default_clusters_of_any_size_fit_the_limits(
    profiles: Profiles, user: User, backend: BackendKind
) -> None:
    limits = limits_for(profiles, user.name, user.groups)
    options = cluster_options_for(profiles, user, OptionsContext(backend=backend))
    sizes = options.fields[0].options
    for size in sizes:
        one = usage_from_config(
            "c", configure(profiles, user, {"worker_size": size}, backend)
        )
        clusters = limits.max_clusters or 1
        for attr, limit in [
            ("workers", limits.max_workers),
            ("cores", limits.max_cores),
            ("memory_gib", limits.max_memory_gib),
            ("gpus", limits.max_gpus),
        ]:
            if limit is not None and getattr(one, attr) > 0:
                assert clusters * getattr(one, attr) <= limit + 1e-9, (size, attr)


def test_bobs_default_stays_his_share_of_workers(profiles: Profiles) -> None:
    """The advertised default (the default size's share) is unchanged for bob."""
    options = cluster_options_for(profiles, BOB, OptionsContext())
    spec = {f["field"]: f for f in options.get_specification()}
    assert spec["max_workers"]["default"] == 10
    overrides = configure(profiles, BOB, {"worker_size": "m64-quarter"})
    assert overrides["cluster_max_workers"] == 10


def test_an_explicit_max_workers_is_kept(profiles: Profiles) -> None:
    overrides = configure(profiles, GINA, {"worker_size": "gpu-t4", "max_workers": 7})
    assert overrides["cluster_max_workers"] == 7
