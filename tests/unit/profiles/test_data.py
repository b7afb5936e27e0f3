"""The ``data`` section: grants and volumes read, the union per user, every problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.paths import REPO
from wbspawner.model import Catalog, DataSettings, GroupData, S3Grant, SharedVolume
from wbspawner.profiles.checks.data import bucket_problem
from wbspawner.profiles.data_access import (
    DataAccess,
    access_for,
    access_key,
    access_sets,
    union_grants,
)
from wbspawner.profiles.loader import load_profiles

EXAMPLE = REPO / "profiles/examples/team-data"


def _grant(bucket: str, prefix: str = "", access: str = "read") -> S3Grant:
    return S3Grant(bucket=bucket, prefix=prefix, access=access)  # type: ignore[arg-type]


def test_the_example_is_read(catalog: Catalog) -> None:
    data = load_profiles([EXAMPLE], catalog).data
    a = data.groups["team-a"]
    assert a.s3 == (
        _grant("team-a", access="read-write"),
        _grant("reference-data", "curated/"),
    )
    (shared,) = a.volumes
    assert (shared.kind, shared.read_only, shared.access_point) == (
        "efs",
        True,
        "fsap-0123456789abcdef0",
    )
    scratch = data.groups["team-b"].volumes[1]
    assert (scratch.kind, scratch.server, scratch.path) == (
        "nfs",
        "nfs.internal.example.org",
        "/exports/scratch",
    )


def test_no_section_means_no_data(catalog: Catalog) -> None:
    profiles = load_profiles([REPO / "profiles"], catalog)
    assert profiles.data == DataSettings()
    assert access_for(profiles.data, ["jupyter-users"]) == DataAccess()


def test_a_prefix_gets_its_slash(
    tmp_path: Path,
    minimal_yaml: str,
    write_profiles: Callable[..., Path],
    catalog: Catalog,
) -> None:
    text = "data:\n  groups:\n    users:\n      s3: [{bucket: raw-data, prefix: in}]\n"
    d = write_profiles(tmp_path / "p", {"a.yaml": minimal_yaml, "b.yaml": text})
    assert load_profiles([d], catalog).data.groups["users"].s3 == (
        _grant("raw-data", "in/"),
    )


def test_every_problem_is_listed(
    tmp_path: Path,
    minimal_yaml: str,
    write_profiles: Callable[..., Path],
    problems_of: Callable[[list[Path]], list[str]],
) -> None:
    text = """\
data:
  groups:
    nobody:
      s3: [{bucket: ok-bucket}]
    users:
      s3:
        - {bucket: Bad_Bucket}
        - {bucket: 192.168.1.1}
        - {bucket: my..bucket}
        - {bucket: twice, prefix: a}
        - {bucket: twice, prefix: a/, access: read-write}
        - {bucket: fine, access: write}
      volumes:
        - {name: homes, mount_path: /home, claim: homes}
        - {name: two, mount_path: /data/two, claim: x, nfs: {server: s, path: /e}}
        - {name: none, mount_path: /data/none}
        - {name: same, mount_path: /data/two, claim: y}
        - {name: inner, mount_path: /data/two/inner, claim: z}
"""
    d = write_profiles(tmp_path / "p", {"a.yaml": minimal_yaml, "b.yaml": text})
    problems = "\n".join(problems_of([d]))
    assert "$.data.groups.nobody: unknown group 'nobody'" in problems
    assert "$.data.groups.users.s3[0].bucket" in problems  # pattern (schema)
    assert "looks like an IP address" in problems
    assert "no '..', '.-' or '-.'" in problems
    assert "s3://twice/a/ is granted twice to group 'users'" in problems
    assert "$.data.groups.users.s3[5].access" in problems  # enum (schema)
    assert "mount path /home would hide the home mounted at /home/jovyan" in problems
    assert "exactly one source of efs, nfs or claim (found: nfs, claim)" in problems
    assert "exactly one source of efs, nfs or claim (found: none)" in problems
    assert "mount path /data/two is already used by volume 'two'" in problems
    assert "/data/two/inner of volume 'inner' is nested with /data/two" in problems


def test_a_volume_named_twice_must_be_the_same(
    tmp_path: Path,
    minimal_yaml: str,
    write_profiles: Callable[..., Path],
    problems_of: Callable[[list[Path]], list[str]],
) -> None:
    text = """\
groups:
  user_groups: [users, others]
data:
  groups:
    users:
      volumes: [{name: shared, mount_path: /data/s, claim: a}]
    others:
      volumes: [{name: shared, mount_path: /data/s, claim: b, read_only: false}]
