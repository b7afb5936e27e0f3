"""The podbind preload library: a pod's any-address listeners on its own address.

In a pod's network namespace, a server listening on every address gets the
port it asked for on every address family; tornado opens an IPv4 and an
IPv6-only socket for ``listen(port)`` and dask-gateway's scheduler asserts
that both carry the same port.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from devcluster.kubelet import podbind

POD_IP = "127.0.1.250"
LISTEN = """
import json, socket, sys
port, copies = int(sys.argv[1]), int(sys.argv[2])
four = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
four.bind(("0.0.0.0", port))
found = [four.getsockname()[:2]]
for _ in range(copies):
    six = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    six.bind(("::", port))
    six.listen()
    found.append(six.getsockname()[:2])
print(json.dumps(found))
"""


def _listen(library: Path, port: int, copies: int = 1) -> list[list[object]]:
    done = subprocess.run(
        [sys.executable, "-c", LISTEN, str(port), str(copies)],
        env={**os.environ, "LD_PRELOAD": str(library), "DEVCLUSTER_POD_IP": POD_IP},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    found: list[list[object]] = json.loads(done.stdout)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_both_sockets_of_a_server_get_the_port_it_asked_for(tmp_path: Path) -> None:
    library = podbind.build(tmp_path)
    port = _free_port()
    four, six = _listen(library, port)
    assert four == [POD_IP, port]
    assert six == ["::1", port]


def test_pods_listening_on_the_same_port_all_get_it(tmp_path: Path) -> None:
    """Two dask schedulers (one per cluster) each listen on :8788: in their
    own namespaces both get it; here their IPv6 sockets share ::1's."""
    library = podbind.build(tmp_path)
    port = _free_port()
    four, six, other_six = _listen(library, port, copies=2)
    assert four == [POD_IP, port]
    assert six == other_six == ["::1", port]


def test_a_port_another_program_holds_on_ipv6_loopback_is_not_shared(
    tmp_path: Path,
) -> None:
    library = podbind.build(tmp_path)
    port = _free_port()
    with socket.socket(socket.AF_INET6) as other:
        other.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        other.bind(("::1", port))
        other.listen()
        four, six = _listen(library, port)
    assert four == [POD_IP, port]
    assert six[0] == "::1" and six[1] != port
