"""pytest plugin: a test run leaves no process behind, or it fails.

Loaded by ``tests/conftest.py`` (``pytest_plugins``); ``-p
tests.process_leftovers`` loads it into another run. At the start it makes the
pytest process the subreaper of everything the run starts
(:func:`devcluster.services.descendants.adopt_orphans`), so a process whose
parent died — a proxy or a service of a hub a test killed, a daemon that forked
away — stays a descendant of the run instead of being re-parented to PID 1. At
the end, after every fixture has been torn down, it waits up to :data:`GRACE_S`
for the run's descendants to exit; any still alive are listed, stopped by PID,
and the run fails (exit code 1) even when every test passed.
"""

from __future__ import annotations

import sys
import time

import pytest

from devcluster.services.descendants import (
    ProcessInfo,
    adopt_orphans,
    descendants,
    reap_orphans,
    stop_processes,
)

GRACE_S = 10.0
"""Seconds a process may take to exit after the last teardown (a hub-managed
service notices that its hub is gone within a second)."""


def pytest_configure(config: pytest.Config) -> None:
    """Adopt every process the run will start (Linux only, as devcluster is)."""
    if not sys.platform.startswith("linux"):
        raise pytest.UsageError("the tests need Linux (devcluster, /proc)")
    adopt_orphans()


def _still_running(grace_s: float) -> list[ProcessInfo]:
    deadline = time.monotonic() + grace_s
    while True:
        reap_orphans()
        left = descendants()
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


@pytest.hookimpl(trylast=True)  # after the runner's hook has torn fixtures down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when a process it started is still alive; stop those."""
    left = _still_running(GRACE_S)
    if not left:
        return
    unkillable = stop_processes(p.pid for p in left)
    reap_orphans()
    lines = [p.describe() for p in left]
    if unkillable:
        lines.append(f"could not stop: {', '.join(map(str, unkillable))}")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    title = f"{len(left)} process(es) started by this run outlived it (now stopped)"
    if reporter is not None:
        reporter.section(title, sep="=", red=True, bold=True)
        for line in lines:
            reporter.write_line(line)
    else:
        print("\n".join([title, *lines]), file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
