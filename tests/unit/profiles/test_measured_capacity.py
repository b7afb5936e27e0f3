"""A measured node capacity, applied once at load, reaches every reader alike.

The request of a pool, what the spawn form gives KubeSpawner, what ``wbspawner
render`` shows, the Cluster Autoscaler template tags of the desired groups and
the rows of ``wbspawner catalog`` all read the instance facts the profiles carry.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from wbspawner.catalog import sizing
from wbspawner.model import Catalog, Profiles
from wbspawner.pools.desired import ClusterSpec, desired_state
from wbspawner.profiles.loader import load_profiles
from wbspawner.spawn.form import kubespawner_profiles

MEASURED = 60_000
"""MiB: below the estimate for r6i.2xlarge, so it sets the 64 GiB pool's request."""
MEMORY_TAG = "k8s.io/cluster-autoscaler/node-template/resources/memory"


@pytest.fixture(scope="module")
def measured_dir(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Path:
    out = tmp_path_factory.mktemp("measured") / "profiles"
    shutil.copytree(repo / "profiles", out, ignore=shutil.ignore_patterns("examples"))
    pools = out / "10-pools.yaml"
    text = pools.read_text(encoding="utf-8")
    assert text.rstrip().endswith("eviction_hard_mib: 100")  # sizing comes last
    pools.write_text(
        text + f"  measured_capacity_mib:\n    r6i.2xlarge: {MEASURED}\n",
        encoding="utf-8",
    )
    return out


@pytest.fixture(scope="module")
def measured(measured_dir: Path, catalog: Catalog) -> Profiles:
    return load_profiles([measured_dir], catalog)


@pytest.fixture
def cli_out(run_cli: Callable[..., tuple[int, str, str]]) -> Callable[..., str]:
    """``cli_out(*argv)``: what ``wbspawner`` prints when it succeeds."""

    def out(*argv: str) -> str:
        code, stdout, stderr = run_cli(*argv)
        assert (code, stderr) == (0, "")
        return stdout

    return out


def test_the_pools_request_comes_from_the_measured_capacity(
    measured: Profiles, profiles: Profiles, catalog: Catalog
) -> None:
    shipped = profiles
    pool = measured.pools["mem64"]
    assert measured.catalog.types["r6i.2xlarge"].measured_capacity_mib == MEASURED
    assert catalog.types["r6i.2xlarge"].measured_capacity_mib is None  # unchanged
    types = [measured.catalog.types[t] for t in pool.instance_types]
    assert pool.request == sizing.full_node_request(types, measured.sizing)
    assert pool.request.memory_mib < shipped.pools["mem64"].request.memory_mib
    assert shipped.catalog.types["r5.2xlarge"] == catalog.types["r5.2xlarge"]


def test_every_reader_sees_the_same_request(
    measured: Profiles,
    measured_dir: Path,
    catalog: Catalog,
    cluster_spec: Callable[..., ClusterSpec],
    cli_out: Callable[..., str],
) -> None:
    pool = measured.pools["mem64"]
    request_mib = pool.request.memory_mib

    entries = kubespawner_profiles(measured, ["jupyter-users"], False)
    large = next(e for e in entries if e["slug"] == "large")
    assert large["kubespawner_override"]["mem_guarantee"] == request_mib * 2**20

    who = ["--user", "bob", "--groups", "jupyter-users"]
    shown = json.loads(
        cli_out("render", *who, "--json", "--profiles", str(measured_dir))
    )
    size = next(s for s in shown["sizes"] if s["slug"] == "large")
    assert size["placement"]["requests"]["memory"] == f"{request_mib}Mi"

    # desired_state looks the pools' types up in the (unmeasured) catalogue
    desired = desired_state(measured, catalog, cluster_spec(measured, catalog))
    groups = [g for g in desired.groups if g.pool == "mem64"]
    # The template promises the allocatable: the request plus the DaemonSets.
    allocatable = request_mib + measured.sizing.daemonset_memory_mib
    assert {g.asg.tags[MEMORY_TAG] for g in groups} == {f"{allocatable}Mi"}

    rows = json.loads(cli_out("catalog", "--json", "--profiles", str(measured_dir)))
    row = next(r for r in rows["types"] if r["name"] == "r6i.2xlarge")
    assert (row["capacity_mib"], row["capacity_source"]) == (MEASURED, "measured")
    assert row["allocatable_mib"] == allocatable
    assert row["request_memory_mib"] == request_mib
