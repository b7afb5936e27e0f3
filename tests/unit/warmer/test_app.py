"""The warmer service's shell against fakes: its loop, traits, hub entry and roles."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.paths import REPO
from tests.unit.warmer.clock_support import NOW
from wbspawner.adapters.hubapi import sizes_from_users
from wbspawner.hub import warmer_service as hub
from wbspawner.hub.settings import Settings
from wbspawner.model import POOL_LABEL, USER_LABEL, ZONE_LABEL
from wbspawner.warmer.app import WarmerApp

WARM = """
warm:
  timezone: UTC
  schedules:
    - {name: a, pool: mem64, windows: [{days: wed, start: "13:00", end: "15:00"}],
       nodes_per_zone: 1, zones: [us-east-1a, us-east-1b]}
    - {name: b, pool: cpu16, windows: [{days: wed, start: "13:00", end: "15:00"}],
       nodes_per_zone: 1, zones: [us-east-1a]}
"""


class FixedClock:
    def now(self) -> datetime:
        return NOW

    def from_api(self, stamp: datetime) -> datetime:
        return stamp


class FakeKube:
    """An empty cluster whose pod creations for ``broken`` pools fail."""

    def __init__(self, broken: set[str] | None = None) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.broken = broken or set()
        self.events_asked: list[tuple[str | None, str | None]] = []

    async def list_nodes(self) -> list[dict[str, Any]]:
        return []

    async def list_pods(
        self, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        return list(self.pods.values())

    async def list_pvcs(self, namespace: str) -> list[dict[str, Any]]:
        return []

    async def list_pvs(self) -> list[dict[str, Any]]:
        return []

    async def list_events(
        self, namespace: str | None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.events_asked.append((namespace, field_selector))
        return []

    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if body["metadata"]["labels"][POOL_LABEL] in self.broken:
            raise RuntimeError("quota exceeded")
        self.pods[body["metadata"]["name"]] = body
        return body

    async def delete_pod(self, namespace: str, name: str) -> None:
        self.pods.pop(name, None)

    async def ensure_priority_class(self, body: dict[str, Any]) -> bool:
        return True


class KubeWithUsers(FakeKube):
    """A cluster with user pods too (``users``), and ann's home in us-east-1a."""

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, dict[str, Any]] = {}

    async def list_pods(
        self, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        placeholders = await super().list_pods(namespace, label_selector)
        return placeholders if label_selector else placeholders + [*self.users.values()]

    async def list_pvcs(self, namespace: str) -> list[dict[str, Any]]:
        return [{"metadata": {"name": "home-ann"}, "spec": {"volumeName": "pv-ann"}}]

    async def list_pvs(self) -> list[dict[str, Any]]:
        zone = {"topology.kubernetes.io/zone": "us-east-1a"}
        return [{"metadata": {"name": "pv-ann", "labels": zone}}]


@pytest.fixture
def profiles_dir(tmp_path: Path) -> Path:
    out = tmp_path / "profiles"
    shutil.copytree(REPO / "profiles", out, ignore=shutil.ignore_patterns("examples"))
    (out / "40-warm.yaml").write_text(WARM)
    return out


def make_app(profiles_dir: Path, kube: FakeKube, **traits: Any) -> WarmerApp:
    traits.setdefault("cost_db_url", f"sqlite:///{profiles_dir.parent / 'costs.db'}")
    app = WarmerApp(
        profiles_dir=[str(profiles_dir)],
        namespace="jhub",
        read_hub_sizes=False,
        clock=FixedClock(),
        **traits,
    )
    app.init_state(kube)
    return app


async def test_a_pass_places_placeholders_and_reports(
    profiles_dir: Path, tmp_path: Path
) -> None:
    kube = FakeKube()
    status_file = tmp_path / "state" / "warm.json"
    app = make_app(profiles_dir, kube, warm_status_file=str(status_file))
    await app.reconcile()
    assert sorted(kube.pods) == [
        "warm-cpu16-us-east-1a-spot-0",
        "warm-mem64-us-east-1a-spot-0",
        "warm-mem64-us-east-1b-spot-0",
    ]
    pod = kube.pods["warm-mem64-us-east-1b-spot-0"]
    assert pod["spec"]["nodeSelector"][ZONE_LABEL] == "us-east-1b"
    status = app.status()
    assert [t["count"] for t in status["plan"]["targets"]] == [1, 1, 1]
    assert status["errors"] == []
    assert json.loads(status_file.read_text())["mem64"] == {
        "us-east-1a": 0,
        "us-east-1b": 0,
        "us-east-1c": 0,
    }
    text, content_type = app.metrics_text()
    target = b'capacity_type="spot",pool="mem64",zone="us-east-1b"} 1.0'
    assert b"wbspawner_warm_target{" + target in text
    assert content_type.startswith("text/plain")
    assert all("<svg" in chart for chart in app.timeline().charts)
    assert ("jhub", "reason=NotTriggerScaleUp") in kube.events_asked


async def test_one_pool_failing_is_recorded_and_the_others_are_warmed(
    profiles_dir: Path,
) -> None:
    kube = FakeKube(broken={"mem64"})
    app = make_app(profiles_dir, kube)
    await app.reconcile()
    assert list(kube.pods) == ["warm-cpu16-us-east-1a-spot-0"]
    errors = app.status()["errors"]
    assert [(e["pool"], e["message"]) for e in errors] == [
        ("mem64", "RuntimeError: quota exceeded")
    ]
    assert b'wbspawner_warm_errors_total{pool="mem64"} 1.0' in app.metrics_text()[0]


async def test_a_failing_pass_never_raises(
    profiles_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kube = FakeKube()

    async def boom() -> list[dict[str, Any]]:
        raise ConnectionError("API server unreachable")

    kube.list_nodes = boom  # type: ignore[method-assign]
    app = make_app(profiles_dir, kube)
    await app.reconcile()
    assert [e["action"] for e in app.status()["errors"]] == ["reconcile"]
    assert (
        "ConnectionError: API server unreachable"
        in app.status()["errors"][0]["message"]
    )


async def test_dry_run_changes_nothing(profiles_dir: Path) -> None:
    kube = FakeKube()
    app = make_app(profiles_dir, kube, dry_run=True)
    await app.reconcile()
    assert kube.pods == {}
    assert app.status()["dry_run"] is True
    assert len(app.status()["last_actions"]) == 3


async def test_a_restarted_warmer_keeps_the_placeholder_of_a_recent_spawn(
    profiles_dir: Path, tmp_path: Path
) -> None:
    """The spawn seen by one run of the warmer, whose pod is gone since, still
    counts in the next run (its memory file): the placeholder stays as it is."""
    (profiles_dir / "40-warm.yaml").write_text("warm:\n  timezone: UTC\n")
    memory = tmp_path / "state" / "warmer-memory.json"
    kube = KubeWithUsers()
    kube.users["jupyter-ann"] = {
        "metadata": {
            "name": "jupyter-ann",
            "uid": "uid-ann",
            "labels": {USER_LABEL: "ann", POOL_LABEL: "mem64"},
            "creationTimestamp": (NOW - timedelta(minutes=5)).isoformat(),
        },
        "spec": {"nodeSelector": {POOL_LABEL: "mem64", ZONE_LABEL: "us-east-1a"}},
        "status": {"phase": "Pending"},
    }
    first = make_app(profiles_dir, kube, memory_file=str(memory))
    await first.reconcile()
    del kube.users["jupyter-ann"]  # ann stopped
    await first.reconcile()
    placed = dict(kube.pods)
    assert list(placed) == ["warm-mem64-us-east-1a-spot-0"]

    second = make_app(profiles_dir, kube, memory_file=str(memory))
    await second.reconcile()
    assert kube.pods == placed
    assert not second.result.done  # nothing deleted, nothing made anew
    decisions = [d["message"] for d in second.status()["plan"]["decisions"]]
    assert any("1 spawn(s) in the last 60 min" in m for m in decisions), decisions

    without = make_app(profiles_dir, kube)  # no memory file: as before
    await without.reconcile()
    assert kube.pods == {}


class KubeWithAColdStart(KubeWithUsers):
    """ann's server, Ready on a node that joined after her pod was made."""

    def __init__(self) -> None:
        super().__init__()
        labels = {POOL_LABEL: "mem64", ZONE_LABEL: "us-east-1a"}

        def at(seconds_ago: float) -> str:
            return (NOW - timedelta(seconds=seconds_ago)).isoformat()

        self.node = {
            "metadata": {"name": "n1", "labels": labels, "creationTimestamp": at(45)},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
        conditions = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": at(40)},
            {"type": "Ready", "status": "True", "lastTransitionTime": at(33)},
        ]
        self.users["jupyter-ann"] = {
            "metadata": {
                "name": "jupyter-ann",
                "uid": "uid-ann",
                "labels": {USER_LABEL: "ann", POOL_LABEL: "mem64"},
                "creationTimestamp": at(60),
            },
            "spec": {"nodeSelector": {POOL_LABEL: "mem64"}, "nodeName": "n1"},
            "status": {"phase": "Running", "conditions": conditions},
        }

    async def list_nodes(self) -> list[dict[str, Any]]:
        return [self.node]


async def test_a_pass_writes_the_cold_starts_medians_and_remembers_them(
    profiles_dir: Path, tmp_path: Path
) -> None:
    """The hub's file has the medians; the samples outlive a restart."""
    memory, waits = tmp_path / "memory.json", tmp_path / "wait-times.json"
    kube = KubeWithAColdStart()
    app = make_app(
        profiles_dir, kube, memory_file=str(memory), wait_times_file=str(waits)
    )
    await app.reconcile()
    times = json.loads(waits.read_text(encoding="utf-8"))["mem64"]
    assert times["us-east-1a"] == {"boot_s": 20.0, "start_s": 7.0, "samples": 1}
    assert times["*"] == times["us-east-1a"]
    sizes = app.readiness()["sizes"]
    assert sizes["large"]["text"] == "Starts in about 25 seconds"  # type: ignore[index]

    kube.users.clear()  # ann's server is gone; a restarted warmer still knows
    again = make_app(
        profiles_dir, kube, memory_file=str(memory), wait_times_file=str(waits)
    )
    await again.reconcile()
    assert json.loads(waits.read_text(encoding="utf-8"))["mem64"]["*"] == times["*"]


async def test_an_unusable_memory_file_starts_empty_and_is_rewritten(
    profiles_dir: Path, tmp_path: Path
) -> None:
    memory = tmp_path / "warmer-memory.json"
    memory.write_text('{"spawns": [', encoding="utf-8")
    app = make_app(profiles_dir, FakeKube(), memory_file=str(memory))
    await app.reconcile()
    assert app.status()["errors"] == []
    assert json.loads(memory.read_text(encoding="utf-8")) == {
        "spawns": [],
        "shortages": [],
        "waits": [],
    }


def test_every_trait_has_help() -> None:
    missing = [n for n, t in WarmerApp.class_traits(config=True).items() if not t.help]
    assert missing == []


def test_command_line_flags() -> None:
    app = WarmerApp()
    app.initialize(["--dry-run", "--interval=5", "--profiles=/a", "--namespace=ns"])
    assert (app.dry_run, app.interval, app.profiles_dir, app.namespace) == (
        True,
        5.0,
        ["/a"],
        "ns",
    )


def test_service_entry(make_settings: Callable[..., Settings]) -> None:
    s = make_settings(
        profiles_paths=("/p1", "/p2"),
        namespace="jhub",
        k8s_api_host="https://k8s",
        warm_status_file="/srv/warm.json",
    )
    entry = hub.service(
        s, environ={"KUBECONFIG": "/k", "SECRET": "x"}, url="http://hub:10101"
    )
    assert entry["name"] == "warmer" and entry["url"] == "http://hub:10101"
    assert entry["command"][1:] == [
        "-m",
        "wbspawner.warmer",
        "--profiles=/p1",
        "--profiles=/p2",
        "--namespace=jhub",
        "--WarmerApp.k8s_api_host=https://k8s",
        "--warm-status-file=/srv/warm.json",
        "--WarmerApp.memory_file=/srv/jupyterhub/warmer-memory.json",
        "--WarmerApp.bind_ip=0.0.0.0",
    ]
    assert entry["environment"] == {
        "KUBECONFIG": "/k",
        "WBSPAWNER_COST_DB_URL": "sqlite:////srv/jupyterhub/wbspawner-costs.sqlite",
    }
    assert entry["oauth_no_confirm"] is True


def test_roles_are_least_privilege_and_admins_only() -> None:
    service, admins = hub.roles(["jupyter-admins"])
    assert service == {
        "name": "warmer-service",
        "description": service["description"],
        "scopes": ["list:users", "read:users:name", "read:servers"],
        "services": ["warmer"],
    }
    assert admins["scopes"] == ["access:services!service=warmer"]
    assert admins["groups"] == ["jupyter-admins"]
    assert "users" not in admins


def test_sizes_from_users() -> None:
    users = [
        {"name": "ann", "servers": {"": {"user_options": {"profile": "large"}}}},
        {"name": "bob", "servers": {"": {"user_options": {}}}},
        {"name": "cat", "servers": {}},
        {"name": "dan", "servers": {"gpu": {"user_options": {"profile": "gpu-t4"}}}},
    ]
    assert sizes_from_users(users) == {"ann": "large"}


async def test_a_broken_spot_prices_file_is_shown_and_the_pass_goes_on(
    profiles_dir: Path, tmp_path: Path
) -> None:
    prices = tmp_path / "spot.json"
    prices.write_text('{"r5.2xlarge": 0.17}', encoding="utf-8")
    kube = FakeKube()
    app = make_app(profiles_dir, kube, spot_prices_file=str(prices))
    await app.reconcile()
    errors = app.status()["errors"]
    assert [(e["pool"], e["action"]) for e in errors] == [("*", "spot prices")]
    assert '$["r5.2xlarge"]' in errors[0]["message"]
    assert len(kube.pods) == 3  # placed as without prices


async def test_a_pass_reads_users_habits_from_the_accounting_database(
    profiles_dir: Path, tmp_path: Path
) -> None:
    from wbspawner.costs.accounting import Start, open_db, record

    url = f"sqlite:///{tmp_path / 'habits.db'}"
    with open_db(url)() as session:
        record(
            session,
            Start(
                user="ann",
                size="large",
                pool="mem64",
                capacity_type="spot",
                price_per_hour=0.2,
                at=NOW - timedelta(days=1, minutes=15),
            ),
        )
    app = make_app(profiles_dir, FakeKube(), cost_db_url=url)
    await app.reconcile()
    assert app.snapshot is not None
    assert dict(app.snapshot.habits) == {"ann": (13 * 60 + 45,)}  # UTC settings
    assert not app.errors
