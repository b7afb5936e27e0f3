"""Kubernetes quantities and pod requests."""

from __future__ import annotations

from fractions import Fraction

import pytest

from devcluster.quantity import amount, gib_ceil, parse_quantity, pod_requests
from tests.devcluster.objects_support import pod


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("1", Fraction(1), id="plain"),
        pytest.param("250m", Fraction(1, 4), id="milli"),
        pytest.param("1.5Gi", Fraction(3 * 2**29), id="binary-fraction"),
        pytest.param("64Ki", Fraction(65536), id="kibi"),
        pytest.param("2G", Fraction(2 * 10**9), id="decimal"),
        pytest.param("1e3", Fraction(1000), id="exponent"),
        pytest.param("5E-1", Fraction(1, 2), id="negative-exponent"),
        pytest.param(".5", Fraction(1, 2), id="leading-dot"),
        pytest.param(3, Fraction(3), id="int"),
    ],
)
def test_parse_quantity(text: str | int, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["abc", "1.2.3", "5Xi", "", "1 Gi"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="quantities must match"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("resource", "text", "value"),
    [
        pytest.param("cpu", "0.1", 100, id="cpu-millicores"),
        pytest.param("cpu", "1500m", 1500, id="cpu-milli"),
        pytest.param("cpu", "1u", 1, id="cpu-rounds-up"),
        pytest.param("memory", "1Mi", 2**20, id="memory-bytes"),
        pytest.param("memory", "1500m", 2, id="memory-rounds-up"),
        pytest.param("nvidia.com/gpu", "1", 1, id="gpu"),
    ],
)
def test_amount(resource: str, text: str, value: int) -> None:
    assert amount(resource, text) == value


def test_pod_requests_sum_containers_and_max_init() -> None:
    p = pod("p", cpu="1", memory="1Gi")
    p["spec"]["containers"].append(
        {"name": "side", "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}
    )
    p["spec"]["initContainers"] = [
        {"name": "init", "resources": {"requests": {"cpu": "4", "memory": "1Gi"}}}
    ]
    assert pod_requests(p) == {"cpu": 4000, "memory": 2 * 2**30}


def test_gib_ceil() -> None:
    assert (gib_ceil("10Gi"), gib_ceil("1500Mi"), gib_ceil("1")) == (10, 2, 1)
