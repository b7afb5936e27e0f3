"""Who may log in and which sizes, images and home sizes each user gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from wbspawner.model import Catalog, ImageChoice, Profiles, Size
from wbspawner.profiles import access
from wbspawner.profiles.loader import load_profiles

CPU = ["small", "medium", "large", "xlarge", "xxlarge"]
GPU = ["gpu-t4", "gpu-a10g", "gpu-a10g-x4"]


def _img(slug: str, groups: tuple[str, ...] = (), default: bool = False) -> ImageChoice:
    return ImageChoice(
        slug=slug,
        display_name=slug,
        image=f"x/{slug}",
        allowed_groups=groups,
        default=default,
    )


def _size(slug: str, default: bool = False, **kw: object) -> Size:
    return Size(
        slug=slug,
        display_name=slug,
        description="",
        pool="p",
        default=default,
        images=(_img("i"),),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("groups", "is_admin", "expected"),
    [
        pytest.param(["jupyter-users"], False, CPU, id="users"),
        pytest.param(["gpu-users"], False, ["small", "medium", *GPU], id="gpu"),
        pytest.param(["jupyter-users", "gpu-users"], False, [*CPU, *GPU], id="both"),
        pytest.param(["jupyter-admins"], False, [*CPU, "huge", *GPU], id="admin-group"),
        pytest.param([], True, [*CPU, "huge", *GPU], id="admin-flag"),
        pytest.param(["staff"], False, [], id="outsider"),
        pytest.param([], False, [], id="no-groups"),
    ],
)
def test_visible_sizes(
    profiles: Profiles, groups: list[str], is_admin: bool, expected: list[str]
) -> None:
    admin = is_admin or access.is_admin_member(profiles, groups)
    sizes = access.visible_sizes(profiles, groups, admin)
    assert [s.slug for s in sizes] == expected


@pytest.mark.parametrize(
    ("groups", "is_admin", "may"),
    [
        pytest.param(["jupyter-users"], False, True, id="user-group"),
        pytest.param(["jupyter-admins"], False, True, id="admin-group"),
        pytest.param(["staff"], True, True, id="admin-flag"),
        pytest.param(["staff"], False, False, id="other"),
        pytest.param([], False, False, id="none"),
    ],
)
def test_may_log_in(
    profiles: Profiles, groups: list[str], is_admin: bool, may: bool
) -> None:
    assert access.may_log_in(profiles, groups, is_admin) is may


def test_everyone_may_log_in_without_user_groups(repo: Path, catalog: Catalog) -> None:
    open_lab = load_profiles([repo / "profiles" / "examples" / "open-lab"], catalog)
    assert open_lab.user_groups == ()
    assert access.may_log_in(open_lab, [], False)
    assert [s.slug for s in access.visible_sizes(open_lab, ["anyone"], False)] == [
        "student"
    ]
    assert len(access.visible_sizes(open_lab, ["lab-staff"], True)) == 2


@pytest.mark.parametrize(
    ("groups", "is_admin", "expected"),
    [
        pytest.param([], False, ["all"], id="none"),
        pytest.param(["a"], False, ["all", "a", "ab"], id="a"),
        pytest.param(["b"], False, ["all", "ab"], id="b"),
        pytest.param(["a", "b"], False, ["all", "a", "ab"], id="a-b"),
        pytest.param(["c"], False, ["all"], id="c"),
        pytest.param([], True, ["all", "a", "ab", "b-only"], id="admin"),
    ],
)
def test_visible_images(groups: list[str], is_admin: bool, expected: list[str]) -> None:
    size = Size(
        slug="s",
        display_name="s",
        description="",
        pool="p",
        images=(
            _img("all"),
            _img("a", ("a",)),
            _img("ab", ("a", "b")),
            _img("b-only", ("b-only-group",)),
        ),
    )
    images = access.visible_images(size, groups, is_admin)
    assert [i.slug for i in images] == expected


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        pytest.param([_size("a"), _size("b", default=True)], "b", id="marked"),
        pytest.param([_size("a"), _size("b")], "a", id="first"),
        pytest.param([], None, id="empty"),
    ],
)
def test_default_size(sizes: list[Size], expected: str | None) -> None:
    found = access.default_size(sizes)
    assert (found.slug if found else None) == expected


def test_default_image_is_marked_or_first() -> None:
    marked = access.default_image([_img("a"), _img("b", default=True)])
    first = access.default_image([_img("a"), _img("b")])
    assert (marked and marked.slug, first and first.slug) == ("b", "a")
    assert access.default_image([]) is None


@pytest.mark.parametrize(
    ("groups", "gib"),
    [
        pytest.param([], 100, id="base"),
        pytest.param(["small-homes"], 100, id="smaller-ignored"),
        pytest.param(["big"], 200, id="group"),
        pytest.param(["big", "bigger"], 500, id="largest-wins"),
    ],
)
def test_home_size(groups: list[str], gib: int) -> None:
    size = _size(
        "s",
        home_size_gib=100,
        home_size_by_group={"small-homes": 50, "big": 200, "bigger": 500},
    )
    assert access.home_size_gib(size, groups) == gib


def test_shipped_home_size_for_admins(profiles: Profiles) -> None:
    size = profiles.size("gpu-a10g-x4")
    assert size is not None
    assert access.home_size_gib(size, ["gpu-users"]) == 100
    assert access.home_size_gib(size, ["gpu-users", "jupyter-admins"]) == 200


def test_every_user_group_of_the_shipped_profiles_sees_one_default(
    profiles: Profiles,
) -> None:
    audiences: list[tuple[list[str], bool]] = [
        ([g], False) for g in profiles.user_groups
    ]
    audiences.append(([], True))
    for groups, is_admin in audiences:
        sizes = access.visible_sizes(profiles, groups, is_admin)
        assert [s.slug for s in sizes if s.default] == ["medium"], groups


def test_allowed() -> None:
    assert access.allowed((), ["x"], False)
    assert access.allowed(("a",), ["a", "b"], False)
    assert not access.allowed(("a",), ["b"], False)
    assert access.allowed(("a",), [], True)


def test_profiles_fixture_is_the_shipped_set(profiles: Profiles) -> None:
    assert isinstance(profiles, Profiles) and len(profiles.sizes) == 9
