"""Run a command that dies with its parent: ``lifeline.py [options] -- CMD…``.

Options: ``--parent PID``, then ``--user UID:GID``.

This script owns one thing: on Linux it asks the kernel to send SIGTERM to the
command when the process that started it ends (``PR_SET_PDEATHSIG``), then
replaces itself with the command (same PID, same process group). A test run
killed by a signal runs no finalizers, and a hub that dies leaves its proxy
behind; with this in front, neither leaves processes running for nobody.

With ``--parent PID`` it refuses to start the command when that process is no
longer its parent (it died before the request was made). With ``--user UID:GID``
(run as root) it first becomes that user, with no supplementary groups: the
kernel clears the death signal when a process changes its user, so the change
must come before the request, not after it (``setpriv`` in front of the command
would lose it). PostgreSQL, which refuses to run as root, starts this way.

It is run as a file with ``python -I -S`` so that it starts in milliseconds, and
so imports nothing but the standard library. The death signal follows the
*thread* that started the process: start long-lived processes from a thread
that lives as long as they should (the main thread, or an event loop's).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal this process gets when its parent thread ends."""
USAGE = "usage: lifeline.py [--parent PID] [--user UID:GID] -- COMMAND [ARG…]"


def main(argv: list[str]) -> int:
    """Arrange the death signal, then exec the command (returns only on failure)."""
    parent = None
    if argv[:1] == ["--parent"] and len(argv) > 1:
        parent, argv = int(argv[1]), argv[2:]
    user = None
    if argv[:1] == ["--user"] and len(argv) > 1:
        user, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    if user is not None:
        try:
            uid, gid = (int(part) for part in user.split(":"))
            if os.geteuid() == 0:  # only root has groups to drop (and may)
                os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        except (ValueError, OSError) as exc:
            print(f"lifeline: cannot become {user}: {exc}", file=sys.stderr)
            return 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        print(f"lifeline: prctl failed: {os.strerror(errno)}", file=sys.stderr)
        return 1
    if parent is not None and os.getppid() != parent:
        print(f"lifeline: parent {parent} is gone; not starting", file=sys.stderr)
        return 1
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"lifeline: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    return 1  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
