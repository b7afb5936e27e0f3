"""The SSH service's settings: help on every trait, the directory from the hub's
variables, the host key."""

from __future__ import annotations

from pathlib import Path

import pytest

from wbspawner.ssh.app import SSHApp


def test_every_ssh_trait_has_help() -> None:
    own = SSHApp.class_own_traits(config=True)
    assert own
    assert [n for n, t in own.items() if not (t.help or "").strip()] == []


def test_the_directory_is_read_as_the_hub_reads_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    password = tmp_path / "bind-password"
    password.write_text("s3cret\n")
    for name, value in {
        "SERVER": "ldap.example.org",
        "TLS": "ldaps",
        "BIND_DN_TEMPLATE": "uid={username},ou=a;uid={username},ou=b",
        "GROUP_DN_TEMPLATE": "cn={group},ou=groups",
        "LOOKUP_USER": "cn=reader",
        "BIND_PASSWORD_FILE": str(password),
    }.items():
        monkeypatch.setenv(f"WBSPAWNER_LDAP_{name}", value)
    config = SSHApp().directory_config()
    assert (config.server, config.port, config.tls) == (
        "ldap.example.org",
        636,
        "ldaps",
    )
    assert config.user_dn_templates == ("uid={username},ou=a", "uid={username},ou=b")
    assert config.group_dn_template == "cn={group},ou=groups"
    assert (config.lookup_user, config.lookup_password) == ("cn=reader", "s3cret")
    assert config.user_attribute == "uid"


def test_a_missing_host_key_is_made_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "host"
    with pytest.raises(OSError):
        SSHApp(host_key_file=str(path)).host_key()
    key = SSHApp(host_key_file=str(path), create_host_key=True).host_key()
    assert path.stat().st_mode & 0o777 == 0o600
    again = SSHApp(host_key_file=str(path)).host_key()
    assert again.export_public_key() == key.export_public_key()
