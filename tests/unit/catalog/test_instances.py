"""The shipped instance catalogue: contents, parsing errors, rows for the CLI."""

from __future__ import annotations

import copy
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from wbspawner.catalog import sizing
from wbspawner.catalog.instances import (
    CatalogError,
    catalog_rows,
    catalog_to_dict,
    dump_catalog,
    load_catalog,
    parse_catalog,
    parse_instance_type,
)
from wbspawner.errors import ProfileConfigError
from wbspawner.model import SizingSettings

SIZES_7 = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
REQUIRED = [
    "t3.medium",
    "t3.large",
    "t3.xlarge",
    *[f"m5.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge")],
    *[f"m6i.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge")],
    "c5.xlarge",
    "c6i.xlarge",
    *[f"{fam}.{s}" for fam in ("r5", "r6i", "r7i") for s in SIZES_7],
    "g4dn.xlarge",
    "g4dn.2xlarge",
    "g4dn.12xlarge",
    *[f"g5.{s}" for s in ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge")],
    "g5.48xlarge",
    "g6.xlarge",
    "g6.12xlarge",
    "p3.2xlarge",
    "p4d.24xlarge",
]


def packaged() -> dict[str, Any]:
    text = resources.files("wbspawner.catalog").joinpath("catalog.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def test_packaged_catalogue_loads_with_provenance() -> None:
    catalog = load_catalog()
    assert catalog.region == "us-east-1"
    date.fromisoformat(catalog.date)
    assert "DescribeInstanceTypes" in catalog.source
    assert "published" in catalog.source  # prices not from the notes are flagged


@pytest.mark.parametrize("name", REQUIRED)
def test_packaged_catalogue_has_type_with_price_and_positive_numbers(
    name: str,
) -> None:
    it = load_catalog().types[name]
    assert it.name == name
    assert it.price_per_hour > 0
    assert min(it.vcpu, it.memory_mib, it.enis, it.ipv4_per_eni) > 0
    assert (it.gpu_count > 0) == (it.gpu_kind is not None) == (it.gpu_memory_mib > 0)
    assert sizing.full_node_request([it], SizingSettings()).memory_mib > 0


@pytest.mark.parametrize(
    ("name", "count", "kind", "price"),
    [
        # aws-eks-facts.md §6.3 GPU instance facts.
        pytest.param("g4dn.xlarge", 1, "T4", 0.526, id="g4dn.xlarge"),
        pytest.param("g4dn.12xlarge", 4, "T4", 3.912, id="g4dn.12xlarge"),
        pytest.param("g5.xlarge", 1, "A10G", 1.006, id="g5.xlarge"),
        pytest.param("g5.12xlarge", 4, "A10G", 5.672, id="g5.12xlarge"),
        pytest.param("g5.48xlarge", 8, "A10G", 16.288, id="g5.48xlarge"),
        pytest.param("g6.12xlarge", 4, "L4", 4.6016, id="g6.12xlarge"),
        pytest.param("p3.2xlarge", 1, "V100", 3.06, id="p3.2xlarge"),
        pytest.param("p4d.24xlarge", 8, "A100", 21.957642, id="p4d.24xlarge"),
    ],
)
def test_gpu_facts(name: str, count: int, kind: str, price: float) -> None:
    it = load_catalog().types[name]
    assert (it.gpu_count, it.gpu_kind, it.price_per_hour) == (count, kind, price)


def test_round_trip_and_file_is_in_canonical_form() -> None:
    catalog = load_catalog()
    assert parse_catalog(catalog_to_dict(catalog)) == catalog
    text = resources.files("wbspawner.catalog").joinpath("catalog.json").read_text()
    assert dump_catalog(catalog) == text


def test_load_catalog_from_a_path(tmp_path: Path) -> None:
    data = packaged()
    data["types"] = {"r5.large": data["types"]["r5.large"]}
    path = tmp_path / "cat.json"
    path.write_text(json.dumps(data))
    catalog = load_catalog(path)
    assert list(catalog.types) == ["r5.large"]
    assert load_catalog(str(path)) == catalog


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("{", r"cat.json: \$: invalid JSON: .*line 1", id="bad-json"),
        pytest.param("[]", r"cat.json: \$: must be a JSON object", id="not-object"),
    ],
)
def test_load_catalog_reports_unreadable_files(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "cat.json"
    path.write_text(content)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_load_catalog_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"nope.json: \$: cannot read"):
        load_catalog(tmp_path / "nope.json")


