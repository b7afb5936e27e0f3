"""SFTP paths and attributes from the contents API's models."""

from __future__ import annotations

import stat

import asyncssh
import pytest

from wbspawner.ssh.sftp import attrs_of, virtual_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(b"", "/", id="empty-is-home"),
        pytest.param(b".", "/", id="dot"),
        pytest.param(b"data/x.csv", "/data/x.csv", id="relative"),
        pytest.param(b"/data/../x", "/x", id="normalised"),
        pytest.param(b"../../etc/passwd", "/etc/passwd", id="never-above-home"),
    ],
)
def test_virtual_path(path: bytes, expected: str) -> None:
    assert virtual_path(path) == expected


def test_a_file_model() -> None:
    attrs = attrs_of(
        {"type": "file", "size": 12, "last_modified": "2026-12-08T00:00:00Z"}
    )
    assert attrs.type == asyncssh.FILEXFER_TYPE_REGULAR
    assert attrs.size == 12
    assert attrs.permissions is not None and stat.S_ISREG(attrs.permissions)
    assert attrs.mtime == 1796688000


def test_a_directory_model_without_size_or_time() -> None:
    attrs = attrs_of({"type": "directory", "size": None, "last_modified": "junk"})
    assert attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY
    assert attrs.permissions is not None and stat.S_ISDIR(attrs.permissions)
    assert attrs.size == 0 and attrs.mtime is None
