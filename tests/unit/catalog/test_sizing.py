"""EKS node sizing: maxPods, kube-reserved, capacity estimate, full-node requests."""

from __future__ import annotations

import dataclasses
import re

import pytest

from wbspawner.catalog import sizing
from wbspawner.catalog.instances import load_catalog
from wbspawner.model import InstanceType, SizingSettings

CATALOG = load_catalog()
SETTINGS = SizingSettings()


def t(name: str) -> InstanceType:
    return CATALOG.types[name]


def without_measurement(name: str) -> InstanceType:
    return dataclasses.replace(t(name), measured_capacity_mib=None)


def gib_to_mib(gib: float) -> float:
    return gib * 1024


# aws-eks-facts.md §5.2 "maxPods and kube-reserved for the relevant types":
# (type, ENIs, IPv4 per ENI, maxPods, kube-reserved memory MiB).
MAX_PODS_TABLE = [
    ("t3.medium", 3, 6, 17, 442),
    *[(n, 3, 10, 29, 574) for n in ("r5.large", "r6i.large", "r7i.large")],
    ("g4dn.xlarge", 3, 10, 29, 574),
    ("g4dn.2xlarge", 3, 10, 29, 574),
    *[
        (f"{fam}.{size}", 4, 15, 58, 893)
        for fam in ("r5", "r6i", "r7i")
        for size in ("xlarge", "2xlarge")
    ],
    ("m5.xlarge", 4, 15, 58, 893),
    *[(n, 4, 15, 58, 893) for n in ("g5.xlarge", "g5.2xlarge", "g6.xlarge")],
    ("p3.2xlarge", 4, 15, 58, 893),
    *[
        (f"{fam}.{size}", 8, 30, 234, 2829)
        for fam in ("r5", "r6i", "r7i")
        for size in ("4xlarge", "8xlarge", "12xlarge")
    ],
    *[
        (n, 8, 30, 234, 2829)
        for n in ("g4dn.12xlarge", "g5.4xlarge", "g5.8xlarge", "g6.12xlarge")
    ],
    *[(f"{fam}.16xlarge", 15, 50, 737, 8362) for fam in ("r5", "r6i", "r7i")],
    ("g5.12xlarge", 15, 50, 737, 8362),
    ("p4d.24xlarge", 15, 50, 737, 8362),
    ("g5.48xlarge", 7, 50, 345, 4050),
]


@pytest.mark.parametrize(
    ("name", "enis", "ips", "pods", "reserved"),
    [pytest.param(*row, id=row[0]) for row in MAX_PODS_TABLE],
)
def test_max_pods_and_kube_reserved_match_notes_table(
    name: str, enis: int, ips: int, pods: int, reserved: int
) -> None:
    it = t(name)
    assert (it.enis, it.ipv4_per_eni) == (enis, ips)
    assert sizing.max_pods(it) == pods
    assert sizing.kube_reserved_memory_mib(sizing.max_pods(it)) == reserved


def test_max_pods_cap_applies_and_kube_reserved_follows_it() -> None:
    big = t("r5.16xlarge")
    assert sizing.max_pods(big, 30) == 30
    assert sizing.max_pods(t("t3.medium"), 30) == 17
    capped = sizing.allocatable(big, SizingSettings(max_pods=30))
    uncapped = sizing.allocatable(big, SETTINGS)
    # 11 MiB per pod no longer reserved for 737 - 30 pods.
    assert capped.memory_mib - uncapped.memory_mib == 11 * (737 - 30)


def test_max_pods_falls_back_to_110_without_eni_data() -> None:
    odd = dataclasses.replace(t("r5.large"), enis=0)
    assert sizing.max_pods(odd) == 110


@pytest.mark.parametrize(
    ("vcpu", "reserved_m"),
    [
        pytest.param(1, 60, id="1-core-6pct"),
        pytest.param(2, 70, id="2-cores-plus-1pct"),
        pytest.param(4, 80, id="4-cores-plus-half-pct"),
        pytest.param(5, 82, id="5-cores-quarter-pct-rounds-down"),
        pytest.param(8, 90, id="8-cores"),
        pytest.param(16, 110, id="16-cores"),
        pytest.param(64, 230, id="64-cores"),
        pytest.param(96, 310, id="96-cores"),
    ],
)
def test_kube_reserved_cpu_follows_nodeadm_ranges(vcpu: int, reserved_m: int) -> None:
    assert sizing.kube_reserved_cpu_m(vcpu) == reserved_m


MEASURED_TYPES = sorted(
    n for n, it in CATALOG.types.items() if it.measured_capacity_mib is not None
)


