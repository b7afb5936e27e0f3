"""Loading profiles: files, safe YAML, merge, checks, the frozen model, hot reload."""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from wbspawner.catalog import sizing
from wbspawner.catalog.instances import load_catalog
from wbspawner.errors import ProfileConfigError
from wbspawner.model import Profiles
from wbspawner.profiles.loader import (
    ProfilesSource,
    load_profiles,
    profile_files,
    profiles_from_documents,
)
from wbspawner.profiles.merge import Document, jsonpath, merge_documents
from wbspawner.profiles.parsers import parse_days, parse_time
from wbspawner.profiles.safe_yaml import parse_yaml

REPO = Path(__file__).resolve().parents[3]
PROFILES = REPO / "profiles"
EXAMPLES = sorted(p for p in (PROFILES / "examples").iterdir() if p.is_dir())
CATALOG = load_catalog()

BASE = """\
groups:
  user_groups: [users]
pools:
  small:
    instance_types: [r5.large, r6i.large]
    zones: [us-east-1a, us-east-1b]
sizes:
  - slug: small
    display_name: Small
    pool: small
    default: true
    images:
      - {slug: scipy, display_name: SciPy, image: "quay.io/jupyter/scipy-notebook:1"}
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def problems_of(paths: list[Path]) -> list[str]:
    with pytest.raises(ProfileConfigError, match=r".") as info:
        load_profiles(paths, CATALOG)
    return [str(p) for p in info.value.problems]


# --------------------------------------------------------------- the example sets


def test_shipped_profiles_have_every_size_class(profiles: Profiles) -> None:
    memory = {p.name: p.memory_mib // 1024 for p in profiles.pools.values()}
    assert {4, 16, 64, 128, 256, 512} <= set(memory.values())
    gpu = {
        p.name: (p.gpu_kind, p.gpu_count) for p in profiles.pools.values() if p.is_gpu
    }
    assert sorted(gpu.values()) == [("A10G", 1), ("A10G", 4), ("T4", 1)]
    assert profiles.pools["gpu-a10g-x4"].request.gpus == 4
    assert set(profiles.admin_groups) == {"jupyter-admins"}
    assert set(profiles.user_groups) == {"jupyter-users", "gpu-users"}
    assert [s.slug for s in profiles.sizes if s.default] == ["medium"]


def test_shipped_pools_prefer_spot_with_on_demand_fallback(profiles: Profiles) -> None:
    for pool in profiles.pools.values():
        assert set(pool.capacity_types) == {"spot", "on-demand"}, pool.name
    assert profiles.pools["mem64"].capacity_types == ("spot", "on-demand")


def test_pool_request_and_price_come_from_sizing_and_pricing(
    profiles: Profiles,
) -> None:
    for pool in profiles.pools.values():
        types = [CATALOG.types[t] for t in pool.instance_types]
        assert pool.request == sizing.full_node_request(types, profiles.sizing)
        assert pool.price_per_hour == min(t.price_per_hour for t in types)
        assert pool.request.memory_mib > 0 and pool.request.cpu_m > 0
        assert pool.request.memory_mib < pool.memory_mib


def test_sources_are_in_name_order_and_digest_is_a_sha256(profiles: Profiles) -> None:
    names = [Path(s).name for s in profiles.sources]
    assert names == sorted(names) and len(names) == 7
    assert re.fullmatch(r"[0-9a-f]{64}", profiles.digest)


@pytest.mark.parametrize("example", [pytest.param(p, id=p.name) for p in EXAMPLES])
def test_every_example_set_loads(example: Path) -> None:
    profiles = load_profiles([example], CATALOG)
    assert profiles.pools and profiles.sizes
    assert sum(s.default for s in profiles.sizes) == 1


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 2


def test_model_is_frozen_with_tuples_and_read_only_maps(profiles: Profiles) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        profiles.sizes[0].slug = "x"  # type: ignore[misc]
    assert isinstance(profiles.pools, MappingProxyType)
    with pytest.raises(TypeError, match="does not support item assignment"):
        profiles.pools["x"] = profiles.pools["cpu4"]  # type: ignore[index]
    size = profiles.size("gpu-t4")
    assert size is not None
    assert isinstance(size.images, tuple) and isinstance(size.allowed_groups, tuple)
    assert isinstance(size.environment, MappingProxyType)
    assert isinstance(profiles.dask.group_limits, MappingProxyType)
    window = profiles.warm.schedules[0].windows[0]
    assert window.days == frozenset({1, 2, 3, 4, 5})
    assert (window.start_minute, window.end_minute) == (8 * 60, 18 * 60)


def test_defaults_are_applied_from_the_dataclasses(tmp_path: Path) -> None:
    profiles = load_profiles([write(tmp_path, {"p.yaml": BASE})], CATALOG)
    pool = profiles.pools["small"]
    assert pool.capacity_types == ("spot", "on-demand")
    assert (pool.min_nodes, pool.max_nodes, pool.root_volume_gib) == (0, 10, 100)
    assert pool.purpose == ("user",) and pool.display_name == "16 GiB"
    size = profiles.sizes[0]
    assert size.description == "" and size.home_size_gib == 10
    assert profiles.admin_groups == ("jupyter-admins",)
    assert profiles.dask.worker_sizes == () and profiles.warm.schedules == ()


def test_measured_capacity_overrides_the_catalogue(tmp_path: Path) -> None:
    before = load_profiles([write(tmp_path / "a", {"p.yaml": BASE})], CATALOG)
    text = BASE + "sizing:\n  measured_capacity_mib:\n    r6i.large: 15000\n"
    after = load_profiles([write(tmp_path / "b", {"p.yaml": text})], CATALOG)
    assert after.sizing.measured_capacity_mib == {"r6i.large": 15000}
    r6i = dataclasses.replace(CATALOG.types["r6i.large"], measured_capacity_mib=15000)
    assert after.catalog.types["r6i.large"] == r6i and before.catalog == CATALOG
    expected = sizing.full_node_request([CATALOG.types["r5.large"], r6i], after.sizing)
    assert after.pools["small"].request == expected
    assert after.pools["small"].request != before.pools["small"].request


def test_dask_default_worker_size_is_the_first(tmp_path: Path) -> None:
    text = BASE.replace(
        "zones: [us-east-1a, us-east-1b]",
        "zones: [us-east-1a]\n    purpose: [user, dask]",
    )
    text += (
        "dask:\n  worker_sizes:\n    - {name: half, pool: small, workers_per_node: 2}\n"
    )
    profiles = load_profiles([write(tmp_path, {"p.yaml": text})], CATALOG)
    assert profiles.dask.default_worker_size == "half"
    assert profiles.dask.worker_sizes[0].display_name == "half"


# ------------------------------------------------------------------------- YAML


def test_unquoted_times_and_leading_zeros_mean_what_admins_mean() -> None:
    text = "a: 18:00\nb: 010\nc: 1e3\nd: 0x10\ne: 1_000\nf: 0.5\ng: -2\nh: .5\n"
    data, problems = parse_yaml("f", text)
    assert problems == []
    assert data == {
        "a": "18:00",
        "b": "010",
        "c": 1000.0,
        "d": 16,
        "e": 1000,
        "f": 0.5,
        "g": -2,
        "h": 0.5,
    }
    assert yaml.safe_load("a: 18:00")["a"] == 1080  # what plain YAML 1.1 does


def test_keys_are_the_text_written_and_dates_stay_strings() -> None:
    data, problems = parse_yaml("f", "2024: a\nyes: b\nnull: c\nd: 2026-07-20\n")
    assert problems == []
    assert data == {"2024": "a", "yes": "b", "null": "c", "d": "2026-07-20"}


_BOMB = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
    for p, n in zip("abcdef", "bcdefg", strict=True)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "a: !!set {x}\n", "tag 'tag:yaml.org,2002:set' is not allowed", id="set"
        ),
        pytest.param(
            "a: !!binary aGk=\n", "tag 'tag:yaml.org,2002:binary'", id="binary"
        ),
        pytest.param(
            "a: !!timestamp 2026-01-01\n", "timestamp' is not allowed", id="ts"
        ),
        pytest.param("a: &x [*x]\n", "nested more than 40 levels deep", id="recursive"),
        pytest.param("a: " + "[" * 2000 + "]" * 2000, "nested too deeply", id="deep"),
        pytest.param(_BOMB, "more than 100000 values", id="alias-bomb"),
    ],
)
def test_yaml_beyond_plain_data_is_refused(text: str, message: str) -> None:
    data, problems = parse_yaml("f.yaml", text)
    assert data is None
    assert len(problems) == 1 and message in problems[0].message


def test_python_tag_is_reported_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    tag = f'!!python/object/apply:os.system ["touch {marker}"]'
    text = BASE + f"homes:\n  storage_class: {tag}\n"
    lines = problems_of([write(tmp_path / "p", {"p.yaml": text})])
    assert not marker.exists()
    assert len(lines) == 1
    assert (
        "the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
        in lines[0]
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a: [1\n", "line 2, column 1: invalid YAML", id="unclosed"),
        pytest.param("a: 1\n b: 2\n", "line 2, column 3: invalid YAML", id="indent"),
        pytest.param("a: 1\n---\nb: 2\n", "expected a single document", id="two-docs"),
        pytest.param(
            "a: !custom 1\n", "the YAML tag '!custom' is not allowed", id="tag"
        ),
        pytest.param("a: *nowhere\n", "found undefined alias", id="alias"),
    ],
)
def test_yaml_errors_have_a_position(text: str, message: str) -> None:
    data, problems = parse_yaml("f.yaml", text)
    assert data is None
    assert [p.path for p in problems] == ["$"]
    assert message in problems[0].message


def test_duplicate_keys_are_reported_merge_keys_are_not() -> None:
    text = "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  x: 3\nm2: 1\nm2: 2\n"
    data, problems = parse_yaml("f", text)
    assert isinstance(data, dict) and data["m"] == {"x": 3, "y": 2}
    assert [p.message[:40] for p in problems] == [
        "line 6, column 1: duplicate key 'm2' (fi"
    ]


def test_empty_file_is_an_empty_document(tmp_path: Path) -> None:
    directory = write(tmp_path, {"00-empty.yaml": "", "10-p.yaml": BASE})
    assert len(load_profiles([directory], CATALOG).sources) == 2


def test_non_utf8_file_is_a_problem(tmp_path: Path) -> None:
    directory = write(tmp_path, {"p.yaml": BASE})
    (directory / "q.yaml").write_bytes(b"a: \xff\xfe\n")
    assert problems_of([directory]) == [f"{directory}/q.yaml: $: not UTF-8 text"]


# ------------------------------------------------------------------ files, merge


def test_directory_files_in_name_order_yml_too_hidden_and_subdirs_ignored(
    tmp_path: Path,
) -> None:
    directory = write(
        tmp_path, {"b.yml": "", "a.yaml": "", ".hidden.yaml": "", "c.txt": ""}
    )
    write(directory / "sub", {"d.yaml": ""})
    files, problems = profile_files([directory, directory / "a.yaml"])
    assert [f.name for f in files] == ["a.yaml", "b.yml"] and problems == []


def test_missing_paths_and_empty_directories_are_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    files, problems = profile_files([tmp_path / "nope", tmp_path / "empty"])
    assert files == []
    assert [p.message for p in problems] == [
        "no such file or directory",
        "no *.yaml or *.yml files in directory",
    ]


def test_pool_defined_twice_is_reported_at_the_later_file(tmp_path: Path) -> None:
    pool = "pools:\n  small:\n    instance_types: [r5.large]\n    zones: [us-east-1a]\n"
    directory = write(tmp_path, {"9-a.yaml": BASE, "10-b.yaml": pool})
    lines = problems_of([directory])
    assert lines == [
        (
            f"{directory}/9-a.yaml: $.pools.small: pool 'small' is already defined "
            f"in {directory}/10-b.yaml; a pool may be defined in one file only"
        )
    ]


def test_merge_concatenates_lists_keeps_origins_and_does_not_mutate() -> None:
    a = {"sizes": [{"slug": "a"}], "pools": {"p": {"zones": ["z"]}}, "cost": {"x": 1}}
    b = {"sizes": [{"slug": "b"}, {"slug": "c"}], "budgets": [{"group": "g"}]}
    before = copy.deepcopy((a, b))
    merged, problems = merge_documents([Document("a.yaml", a), Document("b.yaml", b)])
    assert problems == []
    assert [(i.file, i.path, i.value["slug"]) for i in merged.sizes] == [
        ("a.yaml", "$.sizes[0]", "a"),
        ("b.yaml", "$.sizes[0]", "b"),
        ("b.yaml", "$.sizes[1]", "c"),
    ]
    merged.sizes[0].value["slug"] = "changed"
    merged.pools["p"].value["zones"].append("y")
    assert (a, b) == before
    with pytest.raises(TypeError, match="does not support item assignment"):
        merged.pools["q"] = merged.pools["p"]  # type: ignore[index]


def test_single_sections_may_appear_once() -> None:
    docs = [
        Document("a.yaml", {"warm": {}}),
        Document("b.yaml", {"warm": {}, "cost": {}}),
    ]
    merged, problems = merge_documents(docs)
    assert [str(p) for p in problems] == [
        (
            "b.yaml: $.warm: section 'warm' is already defined in a.yaml; it may "
            "appear in one file only"
        )
    ]
    assert merged.sections["warm"].file == "a.yaml" and "cost" in merged.sections


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        pytest.param([], "$", id="root"),
        pytest.param(["sizes", 2, "pool"], "$.sizes[2].pool", id="list"),
        pytest.param(["pools", "gpu-t4"], "$.pools['gpu-t4']", id="bracket"),
        pytest.param(["labels", "it's"], "$.labels['it\\'s']", id="quote"),
    ],
)
def test_jsonpath(parts: list[str | int], expected: str) -> None:
    assert jsonpath(parts) == expected


def test_digest_follows_contents(tmp_path: Path) -> None:
    directory = write(tmp_path, {"p.yaml": BASE})
    first = load_profiles([directory], CATALOG).digest
    assert load_profiles([directory], CATALOG).digest == first
    (directory / "p.yaml").write_text(BASE + "# a comment\n")
    assert load_profiles([directory], CATALOG).digest != first


# ---------------------------------------------------------------- value parsers


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("00:00", 0), ("08:30", 510), ("23:59", 1439), ("24:00", 1440)],
)
def test_parse_time(value: str, minutes: int) -> None:
    assert parse_time(value) == minutes


@pytest.mark.parametrize(
    "value", ["24:01", "8:00", "25:00", "12:60", "noon", 800, None]
)
def test_parse_time_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="is not a time 'HH:MM'"):
        parse_time(value)


@pytest.mark.parametrize(
    ("value", "days"),
    [
        ("mon-fri", {1, 2, 3, 4, 5}),
        ("fri-mon", {5, 6, 7, 1}),
        ("weekends", {6, 7}),
        ("daily", {1, 2, 3, 4, 5, 6, 7}),
        (["Tue", "thursday"], {2, 4}),
        (["mon", "sat-sun"], {1, 6, 7}),
    ],
)
def test_parse_days(value: object, days: set[int]) -> None:
    assert parse_days(value) == frozenset(days)


@pytest.mark.parametrize("value", ["mon-fryday", ["mon", "funday"], [], [1], "", "mo"])
def test_parse_days_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="day"):
        parse_days(value)


# ------------------------------------------------------------------ robustness

_JUNK: list[object] = [None, "x", -1, 0, [], {}, True, 1.5, [None], {"k": None}]


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at] if at else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*at, i))
    return out


def _replaced(doc: Any, path: tuple[Any, ...], value: object) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _documents(directory: Path) -> list[tuple[str, Any]]:
    docs = []
    for f in sorted(directory.glob("*.yaml")):
        data, problems = parse_yaml(str(f), f.read_text())
        assert problems == []
        docs.append((str(f), data))
    return docs


def test_any_wrong_value_anywhere_gives_only_profile_config_errors() -> None:
    """Replace every value of an example (and a sample of the main set) with junk."""
    cases: list[list[tuple[str, Any]]] = []
    for directory in EXAMPLES:
        docs = _documents(directory)
        for n, (name, data) in enumerate(docs):
            for path in _paths(data):
                for junk in _JUNK[:4]:
                    changed = [
                        *docs[:n],
                        (name, _replaced(data, path, junk)),
                        *docs[n + 1 :],
                    ]
                    cases.append(changed)
    main = _documents(PROFILES)
    rng = random.Random(20260720)
    for _ in range(300):
        n = rng.randrange(len(main))
        name, data = main[n]
        path = rng.choice(_paths(data))
        changed = [
            *main[:n],
            (name, _replaced(data, path, rng.choice(_JUNK))),
            *main[n + 1 :],
        ]
        cases.append(changed)
    outcomes = {"ok": 0, "invalid": 0}
    for docs in cases:
        try:
            profiles_from_documents(docs, CATALOG)
        except ProfileConfigError as err:
            assert err.problems, docs
            outcomes["invalid"] += 1
        else:
            outcomes["ok"] += 1
    assert outcomes["invalid"] > 0.8 * len(cases), outcomes


# ------------------------------------------------------------------- hot reload


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    return write(tmp_path / "profiles", {"p.yaml": BASE})


def _source(directory: Path, clock: Callable[[], float]) -> ProfilesSource:
    log = logging.getLogger("test.profiles")
    return ProfilesSource([directory], CATALOG, log, interval_s=5.0, clock=clock)


def test_first_load_failure_raises(tmp_path: Path) -> None:
    directory = write(tmp_path, {"p.yaml": BASE + "bogus: 1\n"})
    with pytest.raises(ProfileConfigError, match=r"\$\.bogus: unknown key 'bogus'"):
        _source(directory, Clock()).current()


def test_reload_waits_for_the_interval_then_picks_up_a_change(source_dir: Path) -> None:
    clock = Clock()
    source = _source(source_dir, clock)
    first = source.current()
    _touch(
        source_dir / "p.yaml", BASE.replace("display_name: Small", "display_name: Tiny")
    )
    clock.now += 4.9
    assert source.current() is first
    clock.now += 0.2
    second = source.current()
    assert second.sizes[0].display_name == "Tiny" and second.digest != first.digest
    clock.now += 10
    assert source.current() is second  # nothing changed: no re-read


def test_new_file_is_noticed(source_dir: Path) -> None:
    clock = Clock()
    source = _source(source_dir, clock)
    assert source.current().budgets == ()
    (source_dir / "z.yaml").write_text("budgets:\n  - {group: users, monthly: 10}\n")
    clock.now += 6
    assert source.current().budgets[0].monthly == 10


def test_invalid_edit_keeps_last_good_and_logs_every_problem(
    source_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    source = _source(source_dir, clock)
    good = source.current()
    _touch(
        source_dir / "p.yaml", BASE.replace("pool: small", "pool: nowhere") + "x: 1\n"
    )
    clock.now += 6
    with caplog.at_level(logging.WARNING, logger="test.profiles"):
        assert source.current() is good
    assert source.last_error is not None
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("invalid (2 problems)" in m for m in messages)
    assert any("$.sizes[0].pool: unknown pool 'nowhere'" in m for m in messages)
    assert any("$.x: unknown key 'x'" in m for m in messages)
    assert "Traceback" not in caplog.text
    caplog.clear()
    clock.now += 6
    assert source.current() is good and caplog.records == []  # logged once
    _touch(
        source_dir / "p.yaml",
        BASE.replace("display_name: Small", "display_name: Fixed"),
    )
    clock.now += 6
    assert source.current().sizes[0].display_name == "Fixed"
    assert source.last_error is None
