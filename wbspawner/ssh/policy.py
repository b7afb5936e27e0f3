"""Who may come in by SSH, and what they are told: pure decisions and texts.

This module owns the SSH service's choices that need no network:

- :func:`key_id` and :func:`authorized`: an offered public key matches a
  directory key when algorithm and key data are equal (comments and options
  are ignored, as ``authorized_keys`` does);
- :func:`refusal`: why an authenticated person may still not come in (no
  directory entry, in none of the hub's groups), as a message for them;
- the texts of a start: :func:`starting_message`, :func:`not_started_message`.

No I/O and no SSH library here: the server (:mod:`wbspawner.ssh.server`) asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
"""Key types an ``sshPublicKey`` value may hold (OpenSSH's ``authorized_keys``)."""


def key_id(line: str) -> tuple[str, str] | None:
    """Return ``(algorithm, base64 data)`` of an OpenSSH public key line.

    Options before the key type (``from="..." ssh-ed25519 AAAA...``) and the
    comment after it are skipped.

    Args:
        line: one ``authorized_keys``-style line.

    Returns:
        The key's identity, or ``None`` when the line holds no key.
    """
    words = line.strip().split()
    for i, word in enumerate(words[:-1]):
        if word in KEY_TYPES:
            return word, words[i + 1]
    return None


def authorized(offered: str, keys: Iterable[str]) -> bool:
    """Return whether an offered key is one of the directory's keys.

    Args:
        offered: the client's key as an OpenSSH public key line.
        keys: the account's ``sshPublicKey`` values.

    Returns:
        ``True`` when algorithm and key data equal one of them.
    """
    wanted = key_id(offered)
    return wanted is not None and any(key_id(k) == wanted for k in keys)


def allowed_groups(
    admin_groups: Sequence[str], user_groups: Sequence[str]
) -> tuple[str, ...]:
    """Return the hub groups whose members may come in, without duplicates."""
    return tuple(dict.fromkeys([*admin_groups, *user_groups]))


def refusal(
    name: str, member_of: Sequence[str] | None, groups: Sequence[str]
) -> str | None:
    """Return why a person whose credentials are right may not come in.

    Args:
        name: the login name.
        member_of: the hub groups their directory entry is in (``None``: they
            have no entry).
        groups: the hub groups whose members may use the hub.

    Returns:
        The message for them, or ``None`` when they may come in.
    """
    if member_of is None:
        return f"{name} has no account in the directory."
    if set(member_of) & set(groups):
        return None
    ask = ", ".join(sorted(set(groups))) or "its groups"
    return (
        f"{name} is not in a group allowed to use this hub. "
        f"Ask an admin to add you to one of: {ask}."
    )


def starting_message(name: str, url: str) -> str:
    """Return what a person is told while their server starts for the session."""
    return (
        f"{name}, your server is not running: starting it with your default size "
        f"(choose another at {url}/hub/spawn). This can take a few minutes...\r\n"
    )


def not_started_message(name: str, url: str, why: str) -> str:
    """Return what a person is told when their server could not be started."""
    return (
        f"{name}, your server could not be started: {why}\r\n"
        f"Start it at {url}/hub/spawn and connect again.\r\n"
    )


def never_logged_in_message(name: str, url: str) -> str:
    """Return what a person who never logged in to the hub is told."""
    return (
        f"{name}, log in once at {url}/hub/login (the hub learns your account "
        "there), then connect again.\r\n"
    )
