"""Usage scenarios for cost estimates: what a team does in a month, read from YAML.

This module owns the scenario file's format and its checks. A scenario says how
many users there are, how many hours they run each size (or a named instance
type), how much of that is on spot, how big homes, snapshots and S3 data are,
whether there is a NAT gateway and a load balancer, how many Dask worker hours
are used, and optionally the prices to use instead of the catalogue's (to
reproduce a published estimate). Example scenarios live in ``costs/scenarios/``.

Pure except :func:`load_scenario`, which reads the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wbspawner.errors import Problem, ProfileConfigError
from wbspawner.model import CostItem
from wbspawner.profiles.safe_yaml import parse_yaml

MONTHS_PER_YEAR = 12


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Hours of user servers of one size (or instance type) in a month."""

    size: str | None = None
    """A size slug of the profiles (priced from its pool)."""
    instance_type: str | None = None
    """Or an instance type (priced from the scenario's prices or the catalogue)."""
    hours_per_month: float
    """Hours per user per month."""
    users: int | None = None
    """Users doing this (default: the scenario's users)."""
    spot_share: float | None = None
    """Fraction of the hours on spot (default: the scenario's)."""

    @property
    def label(self) -> str:
        """The size slug or instance type."""
        return self.size or self.instance_type or "?"


@dataclass(frozen=True, slots=True, kw_only=True)
class DaskUsage:
    """Dask worker hours of one worker size in a month (all users together)."""

    worker_size: str
    worker_hours_per_month: float
    spot_share: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TypePrice:
    """A stated price of an instance type, USD per hour."""

    on_demand: float
    spot: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A month of use of the workbench, to estimate what it costs."""

    name: str
    users: int = 1
    spot_share: float = 1.0
    home_gib_per_user: float = 10.0
    snapshot_gib: float = 0.0
    s3_gib: float = 0.0
    s3_gb_month: float = 0.023
    nat_gateway: bool = True
    load_balancer: bool = True
    warm: bool = True
    """Count the profiles' warm schedules."""
    home_zones: int = 1
    """Zones that hold homes (for warm schedules with ``zones: homes``)."""
    compute: tuple[Usage, ...] = ()
    dask: tuple[DaskUsage, ...] = ()
    type_prices: Mapping[str, TypePrice] = field(default_factory=dict)
    """Stated prices by instance type (override the catalogue)."""
    base: tuple[CostItem, ...] | None = None
    """Always-on items replacing the profiles' ``cost.base``."""
    ebs_gb_month: float | None = None
    snapshot_gb_month: float | None = None
    source: str = "<scenario>"


