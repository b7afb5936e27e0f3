"""The spawn form says the wait a cold start really took, on the real stack.

The hub runs the warmer as its service (nothing kept warm: no schedule, no
demand), devcluster boots nodes as the demo does (time factor 0.1: a node in
about 20 s, a first image pull in 6 s), and bob's servers are real Jupyter
servers reached through the proxy. Before any start the form says the stated
figure; after one cold start of a size, the form's "Starts in about …" for
the next cold start of that size is within 30 % of the wait bob saw.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator

import pytest

from devcluster.demo.workbench import Workbench
from devcluster.services.ldap import LdapServer
from tests.integration.hub_harness import (
    HubUser,
    error_on,
    leave_stopped,
    logged_in,
    stack_on_profiles,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ZONE = "us-east-1b"
NOTHING_WARM = """warm:
  timezone: UTC
  demand_window_s: 0
  schedules: []
"""
"""The warmer observes and reports but keeps no node warm: every start is cold."""
_WAIT = re.compile(r"Starts in about (\d+) (seconds|minutes)")


@pytest.fixture(scope="module")
def bench(
    ldap_server: LdapServer,
    stack_databases: Callable[[str], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Workbench]:
    with stack_on_profiles(
        tmp_path_factory.mktemp("waits"),
        {"40-warm.yaml": NOTHING_WARM},
        time_factor=0.1,
        pools=["cpu4"],
        zones=[ZONE],
        ldap=ldap_server,
        culler_interval=None,
        **stack_databases("waits"),
    ) as workbench:
        yield workbench


def said_wait(user: HubUser, size: str) -> float | None:
    """Return the seconds the form says a cold start of ``size`` takes."""
    page = user.form()
    entry = re.search(
        rf'value="{size}".*?(?=<input[^>]+name="profile"|</form>)', page, re.S
    )
    assert entry, f"no size {size} on the form"
    found = _WAIT.search(entry.group(0))
    if found is None:
        return None
    return float(found.group(1)) * (60 if found.group(2) == "minutes" else 1)


def observed(bench: Workbench, pool: str) -> dict[str, object] | None:
    """Return the warmer's medians of the pool's user starts, once it has one."""
    path = bench.state_dir / "hub" / "wait-times.json"
    if not path.exists():
        return None
    cell = json.loads(path.read_text(encoding="utf-8")).get(pool, {}).get(ZONE)
    return cell if cell and cell["start_s"] is not None else None


def test_after_a_cold_start_the_form_says_the_wait_it_took(bench: Workbench) -> None:
    bob = logged_in(bench, "bob")
    try:
        stated = wait_until(
            lambda: said_wait(bob, "small"), 90, "the warmer's first report"
        )
        assert stated == 180, "nothing observed yet: the stated 3 minutes"

        began = time.monotonic()
        response = bob.spawn({"profile": "small"})
        assert response.status_code == 302, error_on(response.text)
        bob.wait_ready(timeout=150)
        waited = time.monotonic() - began

        wait_until(lambda: observed(bench, "cpu4"), 90, "the warmer's medians")
        leave_stopped(bench, bob)  # the form, not the running server
        said = said_wait(bob, "small")
        assert said is not None
        assert abs(said - waited) <= 0.3 * waited, (
            f"the form says {said:.0f} s, bob waited {waited:.1f} s "
            f"(observed {observed(bench, 'cpu4')})"
        )
    finally:
        leave_stopped(bench, bob)
