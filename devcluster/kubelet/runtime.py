"""What every pod on this kubelet shares: settings, cgroups, and who devcluster is.

``Runtime`` is the kubelet's side of a container runtime: the cluster settings,
the cgroup tree (``devcluster.kubelet.cgroups``), devcluster's own identity and
whether it may change users (only root may). When it may not, a container that
asks for another user runs as devcluster's user; the kubelet logs that once and
warns once per pod (``warn_identity``). When it may, the state directory must be
searchable by the pods' users: ``open_state_dir`` adds search permission for
group and others (``go+x``, never read: a pod user without runAsGroup is in
group 0) to the state directory and to the directories above it that devcluster
owns (a 0700 temporary directory, typically), whenever one lacks it, and logs
each change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from devcluster.config import ClusterConfig
from devcluster.kubelet.cgroups import CgroupTree
from devcluster.kubelet.hosts import HostsFiles
from devcluster.kubelet.identity import Identity
from devcluster.tokens import TokenIssuer

log = logging.getLogger(__name__)


def current_identity() -> Identity:
    """Return devcluster's own user, group and supplementary groups."""
    gid = os.getegid()
    return Identity(os.geteuid(), gid, tuple(g for g in os.getgroups() if g != gid))


@dataclass
class Runtime:
    """The kubelet's container runtime: settings, cgroups, devcluster's identity."""

    config: ClusterConfig
    state_dir: Path
    current: Identity = field(default_factory=current_identity)
    hosts: HostsFiles | None = None
    """The pods' hosts files (devcluster's cluster DNS), kept by the kubelet."""
    preload: str = ""
    """The ``podbind`` library pod processes load (empty: none)."""
    ca_pem: str = ""
    """The cluster CA (``ca.crt`` of ServiceAccount token volumes)."""
    issuer: TokenIssuer | None = None
    """Signs the ServiceAccount tokens of projected volumes (None: unsigned)."""
    _cgroups: CgroupTree | None = None
    _warned_pods: set[str] = field(default_factory=set)
    _logged: bool = False

    @property
    def cgroups(self) -> CgroupTree:
        """The cgroup tree, made when the first process starts (sim mode makes none)."""
        if self._cgroups is None:
            self._cgroups = CgroupTree.create()
        return self._cgroups

    @property
    def cgroups_made(self) -> bool:
        """The cgroup tree exists (some pod process has run)."""
        return self._cgroups is not None

    async def reap(self, pod_uid: str) -> None:
        """Kill whatever is left of a pod's processes and remove its cgroups."""
        if self._cgroups is None:
            return
        for _ in range(200):
            self._cgroups.kill_pod(pod_uid)
            if self._cgroups.remove_pod(pod_uid):
                return
            await asyncio.sleep(0.01)  # SIGKILLed tasks leave within moments
        log.warning("kubelet: the cgroup of pod %s still has processes", pod_uid)

    def close(self) -> None:
        """Kill what is left in the cgroups and remove them."""
        if self._cgroups is not None:
            self._cgroups.close()

    @property
    def can_switch(self) -> bool:
        """devcluster may run processes as other users (it is root)."""
        return self.current.uid == 0

    def warn_identity(self, pod_uid: str, wanted: Identity) -> bool:
        """Tell (once per pod) whether to warn that ``wanted`` cannot be honoured."""
        if self.can_switch or wanted.uid == self.current.uid:
            return False
        if not self._logged:
            self._logged = True
            log.warning(
                "kubelet: devcluster runs as uid %d, not root: containers asking "
                "for another user run as uid %d",
                self.current.uid,
                self.current.uid,
            )
        if pod_uid in self._warned_pods:
            return False
        self._warned_pods.add(pod_uid)
        return True

    def forget(self, pod_uid: str) -> None:
        """Drop what is kept about a pod that went."""
        self._warned_pods.discard(pod_uid)

    def open_state_dir(self) -> None:
        """Let other users search the state directory and the path to it.

        Checked at every start of a container that runs as another user, not
        once: another program may close a directory again meanwhile (pytest
        sets its ``/tmp/pytest-of-<user>`` back to 0700 whenever a session
        starts). A few ``stat`` calls; a change is made and logged only when one
        is missing.
        """
        if not self.can_switch:
            return
        path = self.state_dir.resolve()
        for directory in [path, *path.parents]:
            try:
                st = directory.stat()
            except OSError:
                continue
            search = stat.S_IXGRP | stat.S_IXOTH
            if st.st_mode & search == search or st.st_uid != self.current.uid:
                continue
            directory.chmod(stat.S_IMODE(st.st_mode) | search)
            log.info(
                "kubelet: %s made searchable by group and others (go+x) so pods "
                "running as other users reach their volumes",
                directory,
            )
