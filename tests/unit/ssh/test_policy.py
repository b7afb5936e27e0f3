"""Who may come in by SSH: key matching and the refusals' messages."""

from __future__ import annotations

import pytest

from wbspawner.ssh.policy import allowed_groups, authorized, key_id, refusal

ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBobKey bob@laptop"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKey eve@laptop"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            ED, ("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIBobKey"), id="plain"
        ),
        pytest.param(
            'from="10.0.0.0/8" ssh-rsa AAAAB3Nza rsa',
            ("ssh-rsa", "AAAAB3Nza"),
            id="options-before",
        ),
        pytest.param("ssh-ed25519", None, id="no-data"),
        pytest.param("", None, id="empty"),
        pytest.param("not a key at all", None, id="junk"),
    ],
)
def test_key_id(line: str, expected: tuple[str, str] | None) -> None:
    assert key_id(line) == expected


def test_a_key_matches_whatever_its_comment() -> None:
    assert authorized(ED.replace("bob@laptop", "bob@other"), [OTHER, ED])


def test_another_key_does_not_match() -> None:
    assert not authorized(OTHER, [ED])
    assert not authorized(ED, [])


def test_allowed_groups_admins_first_without_duplicates() -> None:
    assert allowed_groups(["admins"], ["users", "admins"]) == ("admins", "users")


def test_a_member_of_an_allowed_group_may_come_in() -> None:
    assert refusal("bob", ("jupyter-users",), ("jupyter-users",)) is None


def test_someone_in_no_group_is_told_which_groups() -> None:
    why = refusal("carol", (), ("jupyter-users", "jupyter-admins"))
    assert why is not None
    assert why.startswith("carol is not in a group allowed to use this hub.")
    assert "jupyter-admins, jupyter-users" in why


def test_someone_without_an_entry_is_told_so() -> None:
    assert refusal("zed", None, ("jupyter-users",)) == (
        "zed has no account in the directory."
    )
