"""Pod IPs: each pod gets a loopback address of its own (127.0.1.x by default).

All of 127.0.0.0/8 is loopback on Linux, so every pod can listen on the port it
would use in a cluster.
"""

from __future__ import annotations

import ipaddress
import socket


class IpPool:
    """Pod IPs from ``base`` + 1 upward; the lowest free one is reused first."""

    def __init__(self, base: str) -> None:
        self._base = ipaddress.IPv4Address(base)
        self._used: set[int] = set()

    def allocate(self, *ports: int) -> str:
        """Return a free address; with ``ports``, one where they can all be bound.

        Other programs on this machine (another devcluster, a test server) may
        already listen on a loopback address of ours; such addresses are skipped.
        """
        n, skipped = 1, 0
        while n in self._used or (
            skipped < 256
            and any(_port_taken(str(self._base + n), port) for port in ports if port)
        ):
            skipped += n not in self._used
            n += 1
        self._used.add(n)
        return str(self._base + n)

    def release(self, ip: str) -> None:
        """Return an address to the pool."""
        self._used.discard(int(ipaddress.IPv4Address(ip)) - int(self._base))


def _port_taken(ip: str, port: int) -> bool:
    """Tell whether ``ip:port`` cannot be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return True
    return False
