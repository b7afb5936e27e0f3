"""Checking user_options: what a user may start, and the messages when not."""

from __future__ import annotations

import re
from typing import Any

import pytest

from wbspawner.errors import UserFacingError
from wbspawner.model import Profiles
from wbspawner.spawn.selection import options_sent, select

BOB = (["jupyter-users"], False)
GINA = (["gpu-users", "jupyter-users"], False)
ALICE = (["jupyter-admins", "jupyter-users"], True)


@pytest.mark.parametrize(
    ("options", "who", "size", "image"),
    [
        pytest.param({}, BOB, "medium", "scipy", id="empty-gives-defaults"),
        pytest.param(None, BOB, "medium", "scipy", id="none-gives-defaults"),
        pytest.param({"profile": "large"}, BOB, "large", "scipy", id="size-only"),
        pytest.param(
            {"profile": "large", "image": "datascience"},
            BOB,
            "large",
            "datascience",
            id="size-and-image",
        ),
        pytest.param({"profile": "gpu-t4"}, GINA, "gpu-t4", "pytorch", id="gpu-user"),
        pytest.param({"profile": "huge"}, ALICE, "huge", "scipy", id="admin-huge"),
    ],
)
def test_allowed_choices(
    profiles: Profiles,
    options: dict[str, Any] | None,
    who: tuple[list[str], bool],
    size: str,
    image: str,
) -> None:
    chosen = select(options, profiles, *who)
    assert (chosen.size.slug, chosen.image.slug) == (size, image)
    assert chosen.notice is None
    assert chosen.options == {"profile": size, "image": image}


@pytest.mark.parametrize(
    ("options", "who", "match", "reason"),
    [
        pytest.param(
            {"profile": "gpu-t4"},
            BOB,
            r"'GPU, 1× NVIDIA T4' is not available to your groups \(jupyter-users\)\."
            r" Ask an admin to add you to 'gpu-users'\.",
            "forbidden",
            id="gpu-size-for-bob",
        ),
        pytest.param(
            {"profile": "huge"},
            GINA,
            r"Ask an admin to add you to 'jupyter-admins'",
            "forbidden",
            id="admin-size-for-gina",
        ),
        pytest.param(
            {"profile": "enormous"},
            BOB,
            r"There is no server size 'enormous'\. Pick one of: '4 GiB', '16 GiB'",
            "options",
            id="unknown-size",
        ),
        pytest.param(
            {"profile": "large", "image": "evil"},
            BOB,
            r"There is no image 'evil' for '64 GiB'",
            "options",
            id="forged-image",
        ),
        pytest.param(
            {"profile": "large", "image": "pytorch"},
            BOB,
            r"There is no image 'pytorch' for '64 GiB'",
            "options",
            id="image-of-another-size",
        ),
        pytest.param(
            {"profile": "large", "image--unlisted-choice": "evil/miner:latest"},
            BOB,
            r"does not accept custom values",
            "options",
            id="unlisted-image",
        ),
        pytest.param(
            {"profile": "large", "cpu_limit": "64"},
            BOB,
            r"options this hub does not know \('cpu_limit'\)",
            "options",
            id="forged-field",
        ),
        pytest.param(
            {"profile": ["large"]},
            BOB,
            r"The option 'profile' must be text",
            "options",
            id="list-value",
        ),
        pytest.param(
            {"profile": "", "image": ""},
            BOB,
            r"No server size was chosen\. Pick one of: '4 GiB', '16 GiB'",
            "options",
            id="blank-values",
        ),
        pytest.param(
            {"profile": "x" * 500},
            BOB,
            r"There is no server size 'x{39}…'\.",
            "options",
            id="long-value-is-shortened",
        ),
        pytest.param(
            {"profile": "small"},
            ([], False),
            r"Your groups \(no groups\) may not start any server\. Ask an admin to "
            r"add you to one of: gpu-users, jupyter-admins, jupyter-users\.",
            "forbidden",
            id="no-groups",
        ),
    ],
)
def test_refused_choices(
    profiles: Profiles,
    options: dict[str, Any],
    who: tuple[list[str], bool],
    match: str,
    reason: str,
) -> None:
    with pytest.raises(UserFacingError, match=match) as info:
        select(options, profiles, *who)
    assert info.value.reason == reason
    assert info.value.status_code == 400


def test_not_a_mapping_is_refused(profiles: Profiles) -> None:
    with pytest.raises(UserFacingError, match="must be a set of named values"):
        select(["profile", "large"], profiles, *BOB)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "who", "size", "match"),
    [
        pytest.param(
            {"profile": "retired", "image": "scipy"},
            BOB,
            "medium",
            r"The size 'retired' you used last time is no longer offered; starting "
            r"'16 GiB' instead\.",
            id="removed-size",
        ),
        pytest.param(
            {"profile": "gpu-t4"},
            BOB,
            "medium",
            r"You may no longer use the size 'GPU, 1× NVIDIA T4'; starting '16 GiB'",
            id="no-longer-allowed",
        ),
        pytest.param(
            {"profile": "large", "image": "retired"},
            BOB,
            "large",
            r"The image 'retired' you used last time is not available for '64 GiB'",
            id="removed-image",
        ),
    ],
)
def test_saved_options_fall_back_with_a_notice(
    profiles: Profiles,
    options: dict[str, Any],
    who: tuple[list[str], bool],
    size: str,
    match: str,
) -> None:
    chosen = select(options, profiles, *who, saved=True)
    assert chosen.size.slug == size
    assert chosen.notice is not None
    assert re.search(match, chosen.notice)


def test_saved_options_drop_stale_fields(profiles: Profiles) -> None:
    chosen = select(
        {"profile": "large", "image--unlisted-choice": "x"}, profiles, *BOB, saved=True
    )
    assert chosen.size.slug == "large"
    assert chosen.notice is None


def test_saved_options_with_forbidden_size_in_fresh_request_are_refused(
    profiles: Profiles,
) -> None:
    with pytest.raises(UserFacingError, match="not available to your groups"):
        select({"profile": "gpu-t4"}, profiles, *BOB, saved=False)


@pytest.mark.parametrize(
    ("body", "query", "sent"),
    [
        pytest.param(b"_xsrf=abc&profile=large", "", True, id="form-post"),
        pytest.param(b'{"profile": "large"}', "", True, id="json-body"),
        pytest.param(b"", "profile=large", True, id="query"),
        pytest.param(b"", "", False, id="no-options"),
        pytest.param(b"{}", "", False, id="empty-json"),
    ],
)
def test_options_sent(body: bytes, query: str, sent: bool) -> None:
    assert options_sent(body, query) is sent
