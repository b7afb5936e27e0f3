"""The culler service's loop with a fake hub and fake servers, on a fake clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.paths import REPO
from wbspawner.costs.accounting import UsageRecord, open_db, record_start
from wbspawner.culler.app import CullerApp

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
MEDIUM_TIMEOUT = 7200  # profiles/70-culling.yaml
WARN = 600


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class FakeHub:
    def __init__(self) -> None:
        self.running = True
        self.stopped: list[str] = []

    async def users(self, state: str | None = None) -> list[dict[str, Any]]:
        if not self.running:
            return []
        server = {
            "ready": True,
            "url": "/user/ada/",
            "started": iso(T0),
            "last_activity": iso(T0),
            "user_options": {"profile": "medium"},
        }
        return [{"name": "ada", "servers": {"": server}}]

    async def stop_server(self, user: str, name: str = "") -> int:
        self.stopped.append(user)
        self.running = False
        return 204

    async def user(self, name: str) -> dict[str, Any]:
        return {"name": name, "servers": {"": {}} if self.running else {}}

    async def close(self) -> None:
        pass


class FakeServers:
    def __init__(self) -> None:
        self.last_activity = T0
        self.kernels_: list[dict[str, Any]] = []
        self.notices: list[dict[str, Any]] = []

    def server(self, path: str) -> FakeServers:
        return self

    async def status(self) -> dict[str, Any]:
        return {"last_activity": iso(self.last_activity)}

    async def kernels(self) -> list[dict[str, Any]]:
        return self.kernels_

    async def notice(self, notice: dict[str, Any]) -> None:
        self.notices.append(notice)

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def make(tmp_path: Path) -> tuple[CullerApp, FakeHub, FakeServers, Clock, str]:
    url = f"sqlite:///{tmp_path / 'costs.sqlite'}"
    with open_db(url)() as session:
        record_start(
            session,
            "ada",
            "medium",
            "cpu16",
            "spot",
            "z",
            "n",
            2.016,
            T0.replace(tzinfo=None),
        )
    clock = Clock()
    app = CullerApp(profiles_dir=[str(REPO / "profiles")], cost_db_url=url, clock=clock)
    app.init_state()
    hub, servers = FakeHub(), FakeServers()
    app.hub, app.servers = hub, servers  # type: ignore[assignment]
    return app, hub, servers, clock, url


async def settle(app: CullerApp) -> None:
    await app.cull_pass()
    if app._tasks:
        await asyncio.gather(*app._tasks)


async def test_warned_with_price_then_culled_and_recorded(tmp_path: Path) -> None:
    app, hub, servers, clock, url = make(tmp_path)
    clock.now = T0 + timedelta(seconds=MEDIUM_TIMEOUT - WARN - 1)
    await settle(app)
    assert servers.notices == []
    clock.now += timedelta(seconds=1)
    await settle(app)
    [notice] = servers.notices
    assert notice["kind"] == "cull" and notice["save"] is False
    assert notice["message"] == (
        "This server has been idle for 1 hour 50 minutes; it will stop at "
        "06:00 EST and it costs $2.02/h. Keep it running?"
    )
    clock.now += timedelta(seconds=WARN - 1)
    await settle(app)
    assert hub.stopped == []
    clock.now += timedelta(seconds=1)
    await settle(app)
    assert hub.stopped == ["ada"]
    with open_db(url)() as session:
        [row] = session.query(UsageRecord).all()
    assert row.stop_cause == "cull"


async def test_use_after_the_warning_keeps_the_server(tmp_path: Path) -> None:
    app, hub, servers, clock, _ = make(tmp_path)
    clock.now = T0 + timedelta(seconds=MEDIUM_TIMEOUT - WARN)
    await settle(app)
    assert len(servers.notices) == 1
    servers.last_activity = clock.now + timedelta(seconds=5)  # "Keep running"
    clock.now += timedelta(seconds=WARN)
    await settle(app)
    assert hub.stopped == [] and app.warned == {}


async def test_a_busy_kernel_is_remembered_from_when_it_was_first_seen(
    tmp_path: Path,
) -> None:
    app, hub, servers, clock, _ = make(tmp_path)
    servers.kernels_ = [
        {"id": "k", "execution_state": "busy", "last_activity": iso(T0)}
    ]
    clock.now = T0 + timedelta(hours=3)
    await settle(app)
    assert servers.notices == [] and app.busy_since == {("ada", "k"): T0}
    clock.now = T0 + timedelta(hours=12)  # max_busy_age_s of the shipped profiles
    await settle(app)
    assert len(servers.notices) == 1


def test_every_culler_trait_has_help() -> None:
    own = CullerApp.class_own_traits(config=True)
    assert own
    assert [n for n, t in own.items() if not (t.help or "").strip()] == []
