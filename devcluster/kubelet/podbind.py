"""Binds on every address go to the pod's own IP: the ``podbind`` preload library.

Containers listen on every address (``0.0.0.0``, ``::``, an empty ``--ip=``),
which in a cluster means the pod's own network namespace. Pods here share this
machine's ports, so such a listener would hold its port on every loopback
address, in the way of other pods and of Services' cluster IPs. With
``ClusterConfig.pod_binds`` the kubelet loads ``native/podbind.c`` into every
pod process (``LD_PRELOAD``): its ``bind()`` turns an any-address bind into one
on ``$DEVCLUSTER_POD_IP``. ``build`` compiles it with the C compiler once per
kubelet (a missing compiler is an error that names it); programs linked
statically, which ignore ``LD_PRELOAD``, are not covered.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("native") / "podbind.c"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "devcluster"
"""Where the library is built: the repository's cache, which pods' users can
reach and no container path hides (a state directory under ``/tmp`` is hidden
from a container with its own ``/tmp``)."""


class PodBindError(RuntimeError):
    """The preload library cannot be built."""


def build(directory: Path) -> Path:
    """Compile the library into ``directory`` (once per source) and return it.

    Raises:
        PodBindError: no C compiler, or it failed.
    """
    text = SOURCE.read_bytes()
    target = directory / f"podbind-{hashlib.sha256(text).hexdigest()[:12]}.so"
    if target.is_file():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise PodBindError(
            "pod_binds needs a C compiler (cc or gcc) to build "
            f"{SOURCE.name}; install gcc (Debian: apt-get install gcc)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    done = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise PodBindError(f"building {SOURCE.name} failed: {done.stderr[-2000:]}")
    partial.chmod(0o755)
    partial.replace(target)
    return target
