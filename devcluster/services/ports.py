"""Local TCP ports: is one free, and which process holds it.

This module owns how the demo picks its public port and what it says when the
port is taken: :func:`holder` reads ``/proc/net/tcp*`` and the processes' open
files to name the listener (pid and command line), :func:`choose_port` keeps a
port asked for explicitly or refuses with that name, and for the default port
falls back to a free one with a note saying so.
"""

from __future__ import annotations

import socket
from pathlib import Path

from devcluster.services.procs import free_port

_PROC = Path("/proc")
_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


class PortTakenError(RuntimeError):
    """A port asked for explicitly is in use; the message names its holder."""


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Return whether ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN:
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port:
                    inodes.add(fields[9])
    return inodes


def holder(port: int) -> str | None:
    """Return ``pid N (command)`` of the process listening on a TCP port.

    Args:
        port: the port.

    Returns:
        The description, or ``None`` when ``/proc`` does not tell (another
        user's process, not Linux, nobody listening).
    """
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = (entry / "fd").iterdir()
            if not any(str(fd.readlink()) in targets for fd in fds):
                continue
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # gone, or not ours to look at
            continue
        command = " ".join(raw.decode(errors="replace").replace("\0", " ").split())
        short = command if len(command) <= 100 else command[:99] + "…"
        return f"pid {entry.name} ({short or '?'})"
    return None


def choose_port(
    wanted: int | None, default: int, host: str = "127.0.0.1"
) -> tuple[int, str]:
    """Return the port to listen on, and a note when it is not the one expected.

    Args:
        wanted: a port asked for explicitly, or ``None``.
        default: the usual port, used when ``wanted`` is ``None`` and it is free.
        host: the address to bind.

    Returns:
        ``(port, note)``; the note is empty unless ``default`` was taken and
        another free port is used instead.

    Raises:
        PortTakenError: ``wanted`` is in use.
    """
    if wanted is not None:
        if not is_free(wanted, host):
            by = holder(wanted)
            raise PortTakenError(
                f"port {wanted} on {host} is taken"
                + (f" by {by}" if by else "")
                + "; stop it or choose another port"
            )
        return wanted, ""
    if is_free(default, host):
        return default, ""
    port = free_port(host)
    by = holder(default)
    return port, (
        f"port {default} is taken" + (f" by {by}" if by else "") + f"; using {port}"
    )
