"""The profiles JSON Schema: its contract (docs, closed objects) and its errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.paths import REPO
from wbspawner import model
from wbspawner.profiles.safe_yaml import parse_yaml
from wbspawner.profiles.schema import profiles_schema, schema_problems


def _walk(node: Any, where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield every subschema (a dict) with a readable location."""
    if isinstance(node, Mapping):
        yield where, node
        for key, value in node.items():
            if key in ("properties", "$defs", "patternProperties"):
                for name, sub in value.items():
                    yield from _walk(sub, f"{where}/{key}/{name}")
            elif isinstance(value, Mapping):
                yield from _walk(value, f"{where}/{key}")
            elif isinstance(value, list):
                for i, sub in enumerate(value):
                    yield from _walk(sub, f"{where}/{key}/{i}")


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(profiles_schema())
    assert profiles_schema()["$schema"].endswith("2020-12/schema")


def test_every_property_has_a_description() -> None:
    missing = [
        f"{where}/properties/{name}"
        for where, node in _walk(profiles_schema(), "#")
        for name, prop in node.get("properties", {}).items()
        if not str(prop.get("description", "")).strip()
    ]
    assert missing == []


def test_every_object_forbids_unknown_keys() -> None:
    """An object either lists its keys (additionalProperties: false) or is a map."""
    open_objects = []
    for where, node in _walk(profiles_schema(), "#"):
        if node.get("type") != "object":
            continue
        extra = node.get("additionalProperties")
        if "properties" in node:
            ok = extra is False
        else:  # a map keyed by names: values must have a typed schema
            ok = isinstance(extra, Mapping) and ("type" in extra or "$ref" in extra)
        if not ok:
            open_objects.append(where)
    assert open_objects == []


def test_walk_sees_every_section() -> None:
    """Guard the two contract tests above: the walker must reach nested objects."""
    places = {where for where, _ in _walk(profiles_schema(), "#")}
    for expected in (
        "#/properties/pools",
        "#/$defs/pool/properties/labels",
        "#/$defs/window",
        "#/properties/dask/properties/group_limits",
        "#/properties/sizing/properties/measured_capacity_mib",
    ):
        assert expected in places


def _schema_default(path: list[str]) -> Any:
    node: Mapping[str, Any] = profiles_schema()
    for key in path:
        node = node[key]
    return node["default"]


