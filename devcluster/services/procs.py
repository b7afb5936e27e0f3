"""Local processes for tests, benchmarks and the demo: start, wait for, stop.

This module owns how devcluster runs a helper program (slapd, the hub, the proxy,
a single-user server): each one is started in its own process group with its
output in a log file, every wait is bounded and fails with the end of that log,
and stopping signals the process group of the PID we started, never a name.
On Linux each one also dies with the process that started it (see
:mod:`devcluster.services.lifeline`), so a test run or a demo killed by a signal
leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Container, Iterator, Mapping, Sequence
from pathlib import Path

_POLL_S = 0.05
LIFELINE = Path(__file__).with_name("lifeline.py")
"""The script that makes a command die with its parent (Linux)."""


class ProcessExitedError(RuntimeError):
    """A process we were waiting for exited before it became ready."""


def lifeline_argv(
    argv: Sequence[str],
    parent: int | None = None,
    user: tuple[int, int] | None = None,
) -> list[str]:
    """Return ``argv`` so that it dies (SIGTERM) when the process starting it ends.

    On Linux the command is run through :mod:`devcluster.services.lifeline`,
    which execs it (same PID); elsewhere ``argv`` is returned unchanged.

    Args:
        argv: The command.
        parent: PID that must still be the command's parent when it starts
            (``None``: no check).
        user: ``(uid, gid)`` the command runs as (the starter must be root);
            ``None``: as the starter.

    Returns:
        The command line to start.
    """
    if not sys.platform.startswith("linux"):
        if user is not None:
            raise OSError("running a command as another user needs Linux")
        return list(argv)
    check = ["--parent", str(parent)] if parent is not None else []
    if user is not None:
        check += ["--user", f"{user[0]}:{user[1]}"]
    return [sys.executable, "-I", "-S", str(LIFELINE), *check, "--", *argv]


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Proc:
    """A command running in its own process group, its output in a log file.

    Use :meth:`start` (or :func:`started`) to create one. :meth:`stop` signals the
    group whose id is the PID we started (SIGTERM, then SIGKILL after a timeout),
    so children the command forked are stopped too. The command gets SIGTERM
    when the thread that started it ends (:func:`lifeline_argv`): start it from
    a thread that outlives it.
    """

    def __init__(
        self, popen: subprocess.Popen[bytes], argv: Sequence[str], log_path: Path
    ) -> None:
        self._popen = popen
        self.argv: tuple[str, ...] = tuple(argv)
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        log_path: str | os.PathLike[str],
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        user: tuple[int, int] | None = None,
    ) -> Proc:
        """Start ``argv`` with stdout and stderr appended to ``log_path``.

        Args:
            argv: The command and its arguments (no shell).
            log_path: File that receives the output; parent folders are created.
            env: Variables set for the command, on top of this process's
                environment unless ``inherit_env`` is false.
            inherit_env: Start from ``os.environ`` (true) or from ``env`` only.
            cwd: Working directory of the command.
            user: ``(uid, gid)`` to run the command as, with no supplementary
                groups (this process must be root); ``None``: as this process.

        Returns:
            The running process.

        Raises:
            FileNotFoundError: The command is not found (as ``Popen`` says it).
        """
        full_env = dict(os.environ) if inherit_env else {}
        full_env.update(env or {})
        if shutil.which(argv[0], path=full_env.get("PATH", os.defpath)) is None:
            # The lifeline execs the command, so Popen itself would not notice.
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        path = Path(log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as log:
            popen = subprocess.Popen(
                lifeline_argv(argv, parent=os.getpid(), user=user),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        return cls(popen, argv, path)

    @property
    def pid(self) -> int:
        """PID of the started command (also its process group id)."""
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """Exit code once the command has exited, else ``None``."""
        return self._popen.poll()

    @property
    def running(self) -> bool:
        """Whether the started command is still running."""
        return self._popen.poll() is None

    def tail(self, n: int = 30) -> str:
        """Return the last ``n`` lines of the log (empty when there is none)."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        lines = data.decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])

    def describe(self) -> str:
        """Return a short description for error messages: command, PID, log."""
        return f"{self.argv[0]} (pid {self.pid}, log {self.log_path})"

    def check_running(self) -> None:
        """Raise :class:`ProcessExitedError` (with the log tail) if it has exited."""
        code = self._popen.poll()
        if code is not None:
            raise ProcessExitedError(
                f"{self.describe()} exited with code {code}; log tail:\n{self.tail()}"
            )

    def stop(
        self, timeout: float = 5.0, first: signal.Signals = signal.SIGTERM
    ) -> int | None:
        """Stop the process group: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Safe to call more than once. Waits (bounded) until the started process
        has exited and been reaped.

        Args:
            timeout: Seconds between the first signal and SIGKILL.
            first: The signal asking the command to stop (PostgreSQL's "fast
                shutdown" is SIGINT; its SIGTERM waits for every client).

        Returns:
            The exit code of the started process (negative: killed by a signal),
            or ``None`` if it could not be reaped even after SIGKILL.
        """
        pgid = self.pid
        deadline = time.monotonic() + timeout
        _signal_group(pgid, first)
        while time.monotonic() < deadline:
            self._popen.poll()
            if self._popen.returncode is not None and not _group_alive(pgid):
                return self._popen.returncode
            time.sleep(_POLL_S)
        _signal_group(pgid, signal.SIGKILL)
        try:
            return self._popen.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            return None

    def __repr__(self) -> str:
        return f"<Proc {self.describe()} returncode={self.returncode}>"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # ESRCH: the group is gone. EPERM: the id now belongs to someone else's group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Return the PIDs of the live (non-zombie) processes in process group ``pgid``.

    Zombies are left out: orphans are reaped by PID 1, which may take a while
    (or never happen) in a container, yet they no longer run anything.
    """
    proc_root = Path("/proc")
    if not proc_root.is_dir():  # not Linux: ask the kernel whether anyone is left
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process has just gone
            continue
        # Fields after the parenthesised command: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[0] != "Z" and fields[2] == str(pgid):
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def _with_tail(message: str, proc: Proc | None) -> str:
    if proc is None:
        return message
    return f"{message}; {proc.describe()} log tail:\n{proc.tail()}"


def wait_for_port(
    host: str, port: int, timeout: float = 10.0, *, proc: Proc | None = None
) -> None:
    """Wait until a TCP connection to ``host:port`` succeeds.

    Args:
        host: Address to connect to.
        port: TCP port.
        timeout: Seconds to wait at most.
        proc: The process expected to listen; if it exits first the wait stops,
            and its log tail is part of every error.

    Raises:
        TimeoutError: Nothing accepted a connection within ``timeout``.
        ProcessExitedError: ``proc`` exited before the port opened.
    """
    deadline = time.monotonic() + timeout
    last_error: OSError | None = None
    while True:
        if proc is not None:
            proc.check_running()
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            message = (
                f"nothing listens on {host}:{port} after {timeout:g} s "
                f"(last error: {last_error})"
            )
            raise TimeoutError(_with_tail(message, proc))
        time.sleep(_POLL_S)


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, timeout: float = 2.0) -> int:
    """Return the HTTP status of a GET on ``url`` (no proxies, redirects followed).

    Raises:
        OSError: The request failed below HTTP (refused, reset, timed out).
    """
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def wait_for_http(
    url: str,
    timeout: float = 10.0,
    expect_status: int | Container[int] = 200,
    *,
    proc: Proc | None = None,
) -> int:
    """Wait until a GET on ``url`` answers with the expected status.

    Args:
        url: The URL to poll (proxies from the environment are ignored).
        timeout: Seconds to wait at most.
        expect_status: A status code, or a collection of acceptable ones.
        proc: The process expected to answer; see :func:`wait_for_port`.

    Returns:
        The status that was accepted.

    Raises:
        TimeoutError: No expected answer within ``timeout``.
        ProcessExitedError: ``proc`` exited first.
    """
    wanted: Container[int] = (
        (expect_status,) if isinstance(expect_status, int) else expect_status
    )
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        if proc is not None:
            proc.check_running()
        try:
            status = http_status(url, timeout=min(2.0, max(timeout, 0.1)))
        except OSError as exc:
            last = f"error {exc}"
        else:
            if status in wanted:
                return status
            last = f"status {status}"
        if time.monotonic() >= deadline:
            message = f"GET {url} did not answer as expected within {timeout:g} s"
            raise TimeoutError(_with_tail(f"{message} (last: {last})", proc))
        time.sleep(_POLL_S)


@contextlib.contextmanager
def started(
    argv: Sequence[str],
    log_path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    inherit_env: bool = True,
    cwd: str | os.PathLike[str] | None = None,
    port: tuple[str, int] | None = None,
    ready_url: str | None = None,
    expect_status: int | Container[int] = 200,
    timeout: float = 30.0,
    stop_timeout: float = 5.0,
) -> Iterator[Proc]:
    """Run a command for the duration of a ``with`` block.

    The command is started, then waited for (``port`` accepting connections
    and/or ``ready_url`` answering ``expect_status``), then yielded; it is
    stopped by PID when the block ends, also when starting or waiting failed.

    Args:
        argv: The command (no shell).
        log_path: Log file for its output.
        env: Extra environment (see :meth:`Proc.start`).
        inherit_env: Start from this process's environment.
        cwd: Working directory.
        port: ``(host, port)`` to wait for, or ``None``.
        ready_url: URL to wait for, or ``None``.
        expect_status: Status(es) accepted from ``ready_url``.
        timeout: Seconds to wait for readiness (shared by both waits).
        stop_timeout: Seconds between SIGTERM and SIGKILL when stopping.
    """
    proc = Proc.start(argv, log_path, env=env, inherit_env=inherit_env, cwd=cwd)
    try:
        deadline = time.monotonic() + timeout
        if port is not None:
            wait_for_port(port[0], port[1], timeout, proc=proc)
        if ready_url is not None:
            left = max(deadline - time.monotonic(), 0.1)
            wait_for_http(ready_url, left, expect_status, proc=proc)
        yield proc
    finally:
        proc.stop(stop_timeout)
