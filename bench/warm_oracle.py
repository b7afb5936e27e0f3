"""The oracle for ``bench/bench_warmer.py``: warming that knows the day.

It reads the trace, so it knows every spawn: for each one it makes one
placeholder pod (the warmer's own, :func:`wbspawner.warmer.actuator.placeholder_pod`:
the pool's whole node, the home's zone, spot, pulling the pool's images)
``lead_s`` before the spawn, one node boot plus image pull plus one autoscaler
loop and a little slack, and deletes it just before the user's pod is created,
so that the pod finds the node booted and its image pulled. It warms nothing
else: a free node already up takes the placeholder and no node is started.
Its readiness is the ceiling for any warmer on that day and its extra cost
over no warming the floor.
"""

from __future__ import annotations

from typing import Any

from warm_replay import NS, Api, Session, Trace, sleep_until
from warm_world import ScaledClock

from wbspawner.model import Profiles
from wbspawner.warmer.actuator import (
    PlaceholderSettings,
    placeholder_pod,
    prepull_images,
)

SLACK_S = 15.0
"""Beyond boot, pull and one autoscaler loop: the scheduler's and kubelet's turns."""


def lead_time(node_boot_s: float, image_pull_s: float, scan_s: float) -> float:
    """Simulated seconds before a spawn that the oracle asks for its node."""
    return node_boot_s + image_pull_s + scan_s + SLACK_S


class Oracle:
    """Placeholders for the trace's spawns, each held until its spawn."""

    def __init__(
        self, api: Api, trace: Trace, profiles: Profiles, lead_s: float
    ) -> None:
        self.api, self.trace, self.profiles, self.lead_s = api, trace, profiles, lead_s
        self.settings = PlaceholderSettings(
            namespace=NS, prepull=prepull_images(profiles)
        )
        self.held: dict[tuple[str, float], str] = {}
        """(user, start second) → the placeholder pod holding its node."""
        self.made = 0

    def _pod(self, s: Session, index: int) -> dict[str, Any]:
        size = self.profiles.size(s.size)
        assert size is not None, s.size
        pool = self.profiles.pool_of(size)
        # A new user's home is made where their pod lands: any zone does.
        zone = s.home or pool.zones[0]
        return placeholder_pod(pool, zone, "spot", index, self.settings)

    async def run(self, clock: ScaledClock) -> None:
        """Create each spawn's placeholder ``lead_s`` before it (a task)."""
        for s in self.trace.sessions:
            if s.start_s >= self.trace.end_s:
                break
            await sleep_until(clock, s.start_s - self.lead_s)
            body = self._pod(s, self.made)
            self.made += 1
            status, pod = await self.api.post(f"/api/v1/namespaces/{NS}/pods", body)
            assert status == 201, (status, pod)
            self.held[(s.user, s.start_s)] = body["metadata"]["name"]

    async def before_spawn(self, s: Session) -> None:
        """Free the spawn's node: delete its placeholder (the replay's hook)."""
        name = self.held.pop((s.user, s.start_s), None)
        if name is not None:
            await self.api.delete(f"/api/v1/namespaces/{NS}/pods/{name}", grace=0)
