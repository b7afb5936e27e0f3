"""A container as a local process: its command line, env, directory and user.

What a container runtime makes of a container spec, on this machine: the
container's ``command + args`` (with ``$(VAR)`` expanded, container paths and
``0.0.0.0`` rewritten, see ``devcluster.kubelet.podspec``), the container env
(with the Service variables) on top of a small base env, the pod's hosts file
(``devcluster.kubelet.hosts``, bound on ``/etc/hosts`` when devcluster is
root), the working directory (else ``$HOME``), and the user from its security
context, else its image's ``USER`` (from the image's local environment, or
``ClusterConfig.image_users``; ``devcluster.kubelet.identity``), and the image's
``ENV`` under the container's (the local environment's, else
``ClusterConfig.image_env``). With container paths, an image ``HOME`` no volume
backs is a directory of the container's own, owned by the image's user, as
the image would hold it. ``prepare`` builds
that (a ``Launch``) and ``exec_launch`` the same for a command run inside the
running container (``kubectl exec``, exec probes and hooks). In ``sim`` mode,
and for containers with neither command nor args (e.g. ``pause``
placeholders), nothing runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devcluster.kubelet import mountns, podspec
from devcluster.kubelet.cgroups import Cgroup
from devcluster.kubelet.identity import Identity, blocked, interpreter, run_as
from devcluster.kubelet.images import image_env, image_user
from devcluster.kubelet.pod import PodRun
from devcluster.kubelet.process import Launch
from devcluster.kubelet.volumes import home_dir, mounts
from devcluster.services.image_envs import ImageEnvironment

SIM_ANNOTATION = "devcluster.io/kubelet-mode"
"""Pod annotation overriding ``config.kubelet_mode`` for one pod (run|sim)."""


class ContainerConfigError(Exception):
    """The container cannot be created as specified (CreateContainerConfigError)."""


def mode_of(pod: dict[str, Any], default: str) -> str:
    """Return ``run`` or ``sim`` for a pod (its annotation, else ``default``)."""
    annotations = pod["metadata"].get("annotations") or {}
    return str(annotations.get(SIM_ANNOTATION) or default)


def _system_path() -> list[str]:
    """This machine's PATH without devcluster's own Python environment."""
    own = {str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")}
    return [
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in own
    ]


def base_env(
    run: PodRun, home: str, image: ImageEnvironment | None = None
) -> dict[str, str]:
    """Return the environment every pod process starts from.

    A container runs with its image's environment first on PATH and never sees
    devcluster's own Python; without an image mapping, devcluster's Python
    comes first.
    """
    first = (
        str(image.bin_dir) if image is not None else str(Path(sys.executable).parent)
    )
    rest = _system_path() if image is not None else [os.environ.get("PATH", "")]
    path = os.pathsep.join([first, *rest])
    tmp = run.pod_dir / "tmp"
    if not tmp.exists():
        tmp.mkdir(parents=True, exist_ok=True)
        tmp.chmod(0o1777)  # like /tmp: any of the pod's users may write here
    return {
        "PATH": path,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": home,
        "TMPDIR": str(tmp),
        "HOSTNAME": run.name,
        "DEVCLUSTER_POD_IP": run.ip,
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class Prepared:
    """A container ready to start: its launch, mounts and readiness port."""

    launch: Launch
    mounted: dict[str, str]
    wanted: Identity
    """Who the securityContext asks the container to run as."""
    port: int | None
    """The port that must accept TCP before a container without readinessProbe
    is Ready (devcluster's stand-in for the image's health)."""


def command_line(
    container: dict[str, Any], image: ImageEnvironment | None
) -> list[str]:
    """Return what a container runs: ``command``/``args`` over the image's.

    As Kubernetes combines them: ``command`` replaces the image's
    ENTRYPOINT (and its CMD), ``args`` replace the CMD. An image ENTRYPOINT of
    ``tini … --`` is left out: tini reaps orphans and forwards signals, which
    the kubelet's per-container cgroup does here (nothing installs tini).
    """
    config = image.config if image is not None else {}
    command = container.get("command")
    args = container.get("args")
    if command:
        return [str(a) for a in [*command, *(args or [])]]
    entrypoint = list(config.get("Entrypoint") or [])
    if entrypoint and Path(str(entrypoint[0])).name == "tini":
        entrypoint = (
            entrypoint[entrypoint.index("--") + 1 :] if "--" in entrypoint else []
        )
    rest = args if args else list(config.get("Cmd") or [])
    return [str(a) for a in [*entrypoint, *rest]]


@dataclass(frozen=True)
class ImageHome:
    """The home directory an image holds: its path and its owner (the USER)."""

    path: str
    owner: Identity


def image_home(
    image_vars: Mapping[str, str],
    env: Mapping[str, str],
    mounted: Mapping[str, str],
    image_default: str,
) -> ImageHome | None:
    """Return the image's ``HOME`` directory the container needs (None: none).

    An image whose ENV sets ``HOME`` holds that directory, owned by its USER
    (``/home/jovyan``, jovyan's, in Jupyter's images): devcluster, which has
    no image filesystem, makes one. Not where a volume backs it, nor when the
    container's env moves ``HOME`` elsewhere (a runtime makes no directory for
    that).
    """
    home = image_vars.get("HOME", "").rstrip("/")
    if not home.startswith("/") or env.get("HOME", home).rstrip("/") != home:
        return None
    if podspec.map_path(home, dict(mounted)):
        return None
    # the image's USER (uid[:gid]), else root, who built the image
    owner = run_as({}, {}, Identity(0, 0), image_default)
    return ImageHome(home, owner)


def _image_home_bind(home: ImageHome, scratch: Path) -> mountns.Bind:
    """Make the image's home directory for one container start; bind it."""
    # A restarted container starts from its image again: a fresh directory
    # per start, in the start's scratch directory (kubectl exec shares it).
    source = scratch / "image-home"
    source.mkdir(parents=True, exist_ok=True)
    os.chown(source, home.owner.uid, home.owner.gid)
    source.chmod(0o755)
    return mountns.Bind(str(source), home.path)


