"""A process in its pod's mount namespace keeps a working directory it can name.

Kubernetes behaviour followed: a container's process starts in its working
directory and ``getcwd()`` names it, whatever the permissions of directories
above it (a container runtime's processes never walk up the host's tree). Here
the pod process enters its own mount namespace as root, then drops to the
pod's user; it must not end up in a directory of the old namespace, where
``getcwd`` can only walk up by name and fails at a parent it may not read —
as ``/tmp/pytest-of-root`` (0711) is for a singleuser server started as an
LDAP uid.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devcluster.kubelet import mountns

NOBODY = 65534


def test_the_working_directory_is_named_under_a_search_only_parent(
    tmp_path: Path,
) -> None:
    assert os.geteuid() == 0, "this test needs root: mount namespaces, a user switch"
    closed = tmp_path / "closed"
    workdir = closed / "home"
    workdir.mkdir(parents=True)
    closed.chmod(0o711)  # others may pass through, not list
    workdir.chmod(0o777)
    tmp_path.chmod(0o755)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n", encoding="utf-8")

    def child() -> None:
        mountns.enter(mountns.View(str(hosts)))
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)

    result = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getcwd())"],
        cwd=workdir,
        preexec_fn=child,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(workdir)