def entry(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = copy.deepcopy(packaged()["types"]["g5.xlarge"])
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


P = '$.types["g5.xlarge"]'


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        pytest.param(entry(colour="red"), f"{P}.colour", "not a known field", id="x"),
        pytest.param(entry(vcpu=...), f"{P}.vcpu", "is required", id="no-vcpu"),
        pytest.param(entry(vcpu=True), f"{P}.vcpu", "positive integer", id="bool"),
        pytest.param(entry(vcpu="4"), f"{P}.vcpu", "positive integer", id="str"),
        pytest.param(entry(enis=0), f"{P}.enis", "positive integer", id="zero"),
        pytest.param(
            entry(price_per_hour=...), f"{P}.price_per_hour", "required", id="no-price"
        ),
        pytest.param(
            entry(price_per_hour=-1), f"{P}.price_per_hour", "positive", id="neg"
        ),
        pytest.param(
            entry(gpu_count=-1), f"{P}.gpu_count", "non-negative", id="neg-gpus"
        ),
        pytest.param(
            entry(gpu_kind=None), f"{P}.gpu_kind", "required when gpu", id="no-kind"
        ),
        pytest.param(entry(gpu_count=0), f"{P}.gpu_count", "above 0", id="no-count"),
        pytest.param(entry(arch="sparc"), f"{P}.arch", "one of x86_64", id="arch"),
        pytest.param(
            entry(measured_capacity_mib=99999),
            f"{P}.measured_capacity_mib",
            "larger than memory_mib",
            id="measured-too-big",
        ),
        pytest.param([], P, "must be an object", id="not-object"),
    ],
)
def test_parse_instance_type_errors(data: object, path: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message) as info:
        parse_instance_type("g5.xlarge", data, "cat.json")
    assert [(p.file, p.path) for p in info.value.problems] == [("cat.json", path)]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        pytest.param({"region": ""}, "$.region", "non-empty string", id="region"),
        pytest.param({"date": "July"}, "$.date", "ISO date", id="date"),
        pytest.param({"extra": 1}, "$.extra", "not a known field", id="extra"),
        pytest.param({"types": {}}, "$.types", "non-empty object", id="no-types"),
    ],
)
def test_parse_catalog_header_errors(
    change: dict[str, Any], path: str, message: str
) -> None:
    data = packaged() | change
    with pytest.raises(CatalogError, match=message) as info:
        parse_catalog(data, "cat.json")
    assert [p.path for p in info.value.problems] == [path]


def test_parse_catalog_reports_every_problem() -> None:
    data = packaged()
    data["date"] = "soon"
    data["types"]["r5.large"]["vcpu"] = 0
    data["types"]["t3.medium"]["price_per_hour"] = "cheap"
    with pytest.raises(ProfileConfigError, match="r5.large") as info:
        parse_catalog(data, "cat.json")
    assert [p.path for p in info.value.problems] == [
        "$.date",
        '$.types["r5.large"].vcpu',
        '$.types["t3.medium"].price_per_hour',
    ]
    assert (
        str(info.value.problems[0])
        == "cat.json: $.date: must be an ISO date YYYY-MM-DD"
    )


def test_catalog_rows_for_the_cli() -> None:
    catalog = load_catalog()
    settings = SizingSettings()
    rows = {r["name"]: r for r in catalog_rows(catalog, settings)}
    assert list(rows) == list(catalog.types)
    r5 = rows["r5.2xlarge"]
    request = sizing.full_node_request([catalog.types["r5.2xlarge"]], settings)
    assert r5 == {
        "name": "r5.2xlarge",
        "vcpu": 8,
        "memory_gib": 64.0,
        "gpus": 0,
        "gpu_kind": None,
        "arch": "x86_64",
        "max_pods": 58,
        "capacity_mib": 63498,
        "capacity_source": "measured",
        "allocatable_mib": 63498 - 893 - 100,
        "request_memory_mib": request.memory_mib,
        "request_cpu_m": request.cpu_m,
        "price_per_hour": 0.504,
    }
    assert rows["r6i.2xlarge"]["capacity_source"] == "estimated"
    assert rows["g5.12xlarge"]["gpus"] == 4
    json.dumps(list(rows.values()))  # JSON-ready for --json


def test_catalog_rows_follow_the_max_pods_cap() -> None:
    rows = catalog_rows(load_catalog(), SizingSettings(max_pods=30))
    big = next(r for r in rows if r["name"] == "r5.16xlarge")
    assert big["max_pods"] == 30
    assert big["allocatable_mib"] == 510332 - (11 * 30 + 255) - 100