def _view(
    run: PodRun,
    mounted: dict[str, str],
    container: dict[str, Any],
    image: ImageEnvironment | None,
    can_switch: bool,
    home: ImageHome | None = None,
) -> mountns.View | None:
    """The container's mount namespace (root only): hosts file, container paths
    (else the read-only mounts made read-only in place), the image's home
    directory."""
    if not can_switch or run.hosts is None:
        return None
    binds: list[mountns.Bind] = []
    if run.store.config.container_paths:
        read_only = {
            m["mountPath"]: bool(m.get("readOnly"))
            for m in container.get("volumeMounts") or []
        }
        files = image.files if image is not None else {}
        binds += [mountns.Bind(str(src), path, True) for path, src in files.items()]
        binds += [
            mountns.Bind(host, path, read_only.get(path, False))
            for path, host in mounted.items()
        ]
    else:
        binds += _read_only_in_place(container, mounted)
    scratch = run.pod_dir / "rootfs" / uuid.uuid4().hex[:12]
    workdir = ""
    if run.store.config.container_paths:
        if home is not None:
            binds.append(_image_home_bind(home, scratch))
        config = image.config if image is not None else {}
        workdir = str(container.get("workingDir") or config.get("WorkingDir") or "/")
    return mountns.View(str(run.hosts), tuple(binds), str(scratch), workdir)


def _read_only_in_place(
    container: dict[str, Any], mounted: dict[str, str]
) -> list[mountns.Bind]:
    """Without container paths: every ``readOnly`` mount's host directory bound
    read-only on itself, so the pod's processes cannot write to it ("Read-only
    file system") while the machine's other processes still can (the volume
    is one directory on this machine, rewritten into the container's paths).
    A directory also mounted writable elsewhere in the container stays
    writable."""
    read_only, writable = set(), set()
    for mount in container.get("volumeMounts") or []:
        host = mounted.get(mount.get("mountPath", ""))
        if host is not None:
            (read_only if mount.get("readOnly") else writable).add(host)
    return [mountns.Bind(h, h, True) for h in sorted(read_only - writable)]


def _inside(view: mountns.View | None, mount_ns: int | None) -> mountns.View | None:
    """The view of another process of the container.

    While the main process runs, its mount namespace (``mount_ns``: what the
    container wrote outside its volumes included); else the same binds with
    overlay layers of its own.
    """
    if view is None:
        return None
    if mount_ns is not None:
        return replace(view, join=mount_ns)
    scratch = os.path.join(os.path.dirname(view.scratch), uuid.uuid4().hex[:12])
    return mountns.View(view.hosts, view.binds, scratch, view.workdir)


