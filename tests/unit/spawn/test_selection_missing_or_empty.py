"""A size or image left out means the default; sent empty or ill-typed, a refusal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.paths import REPO
from wbspawner.errors import UserFacingError
from wbspawner.model import Profiles
from wbspawner.profiles.loader import load_profiles
from wbspawner.spawn.selection import options_from_form, select

BOB = (["jupyter-users"], False)


@pytest.fixture(scope="module")
def profiles() -> Profiles:
    return load_profiles([REPO / "profiles"])


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="nothing-sent"),
        pytest.param({"profile": "medium"}, id="image-left-out"),
    ],
)
def test_fields_left_out_get_the_defaults(
    profiles: Profiles, options: dict[str, Any]
) -> None:
    chosen = select(options, profiles, *BOB)
    assert (chosen.size.slug, chosen.image.slug) == ("medium", "scipy")
    assert chosen.notice is None


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param(
            {"profile": ""},
            r"^No server size was chosen\. Pick one of: '4 GiB', '16 GiB', '64 GiB'",
            id="empty-size",
        ),
        pytest.param(
            {"profile": None}, r"^No server size was chosen\.", id="null-size"
        ),
        pytest.param(
            {"profile": ["large", "medium"]},
            r"^The option 'profile' must be text\.",
            id="list-size",
        ),
        pytest.param(
            {"profile": 64}, r"^The option 'profile' must be text\.", id="number-size"
        ),
        pytest.param(
            {"profile": "large", "image": ""},
            r"^No image was chosen\.",
            id="empty-image",
        ),
        pytest.param(
            {"profile": "large", "image": None},
            r"^No image was chosen\.",
            id="null-image",
        ),
    ],
)
def test_sent_but_empty_or_ill_typed_is_refused(
    profiles: Profiles, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(UserFacingError, match=match) as info:
        select(options, profiles, *BOB)
    assert info.value.reason == "options"
    assert info.value.status_code == 400
    assert "empty" in info.value.log_message or "is a" in info.value.log_message


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"profile": "", "image": ""}, id="blank"),
        pytest.param({"profile": None}, id="null"),
    ],
)
def test_saved_blank_options_still_start_the_defaults(
    profiles: Profiles, options: dict[str, Any]
) -> None:
    """Hubs before this rule saved blank options; reusing them is no new choice."""
    chosen = select(options, profiles, *BOB, saved=True)
    assert (chosen.size.slug, chosen.image.slug) == ("medium", "scipy")


@pytest.mark.parametrize(
    ("formdata", "parsed", "expected"),
    [
        pytest.param(
            {"profile": ["large"], "profile-option-large--image": ["scipy"]},
            {"profile": "large", "image": "scipy"},
            {"profile": "large", "image": "scipy"},
            id="one-size-as-parsed",
        ),
        pytest.param({}, {}, {}, id="no-size-field"),
        pytest.param({"profile": [""]}, {}, {"profile": ""}, id="empty-size-kept"),
        pytest.param(
            {"profile": ["large", "gpu-t4"]},
            {"profile": "large"},
            {"profile": ["large", "gpu-t4"]},
            id="repeated-size-kept-as-list",
        ),
        pytest.param(
            {"profile": ["", "large"]},
            {},
            {"profile": ["", "large"]},
            id="empty-then-size",
        ),
    ],
)
def test_form_keeps_a_size_sent_without_one_value(
    formdata: dict[str, list[str]],
    parsed: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    frozen = dict(parsed)
    assert options_from_form(formdata, parsed) == expected
    assert parsed == frozen  # a new dict; the input is not changed


@pytest.mark.parametrize(
    ("formdata", "match"),
    [
        pytest.param({"profile": [""]}, "No server size was chosen", id="empty"),
        pytest.param({"profile": ["large", "medium"]}, "must be text", id="repeated"),
    ],
)
def test_a_form_with_no_usable_size_is_refused_not_defaulted(
    profiles: Profiles, formdata: dict[str, list[str]], match: str
) -> None:
    first = formdata["profile"][0]
    parsed = {"profile": first} if first else {}  # what KubeSpawner makes of it
    with pytest.raises(UserFacingError, match=match):
        select(options_from_form(formdata, parsed), profiles, *BOB)