def test_measured_types_are_those_of_the_notes() -> None:
    # aws-eks-facts.md §5.3 measured table.
    assert MEASURED_TYPES == sorted(
        [
            "m5.xlarge",
            "g4dn.xlarge",
            "r5.xlarge",
            "g4dn.2xlarge",
            "r5.2xlarge",
            "r5.4xlarge",
            "r5.16xlarge",
        ]
    )


@pytest.mark.parametrize("name", MEASURED_TYPES)
def test_capacity_estimate_is_never_above_a_measured_capacity(name: str) -> None:
    it = t(name)
    assert it.measured_capacity_mib is not None
    estimate = sizing.estimated_capacity_mib(it.memory_mib)
    assert estimate <= it.measured_capacity_mib
    # ... and never far below it (the small types lose the largest share).
    assert estimate >= it.measured_capacity_mib * 0.985


def test_capacity_uses_measurement_when_present() -> None:
    it = t("r5.2xlarge")
    assert sizing.capacity_mib(it) == it.measured_capacity_mib
    estimate = sizing.capacity_mib(without_measurement("r5.2xlarge"))
    assert estimate == sizing.estimated_capacity_mib(65536)
    assert estimate != it.measured_capacity_mib


# aws-eks-facts.md §5.3 "Measured capacity/allocatable": the lowest measured
# allocatable in Gi (kubectl), from which 250 MiB of DaemonSet requests go (§5.4).
MEASURED_ALLOCATABLE_GIB = {
    "r5.2xlarge": 61.041,
    "r5.4xlarge": 121.492,
    "r5.16xlarge": 490.108,
}


@pytest.mark.parametrize("name", sorted(MEASURED_ALLOCATABLE_GIB))
def test_full_node_request_from_estimate_is_within_1pct_and_never_above(
    name: str,
) -> None:
    reference = gib_to_mib(MEASURED_ALLOCATABLE_GIB[name]) - 250
    request = sizing.full_node_request([without_measurement(name)], SETTINGS)
    assert request.memory_mib <= reference
    assert (reference - request.memory_mib) / reference <= 0.01


@pytest.mark.parametrize(
    ("name", "expected_mib"),
    [
        # measured capacity − kube-reserved − eviction-hard 100 − DaemonSets 250
        pytest.param("r5.2xlarge", 63498 - 893 - 100 - 250, id="r5.2xlarge"),
        pytest.param("r5.4xlarge", 127336 - 2829 - 100 - 250, id="r5.4xlarge"),
        pytest.param("r5.16xlarge", 510332 - 8362 - 100 - 250, id="r5.16xlarge"),
    ],
)
def test_full_node_request_with_measurement_is_exact(
    name: str, expected_mib: int
) -> None:
    reference = gib_to_mib(MEASURED_ALLOCATABLE_GIB[name]) - 250
    request = sizing.full_node_request([t(name)], SETTINGS)
    assert request.memory_mib == expected_mib
    assert reference - 1 < request.memory_mib <= reference


# aws-eks-facts.md §5.4 worked full-node requests (Gi, two decimals), without and
# with maxPods capped at 30.
@pytest.mark.parametrize(
    ("name", "request_gib", "capped_gib"),
    [
        pytest.param("m5.xlarge", 13.96, 14.26, id="m5.xlarge"),
        pytest.param("r5.2xlarge", 60.80, 61.10, id="r5.2xlarge"),
        pytest.param("r5.4xlarge", 121.25, 123.44, id="r5.4xlarge"),
        pytest.param("r5.16xlarge", 489.86, 497.46, id="r5.16xlarge"),
    ],
)
def test_full_node_requests_match_worked_table(
    name: str, request_gib: float, capped_gib: float
) -> None:
    plain = sizing.full_node_request([t(name)], SETTINGS).memory_mib / 1024
    capped = sizing.full_node_request([t(name)], SizingSettings(max_pods=30))
    assert plain == pytest.approx(request_gib, abs=0.006)
    assert capped.memory_mib / 1024 == pytest.approx(capped_gib, abs=0.006)


def test_full_node_request_cpu_subtracts_reserved_and_daemonsets() -> None:
    request = sizing.full_node_request([t("r5.2xlarge")], SETTINGS)
    assert request.cpu_m == 8000 - 90 - 200
    assert request.gpus == 0


