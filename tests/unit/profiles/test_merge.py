"""Profiles files and their merge: which files, one definition each, digests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest

from wbspawner.model import Catalog
from wbspawner.profiles.loader import (
    load_profiles,
    profile_files,
)
from wbspawner.profiles.merge import Document, jsonpath, merge_documents


def test_directory_files_in_name_order_yml_too_hidden_and_subdirs_ignored(
    write_profiles: Callable[[Path, dict[str, str]], Path],
    tmp_path: Path,
) -> None:
    directory = write_profiles(
        tmp_path, {"b.yml": "", "a.yaml": "", ".hidden.yaml": "", "c.txt": ""}
    )
    write_profiles(directory / "sub", {"d.yaml": ""})
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


def test_pool_defined_twice_is_reported_at_the_later_file(
    write_profiles: Callable[[Path, dict[str, str]], Path],
    problems_of: Callable[[list[Path]], list[str]],
    minimal_yaml: str,
    tmp_path: Path,
) -> None:
    pool = "pools:\n  small:\n    instance_types: [r5.large]\n    zones: [us-east-1a]\n"
    directory = write_profiles(tmp_path, {"9-a.yaml": minimal_yaml, "10-b.yaml": pool})
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


def test_digest_follows_contents(
    write_profiles: Callable[[Path, dict[str, str]], Path],
    minimal_yaml: str,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    directory = write_profiles(tmp_path, {"p.yaml": minimal_yaml})
    first = load_profiles([directory], catalog).digest
    assert load_profiles([directory], catalog).digest == first
    (directory / "p.yaml").write_text(minimal_yaml + "# a comment\n")
    assert load_profiles([directory], catalog).digest != first