class _Reader:
    """Collects problems while reading values out of a mapping."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, path, message))

    def mapping(self, value: object, path: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.fail(path, "expected a mapping")
        return {}

    def number(
        self, data: Mapping[str, Any], key: str, path: str, default: float | None
    ) -> float | None:
        value = data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.fail(f"{path}.{key}", "expected a number ≥ 0")
            return default
        return float(value)

    def share(self, data: Mapping[str, Any], key: str, path: str) -> float | None:
        value = self.number(data, key, path, None)
        if value is not None and value > 1:
            self.fail(f"{path}.{key}", "expected a fraction between 0 and 1")
            return None
        return value

    def flag(self, data: Mapping[str, Any], key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"$.{key}", "expected true or false")
            return default
        return value

    def items(self, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list):
            self.fail(f"$.{key}", "expected a list")
            return []
        return [self.mapping(v, f"$.{key}[{i}]") for i, v in enumerate(value)]


KNOWN_KEYS = frozenset(
    {
        "name",
        "description",
        "users",
        "spot_share",
        "home_gib_per_user",
        "snapshot_gib",
        "s3_gib",
        "s3_gb_month",
        "nat_gateway",
        "load_balancer",
        "warm",
        "home_zones",
        "compute",
        "dask",
        "prices",
        "base",
    }
)


def _usage(r: _Reader, item: Mapping[str, Any], path: str) -> Usage | None:
    size, itype = item.get("size"), item.get("instance_type")
    if (size is None) == (itype is None):
        r.fail(path, "give exactly one of size or instance_type")
        return None
    per_month = r.number(item, "hours_per_month", path, None)
    per_year = r.number(item, "hours_per_year", path, None)
    if (per_month is None) == (per_year is None):
        r.fail(path, "give exactly one of hours_per_month or hours_per_year")
        return None
    users = item.get("users")
    if users is not None and (not isinstance(users, int) or users < 0):
        r.fail(f"{path}.users", "expected a whole number ≥ 0")
        users = None
    hours = per_month if per_month is not None else (per_year or 0.0) / MONTHS_PER_YEAR
    return Usage(
        size=None if size is None else str(size),
        instance_type=None if itype is None else str(itype),
        hours_per_month=hours,
        users=users,
        spot_share=r.share(item, "spot_share", path),
    )


def _dask(r: _Reader, item: Mapping[str, Any], path: str) -> DaskUsage | None:
    name = item.get("worker_size")
    hours = r.number(item, "worker_hours_per_month", path, None)
    if not isinstance(name, str) or hours is None:
        r.fail(path, "expected worker_size and worker_hours_per_month")
        return None
    share = r.share(item, "spot_share", path)
    return DaskUsage(worker_size=name, worker_hours_per_month=hours, spot_share=share)


def _base(r: _Reader, data: Mapping[str, Any]) -> tuple[CostItem, ...] | None:
    if "base" not in data:
        return None
    items: list[CostItem] = []
    for i, item in enumerate(r.items(data, "base")):
        path = f"$.base[{i}]"
        count = item.get("count", 1)
        if not isinstance(item.get("name"), str) or not isinstance(count, int):
            r.fail(path, "expected a name and a whole count")
            continue
        items.append(
            CostItem(
                name=item["name"],
                per_hour=r.number(item, "per_hour", path, 0.0) or 0.0,
                per_month=r.number(item, "per_month", path, 0.0) or 0.0,
                count=count,
            )
        )
    return tuple(items)


def _prices(r: _Reader, data: Mapping[str, Any]) -> dict[str, TypePrice]:
    raw = r.mapping(data.get("instance_types", {}), "$.prices.instance_types")
    prices: dict[str, TypePrice] = {}
    for name, value in raw.items():
        path = f"$.prices.instance_types['{name}']"
        item = r.mapping(value, path)
        on_demand = r.number(item, "on_demand", path, None)
        if on_demand is None:
            r.fail(path, "expected on_demand (USD per hour)")
            continue
        prices[str(name)] = TypePrice(
            on_demand=on_demand, spot=r.number(item, "spot", path, None)
        )
    return prices


def parse_scenario(data: object, file: str = "<scenario>") -> Scenario:
    """Check a scenario document and return it.

    Args:
        data: the parsed YAML document.
        file: its file name, for problems.

    Returns:
        The scenario.

    Raises:
        ProfileConfigError: listing every problem found.
    """
    r = _Reader(file)
    doc = r.mapping(data, "$")
    for key in sorted(set(doc) - KNOWN_KEYS):
        r.fail(f"$.{key}", "unknown key")
    users = doc.get("users", 1)
    if not isinstance(users, int) or isinstance(users, bool) or users < 0:
        r.fail("$.users", "expected a whole number ≥ 0")
        users = 1
    prices = r.mapping(doc.get("prices", {}), "$.prices")
    compute = [
        _usage(r, u, f"$.compute[{i}]") for i, u in enumerate(r.items(doc, "compute"))
    ]
    dask = [_dask(r, d, f"$.dask[{i}]") for i, d in enumerate(r.items(doc, "dask"))]
    scenario = Scenario(
        name=str(doc.get("name", Path(file).stem)),
        users=users,
        spot_share=r.share(doc, "spot_share", "$") or 0.0,
        home_gib_per_user=r.number(doc, "home_gib_per_user", "$", 10.0) or 0.0,
        snapshot_gib=r.number(doc, "snapshot_gib", "$", 0.0) or 0.0,
        s3_gib=r.number(doc, "s3_gib", "$", 0.0) or 0.0,
        s3_gb_month=r.number(doc, "s3_gb_month", "$", 0.023) or 0.0,
        nat_gateway=r.flag(doc, "nat_gateway", True),
        load_balancer=r.flag(doc, "load_balancer", True),
        warm=r.flag(doc, "warm", True),
        home_zones=int(r.number(doc, "home_zones", "$", 1) or 0),
        compute=tuple(u for u in compute if u is not None),
        dask=tuple(d for d in dask if d is not None),
        type_prices=_prices(r, prices),
        base=_base(r, doc),
        ebs_gb_month=r.number(prices, "ebs_gb_month", "$.prices", None),
        snapshot_gb_month=r.number(prices, "snapshot_gb_month", "$.prices", None),
        source=file,
    )
    if r.problems:
        raise ProfileConfigError(r.problems)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file.

    Args:
        path: the YAML file.

    Returns:
        The scenario.

    Raises:
        ProfileConfigError: when the file cannot be read or is invalid.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ProfileConfigError([Problem(file, "$", f"cannot read: {err}")]) from None
    data, problems = parse_yaml(file, text)
    if problems:
        raise ProfileConfigError(problems)
    return parse_scenario(data, file)
