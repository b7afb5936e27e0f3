"""Starting and stopping a process in a pod's sandbox: its cgroup, user and terminal.

Every process the kubelet starts for a pod (a container's, an ``exec`` session's,
an exec probe's or hook's) goes through ``start``: in the child, before it execs,
it joins the container's cgroup (as root, so the cgroup's owner does not
matter), starts a session of its own, enters a mount namespace with the pod's
hosts file on ``/etc/hosts`` and the container's paths
(``devcluster.kubelet.mountns``; root only), drops to the container's user
(supplementary groups, group, then user), and takes its terminal when it has
one. A process run inside a running container joins the container's mount
namespace instead: the child execs ``devcluster.kubelet.nsjoin`` (join, user,
then the command), which reports back when the command cannot start. ``stop``
is how a container runtime stops a container: the stop signal (SIGTERM) to the
container's main process, the grace period, then SIGKILL to everything left in
the container (its cgroup, else its session).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devcluster.kubelet import mountns, nsjoin
from devcluster.kubelet.cgroups import Cgroup
from devcluster.kubelet.identity import Identity


@dataclass
class Launch:
    """What to start: command line, env, directory, user, cgroup and stdio."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    identity: Identity | None = None
    """None: keep devcluster's own user."""
    cgroup: Cgroup | None = None
    stdin: bool = False
    """Give the process a pipe as stdin (else /dev/null)."""
    tty: bool = False
    """Give the process a terminal as stdin, stdout and stderr."""
    view: mountns.View | None = None
    """The process's mount namespace: the pod's hosts file on ``/etc/hosts``
    and the container's paths (None: this machine's own view)."""


@dataclass
class Started:
    """A started process and the parent's ends of its stdio."""

    proc: asyncio.subprocess.Process
    terminal: int | None = None
    """The terminal's master side (``tty`` launches)."""
    cgroup: Cgroup | None = None
    mount_ns: int | None = None
    """A container's main process: a descriptor of the mount namespace it made
    (``mountns.pin``), what a command run inside the container joins;
    ``kill_rest`` lets go of it."""

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def release_namespace(self) -> None:
        """Let go of the pinned mount namespace (the container has ended)."""
        if self.mount_ns is not None:
            with contextlib.suppress(OSError):
                os.close(self.mount_ns)
            self.mount_ns = None

    def close_terminal(self) -> None:
        """Close the terminal's master side (the process gets SIGHUP)."""
        if self.terminal is not None:
            with contextlib.suppress(OSError):
                os.close(self.terminal)
            self.terminal = None


def _child_setup(
    procs_file: str | None,
    identity: Identity | None,
    tty: bool,
    view: mountns.View | None,
) -> Callable[[], None]:
    """Return what the child runs between fork and exec (only system calls)."""

    def setup() -> None:
        if procs_file is not None:
            with open(procs_file, "w") as procs:
                procs.write("0")
        joins = view is not None and view.join is not None
        if view is not None and not joins:
            try:
                mountns.enter(view)
            except OSError as exc:
                # exit as a failed exec would (127), the reason in the
                # container's log (an exception here would say nothing)
                os.write(2, f"devcluster: container paths: {exc}\n".encode())
                os._exit(127)
        if identity is not None and not joins:  # nsjoin switches after the join
            os.setgroups(list(identity.groups))
            os.setresgid(identity.gid, identity.gid, identity.gid)
            os.setresuid(identity.uid, identity.uid, identity.uid)
        if tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    return setup


async def start(launch: Launch) -> Started:
    """Start a process as ``launch`` says.

    Raises:
        OSError: the command cannot be started (not found, not executable).
    """
    view = launch.view
    if view is not None and view.join is not None:
        return await _start_joined(launch, view.join)
    return await _spawn(launch, launch.argv, ())


async def _start_joined(launch: Launch, mount_ns: int) -> Started:
    """Start ``launch`` in the mount namespace ``mount_ns`` (through ``nsjoin``)."""
    assert launch.view is not None
    who = launch.identity
    user = (who.uid, who.gid, who.groups) if who is not None else None
    report, report_w = os.pipe()
    try:
        argv = nsjoin.command_line(
            sys.executable, mount_ns, report_w, launch.view.workdir, user, launch.argv
        )
        started = await _spawn(launch, argv, (mount_ns, report_w))
    except BaseException:
        os.close(report)
        raise
    finally:
        os.close(report_w)
    try:
        failure = await _read_report(report)
    except TimeoutError:
        kill_session(started)
        failure = nsjoin.encode_failure(TimeoutError(0, "did not start within 30 s"))
    if failure:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_exit(started), 5.0)
        started.close_terminal()
        raise nsjoin.decode_failure(failure)
    return started


