"""Reading profiles YAML safely: plain data only, positions, duplicate keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from wbspawner.model import Catalog
from wbspawner.profiles.loader import load_profiles
from wbspawner.profiles.safe_yaml import parse_yaml


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


def test_python_tag_is_reported_not_executed(
    minimal_yaml: str,
    problems_of: Callable[[list[Path]], list[str]],
    write_profiles: Callable[[Path, dict[str, str]], Path],
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    tag = f'!!python/object/apply:os.system ["touch {marker}"]'
    text = minimal_yaml + f"homes:\n  storage_class: {tag}\n"
    lines = problems_of([write_profiles(tmp_path / "p", {"p.yaml": text})])
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


def test_empty_file_is_an_empty_document(
    write_profiles: Callable[[Path, dict[str, str]], Path],
    minimal_yaml: str,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    directory = write_profiles(
        tmp_path, {"00-empty.yaml": "", "10-p.yaml": minimal_yaml}
    )
    assert len(load_profiles([directory], catalog).sources) == 2


def test_non_utf8_file_is_a_problem(
    write_profiles: Callable[[Path, dict[str, str]], Path],
    minimal_yaml: str,
    problems_of: Callable[[list[Path]], list[str]],
    tmp_path: Path,
) -> None:
    directory = write_profiles(tmp_path, {"p.yaml": minimal_yaml})
    (directory / "q.yaml").write_bytes(b"a: \xff\xfe\n")
    assert problems_of([directory]) == [f"{directory}/q.yaml: $: not UTF-8 text"]