@pytest.mark.parametrize(
    ("name", "gpus", "vcpu"),
    [
        pytest.param("g4dn.xlarge", 1, 4, id="g4dn.xlarge"),
        pytest.param("g5.xlarge", 1, 4, id="g5.xlarge"),
        pytest.param("g5.12xlarge", 4, 48, id="g5.12xlarge"),
        pytest.param("p4d.24xlarge", 8, 96, id="p4d.24xlarge"),
    ],
)
def test_gpu_types_subtract_gpu_daemonsets(name: str, gpus: int, vcpu: int) -> None:
    it = t(name)
    alloc = sizing.allocatable(it, SETTINGS)
    request = sizing.full_node_request([it], SETTINGS)
    assert alloc.gpus == request.gpus == gpus
    assert request.memory_mib == alloc.memory_mib - 250 - 100
    assert request.cpu_m == vcpu * 1000 - sizing.kube_reserved_cpu_m(vcpu) - 250
    cpu_twin = dataclasses.replace(it, gpu_count=0, gpu_kind=None)
    cpu_request = sizing.full_node_request([cpu_twin], SETTINGS)
    assert cpu_request.memory_mib - request.memory_mib == 100
    assert cpu_request.cpu_m - request.cpu_m == 50


def test_g4dn_xlarge_measured_request() -> None:
    # §5.3: g4dn.xlarge allocatable 14.666 Gi; minus DaemonSets 250 + GPU 100 MiB.
    request = sizing.full_node_request([t("g4dn.xlarge")], SETTINGS)
    assert request.memory_mib == 15691 - 574 - 100 - 250 - 100
    assert request.memory_mib <= gib_to_mib(14.666) - 350


def test_full_node_request_is_the_minimum_over_types() -> None:
    types = [t("r5.2xlarge"), t("r6i.2xlarge"), t("r7i.2xlarge")]
    request = sizing.full_node_request(types, SETTINGS)
    each = [sizing.full_node_request([x], SETTINGS) for x in types]
    assert request.memory_mib == min(r.memory_mib for r in each)
    # r5.2xlarge is measured (higher); the estimated r6i/r7i set the minimum.
    assert request.memory_mib < each[0].memory_mib
    assert request.cpu_m == each[0].cpu_m


def test_full_node_request_of_no_types_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one instance type"):
        sizing.full_node_request([], SETTINGS)


def test_same_shape_accepts_same_size_families() -> None:
    types = [t("r5.4xlarge"), t("r6i.4xlarge"), t("r7i.4xlarge")]
    assert sizing.same_shape(types)
    assert sizing.shape_mismatch(types) is None
    assert sizing.same_shape([t("g5.xlarge")])


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        pytest.param(
            ["r5.2xlarge", "m5.4xlarge"],
            r"r5.2xlarge \(8 vCPU, 64 GiB\); m5.4xlarge \(16 vCPU, 64 GiB\)",
            id="vcpu",
        ),
        pytest.param(
            ["r5.xlarge", "r6i.xlarge", "m5.xlarge"],
            r"r5.xlarge, r6i.xlarge \(4 vCPU, 32 GiB\); m5.xlarge \(4 vCPU, 16 GiB\)",
            id="memory",
        ),
        pytest.param(
            ["g4dn.xlarge", "g5.xlarge"],
            r"g4dn.xlarge \(4 vCPU, 16 GiB, 1× T4\); g5.xlarge \(.*1× A10G\)",
            id="gpu-kind",
        ),
        pytest.param(
            ["g5.12xlarge", "r5.12xlarge"],
            r"g5.12xlarge \(48 vCPU, 192 GiB, 4× A10G\); r5.12xlarge",
            id="gpu-count",
        ),
    ],
)
def test_shape_mismatch_names_the_differing_types(
    names: list[str], expected: str
) -> None:
    types = [t(n) for n in names]
    assert not sizing.same_shape(types)
    message = sizing.shape_mismatch(types)
    assert message is not None
    assert message.startswith("instance types differ in shape: ")
    assert re.search(expected, message), message


def test_shape_mismatch_sees_architecture() -> None:
    arm = dataclasses.replace(t("r6i.4xlarge"), name="r6g.4xlarge", arch="arm64")
    message = sizing.shape_mismatch([t("r6i.4xlarge"), arm])
    assert message is not None
    assert "r6g.4xlarge (16 vCPU, 128 GiB, arm64)" in message


@pytest.mark.parametrize(
    ("name", "ips"),
    [
        pytest.param("t3.medium", 12, id="t3.medium"),
        pytest.param("r5.2xlarge", 30, id="r5.2xlarge"),
        pytest.param("r5.16xlarge", 100, id="r5.16xlarge"),
    ],
)
def test_pods_per_node_ips_counts_primary_and_warm_eni(name: str, ips: int) -> None:
    assert sizing.pods_per_node_ips(t(name)) == ips


def test_pods_per_node_ips_single_eni_type() -> None:
    one = dataclasses.replace(t("r5.large"), enis=1)
    assert sizing.pods_per_node_ips(one) == 10
