"""A pod process's own view of the filesystem: a private mount namespace.

A container runtime gives every container its own mounts. devcluster runs pod
processes on this machine's filesystem; each process the kubelet starts for a
pod (as root) enters a mount namespace of its own in which

* the pod's hosts file (``devcluster.kubelet.hosts``) is bound on ``/etc/hosts``;
* with ``ClusterConfig.container_paths``, every volume mount and every file the
  image holds is bound at its path in the container (``/srv/jupyterhub``,
  ``/usr/local/etc/jupyterhub/secret``, ...), read-only where the mount says so,
  so programs that read fixed paths find them. A missing mount point is made
  in an overlay of its nearest existing directory (upper layer in the pod's
  scratch directory), so this machine's directories never change; a path
  whose nearest existing directory is ``/`` is not bound (its process still
  finds the volume through the rewritten paths of its command line and env).

Without ``container_paths`` (the processes reach their volumes at the host
directories their paths are rewritten to) the namespace binds only the hosts
file and every ``readOnly`` mount's host directory read-only on itself, so a
write there fails with "Read-only file system" as in a container.

Mounts in the namespace are private, so nothing of it reaches the machine, and
it ends with the last process in it (or when the kubelet lets go of it).
``enter`` runs in the child between fork and exec
(``devcluster.kubelet.process``) and makes only system calls and directory
checks. A process run inside a running container (``kubectl exec``, exec
probes and hooks) makes no namespace: it joins the container's (``View.join``,
pinned by ``pin`` when the main process started), as a runtime's exec does,
through ``devcluster.kubelet.nsjoin``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 0x1
_MS_REMOUNT = 0x20
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


@dataclass(frozen=True)
class Bind:
    """A host file or directory bound at a container path."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class View:
    """What a pod process sees: its hosts file and binds, and a scratch dir."""

    hosts: str | None
    binds: tuple[Bind, ...] = ()
    scratch: str = ""
    """Where overlay layers for missing mount points go (one per process)."""
    workdir: str = ""
    """The working directory in the namespace, made when missing (empty: keep
    the one the process started in)."""
    join: int | None = None
    """An open descriptor of a mount namespace to join instead of making one
    (the container's, from ``pin``)."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None = None,
) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {source} on {target}",
    )


def anchor_of(path: str) -> str:
    """Return the nearest existing directory of a path (``/`` at worst)."""
    current = os.path.dirname(path.rstrip("/")) or "/"
    while not os.path.isdir(current):
        current = os.path.dirname(current) or "/"
    return current


def overlays(binds: tuple[Bind, ...], *extra: str) -> list[str]:
    """Return the directories to overlay so that every missing target can be made.

    ``extra`` are more paths that must exist (the working directory). A target
    under another bind's target is made inside that bind; anchors under
    another anchor are covered by it; ``/`` is never overlaid.
    """
    targets = [b.target.rstrip("/") for b in binds] + [e.rstrip("/") for e in extra]
    anchors = set()
    for target in targets:
        if os.path.lexists(target) or any(
            target.startswith(other + "/") for other in targets if other != target
        ):
            continue
        anchor = anchor_of(target)
        if anchor != "/":
            anchors.add(anchor)
    return sorted(
        a for a in anchors if not any(a.startswith(b + "/") for b in anchors if b != a)
    )


def _make_target(bind: Bind, is_dir: bool) -> bool:
    """Make a missing mount point (a directory or a file); False if it cannot be."""
    target = bind.target.rstrip("/") or "/"
    if os.path.lexists(target):
        return True
    if anchor_of(target) == "/" or not os.access(anchor_of(target), os.W_OK):
        return False
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass
    return True


def enter(view: View) -> None:
    """Enter a private mount namespace with the view's binds.

    Raises:
        OSError: a system call failed (not root, or no mount namespaces).
    """
    binds = list(view.binds)
    if view.hosts is not None:
        binds.append(Bind(view.hosts, "/etc/hosts"))
    _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # The starting directory is taken inside the new namespace: a directory
    # opened before unshare stays on the old namespace's mounts, and a process
    # back in it has a working directory its own root cannot reach (getcwd
    # then walks up by name and fails where a parent is not readable).
    start = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE)
    # Each source's directory is held open (in this namespace, before any
    # mount) and the source bound relative to it: a bind on /tmp would hide a
    # source under /tmp from the binds after it.
    held: dict[str, tuple[int, str]] = {}
    kinds: dict[str, bool] = {}
    for bind in binds:
        is_dir = os.path.isdir(bind.source)
        parent = bind.source if is_dir else os.path.dirname(bind.source)
        relative = "." if is_dir else "./" + os.path.basename(bind.source)
        held[bind.source] = (os.open(parent, os.O_RDONLY | os.O_DIRECTORY), relative)
        kinds[bind.target] = is_dir
    workdir = view.workdir.rstrip("/")
    for index, anchor in enumerate(overlays(tuple(binds), *[workdir][: bool(workdir)])):
        upper = os.path.join(view.scratch, str(index), "upper")
        work = os.path.join(view.scratch, str(index), "work")
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        _mount(
            "overlay",
            anchor,
            "overlay",
            0,
            f"lowerdir={anchor},upperdir={upper},workdir={work}",
        )
    bound = []
    for bind in sorted(binds, key=lambda b: b.target.count("/")):
        if bind.target.rstrip("/") in ("", "/") or not _make_target(
            bind, kinds[bind.target]
        ):
            continue
        fd, relative = held[bind.source]
        os.fchdir(fd)
        _mount(relative, bind.target, None, _MS_BIND | _MS_REC)
        bound.append(bind)
    for fd, _ in held.values():
        os.close(fd)
    # read-only last: mount points below a read-only mount are made first
    for bind in bound:
        if bind.read_only:
            _mount(None, bind.target, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY)
    if not workdir:
        os.fchdir(start)  # where the process was started
    elif _make_target(Bind("/", workdir), True):
        os.chdir(workdir)
    else:
        os.chdir("/")  # a working directory this machine cannot give
    os.close(start)


def pin(pid: int) -> int:
    """Return a descriptor of the mount namespace process ``pid`` is in.

    The namespace lives as long as the descriptor, whatever happens to the
    process (or its PID) later.

    Raises:
        OSError: no such process.
    """
    return os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
