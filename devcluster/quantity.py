"""Kubernetes quantities and resource arithmetic: parsing, requests, allocatable.

Quantities are parsed exactly (``fractions.Fraction``) and rounded up the way the
scheduler does: CPU to whole millicores, everything else to whole units (bytes,
GPUs, pods). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY_RE = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"


def parse_quantity(value: str | int | float) -> Fraction:
    """Parse a Kubernetes quantity (``"1.5Gi"``, ``"250m"``, ``"1e3"``, ``2``).

    Raises:
        ValueError: the text is not a quantity.
    """
    if isinstance(value, bool):
        raise ValueError(f"quantities must be strings or numbers, not {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    match = _QUANTITY_RE.match(str(value).strip())
    if match is None:
        raise ValueError(f"quantities must match the regular expression: {value!r}")
    number, exponent, suffix = match.groups()
    base = Fraction(number)
    if exponent:
        power = int(exponent[1:])
        scale = Fraction(10**power) if power >= 0 else Fraction(1, 10**-power)
        return base * scale
    if suffix in _BINARY:
        return base * Fraction(1024 ** _BINARY[suffix])
    return base * _DECIMAL[suffix or ""]


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


def amount(resource: str, value: str | int | float) -> int:
    """Return a quantity as the integer the scheduler compares.

    CPU in millicores, every other resource in whole units (memory in bytes),
    rounded up.
    """
    parsed = parse_quantity(value)
    return _ceil(parsed * 1000) if resource == CPU else _ceil(parsed)


def amounts(values: Mapping[str, Any] | None) -> dict[str, int]:
    """Convert ``{resource: quantity}`` to scheduler integers (bad values skipped)."""
    out: dict[str, int] = {}
    for name, value in (values or {}).items():
        try:
            out[name] = amount(name, value)
        except ValueError:
            continue
    return out


def _container_requests(container: Mapping[str, Any]) -> dict[str, int]:
    resources = container.get("resources") or {}
    requests = amounts(resources.get("requests"))
    # The apiserver defaults missing requests to the limits; be robust without it.
    for name, value in amounts(resources.get("limits")).items():
        requests.setdefault(name, value)
    return requests


def add_into(total: dict[str, int], more: Mapping[str, int]) -> dict[str, int]:
    """Add ``more`` into ``total`` (in place) and return it."""
    for name, value in more.items():
        total[name] = total.get(name, 0) + value
    return total


def pod_requests(pod: Mapping[str, Any]) -> dict[str, int]:
    """Return the effective requests of a pod, as kube-scheduler computes them.

    The sum over containers, at least the largest init container, plus
    ``spec.overhead``. Zero entries are dropped.
    """
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        add_into(total, _container_requests(container))
    for container in spec.get("initContainers") or []:
        for name, value in _container_requests(container).items():
            total[name] = max(total.get(name, 0), value)
    add_into(total, amounts(spec.get("overhead")))
    return {k: v for k, v in total.items() if v}


def sum_requests(pods: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Return the summed requests of pods, with ``pods`` set to their count."""
    total: dict[str, int] = {PODS: 0}
    for pod in pods:
        add_into(total, pod_requests(pod))
        total[PODS] += 1
    return total


def allocatable(node: Mapping[str, Any]) -> dict[str, int]:
    """Return a node's ``status.allocatable`` (falling back to capacity) as integers."""
    status = node.get("status") or {}
    return amounts(status.get("allocatable") or status.get("capacity"))


def mib(value_mib: int) -> str:
    """Format MiB as a quantity string (``"62249Mi"``)."""
    return f"{value_mib}Mi"


def kib(value_mib: int) -> str:
    """Format MiB as the kubelet reports memory (``"63742976Ki"``)."""
    return f"{value_mib * 1024}Ki"


def gib_ceil(value: str | int | float) -> int:
    """Return a storage quantity in GiB, rounded up (EBS sizes are whole GiB)."""
    return max(1, _ceil(parse_quantity(value) / 1024**3))
