"""``kubectl exec`` and ``kubectl attach`` sessions over the channel protocol.

An exec session runs its command inside the container (the container's env,
working directory, user and cgroup, so it dies with the container) with pipes
or, with ``tty``, a terminal whose size follows the client's resize messages.
As the kubelet does, the session first sends an empty message on the lowest
channel it will write to, then copies stdin in and stdout/stderr out, and ends
with a ``Status`` on the error channel: Success, or ``NonZeroExitCode`` with
the exit code as the ``ExitCode`` cause. A client that goes away takes its
command with it. An attach session copies the container's own output from
now on (and stdin to the container's, when its spec has ``stdin: true``) until
that run of the container ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import signal
import struct
import termios
from typing import Any

from devcluster.kubelet import containers, process
from devcluster.kubelet.runner import ContainerRunner
from devcluster.kubelet.streaming.channels import (
    CLOSE,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    Channels,
    exit_status,
    failure,
    success,
)

_CHUNK = 32 * 1024


async def _pipe_out(
    reader: asyncio.StreamReader | None, chans: Channels, channel: int
) -> None:
    if reader is None:
        return
    with contextlib.suppress(OSError, ConnectionError):
        while chunk := await reader.read(_CHUNK):
            if not await chans.send(channel, chunk):
                return


async def _terminal_out(
    master: int, chans: Channels, exited: asyncio.Future[Any]
) -> None:
    """Copy the terminal's output until it closes (or is dry once the command ended)."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(master, readable.set)
    try:
        while True:
            if exited.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(readable.wait(), 0.1)
            else:
                flag = asyncio.ensure_future(readable.wait())
                await asyncio.wait({flag, exited}, return_when=asyncio.FIRST_COMPLETED)
                flag.cancel()
            readable.clear()
            try:
                chunk = os.read(master, _CHUNK)
            except BlockingIOError:
                if exited.done():
                    return
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:  # every holder of the terminal closed it
                    return
                raise
            if not chunk or not await chans.send(STDOUT, chunk):
                return
    finally:
        loop.remove_reader(master)


def _resize(master: int, data: bytes) -> None:
    with contextlib.suppress(ValueError, OSError, TypeError):
        size = json.loads(data)
        packed = struct.pack("HHHH", int(size["Height"]), int(size["Width"]), 0, 0)
        fcntl.ioctl(master, termios.TIOCSWINSZ, packed)


async def _write_terminal(master: int, data: bytes) -> None:
    while data:
        try:
            written = os.write(master, data)
        except BlockingIOError:
            await asyncio.sleep(0.01)
            continue
        data = data[written:]


async def _client_in(chans: Channels, started: process.Started) -> None:
    """Copy the client's stdin (and resizes) in until it closes the websocket."""
    stdin = started.proc.stdin
    while (frame := await chans.receive()) is not None:
        if frame.channel == STDIN:
            if started.terminal is not None:
                await _write_terminal(started.terminal, frame.data)
            elif stdin is not None and not stdin.is_closing():
                with contextlib.suppress(ConnectionError):
                    stdin.write(frame.data)
                    await stdin.drain()
        elif frame.channel == RESIZE and started.terminal is not None:
            _resize(started.terminal, frame.data)
        elif frame.channel == CLOSE and frame.data[:1] == bytes([STDIN]):
            if stdin is not None:
                stdin.close()


def _flags(query: Any) -> dict[str, bool]:
    truthy = ("true", "True", "1")
    return {k: query.get(k) in truthy for k in ("stdin", "stdout", "stderr", "tty")}


async def run_exec(
    chans: Channels, runner: ContainerRunner, command: list[str], query: Any
) -> None:
    """Run one exec session to its end (the websocket is open)."""
    flags = _flags(query)
    tty = flags["tty"]
    assert runner.prepared is not None
    launch = containers.exec_launch(
        runner.prepared, command, runner.cgroup, tty, runner.mount_ns
    )
    launch.stdin = flags["stdin"]
    why = containers.unreachable(launch)
    try:
        if why:
            raise PermissionError(f"permission denied: {why}")
        started = await process.start(launch)
    except OSError as exc:
        await chans.send_status(
            failure(
                "error executing command in container: failed to exec in container: "
                f"OCI runtime exec failed: exec failed: unable to start container "
                f"process: exec: {command[0] if command else ''!r}: {exc}"
            )
        )
        await chans.ws.close()
        return
    first = STDOUT if flags["stdout"] or tty else STDERR if flags["stderr"] else 3
    await chans.send(first, b"")
    exited = asyncio.ensure_future(process.wait_exit(started))
    outputs = (
        [asyncio.ensure_future(_terminal_out(started.terminal, chans, exited))]
        if started.terminal is not None
        else [
            asyncio.ensure_future(_pipe_out(started.proc.stdout, chans, STDOUT)),
            asyncio.ensure_future(_pipe_out(started.proc.stderr, chans, STDERR)),
        ]
    )
    client = asyncio.ensure_future(_client_in(chans, started))
    try:
        await asyncio.wait({exited, client}, return_when=asyncio.FIRST_COMPLETED)
        if not exited.done():
            # the client went away: so does its command (a terminal hangs up first)
            if started.terminal is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(started.pid, signal.SIGHUP)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), 1.0)
            process.kill_session(started)
            await exited
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*outputs), 5.0)
        code = exited.result()
        code = 128 - code if code < 0 else code
        await chans.send_status(success() if code == 0 else exit_status(code))
        await chans.ws.close()
    finally:
        client.cancel()
        for task in outputs:
            task.cancel()
        started.close_terminal()


async def run_attach(chans: Channels, runner: ContainerRunner, query: Any) -> None:
    """Copy a running container's output (and stdin) until that run ends."""
    flags = _flags(query)
    writer = runner.logs.current
    if writer is None or writer.closed:
        await chans.send_status(failure("the container is not running"))
        await chans.ws.close()
        return
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    writer.listeners.append(lambda stream, data: queue.put_nowait((stream, data)))
    listener = writer.listeners[-1]
    first = STDOUT if flags["stdout"] else STDERR if flags["stderr"] else 3
    await chans.send(first, b"")

    async def out() -> None:
        while True:
            stream, data = await queue.get()
            if not stream:
                return
            channel = STDERR if stream == "stderr" and not flags["tty"] else STDOUT
            wanted = flags["stdout"] if channel == STDOUT else flags["stderr"]
            if wanted and not await chans.send(channel, data):
                return

    async def into() -> None:
        stdin = runner.started.proc.stdin if runner.started else None
        while (frame := await chans.receive()) is not None:
            if frame.channel == STDIN and stdin is not None and flags["stdin"]:
                with contextlib.suppress(ConnectionError):
                    stdin.write(frame.data)
                    await stdin.drain()

    sending = asyncio.ensure_future(out())
    receiving = asyncio.ensure_future(into())
    try:
        await asyncio.wait({sending, receiving}, return_when=asyncio.FIRST_COMPLETED)
        if sending.done():
            await chans.send_status(success())
            await chans.ws.close()
    finally:
        with contextlib.suppress(ValueError):
            writer.listeners.remove(listener)
        sending.cancel()
        receiving.cancel()
