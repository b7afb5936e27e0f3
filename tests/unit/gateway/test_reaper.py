"""The reaper: which users' clusters stop, and how it stops them."""

from __future__ import annotations

from typing import Any

import pytest

from wbspawner.gateway.reaper import ClusterRef, Reaper, clusters_to_stop


def _ref(name: str, user: str, started: float | None) -> ClusterRef:
    return ClusterRef(name=name, username=user, started_s=started)


@pytest.mark.parametrize(
    ("cluster", "stop"),
    [
        pytest.param(_ref("a", "bob", 0), True, id="owner-has-no-server"),
        pytest.param(_ref("b", "gina", 0), False, id="owner-active"),
        pytest.param(_ref("c", "bob", 95), False, id="younger-than-grace"),
        pytest.param(_ref("d", "bob", None), True, id="unknown-age"),
        pytest.param(_ref("e", "service:x", 0), False, id="service-cluster"),
    ],
)
def test_clusters_to_stop(cluster: ClusterRef, stop: bool) -> None:
    assert (clusters_to_stop([cluster], {"gina"}, 100.0, 10.0) == [cluster]) is stop


class _Cluster:
    def __init__(self, name: str, username: str) -> None:
        self.name, self.username, self.start_time = name, username, 1000


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)

    warning = exception = info


async def test_reaper_stops_only_clusters_of_users_without_server() -> None:
    stopped: list[str] = []

    async def listed() -> list[_Cluster]:
        return [_Cluster("c1", "bob"), _Cluster("c2", "gina")]

    async def stop(name: str) -> None:
        stopped.append(name)

    async def active() -> set[str]:
        return {"gina"}

    log = _Log()
    reaper = Reaper(listed, stop, active, log, grace_s=5, clock=lambda: 100.0)
    assert await reaper.run_once() == ["c1"]
    assert stopped == ["c1"]
    assert "stopping cluster c1 of bob" in log.lines[0]


async def test_reaper_stops_nothing_when_the_hub_cannot_be_asked() -> None:
    stopped: list[str] = []

    async def listed() -> list[_Cluster]:
        return [_Cluster("c1", "bob")]

    async def stop(name: str) -> None:
        stopped.append(name)

    async def active() -> set[str]:
        raise OSError("connection refused")

    log = _Log()
    assert await Reaper(listed, stop, active, log, clock=lambda: 1e9).run_once() == []
    assert stopped == []
    assert "cannot list active hub users" in log.lines[0]
