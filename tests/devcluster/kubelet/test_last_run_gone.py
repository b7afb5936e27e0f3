"""A restarted container starts only once its last run's processes are gone.

A killed process holds its sockets until it has exited; a container restarted
before that fails to bind its port. ``process.wait_gone`` waits for the main
process and the rest of its session (or cgroup), bounded; the runner calls it
before each restart.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time

from devcluster.kubelet import process

HOLDER = """
import socket, subprocess, sys
child = '''
import socket, time
s = socket.socket()
s.bind(("127.0.0.1", PORT))
s.listen()
print("bound", flush=True)
time.sleep(1.5)
'''
p = subprocess.Popen([sys.executable, "-c", child.replace("PORT", sys.argv[1])],
                     stdout=subprocess.PIPE)
p.stdout.readline()  # the child holds the port: the main process ends now
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def _run_holder(port: int) -> process.Started:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(port), start_new_session=True
    )
    return process.Started(proc=proc)


async def test_waits_for_the_rest_of_the_run_then_the_port_is_free() -> None:
    port = _free_port()
    started = await _run_holder(port)
    began = time.monotonic()
    assert await process.wait_gone(started, 10.0)
    assert time.monotonic() - began >= 1.0  # the child, not only the main process
    assert _bindable(port)


async def test_the_wait_is_bounded() -> None:
    port = _free_port()
    started = await _run_holder(port)
    await process.wait_exit(started)
    began = time.monotonic()
    assert not await process.wait_gone(started, 0.3)
    assert time.monotonic() - began < 1.0
    assert not _bindable(port)  # still held: the caller kills and goes on
    process.kill_rest(started)
    assert await process.wait_gone(started, 5.0)
    assert _bindable(port)