"""
    yaml = minimal_yaml.replace("groups:\n  user_groups: [users]\n", "")
    d = write_profiles(tmp_path / "p", {"a.yaml": yaml, "b.yaml": text})
    problems = "\n".join(problems_of([d]))
    assert "volume 'shared' is defined differently for group 'users'" in problems


def test_too_many_s3_groups_are_refused(
    tmp_path: Path,
    minimal_yaml: str,
    write_profiles: Callable[..., Path],
    problems_of: Callable[[list[Path]], list[str]],
) -> None:
    names = [f"g{i}" for i in range(9)]
    groups = "".join(f"    {n}:\n      s3: [{{bucket: b-{n}}}]\n" for n in names)
    text = f"groups:\n  user_groups: [{', '.join(names)}]\ndata:\n  groups:\n{groups}"
    yaml = minimal_yaml.replace("groups:\n  user_groups: [users]\n", "")
    d = write_profiles(tmp_path / "p", {"a.yaml": yaml, "b.yaml": text})
    assert "9 groups grant S3 buckets" in "\n".join(problems_of([d]))


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("team-a", True),
        ("a.b.c", True),
        ("a..b", False),
        ("a.-b", False),
        ("10.0.0.1", False),
        ("xn--abc", False),
        ("data-s3alias", False),
    ],
)
def test_bucket_rules(name: str, ok: bool) -> None:
    assert (bucket_problem(name) is None) is ok


@pytest.mark.parametrize(
    ("grants", "union"),
    [
        # the same prefix twice: read-write wins
        (
            [_grant("b", "x/"), _grant("b", "x/", "read-write")],
            [_grant("b", "x/", "read-write")],
        ),
        # a whole-bucket read covers a prefix read, not a prefix write
        (
            [_grant("b"), _grant("b", "x/"), _grant("b", "y/", "read-write")],
            [_grant("b"), _grant("b", "y/", "read-write")],
        ),
        # a shorter prefix covers a longer one of no more access
        ([_grant("b", "x/y/"), _grant("b", "x/")], [_grant("b", "x/")]),
        # another bucket is never covered
        ([_grant("b"), _grant("bb", "x/")], [_grant("b"), _grant("bb", "x/")]),
    ],
)
def test_union_of_grants(grants: list[S3Grant], union: list[S3Grant]) -> None:
    assert union_grants(grants) == tuple(union)
    assert union_grants(reversed(grants)) == tuple(union)


def _settings(**groups: GroupData) -> DataSettings:
    return DataSettings(groups=groups)


def _volume(name: str, read_only: bool = True) -> SharedVolume:
    return SharedVolume(
        name=name,
        mount_path=f"/data/{name}",
        read_only=read_only,
        kind="claim",
        claim=name,
    )


def test_a_users_union() -> None:
    settings = _settings(
        a=GroupData(s3=(_grant("ta"),), volumes=(_volume("v"),)),
        b=GroupData(
            s3=(_grant("tb", access="read-write"),), volumes=(_volume("v", False),)
        ),
        c=GroupData(volumes=(_volume("w"),)),
    )
    both = access_for(settings, ["b", "a", "other"])
    assert both.s3 == (_grant("ta"), _grant("tb", access="read-write"))
    assert both.volumes == (_volume("v", False),)
    assert both.service_account == f"wbspawner-data-{access_key(both.s3)}"
    only_volumes = access_for(settings, ["c"])
    assert only_volumes.service_account is None
    assert only_volumes.volumes == (_volume("w"),)
    assert access_for(settings, ["x"]).empty


def test_access_sets_are_every_distinct_union() -> None:
    settings = _settings(
        a=GroupData(s3=(_grant("ta"),)),
        b=GroupData(s3=(_grant("tb"),)),
        same_as_a=GroupData(s3=(_grant("ta"),)),
        none=GroupData(volumes=(_volume("v"),)),
    )
    sets = access_sets(settings)
    # {a}, {b}, {a, b}: same_as_a adds no distinct union
    assert sorted(tuple(g.bucket for g in s.grants) for s in sets.values()) == [
        ("ta",),
        ("ta", "tb"),
        ("tb",),
    ]
    by_groups = {s.groups: s for s in sets.values()}
    assert set(by_groups) == {("a", "same_as_a"), ("b",), ()}
    for key, s in sets.items():
        assert key == access_key(s.grants)
        assert access_for(settings, s.groups or ["a", "b"]).key == key


def test_key_ignores_order_and_repeats() -> None:
    one = [_grant("b", "x/"), _grant("a")]
    assert access_key(one) == access_key([*reversed(one), _grant("a")])
    assert access_key(one) != access_key([_grant("b", "x/", "read-write"), _grant("a")])
    assert len(access_key(one)) == 10
