"""A pod process's own view of the filesystem: a private mount namespace.

A container runtime gives every container its own mounts. devcluster runs pod
processes on this machine's filesystem, with one exception: each process the
kubelet starts for a pod (as root) enters a mount namespace of its own in which
the pod's hosts file (``devcluster.kubelet.hosts``) is bind-mounted on
``/etc/hosts``. Mounts in that namespace are private, so nothing of it reaches
the machine, and it ends with the last process in it.

``enter`` runs in the child between fork and exec (``devcluster.kubelet.process``)
and makes only system calls, through the C library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_CLONE_NEWNS = 0x00020000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def enter(hosts: bytes) -> None:
    """Enter a private mount namespace with ``hosts`` bound on ``/etc/hosts``.

    Raises:
        OSError: a system call failed (not root, or no mount namespaces).
    """
    _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount /")
    _check(_libc.mount(hosts, b"/etc/hosts", None, _MS_BIND, None), "bind /etc/hosts")
