"""No process outlives what started it: the lifeline, and the check that ends a run.

The check (``tests/process_leftovers.py``) is run here on small test runs of its
own (pytester, in a subprocess): one that leaks a process from a fixture, one
that leaks an orphan, one that stops what it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devcluster.services.descendants import descendants, reap, still_alive
from devcluster.services.procs import Proc, lifeline_argv
from tests.paths import REPO


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while still_alive([pid]):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _read_pid(path: Path, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise TimeoutError(f"{path} holds no PID after {timeout:g} s")


# ------------------------------------------------------------------ lifeline


def _other_user() -> tuple[int, int]:
    """Another user to run as: nobody under root, else this process's own ids."""
    if os.geteuid() == 0:
        return 65534, 65534
    return os.getuid(), os.getgid()


@pytest.mark.parametrize("as_user", [False, True], ids=["own-user", "other-user"])
def test_a_started_command_dies_with_the_process_that_started_it(
    tmp_path: Path, as_user: bool
) -> None:
    """Also as another user: the user changes before the death signal is asked
    for (a change of user clears it)."""
    tmp_path.chmod(0o755)  # the command only inherits its log file, opened by us
    pid_file = tmp_path / "pid"
    user = _other_user() if as_user else None
    user_arg = f", user={user!r}" if user else ""
    starter_code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from devcluster.services.procs import Proc\n"
        f"proc = Proc.start(['sleep', '300'], {str(tmp_path / 'log')!r}{user_arg})\n"
        f"Path({str(pid_file)!r}).write_text(str(proc.pid))\n"
        "time.sleep(300)\n"
    )
    starter = subprocess.Popen(
        [sys.executable, "-c", starter_code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        child = _read_pid(pid_file)
        deadline = time.monotonic() + 10  # the lifeline execs the command
        while Path(f"/proc/{child}/cmdline").read_bytes() != b"sleep\x00300\x00":
            assert time.monotonic() < deadline, "the lifeline did not exec sleep"
            time.sleep(0.05)
        if user is not None:
            status = Path(f"/proc/{child}/status").read_text().splitlines()
            ids = {line.split(":")[0]: line.split()[1:] for line in status}
            assert ids["Uid"] == [str(user[0])] * 4
            assert ids["Gid"] == [str(user[1])] * 4
            if os.geteuid() == 0:
                assert ids["Groups"] == []  # root's supplementary groups are gone
        starter.kill()  # no finalizer runs, as when pytest is killed
        starter.wait(10)
        assert _wait_gone(child, 5), "the command outlived its starter"
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait(10)


def test_the_lifeline_refuses_when_its_parent_is_already_gone(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = lifeline_argv(["touch", str(marker)], parent=1)  # PID 1 is not our parent
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "parent 1 is gone" in done.stderr
    assert not marker.exists()


def test_a_missing_command_fails_at_start_as_before(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-command"):
        Proc.start(["no-such-command"], tmp_path / "log")


def test_descendants_lists_a_grandchild(tmp_path: Path) -> None:
    proc = Proc.start(["sh", "-c", "sleep 300 & wait"], tmp_path / "log")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            below = {p.pid: p for p in descendants()}
            grandchildren = [p for p in below.values() if p.ppid == proc.pid]
            if grandchildren:
                break
            time.sleep(0.05)
        assert proc.pid in below
        assert [p.command for p in grandchildren] == ["sleep 300"]
    finally:
        proc.stop()


def test_reap_collects_an_exited_child_and_leaves_others_alone() -> None:
    """A zombie looks alive to ``kill(pid, 0)`` until its parent waits for it."""
    pid = os.posix_spawn("/bin/true", ["true"], dict(os.environ))
    deadline = time.monotonic() + 10
    while still_alive([pid]) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(pid, 0)  # a zombie: still there for anyone asking
    assert reap([pid, 1]) == [pid]  # PID 1 is no child of ours: left alone
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ------------------------------------------------------------- the run check

LEAKY_FIXTURE = """
import os
from pathlib import Path

import pytest

from devcluster.services.procs import Proc


@pytest.fixture
def server(tmp_path):
    proc = Proc.start(["sleep", "301"], tmp_path / "log")
    Path(os.environ["PID_FILE"]).write_text(str(proc.pid))
    yield proc  # forgets to stop it


def test_uses_the_server(server):
    assert server.running
"""

LEAKY_ORPHAN = """
import os
import subprocess


def test_starts_a_daemon():
    # The shell exits at once; its background child is an orphan.
    subprocess.run(["sh", "-c", 'sleep 302 & echo $! > "$PID_FILE"'], check=True)
"""

TIDY = """
from devcluster.services.procs import Proc


def test_stops_what_it_starts(tmp_path):
    proc = Proc.start(["sleep", "303"], tmp_path / "log")
    try:
        assert proc.running
    finally:
        proc.stop()
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pytester dir whose runs load the check and can import devcluster."""
    # The repository only: tests/ is a package (tests.process_leftovers), and
    # tests/devcluster on the path would shadow the devcluster package.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pid_file = pytester.path / "leaked.pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    return pid_file


@pytest.mark.parametrize(
    ("source", "command"),
    [
        pytest.param(LEAKY_FIXTURE, "sleep 301", id="fixture-never-stops-it"),
        pytest.param(LEAKY_ORPHAN, "sleep 302", id="orphan-of-a-shell"),
    ],
)
def test_a_run_that_leaves_a_process_fails_and_stops_it(
    pytester: pytest.Pytester, inner: Path, source: str, command: str
) -> None:
    pytester.makepyfile(test_leaky=source)
    result = pytester.runpytest_subprocess("-p", "tests.process_leftovers", timeout=120)
    leaked = _read_pid(inner, timeout=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*1 process(es) started by this run outlived it (now stopped)*",
            f"pid {leaked} (parent *): {command}",
            "*1 passed*",
        ]
    )
    assert not still_alive([leaked])


def test_a_run_that_stops_what_it_starts_passes(
    pytester: pytest.Pytester, inner: Path
) -> None:
    pytester.makepyfile(test_tidy=TIDY)
    result = pytester.runpytest_subprocess("-p", "tests.process_leftovers", timeout=120)
    assert result.ret == pytest.ExitCode.OK
    assert "outlived" not in result.stdout.str()