def prepare(
    run: PodRun,
    pod: dict[str, Any],
    container: dict[str, Any],
    dirs: dict[str, Path],
    current: Identity,
    can_switch: bool,
    image: ImageEnvironment | None = None,
    runtime_preload: str = "",
) -> Prepared:
    """Build a container's process (not started).

    Args:
        run: the pod's run record.
        pod: the pod.
        container: the container spec.
        dirs: the host directory of every pod volume.
        current: devcluster's own identity.
        can_switch: devcluster may change users (it runs as root).
        image: the local environment of the container's image (None: no
            image mapping, devcluster's own Python).
        runtime_preload: the ``podbind`` library to preload (empty: none).

    Raises:
        ContainerConfigError: a subPath that cannot be made.
        RunAsError: ``runAsNonRoot`` with a root user.
    """
    try:
        mounted = mounts(container, dirs)
    except (OSError, ValueError) as exc:
        raise ContainerConfigError(str(exc)) from exc
    config = image.config if image is not None else {}
    reference = str(container.get("image") or "")
    image_default = str(config.get("User") or "") or image_user(
        run.store.config.image_users, reference
    )
    # the image's ENV: its local environment's, else what devcluster was told
    image_vars = image.env() if image is not None else {}
    image_vars = image_vars or image_env(run.store.config.image_env, reference)
    wanted = run_as(pod, container, current, image_default)
    identity = wanted if can_switch else current
    host_ip = run.host_ip()
    links = (pod.get("spec") or {}).get("enableServiceLinks", True) is not False
    services = podspec.service_env(
        run.store.items_raw("services"), run.namespace, links
    )
    env = podspec.container_env(
        pod, container, run.store.get_or_none, run.ip, host_ip, services
    )
    own_home = image_home(image_vars, env, mounted, image_default)
    view = _view(run, mounted, container, image, can_switch, own_home)
    if view is not None and view.workdir:
        # container paths are real: nothing is rewritten, the process starts
        # in its working directory inside its mount namespace
        return _prepare_in_view(
            run,
            container,
            image,
            {**image_vars, **env},
            identity,
            current,
            wanted,
            view,
            mounted,
            runtime_preload,
        )
    home = home_dir({**image_vars, **env}, mounted, run, identity)
    full = base_env(run, home, image)
    if runtime_preload:
        full["LD_PRELOAD"] = runtime_preload
    full.update(image_vars)
    full.update({k: podspec.rewrite(v, mounted, run.ip) for k, v in env.items()})
    full["HOME"] = home
    argv = [
        podspec.rewrite(podspec.expand(a, full), mounted, run.ip)
        for a in command_line(container, image)
    ]
    # the image's WORKDIR only where a volume backs it: this machine's own
    # directories are not the image's
    workdir = (
        podspec.map_path(container.get("workingDir") or "", mounted)
        or podspec.map_path(str(config.get("WorkingDir") or ""), mounted)
        or home
    )
    Path(workdir).mkdir(parents=True, exist_ok=True)
    launch = Launch(
        argv,
        full,
        workdir,
        identity=identity if identity != current else None,
        stdin=bool(container.get("stdin")),
        view=view,
    )
    return Prepared(launch, mounted, wanted, podspec.readiness_port(container, full))


def _prepare_in_view(
    run: PodRun,
    container: dict[str, Any],
    image: ImageEnvironment | None,
    env: dict[str, str],
    identity: Identity,
    current: Identity,
    wanted: Identity,
    view: mountns.View,
    mounted: dict[str, str],
    preload: str,
) -> Prepared:
    """A container whose volumes are at their own paths (``container_paths``).

    As a runtime: ``env`` is the image's ENV under the container's, ``HOME``
    from it (else ``/``, a user without a passwd entry), ``0.0.0.0`` still
    meaning the pod IP; the working directory is made inside the namespace if
    missing.
    """
    full = base_env(run, "/", image)
    full.pop("TMPDIR", None)  # the container's own /tmp
    if preload:
        full["LD_PRELOAD"] = preload
    full.update({k: podspec.rewrite(v, {}, run.ip) for k, v in env.items()})
    argv = [
        podspec.rewrite(podspec.expand(a, full), {}, run.ip)
        for a in command_line(container, image)
    ]
    launch = Launch(
        argv,
        full,
        "/",
        identity=identity if identity != current else None,
        stdin=bool(container.get("stdin")),
        view=view,
    )
    return Prepared(launch, mounted, wanted, podspec.readiness_port(container, full))


def exec_launch(
    prepared: Prepared,
    command: list[str],
    cgroup: Cgroup | None,
    tty: bool = False,
    mount_ns: int | None = None,
) -> Launch:
    """Return the launch of ``command`` inside a running container (env, user).

    ``mount_ns`` is the running container's mount namespace (None: its main
    process does not run), which the command joins.
    """
    base = prepared.launch
    # Paths are rewritten as in the container's own command line (not where
    # the container sees its own paths); addresses are not (an exec'd command
    # reaches its pod through $DEVCLUSTER_POD_IP).
    real = base.view is not None and bool(base.view.workdir)
    argv = [
        str(a) if real else podspec.rewrite_paths(str(a), prepared.mounted)
        for a in command
    ]
    return Launch(
        argv,
        dict(base.env),
        base.cwd,
        identity=base.identity,
        cgroup=cgroup,
        stdin=True,
        tty=tty,
        view=_inside(base.view, mount_ns),
    )


def unreachable(launch: Launch) -> str | None:
    """Return why the launch's user cannot run it (None when it can, or is us)."""
    who = launch.identity
    if who is None or not launch.argv:
        return None
    program = (
        shutil.which(launch.argv[0], path=launch.env.get("PATH")) or launch.argv[0]
    )
    if not os.path.isabs(program):
        return None  # not found: the start reports it
    checks = [(program, True), (launch.cwd, False)]
    script = interpreter(program)
    if script and os.path.isabs(script):
        checks.insert(1, (script, True))
    for path, execute in checks:
        why = blocked(path, who, execute)
        if why:
            return why
    return None
