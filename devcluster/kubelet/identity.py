"""Who a container's processes run as, and whether that user can reach its files.

``run_as`` resolves a container's user the way the kubelet does: the container's
``securityContext.runAsUser``/``runAsGroup`` over the pod's, the pod's
``fsGroup`` and ``supplementalGroups`` as supplementary groups, and
``runAsNonRoot`` checked against the result. A container that sets no user runs
as devcluster itself (the "image's default user"). When devcluster is not root
it cannot change users: the container runs as devcluster's user and the kubelet
says so in a Warning event.

A container here runs the host's files (the Python of devcluster's venv, the
pod's volume directories) instead of an image's, so a process that dropped to a
pod's uid may find a directory on the way it cannot search (a 0700 home holding
the Python installation, a 0700 temporary directory). ``blocked`` finds such a
directory before the process starts, so the container fails with a message that
names it instead of a bare "permission denied".
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Identity:
    """The user, group and supplementary groups a process runs with."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def describe(self) -> str:
        """Return ``uid 1000 (gid 100, groups 100,1001)``."""
        extra = f", groups {','.join(map(str, self.groups))}" if self.groups else ""
        return f"uid {self.uid} (gid {self.gid}{extra})"


class RunAsError(Exception):
    """The container cannot run as its securityContext asks.

    The kubelet reports it as CreateContainerConfigError.
    """


def _field(pod: Mapping[str, Any], container: Mapping[str, Any], name: str) -> Any:
    own = (container.get("securityContext") or {}).get(name)
    if own is not None:
        return own
    return ((pod.get("spec") or {}).get("securityContext") or {}).get(name)


def run_as(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    current: Identity,
    image_user: str = "",
) -> Identity:
    """Return who a container runs as (``current``: devcluster's own identity).

    ``image_user`` is the image's ``USER`` (``uid[:gid]``, numeric): the
    default when the security context sets no user, as a runtime does.

    Raises:
        RunAsError: ``runAsNonRoot`` is set and the container would run as root.
    """
    uid = _field(pod, container, "runAsUser")
    gid = _field(pod, container, "runAsGroup")
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    image_uid, _, image_gid = image_user.partition(":")
    if uid is None and image_uid.isdigit():
        uid = int(image_uid)
        default_gid = int(image_gid) if image_gid.isdigit() else _primary_gid(uid)
    elif uid is None:
        uid, default_gid = current.uid, current.gid
    else:
        default_gid = _primary_gid(int(uid))
    gid = default_gid if gid is None else int(gid)
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        groups.insert(0, int(pod_sc["fsGroup"]))
    if _field(pod, container, "runAsNonRoot") and int(uid) == 0:
        name = container.get("name", "")
        meta = pod.get("metadata") or {}
        raise RunAsError(
            "container has runAsNonRoot and image will run as root "
            f'(pod: "{meta.get("name", "")}_{meta.get("namespace", "")}'
            f'({meta.get("uid", "")})", container: {name})'
        )
    return Identity(int(uid), gid, tuple(dict.fromkeys(g for g in groups)))


def _primary_gid(uid: int) -> int:
    """The user's group from the passwd file, else 0 (as a runtime does)."""
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return 0


def _searchable(st: os.stat_result, who: Identity, bit: int) -> bool:
    """Tell whether ``who`` has permission ``bit`` (execute/search) on a file."""
    if who.uid == 0:
        # root may search any directory, and execute a file anybody may execute
        return stat.S_ISDIR(st.st_mode) or bool(st.st_mode & 0o111)
    if st.st_uid == who.uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid == who.gid or st.st_gid in who.groups:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def _chain(path: Path) -> Iterable[Path]:
    """Every directory a lookup of ``path`` passes, following symlinks."""
    seen: set[Path] = set()
    for candidate in (path, Path(os.path.realpath(path))):
        for parent in reversed(candidate.parents):
            if parent not in seen:
                seen.add(parent)
                yield parent


def blocked(path: str, who: Identity, execute: bool = False) -> str | None:
    """Return why ``who`` cannot reach ``path`` (None when it can).

    Args:
        path: an absolute path.
        who: the process's identity.
        execute: also require permission to execute the file itself.
    """
    for directory in _chain(Path(path)):
        try:
            st = os.stat(directory)
        except OSError:
            return None  # a missing directory is reported by whoever needs it
        if not _searchable(st, who, 0o1):
            return (
                f"{directory} (mode {stat.S_IMODE(st.st_mode):04o}, owner "
                f"{st.st_uid}:{st.st_gid}) cannot be searched by {who.describe()}"
            )
    if execute:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not _searchable(st, who, 0o1):
            return (
                f"{path} (mode {stat.S_IMODE(st.st_mode):04o}, owner "
                f"{st.st_uid}:{st.st_gid}) cannot be executed by {who.describe()}"
            )
    return None


def interpreter(path: str) -> str | None:
    """Return the interpreter of a ``#!`` script, or None."""
    try:
        with open(path, "rb") as script:
            head = script.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].strip()
    return line.split()[0].decode(errors="replace") if line else None
