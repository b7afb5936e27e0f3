"""``make conformance``: KubeSpawner 7.1.0's own test suite against a devcluster.

Starts ``python -m devcluster`` (one static node ``core``, its state and
kubeconfig in a fresh directory under ``.cache``), runs the suite from its own
directory (``../shared/suites/kubespawner-7.1.0`` beside the repository, never
modified: its conftest, its pyproject's pytest settings) with the Python of
the conformance venv, ``KUBECONFIG`` pointing at the devcluster and the plugin
``kubespawner_plugin`` loaded first, and stops the devcluster by its PID
whatever happened, within bounded waits. Tests that cannot pass on this machine
are deselected from ``deselected.txt`` beside this file, each with its reason;
tests that pass only without another session fixture of the suite around are
listed in ``isolated.txt`` (same format): each runs after the rest, in a pytest
session of its own against the same devcluster.

Exit status: the first failing session's, 0 when all passed, or 1 when the
devcluster did not start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.process_support import read_line

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SUITE = REPO / ".." / "shared" / "suites" / "kubespawner-7.1.0"
DESELECTED = HERE / "deselected.txt"
ISOLATED = HERE / "isolated.txt"
IMAGE_USERS = ("quay.io/jupyterhub/singleuser=1000:100",)
"""The USER of the images the suite runs that have one (the image's metadata):
quay.io/jupyterhub/singleuser, KubeSpawner's default image, runs as jovyan
(uid 1000, group users). The suite's other images (jupyterhub, python) run as
root."""
IMAGE_ENV = tuple(
    f"quay.io/jupyterhub/singleuser={variable}"
    for variable in (
        "HOME=/home/jovyan",
        "NB_USER=jovyan",
        "NB_UID=1000",
        "NB_GID=100",
        "SHELL=/bin/bash",
        "JUPYTER_PORT=8888",
    )
)
"""The ENV of quay.io/jupyterhub/singleuser (FROM quay.io/jupyter/base-notebook,
FROM docker-stacks-foundation) that means the same on this machine: jovyan's
HOME (devcluster gives the container that directory, owned by jovyan, as the
image holds it; jupyter writes ``~/.local`` there) and the user and port the
image describes. Left out: ``PATH``/``CONDA_DIR`` (``/opt/conda``, which this
machine lacks) and ``LANG``/``LC_ALL``/``LANGUAGE`` (``en_US.UTF-8``, a locale
this machine does not generate)."""
START_TIMEOUT_S = 120.0
SUITE_TIMEOUT_S = 1500.0
STOP_TIMEOUT_S = 60.0


def deselected(text: str) -> list[tuple[str, str]]:
    """Parse the deselection list: ``NODE_ID  # reason`` a line.

    Blank lines and lines starting with ``#`` are skipped.

    Raises:
        ValueError: a test without a reason.
    """
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        node_id, _, reason = line.partition("#")
        if not node_id.strip() or not reason.strip():
            raise ValueError(f"line {number}: expected 'NODE_ID  # reason': {raw!r}")
        entries.append((node_id.strip(), reason.strip()))
    return entries


def suite_dir() -> Path:
    """Return the suite's directory; fail loudly when it is missing."""
    path = SUITE.resolve()
    if not (path / "tests" / "conftest.py").is_file():
        raise SystemExit(
            f"conformance: KubeSpawner's suite is missing at {path} "
            "(../shared/suites/kubespawner-7.1.0 beside the repository)"
        )
    return path


def _stop(proc: subprocess.Popen[str], timeout: float) -> None:
    """SIGTERM the process, SIGKILL it (and its group) after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def devcluster(state: Path, log: Path) -> Iterator[dict[str, object]]:
    """Run ``python -m devcluster`` and yield its info line; stop it by PID."""
    cmd = [
        sys.executable,
        "-m",
        "devcluster",
        "--time-factor",
        "0.01",
        "--static-node",
        "core",
        "--state-dir",
        str(state / "cluster"),
        "--kubeconfig",
        str(state / "kubeconfig"),
    ]
    for user in IMAGE_USERS:
        cmd += ["--image-user", user]
    for variable in IMAGE_ENV:
        cmd += ["--image-env", variable]
    # test_spawn_internal_ssl's hub pod reads its certificates at
    # /etc/jupyterhub/internal-ssl (container paths; devcluster runs as root
    # here) and reaches the server by its Service's DNS name (the hosts files
    # devcluster keeps for every pod). Hub and server listen on every address
    # on their Services' ports: on their pod IPs (pod binds), as in their own
    # network namespaces, not in the way of the Services' cluster IPs.
    cmd += ["--container-paths", "--pod-binds"]
    # The suite's hub pod runs `jupyterhub`, which starts configurable-http-proxy
    # from PATH (scripts/setup-system.sh installs it under .cache/node).
    chp = REPO / ".cache" / "node" / "node_modules" / ".bin"
    if not (chp / "configurable-http-proxy").exists():
        raise SystemExit(f"conformance: {chp}/configurable-http-proxy is missing")
    env = {**os.environ, "PATH": f"{chp}{os.pathsep}{os.environ.get('PATH', '')}"}
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        try:
            info = json.loads(read_line(proc, START_TIMEOUT_S, "devcluster"))
            yield info
        finally:
            _stop(proc, STOP_TIMEOUT_S)


def sessions(extra: list[str]) -> list[tuple[list[str], list[str]]]:
    """Return the suite's pytest sessions: (arguments, tests deselected) each.

    Without ``extra``: the whole suite less the deselected and isolated tests,
    then each isolated test alone. With ``extra`` (which replaces the argument
    ``tests``): one session of it, less the deselected tests.
    """
    dropped = [node_id for node_id, _ in deselected(DESELECTED.read_text())]
    if extra:
        return [(extra, dropped)]
    isolated = [node_id for node_id, _ in deselected(ISOLATED.read_text())]
    return [(["tests"], dropped + isolated)] + [([i], dropped) for i in isolated]


def run_suite(
    python: str, suite: Path, kubeconfig: str, tests: list[str], dropped: list[str]
) -> int:
    """Run the suite's pytest from its own directory; return its exit status.

    ``tests`` are pytest's arguments (``tests``: the whole suite), ``dropped``
    the node ids deselected.
    """
    args = [python, "-m", "pytest", "-p", "kubespawner_plugin"]
    # The suite's folder may be read-only: no cache, no bytecode files there.
    args += ["-p", "no:cacheprovider", "--color=no"]
    for node_id in dropped:
        args += ["--deselect", node_id]
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "PYTHONPATH": str(HERE),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    proc = subprocess.Popen([*args, *tests], cwd=suite, env=env, start_new_session=True)
    try:
        return proc.wait(SUITE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"conformance: the suite ran over {SUITE_TIMEOUT_S:.0f}s", flush=True)
        return 1
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tests.conformance.run``."""
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.run")
    parser.add_argument("--python", required=True, help="the conformance venv's")
    # the rest goes to pytest in place of `tests` (e.g. `-x tests/test_utils.py`)
    args, extra = parser.parse_known_args(argv)
    suite = suite_dir()
    cache = REPO / ".cache"
    cache.mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="conformance-", dir=cache))
    # pods run as the images' users (uid 1000): they must reach their dirs
    state.chmod(0o755)
    log = state / "devcluster.log"
    began = time.monotonic()
    try:
        with devcluster(state, log) as info:
            print(f"conformance: devcluster at {info['api']}", flush=True)
            python = os.path.abspath(args.python)  # the suite runs elsewhere
            status = 0
            for tests, dropped in sessions(extra):
                ran = run_suite(python, suite, str(info["kubeconfig"]), tests, dropped)
                status = status or ran
    except RuntimeError as exc:
        print(f"conformance: {exc}; its log: {log}", file=sys.stderr)
        print(log.read_text()[-4000:], file=sys.stderr)
        return 1
    took = time.monotonic() - began
    print(f"conformance: exit status {status} after {took:.0f}s", flush=True)
    if status == 0:
        shutil.rmtree(state, ignore_errors=True)
    else:
        print(f"conformance: devcluster's log and pod logs kept in {state}")
    return status


if __name__ == "__main__":
    sys.exit(main())
