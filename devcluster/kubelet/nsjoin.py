"""Start a command inside a running container's mount namespace (``kubectl exec``).

A container runtime's exec runs the command in the container's namespaces, so
it sees what the container wrote where no volume is (runc joins them with
setns). devcluster's container has a mount namespace of its own
(``devcluster.kubelet.mountns``); a command run in it (exec session, exec
probe, exec hook) joins that namespace here.

Why a program of its own, run by a fresh interpreter (``python -I -S``) rather
than a ``preexec_fn``: Linux lets a process join a mount namespace only while
no other thread shares its filesystem context (``setns(CLONE_NEWNS)`` fails
with EINVAL otherwise). A child forked from devcluster runs Python's
``os.register_at_fork`` hooks before its ``preexec_fn``, and a hook may start a
thread there: ``wb_dask_gateway_fix`` starts its closer thread in every forked
child once ``dask_gateway.client`` is imported, which a full test session
does. A fresh interpreter without site-packages runs no such code and has one
thread.

Command line: ``MOUNT_FD REPORT_FD WORKDIR USER -- COMMAND...``. ``MOUNT_FD``
is the namespace (pinned when the container's main process started);
``WORKDIR`` is where the command starts (empty: the directory it was started
in, by path); ``USER`` is ``uid:gid:group,group`` (empty: stay root).
``REPORT_FD`` closes when the command starts; when it cannot (not found, not
executable, the join failed), it carries ``errno``, message and file name,
separated by NUL, and the program exits 127. The command gets the environment
this program was started with (``/proc/self/environ``: the interpreter's own
startup may add ``LC_CTYPE``).

This module imports only the standard library: it runs without devcluster on
its path.
"""

from __future__ import annotations

import ctypes
import os
import sys

_CLONE_NEWNS = 0x00020000

PROGRAM = os.path.abspath(__file__)
"""This file, as the interpreter runs it."""


def command_line(
    python: str,
    mount_fd: int,
    report_fd: int,
    workdir: str,
    user: tuple[int, int, tuple[int, ...]] | None,
    command: list[str],
) -> list[str]:
    """Return the command line that runs ``command`` in the namespace ``mount_fd``."""
    who = ""
    if user is not None:
        uid, gid, groups = user
        who = f"{uid}:{gid}:{','.join(str(g) for g in groups)}"
    return [
        python,
        "-I",
        "-S",
        PROGRAM,
        str(mount_fd),
        str(report_fd),
        workdir,
        who,
        "--",
        *command,
    ]


def encode_failure(exc: OSError) -> bytes:
    """Return how a failure to start travels on the report descriptor."""
    fields = (str(exc.errno or 0), exc.strerror or str(exc), str(exc.filename or ""))
    return "\0".join(fields).encode(errors="replace")


def decode_failure(data: bytes) -> OSError:
    """Return the ``OSError`` that ``encode_failure`` sent."""
    fields = data.decode(errors="replace").split("\0")
    number, message, filename = (fields + ["", ""])[:3]
    code = int(number) if number.isdigit() else 0
    if filename:
        return OSError(code, message, filename)
    return OSError(code, message)


def _environment() -> dict[bytes, bytes]:
    with open("/proc/self/environ", "rb") as environ:
        entries = environ.read().split(b"\0")
    return dict(e.split(b"=", 1) for e in entries if b"=" in e)


def _join(mount_fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    if libc.setns(mount_fd, _CLONE_NEWNS) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns(mount namespace): {os.strerror(errno)}")
    os.close(mount_fd)


def main(args: list[str]) -> int:
    """Join, switch user, exec; 127 (and a report) when the command cannot start."""
    mount_fd, report_fd = int(args[0]), int(args[1])
    workdir, who, command = args[2], args[3], args[5:]
    os.set_inheritable(report_fd, False)  # closed by the exec: the command runs
    try:
        # Read while still root: after the switch to the pod's user the process
        # is not dumpable, and its /proc/self files are root's (EACCES).
        environment = _environment()
        start = os.getcwd()
        _join(mount_fd)
        # setns leaves the process at the namespace's root
        try:
            os.chdir(workdir or start)
        except OSError:
            os.chdir("/")
        if who:
            uid, gid, groups = who.split(":")
            os.setgroups([int(g) for g in groups.split(",") if g])
            os.setresgid(int(gid), int(gid), int(gid))
            os.setresuid(int(uid), int(uid), int(uid))
        os.execvpe(command[0], command, environment)
    except OSError as exc:
        os.write(report_fd, encode_failure(exc))
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