@pytest.mark.parametrize(
    ("schema_path", "cls", "field"),
    [
        pytest.param(
            ["$defs", "pool", "properties", "max_nodes"],
            model.Pool,
            "max_nodes",
            id="pool-max",
        ),
        pytest.param(
            ["$defs", "pool", "properties", "root_volume_gib"],
            model.Pool,
            "root_volume_gib",
            id="pool-root",
        ),
        pytest.param(
            ["$defs", "pool", "properties", "purpose"],
            model.Pool,
            "purpose",
            id="purpose",
        ),
        pytest.param(
            ["$defs", "size", "properties", "home_size_gib"],
            model.Size,
            "home_size_gib",
            id="home-size",
        ),
        pytest.param(
            ["properties", "sizing", "properties", "daemonset_memory_mib"],
            model.SizingSettings,
            "daemonset_memory_mib",
            id="ds-memory",
        ),
        pytest.param(
            ["properties", "sizing", "properties", "eviction_hard_mib"],
            model.SizingSettings,
            "eviction_hard_mib",
            id="eviction",
        ),
        pytest.param(
            ["properties", "cost", "properties", "spot_discount"],
            model.CostSettings,
            "spot_discount",
            id="spot-discount",
        ),
        pytest.param(
            ["properties", "warm", "properties", "mode"],
            model.WarmSettings,
            "mode",
            id="mode",
        ),
        pytest.param(
            ["properties", "homes", "properties", "retention_days"],
            model.HomeSettings,
            "retention_days",
            id="retention",
        ),
        pytest.param(
            ["properties", "dask", "properties", "idle_timeout_s"],
            model.DaskSettings,
            "idle_timeout_s",
            id="dask-idle",
        ),
    ],
)
def test_documented_defaults_match_the_model(
    schema_path: list[str], cls: type, field: str
) -> None:
    """The schema's `default` (the admin docs) is what the dataclass applies."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    default = fields[field].default
    documented = _schema_default(schema_path)
    assert (list(default) if isinstance(default, tuple) else default) == documented


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, id=str(p.relative_to(REPO)))
        for p in sorted((REPO / "profiles").rglob("*.yaml"))
    ],
)
def test_shipped_profiles_files_pass_the_schema(path: Path) -> None:
    data, problems = parse_yaml(str(path), path.read_text())
    assert problems == []
    assert schema_problems(str(path), data) == []


MINIMAL = {
    "pools": {"p": {"instance_types": ["r5.large"], "zones": ["us-east-1a"]}},
    "sizes": [
        {
            "slug": "s",
            "display_name": "S",
            "pool": "p",
            "images": [{"slug": "i", "display_name": "I", "image": "x/y:1"}],
        }
    ],
}


def _with(path: list[str | int], value: Any) -> dict[str, Any]:
    """Return a deep copy of MINIMAL with `value` set at `path`."""
    doc: dict[str, Any] = yaml.safe_load(yaml.safe_dump(MINIMAL))
    node: Any = doc
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "where", "message"),
    [
        pytest.param(["bogus"], 1, "$.bogus", "unknown key 'bogus'", id="top"),
        pytest.param(
            ["pools", "p", "zone"],
            ["us-east-1a"],
            "$.pools.p.zone",
            "did you mean 'zones'",
            id="pool",
        ),
        pytest.param(
            ["sizes", 0, "x"], 1, "$.sizes[0].x", "unknown key 'x'", id="size"
        ),
        pytest.param(
            ["sizes", 0, "images", 0, "x"],
            1,
            "$.sizes[0].images[0].x",
            "unknown key",
            id="image",
        ),
        pytest.param(["groups", "x"], [], "$.groups.x", "unknown key", id="groups"),
        pytest.param(["dask", "x"], 1, "$.dask.x", "unknown key", id="dask"),
        pytest.param(
            ["dask", "worker_sizes"],
            [{"name": "w", "pool": "p", "x": 1}],
            "$.dask.worker_sizes[0].x",
            "unknown key",
            id="worker-size",
        ),
        pytest.param(
            ["dask", "limits"],
            {"x": 1},
            "$.dask.limits.x",
            "unknown key",
            id="dask-limits",
        ),
        pytest.param(["warm", "x"], 1, "$.warm.x", "unknown key", id="warm"),
        pytest.param(
            ["warm", "schedules"],
            [
                {
                    "name": "s",
                    "pool": "p",
                    "windows": [
                        {"days": "mon", "start": "01:00", "end": "02:00", "x": 1}
                    ],
                }
            ],
            "$.warm.schedules[0].windows[0].x",
            "unknown key",
            id="window",
        ),
        pytest.param(["cost", "x"], 1, "$.cost.x", "unknown key", id="cost"),
        pytest.param(
            ["budgets"],
            [{"group": "g", "monthly": 1, "x": 1}],
            "$.budgets[0].x",
            "unknown key",
            id="budget",
        ),
        pytest.param(["homes", "x"], 1, "$.homes.x", "unknown key", id="homes"),
        pytest.param(["sizing", "x"], 1, "$.sizing.x", "unknown key", id="sizing"),
        pytest.param(
            ["pools", "p", "max_nodes"],
            "3",
            "$.pools.p.max_nodes",
            "must be a whole number, not a string ('3')",
            id="type",
        ),
        pytest.param(
            ["sizes", 0, "default"],
            "yes",
            "$.sizes[0].default",
            "must be true or false",
            id="bool",
        ),
        pytest.param(
            ["pools", "p", "capacity_types"],
            [],
            "$.pools.p.capacity_types",
            "must not be empty",
            id="empty",
        ),
        pytest.param(
            ["budgets"],
            [{"group": "g", "monthly": -1}],
            "$.budgets[0].monthly",
            "must be greater than 0",
            id="negative",
        ),
        pytest.param(
            ["pools", "p", "zones"],
            ["useast1a"],
            "$.pools.p.zones[0]",
            "'useast1a' is not valid",
            id="pattern",
        ),
        pytest.param(
            ["sizes", 0, "images"],
            [],
            "$.sizes[0].images",
            "must not be empty",
            id="no-images",
        ),
    ],
)
def test_schema_problem_is_located_and_worded(
    path: list[str | int], value: Any, where: str, message: str
) -> None:
    problems = schema_problems("f.yaml", _with(path, value))
    assert any(p.path == where and message in p.message for p in problems), problems


def test_minimal_document_passes_and_merge_sections_are_optional() -> None:
    assert schema_problems("f.yaml", MINIMAL) == []
    assert schema_problems("f.yaml", {}) == []
    assert schema_problems("f.yaml", {"groups": {"user_groups": ["a"]}}) == []


def test_every_error_is_reported_not_only_the_first() -> None:
    doc = _with(["pools", "p", "x"], 1)
    doc["sizes"][0]["y"] = 2
    doc["z"] = 3
    paths = {p.path for p in schema_problems("f.yaml", doc)}
    assert paths == {"$.pools.p.x", "$.sizes[0].y", "$.z"}
