"""The demo's port: a taken default port is named and replaced; a taken explicit one
stops it, naming who holds it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from devcluster.services.ports import PortTakenError, choose_port, holder, is_free


@pytest.fixture
def held() -> Iterator[int]:
    """A loopback port this test process listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_holder_names_the_listening_process(held: int) -> None:
    found = holder(held)
    assert found is not None and found.startswith(f"pid {os.getpid()} (")
    assert not is_free(held)


def test_a_taken_default_port_is_replaced_and_the_note_says_by_whom(
    held: int,
) -> None:
    port, note = choose_port(None, held)
    assert port != held and is_free(port)
    assert note.startswith(f"port {held} is taken by pid {os.getpid()} (")
    assert note.endswith(f"; using {port}")


def test_a_free_default_port_is_kept_quietly(held: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert choose_port(None, free) == (free, "")


def test_a_taken_explicit_port_stops_with_its_holder(held: int) -> None:
    with pytest.raises(
        PortTakenError,
        match=rf"port {held} on 127.0.0.1 is taken by pid {os.getpid()} ",
    ):
        choose_port(held, 8000)
