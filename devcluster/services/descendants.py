"""Every process this process started, directly or not, and how to end them.

This module owns the accounting behind "a test run leaves no process behind"
(Linux only): :func:`adopt_orphans` makes this process the *subreaper* of its
descendants, so that a process whose parent died (a proxy or a service left
behind by a hub killed in a test) is re-parented here instead of to PID 1 and
stays countable; :func:`descendants` lists the live ones from ``/proc``;
:func:`still_alive` tells which of some PIDs still run;
:func:`stop_processes` ends given PIDs (never a name) and :func:`reap_orphans`
collects the exit status of adopted children that nobody waits for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
"""``prctl`` option: orphaned descendants are re-parented to this process."""
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A live process as ``/proc`` shows it."""

    pid: int
    ppid: int
    command: str
    """The command line, arguments separated by spaces."""

    def describe(self) -> str:
        """Return ``pid <n> (parent <m>): <command>``."""
        return f"pid {self.pid} (parent {self.ppid}): {self.command}"


def adopt_orphans() -> None:
    """Make this process the subreaper of everything it starts from now on.

    Raises:
        OSError: ``prctl`` refused (not Linux, or a kernel older than 3.4).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


def _stat(pid_dir: Path) -> tuple[str, int] | None:
    try:
        stat = (pid_dir / "stat").read_text()
    except OSError:  # the process has just gone
        return None
    # Fields after the parenthesised command: state ppid pgrp ...
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0], int(fields[1])


def _command(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace") or "?"


def descendants(pid: int | None = None) -> list[ProcessInfo]:
    """Return the live (non-zombie) descendants of ``pid``, oldest branch first.

    Args:
        pid: The ancestor (default: this process).

    Returns:
        Every process below it in the process tree, zombies left out.
    """
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    live: set[int] = set()
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        found = _stat(entry)
        if found is None:
            continue
        state, ppid = found
        children.setdefault(ppid, []).append(int(entry.name))
        if state != "Z":
            live.add(int(entry.name))
    out: list[ProcessInfo] = []
    todo = sorted(children.get(root, []))
    parent_of = {c: root for c in todo}
    while todo:
        current = todo.pop(0)
        below = sorted(children.get(current, []))
        parent_of.update(dict.fromkeys(below, current))
        todo.extend(below)
        if current in live:
            out.append(ProcessInfo(current, parent_of[current], _command(current)))
    return out


def reap_orphans() -> list[int]:
    """Collect every exited child of this process nobody waits for.

    Call it only when no ``Popen`` of this process still needs its child's exit
    status (at the end of a test run): it takes any.

    Returns:
        The PIDs reaped.
    """
    reaped = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append(pid)


def reap(pids: Iterable[int]) -> list[int]:
    """Collect those of ``pids`` that exited as zombies of this process.

    A process whose parent died is adopted by the subreaper (:func:`adopt_orphans`);
    once it exits it stays a zombie until the subreaper waits for it, and to
    anyone asking with ``kill(pid, 0)`` — a restarted hub checking its proxy's
    PID file — it still looks alive. PIDs that are not this process's children,
    or still run, are left alone.

    Args:
        pids: Process ids (typically orphans this process adopted).

    Returns:
        The PIDs reaped.
    """
    reaped = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if done == pid:
            reaped.append(pid)
    return reaped


def still_alive(pids: Iterable[int]) -> list[int]:
    """Return those of ``pids`` that still run (zombies do not).

    Args:
        pids: Process ids.

    Returns:
        The live ones, in the given order.
    """
    left = []
    for pid in pids:
        found = _stat(_PROC / str(pid))
        if found is not None and found[0] != "Z":
            left.append(pid)
    return left


def stop_processes(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """Send SIGTERM to each PID, then SIGKILL to those alive after ``timeout``.

    Args:
        pids: The processes (by PID, as listed by :func:`descendants`).
        timeout: Seconds between SIGTERM and SIGKILL.

    Returns:
        The PIDs still alive after SIGKILL (normally none).
    """
    wanted = list(pids)
    for pid in wanted:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while still_alive(wanted) and time.monotonic() < deadline:
        reap_orphans()
        time.sleep(0.05)
    for pid in still_alive(wanted):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while still_alive(wanted) and time.monotonic() < deadline:
        reap_orphans()
        time.sleep(0.05)
    return still_alive(wanted)
