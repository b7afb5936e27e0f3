"""``make demo`` for an operator: the README's one line points the CLI at it.

``python -m devcluster.demo`` runs as ``make demo`` runs it, in a folder where its
state is ``.demo``, so that the line the README shows (``source .demo/env``)
works as written. Then, in a shell with nothing else set: ``wbspawner pools
plan`` has no changes (the demo made its node groups with ``pools apply``),
``home list`` answers in the namespace of the kubeconfig's context, ``cost
report`` reads the hub's database, ``catalog`` the demo's profiles. Port 8000 is
held while the demo starts: the demo names the holder and uses another port.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devcluster.demo.workbench import PUBLIC_PORT
from devcluster.services.procs import Proc, free_port
from tests.paths import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BIN = Path(sys.executable).parent


def readme_line() -> str:
    """The README's line that points the CLI at the demo."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"^source \.demo/env$", readme, re.M)
    assert found, "the README shows no `source .demo/env` line"
    return found[0]


@dataclass
class Demo:
    folder: Path
    """Where ``make demo`` ran (``.demo`` is in it)."""
    proc: Proc
    printed: str
    held_port: bool
    """Whether this test held port 8000 (else someone else did, or nobody)."""

    def shell(self, command: str) -> subprocess.CompletedProcess[str]:
        """Run the README's line, then ``command``, in bash with a bare environment."""
        env = {
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
        }
        return subprocess.run(
            ["bash", "-c", f"{readme_line()} && {command}"],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


def _wait_printed(proc: Proc, pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        proc.check_running()
        text = proc.tail(200)
        if re.search(pattern, text, re.M):
            return text
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the demo printed no {pattern!r}:\n{text}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("demo-folder")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        try:
            blocker.bind(("127.0.0.1", PUBLIC_PORT))
            blocker.listen()
            held = True
        except OSError:  # already taken by someone else: the demo must say so too
            held = False
        proc = Proc.start(
            [sys.executable, "-m", "devcluster.demo"],
            folder / "demo.log",
            cwd=folder,
            env={"PYTHONPATH": str(REPO)},
        )
        try:
            printed = _wait_printed(proc, r"^  source \.demo/env$", 300)
            yield Demo(folder, proc, printed, held)
        finally:
            proc.stop(timeout=90)


def test_the_demo_prints_the_readme_line_and_writes_the_file(demo: Demo) -> None:
    assert f"  {readme_line()}" in demo.printed.splitlines()
    text = (demo.folder / ".demo" / "env").read_text()
    for name in ("KUBECONFIG", "WBSPAWNER_CLUSTER", "AWS_ENDPOINT_URL"):
        assert f"export {name}=" in text


def test_a_taken_port_8000_is_named_and_another_one_used(demo: Demo) -> None:
    url = re.search(r"wbspawner is running at http://127\.0\.0\.1:(\d+)/", demo.printed)
    assert url, demo.printed
    port = int(url.group(1))
    assert port != PUBLIC_PORT
    note = next(x for x in demo.printed.splitlines() if x.startswith("NOTE: "))
    assert note.startswith(f"NOTE: port {PUBLIC_PORT} is taken")
    assert note.endswith(f"; using {port}.")
    if demo.held_port:
        assert f"by pid {os.getpid()} (" in note


def test_pools_plan_has_no_changes(demo: Demo) -> None:
    done = demo.shell("wbspawner pools plan")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Plan for cluster wbspawner-dev:" in done.stdout
    assert "No changes: AWS matches the profiles." in done.stdout


def test_home_list_follows_the_kubeconfigs_namespace(demo: Demo) -> None:
    done = demo.shell("wbspawner home list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("USER ")
    assert "no home claims (home-*) in namespace jhub" in done.stderr


def test_cost_report_reads_the_hubs_database(demo: Demo) -> None:
    database = demo.folder / ".demo" / "hub" / "wbspawner-costs.sqlite"
    deadline = time.monotonic() + 60  # the gateway's first accounting pass makes it
    while not database.exists():
        assert time.monotonic() < deadline, f"{database} never appeared"
        time.sleep(0.5)
    done = demo.shell("wbspawner cost report")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "total: $0.00"


def test_catalog_reads_the_demos_profiles(demo: Demo) -> None:
    done = demo.shell("wbspawner catalog")
    assert done.returncode == 0, done.stderr
    assert f"sizing from {demo.folder / '.demo' / 'profiles'}" in done.stdout


def test_a_taken_explicit_port_stops_the_demo_with_its_holder(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", free_port()))
        blocker.listen()
        port = blocker.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "devcluster.demo", "--port", str(port)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"error: port {port} on 127.0.0.1 is taken by pid {os.getpid()} (" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