async def _read_report(fd: int) -> bytes:
    """Read ``fd`` to its end (``nsjoin`` closes it when the command starts)."""
    os.set_blocking(fd, False)
    loop = asyncio.get_running_loop()
    data = bytearray()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        if chunk:
            data.extend(chunk)
        elif not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(done, 30.0)
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return bytes(data)


async def _spawn(launch: Launch, argv: list[str], pass_fds: tuple[int, ...]) -> Started:
    """Fork and exec ``argv`` with the launch's env, directory, stdio and setup."""
    procs = launch.cgroup.procs_file if launch.cgroup is not None else None
    setup = _child_setup(procs, launch.identity, launch.tty, launch.view)
    if launch.tty:
        master, slave = os.openpty()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=launch.env,
                cwd=launch.cwd,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=setup,
                pass_fds=pass_fds,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        return Started(proc, master, launch.cgroup)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=launch.env,
        cwd=launch.cwd,
        stdin=asyncio.subprocess.PIPE if launch.stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=setup,
        pass_fds=pass_fds,
    )
    return Started(proc, None, launch.cgroup)


async def wait_exit(started: Started) -> int:
    """Wait until the main process exits; its return code.

    Not ``Process.wait()``: that also waits until its stdout and stderr close,
    which never happens while a child it left behind holds them.
    """
    proc = started.proc
    if proc.returncode is None:
        try:
            fd: int | None = os.pidfd_open(proc.pid)
        except OSError:
            fd = None  # already reaped (or no pidfd): the return code comes soon
        if fd is not None:
            loop = asyncio.get_running_loop()
            gone: asyncio.Future[None] = loop.create_future()

            def readable() -> None:
                if not gone.done():
                    gone.set_result(None)

            loop.add_reader(fd, readable)
            try:
                await gone
            finally:
                loop.remove_reader(fd)
                os.close(fd)
        while proc.returncode is None:  # the child watcher reaps it in a moment
            await asyncio.sleep(0.005)
    return int(proc.returncode)


def kill_session(started: Started) -> None:
    """SIGKILL a process and its session (an exec'd command, not its container)."""
    _signal_session(started.pid, signal.SIGKILL)


def kill_rest(started: Started) -> None:
    """SIGKILL every process of the container (as its PID namespace ending does)."""
    started.release_namespace()
    if started.cgroup is not None:
        started.cgroup.kill()
        return
    _signal_session(started.pid, signal.SIGKILL)


async def stop(started: Started, grace: float) -> None:
    """SIGTERM the main process, wait ``grace`` seconds, then SIGKILL everything."""
    proc = started.proc
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_exit(started), max(grace, 0.0))
    kill_rest(started)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wait_exit(started), 5.0)
    if started.cgroup is not None:
        await started.cgroup.wait_empty(5.0)


async def wait_gone(started: Started, timeout: float) -> bool:
    """Wait until every process of a container's run has exited; False on timeout.

    Its main process, and what is left in its cgroup (or, without one, in its
    session): a killed process holds its sockets, the container's port among
    them, until it has exited, and a restarted container would fail to bind.

    Args:
        started: the run's main process.
        timeout: seconds to wait at most.
    """
    deadline = time.monotonic() + timeout
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wait_exit(started), max(timeout, 0.0))
    while True:
        if started.cgroup is not None:
            left = started.cgroup.pids()
        else:
            left = _session_members(started.pid)
        if not left:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)


def _session_members(leader: int) -> list[int]:
    """Return the live (not zombie) processes of ``leader``'s session."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields after the command: state, ppid, pgrp, session, ...
        if len(fields) > 3 and fields[3] == str(leader) and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _signal_session(leader: int, sig: signal.Signals) -> None:
    """Signal the process group of ``leader`` and every process of its session."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, sig)
    for pid in _session_members(leader):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
