"""The usage ledger stops counting a cluster once it stops.

The ledger counts a cluster the backend does not list yet (the Kubernetes
backend learns of it through a watch). A cluster stopped before the next limit
check was counted on for ``hold_s`` (issue: "The Dask cluster limit counts
stopped clusters for up to two minutes").
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from dask_gateway_server.models import ClusterStatus

from wbspawner.gateway.limits import ClusterUsage, UsageLedger, known_clusters


def ledger_at(now: float = 100.0) -> UsageLedger:
    return UsageLedger(hold_s=120, clock=lambda: now)


def test_a_released_cluster_is_no_longer_counted() -> None:
    ledger = ledger_at()
    ledger.remember("bob", ClusterUsage(name="a", workers=1))
    ledger.release("a")  # A.shutdown(), before any limit check listed it
    ledger.remember("bob", ClusterUsage(name="b", workers=1))
    assert [u.name for u in ledger.merge("bob", [ClusterUsage(name="b")])] == ["b"]


def test_release_leaves_other_clusters_and_users_alone() -> None:
    ledger = ledger_at()
    ledger.remember("bob", ClusterUsage(name="a"))
    ledger.remember("bob", ClusterUsage(name="b"))
    ledger.remember("gina", ClusterUsage(name="g"))
    ledger.release("a")
    ledger.release("unknown")
    assert [u.name for u in ledger.merge("bob", [])] == ["b"]
    assert [u.name for u in ledger.merge("gina", [])] == ["g"]


def test_a_cluster_the_backend_knows_stopped_is_not_counted() -> None:
    """Stopped by another path (idle timeout, failure): known, not listed."""
    ledger = ledger_at()
    ledger.remember("bob", ClusterUsage(name="a", workers=1))
    assert ledger.merge("bob", [], known={"a"}) == ()
    assert ledger.merge("bob", []) == ()  # and forgotten for good


def test_a_cluster_the_backend_does_not_know_yet_is_still_counted() -> None:
    ledger = ledger_at()
    ledger.remember("bob", ClusterUsage(name="new", workers=2))
    assert [u.name for u in ledger.merge("bob", [], known={"other"})] == ["new"]


class Lister:
    """A backend's ``list_clusters``: active ones by default, else by status."""

    def __init__(self, clusters: dict[str, ClusterStatus]) -> None:
        self.clusters = clusters
        self.asked: list[Any] = []

    async def list_clusters(
        self, username: str | None = None, statuses: Any = None
    ) -> list[Any]:
        self.asked.append(statuses)
        wanted = set(statuses or (ClusterStatus.PENDING, ClusterStatus.RUNNING))
        return [
            SimpleNamespace(name=n, username=username, config={})
            for n, s in self.clusters.items()
            if s in wanted
        ]


async def test_known_clusters_asks_for_every_status() -> None:
    backend = Lister(
        {
            "p": ClusterStatus.PENDING,
            "r": ClusterStatus.RUNNING,
            "s": ClusterStatus.STOPPED,
            "f": ClusterStatus.FAILED,
        }
    )
    assert await known_clusters(backend, "bob") == {"p", "r", "s", "f"}
    assert set(backend.asked[0]) == set(ClusterStatus)
