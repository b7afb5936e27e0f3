"""WorkbenchSpawner without a cluster: form, option checks, overrides, progress, state.

Spawners are built like KubeSpawner's own tests build them (a traitlets Config, a
hub ``Hub`` and a small fake user); ``offline_kubeconfig`` (this folder's
conftest) keeps KubeSpawner's client setup offline, and a fake of
``adapters.kube.Kube`` stands in for the cluster where the spawner reads the
user's home volume.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
from jupyterhub.objects import Hub, Server
from jupyterhub.spawner import SpawnException
from kubespawner import KubeSpawner
from traitlets.config import Config

from wbspawner.costs.accounting import Start, open_db, record, record_stop
from wbspawner.costs.peaks import record_peak
from wbspawner.errors import KubeError, Problem, ProfileConfigError
from wbspawner.homes.records import MOVE_CLAIM, MOVE_HEARTBEAT, MOVE_STATE, MOVE_TO
from wbspawner.hub import spawner as spawner_module
from wbspawner.hub.spawner import WorkbenchSpawner
from wbspawner.model import USER_LABEL, Profiles

pytestmark = pytest.mark.usefixtures("offline_kubeconfig")

BOB_STATE = {"uidNumber": 10002, "gidNumber": 100}


class Source:
    """A profiles source whose profiles and last error a test can change."""

    def __init__(self, profiles: Profiles) -> None:
        self.profiles = profiles
        self.last_error: Any = None

    def current(self) -> Profiles:
        return self.profiles


class FakeUser:
    def __init__(
        self,
        name: str,
        groups: list[str],
        admin: bool = False,
        auth_state: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.id = 7
        self.admin = admin
        self.groups = [SimpleNamespace(name=g) for g in groups]
        self.server = Server()
        self.url = f"/user/{name}/"
        self.escaped_name = name
        self.auth_state = auth_state

    async def get_auth_state(self) -> dict[str, Any] | None:
        return self.auth_state


class FakeKube:
    """The reads the spawner makes, answered as ``adapters.kube.Kube`` does
    (``None`` for a missing object), and a record of every call: the home's
    claim and volume, the pool's nodes in a zone and ``SpotInterruption``
    Events (``nodes`` and ``events``, none unless a test adds some)."""

    def __init__(self, zone: str | None) -> None:
        self.zone = zone
        self.calls: list[str] = []
        self.nodes: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.pvs: list[dict[str, Any]] = []
        """The user's PVs a move touched (none: never moved)."""

    async def list_items(
        self, path: str, *, label_selector: str | None = None, **_: Any
    ) -> list[dict[str, Any]]:
        assert path == "/api/v1/nodes", path
        self.calls.append(f"list nodes {label_selector}")
        wanted = dict(p.split("=") for p in (label_selector or "").split(",") if p)
        return [
            n
            for n in self.nodes
            if wanted.items() <= n["metadata"].get("labels", {}).items()
        ]

    async def list_events(
        self, namespace: str | None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.calls.append(f"list events {namespace} {field_selector}")
        reason = (field_selector or "").removeprefix("reason=")
        return [e for e in self.events if not reason or e.get("reason") == reason]

    async def list_pvs(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        self.calls.append(f"list pvs {label_selector}")
        return self.pvs

    async def get_pvc(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(f"read pvc {namespace}/{name}")
        if self.zone is None:
            return None
        return {"spec": {"volumeName": "pv-home-bob"}}

    async def get_pv(self, name: str) -> dict[str, Any]:
        self.calls.append(f"read pv {name}")
        requirement = {
            "key": "topology.kubernetes.io/zone",
            "operator": "In",
            "values": [self.zone],
        }
        terms = [{"matchExpressions": [requirement]}]
        return {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": terms}}}}

    async def delete(self, path: str, **_: Any) -> bool:
        self.calls.append(f"delete {path}")
        return True

    def __getattr__(self, name: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append(name)
            raise AssertionError(f"unexpected Kubernetes call {name}")

        return record


def make_spawner(
    source: Source,
    user: FakeUser,
    *,
    cls: type[WorkbenchSpawner] = WorkbenchSpawner,
    zone: str | None = None,
    **traits: Any,
) -> WorkbenchSpawner:
    c = Config()
    c.WorkbenchSpawner.profiles_source = lambda: source
    c.KubeSpawner.namespace = "jhub"
    c.KubeSpawner.pvc_name_template = "home-{username}"
    for name, value in traits.items():
        setattr(c.WorkbenchSpawner, name, value)
    spawner = cls(
        hub=Hub(), user=user, config=c, api_token="token", oauth_client_id="client"
    )
    spawner.kube = FakeKube(zone)
    return spawner


def bob() -> FakeUser:
    return FakeUser("bob", ["jupyter-users"], auth_state=dict(BOB_STATE))


async def test_form_lists_bobs_sizes_with_prices(profiles: Profiles) -> None:
    spawner = make_spawner(Source(profiles), bob())
    form = await spawner.get_options_form()
    for slug in ("small", "medium", "large", "xlarge", "xxlarge"):
        assert f'value="{slug}"' in form
    assert 'value="gpu-t4"' not in form
    assert 'value="huge"' not in form
    assert "$0.50/h on-demand" in form
    assert "wb-admin-warning" not in form


async def test_profile_list_follows_the_source(profiles: Profiles) -> None:
    source = Source(profiles)
    spawner = make_spawner(source, bob())
    assert "large" in [p["slug"] for p in spawner.profile_list(spawner)]
    fewer = tuple(s for s in profiles.sizes if s.slug != "large")
    source.profiles = dataclasses.replace(profiles, sizes=fewer)
    assert "large" not in [p["slug"] for p in spawner.profile_list(spawner)]


@pytest.mark.parametrize(
    ("admin", "shown"),
    [pytest.param(True, True, id="admin"), pytest.param(False, False, id="user")],
)
async def test_rejected_edit_is_shown_to_admins_only(
    profiles: Profiles, admin: bool, shown: bool
) -> None:
    source = Source(profiles)
    source.last_error = ProfileConfigError(
        [Problem("20-sizes.yaml", "$.sizes[0].pool", "unknown pool 'x'")]
    )
    user = FakeUser("alice", ["jupyter-admins"], admin=admin, auth_state=BOB_STATE)
    form = await make_spawner(source, user).get_options_form()
    assert ("wb-admin-warning" in form) is shown
    assert ("unknown pool" in form) is shown


async def test_valid_choice_becomes_the_pod(profiles: Profiles) -> None:
    spawner = make_spawner(Source(profiles), bob(), zone="us-east-1b")
    spawner.user_options = {"profile": "large", "image": "datascience"}
    await spawner.load_user_options()
    pod = spawner.api.api_client.sanitize_for_serialization(
        await spawner.get_pod_manifest()
    )
    spec = pod["spec"]
    pool = profiles.pools["mem64"]
    memory = pool.request.memory_mib * 2**20
    assert spec["nodeSelector"] == {
        "wbspawner.io/pool": "mem64",
        "topology.kubernetes.io/zone": "us-east-1b",
    }
    assert {t["key"] for t in spec["tolerations"]} >= {
        "wbspawner.io/pool",
        "wbspawner.io/capacity",
    }
    container = spec["containers"][0]
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert container["resources"]["limits"]["memory"] == memory
    assert container["image"] == "quay.io/jupyter/datascience-notebook:2026-07-20"
    assert container["securityContext"]["runAsUser"] == 10002
    assert container["securityContext"]["runAsGroup"] == 100
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["securityContext"]["fsGroup"] == 100
    assert pod["metadata"]["labels"]["wbspawner.io/size"] == "large"
    assert pod["metadata"]["annotations"]["wbspawner.io/user"] == "bob"
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "home-bob"
    kubernetes_validate.validate(pod, "1.30", strict=True)
    assert spawner.get_state()["size"] == "large"
    assert spawner.get_state()["zone"] == "us-east-1b"
    assert spawner.user_options == {"profile": "large", "image": "datascience"}


async def test_no_home_yet_means_no_zone(profiles: Profiles) -> None:
    spawner = make_spawner(Source(profiles), bob(), zone=None)
    spawner.user_options = {"profile": "medium"}
    await spawner.load_user_options()
    assert spawner.node_selector == {"wbspawner.io/pool": "cpu16"}
    assert spawner.storage_capacity == "10Gi"


async def test_first_home_goes_where_the_warmer_has_a_node(
    profiles: Profiles, tmp_path: Path
) -> None:
    warm = tmp_path / "warm.json"
    warm.write_text('{"mem64": {"us-east-1c": 1}}', encoding="utf-8")
    spawner = make_spawner(
        Source(profiles), bob(), zone=None, warm_status_file=str(warm)
    )
    spawner.user_options = {"profile": "large"}
    await spawner.load_user_options()
    assert spawner.node_selector == {
        "wbspawner.io/pool": "mem64",
        "topology.kubernetes.io/zone": "us-east-1c",
    }
    assert spawner.get_state()["zone"] == "us-east-1c"


async def test_a_broken_warm_status_leaves_the_form_without_warm_state(
    profiles: Profiles, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A half-written or foreign file: the form renders, with one log line."""
    warm = tmp_path / "warm.json"
    warm.write_text('{"mem64": {"us-east-1c": 1', encoding="utf-8")
    prices = tmp_path / "spot.json"
    prices.write_text('{"r5.2xlarge/us-east-1a": "cheap"}', encoding="utf-8")
    spawner = make_spawner(
        Source(profiles),
        bob(),
        warm_status_file=str(warm),
        spot_prices_file=str(prices),
    )
    caplog.set_level(logging.INFO)
    form = await spawner.get_options_form()
    assert 'value="large"' in form
    assert "Ready now" not in form and "Starts in about" not in form
    assert "spot (estimated)" in form
    assert "Traceback" not in caplog.text
    assert caplog.text.count("Warm status unknown") == 1
    assert caplog.text.count("Spot prices unknown") == 1


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param(
            {"profile": "gpu-t4"},
            "Ask an admin to add you to 'gpu-users'",
            id="forbidden-size",
        ),
        pytest.param(
            {"profile": "nope"}, "There is no server size 'nope'", id="unknown-size"
        ),
        pytest.param(
            {"profile": "large", "image": "x"}, "There is no image 'x'", id="image"
        ),
        pytest.param(
            {"profile": "large", "cmd": "sh"}, "options this hub does not", id="field"
        ),
    ],
)
async def test_forged_options_are_refused_before_any_call(
    profiles: Profiles,
    options: dict[str, Any],
    match: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawner = make_spawner(Source(profiles), bob(), zone="us-east-1a")
    spawner.handler = SimpleNamespace(
        request=SimpleNamespace(body=b"profile=whatever", query="")
    )
    spawner.user_options = dict(options)
    caplog.set_level(logging.INFO)
    with pytest.raises(SpawnException, match=r"400 SpawnException") as info:
        await spawner.load_user_options()
    assert re.search(match, info.value.message)
    assert info.value.status_code == 400
    assert spawner.kube.calls == []
    assert "Traceback" not in caplog.text
    assert "Refused" in caplog.text


@pytest.mark.parametrize(
    ("state", "match"),
    [
        pytest.param(None, "has no uidNumber", id="no-auth-state"),
        pytest.param({"uidNumber": 0, "gidNumber": 0}, r"0 \(root\)", id="root"),
    ],
)
async def test_account_without_usable_ids_is_refused(
    profiles: Profiles, state: dict[str, Any] | None, match: str
) -> None:
    user = FakeUser("bob", ["jupyter-users"], auth_state=state)
    spawner = make_spawner(Source(profiles), user)
    spawner.user_options = {"profile": "medium"}
    with pytest.raises(SpawnException, match=r"reason=account") as info:
        await spawner.load_user_options()
    assert re.search(match, info.value.message)


async def test_saved_options_naming_a_removed_size_fall_back(
    profiles: Profiles,
) -> None:
    spawner = make_spawner(Source(profiles), bob())
    spawner.handler = None  # started without a request: the saved options
    spawner.user_options = {"profile": "retired", "image": "scipy"}
    form = await spawner.get_options_form()
    assert "you used last time is no longer offered" in form
    await spawner.load_user_options()
    assert spawner.node_selector["wbspawner.io/pool"] == "cpu16"
    assert spawner._selection is not None
    assert spawner._selection.notice is not None


class RaisingKube(KubeSpawner):
    error: Exception = ValueError("No such profile: x. Options include: y")

    async def load_user_options(self) -> None:
        raise self.error


class WrappedSpawner(WorkbenchSpawner, RaisingKube):
    pass


async def test_kubespawner_value_errors_become_user_messages(
    profiles: Profiles, caplog: pytest.LogCaptureFixture
) -> None:
    spawner = make_spawner(Source(profiles), bob(), cls=WrappedSpawner)
    spawner.user_options = {"profile": "large"}
    with pytest.raises(SpawnException, match="No such profile: x") as info:
        await spawner.load_user_options()
    assert info.value.reason == "profile"
    assert "Traceback" not in caplog.text


async def test_other_kubespawner_errors_are_not_hidden(profiles: Profiles) -> None:
    spawner = make_spawner(Source(profiles), bob(), cls=WrappedSpawner)
    spawner.error = KeyError("bug")  # type: ignore[attr-defined]
    spawner.user_options = {"profile": "large"}
    with pytest.raises(KeyError, match="bug"):
        await spawner.load_user_options()


def event(reason: str, message: str) -> dict[str, Any]:
    return {
        "reason": reason,
        "message": message,
        "type": "Normal",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "eventTime": None,
        "involvedObject": {"name": "jupyter-bob"},
        "metadata": {"uid": reason},
    }


class EventsKube(KubeSpawner):
    """KubeSpawner's event side replaced by fixed events (no reflector)."""

    fixed_events: list[dict[str, Any]] = []

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.fixed_events

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        for item in self.fixed_events:
            yield {"progress": 50, "raw_event": item, "message": item["message"]}

    def start(self) -> Any:
        self._start_future = asyncio.ensure_future(asyncio.sleep(60))
        return self._start_future


class EventsSpawner(WorkbenchSpawner, EventsKube):
    pass


async def test_progress_speaks_plainly(profiles: Profiles) -> None:
    spawner = make_spawner(Source(profiles), bob(), cls=EventsSpawner)
    spawner.fixed_events = [
        event("FailedScheduling", "0/3 nodes are available"),
        event(
            "TriggeredScaleUp",
            "pod triggered scale-up: [{wbspawner-mem64-us-east-1b-spot 0->1 (max: 5)}]",
        ),
    ]
    spawner.user_options = {"profile": "large"}
    await spawner.load_user_options()
    messages = [item["message"] async for item in spawner.progress()]
    assert messages == [
        "Waiting for a free 64 GiB node",
        "Starting a 64 GiB node in us-east-1b, usually about 3 minutes",
    ]


async def test_form_and_progress_say_the_observed_cold_start(
    profiles: Profiles, tmp_path: Path
) -> None:
    """The warmer's medians set the wait on the form (the pool's: bob has no
    server, so no zone yet) and on the progress page (his home's zone)."""
    warm = tmp_path / "warm.json"
    warm.write_text('{"mem64": {"us-east-1b": 0}}', encoding="utf-8")
    waits = tmp_path / "wait-times.json"
    here = {"boot_s": 19, "start_s": 6, "samples": 3}
    every = {"boot_s": 40, "start_s": 10, "samples": 5}
    times = {"mem64": {"us-east-1b": here, "*": every}}
    waits.write_text(json.dumps(times), encoding="utf-8")
    spawner = make_spawner(
        Source(profiles),
        bob(),
        cls=EventsSpawner,
        zone="us-east-1b",
        warm_status_file=str(warm),
        wait_times_file=str(waits),
    )
    form = await spawner.get_options_form()
    large = form[form.index('value="large"') : form.index('value="xlarge"')]
    assert "Starts in about 50 seconds" in large
    assert "Starts in about 3 minutes" in form  # sizes nothing was observed for
    spawner.fixed_events = [
        event("TriggeredScaleUp", "pod triggered scale-up: [{g 0->1 (max: 5)}]")
    ]
    spawner.user_options = {"profile": "large"}
    await spawner.load_user_options()
    messages = [item["message"] async for item in spawner.progress()]
    assert messages == [
        "Starting a 64 GiB node in us-east-1b, usually about 20 seconds"
    ]


async def refused_for_capacity(profiles: Profiles) -> EventsSpawner:
    """bob's spawner for ``large``, whose node group is at its maximum size."""
    spawner = make_spawner(
        Source(profiles), bob(), cls=EventsSpawner, capacity_grace_seconds=0.0
    )
    spawner.fixed_events = [
        event(
            "NotTriggerScaleUp",
            "pod didn't trigger scale-up: 1 max node group size reached",
        )
    ]
    spawner.user_options = {"profile": "large"}
    await spawner.load_user_options()
    return spawner


async def test_refused_capacity_fails_the_start_with_advice(
    profiles: Profiles, caplog: pytest.LogCaptureFixture
) -> None:
    spawner = await refused_for_capacity(profiles)
    with pytest.raises(SpawnException, match="reason=capacity") as info:
        await asyncio.wait_for(spawner.start(), 10)
    assert "reached its maximum size" in info.value.message
    assert info.value.status_code == 503
    assert "Traceback" not in caplog.text


async def test_a_failed_or_abandoned_start_deletes_its_pod_by_name(
    profiles: Profiles,
) -> None:
    """JupyterHub's clean-up stops a failed start only when KubeSpawner's copy
    of the cluster shows its pod; the spawner deletes it by name either way:
    when the start fails, and when the hub gives up on it (cancels it)."""
    spawner = await refused_for_capacity(profiles)
    with pytest.raises(SpawnException):
        await asyncio.wait_for(spawner.start(), 10)
    assert spawner._cleanup is not None
    await asyncio.wait_for(spawner._cleanup, 5)
    deleted = "delete /api/v1/namespaces/jhub/pods/jupyter-bob"
    assert spawner.kube.calls.count(deleted) == 1  # type: ignore[attr-defined]

    spawner.fixed_events = []
    abandoned = spawner.start()  # the hub's start_timeout cancels it
    await asyncio.sleep(0.1)
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    await asyncio.wait_for(spawner._cleanup, 5)
    assert spawner.kube.calls.count(deleted) == 2  # type: ignore[attr-defined]


def test_state_round_trip(profiles: Profiles) -> None:
    async def scenario() -> None:
        spawner = make_spawner(Source(profiles), bob(), zone="us-east-1c")
        spawner.user_options = {"profile": "xlarge"}
        await spawner.load_user_options()
        state = spawner.get_state()
        assert (state["size"], state["pool"], state["zone"]) == (
            "xlarge",
            "mem128",
            "us-east-1c",
        )
        assert "pod_name" in state  # KubeSpawner's own state is kept
        fresh = make_spawner(Source(profiles), bob())
        fresh.load_state(state)
        assert fresh.get_state()["size"] == "xlarge"
        fresh.clear_state()
        assert "size" not in fresh.get_state()
        assert "zone" not in fresh.get_state()

    asyncio.run(scenario())


def reclaim_event(itype: str, zone: str, ago_s: float) -> dict[str, Any]:
    """aws-node-termination-handler's Event about a spot notice, ``ago_s`` ago."""
    at = datetime.now(UTC) - timedelta(seconds=ago_s)
    return {
        "metadata": {
            "name": "n.spot",
            "namespace": "default",
            "annotations": {"instance-type": itype, "availability-zone": zone},
        },
        "reason": "SpotInterruption",
        "lastTimestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def test_a_reclaim_in_the_homes_zone_steers_the_next_start(
    profiles: Profiles,
) -> None:
    """Spot r5.large reclaimed in bob's zone: another spot type or on-demand."""
    spawner = make_spawner(
        Source(profiles), bob(), cls=EventsSpawner, zone="us-east-1b"
    )
    spawner.fixed_events = []
    kube = spawner.kube
    assert isinstance(kube, FakeKube)
    kube.events = [
        reclaim_event("r5.large", "us-east-1b", 120),
        reclaim_event("r5.large", "us-east-1a", 60),  # another zone: not bob's
    ]
    spawner.user_options = {"profile": "medium"}
    await spawner.load_user_options()
    assert (
        "list nodes wbspawner.io/pool=cpu16,topology.kubernetes.io/zone=us-east-1b"
        in (kube.calls)
    )
    pod = spawner.api.api_client.sanitize_for_serialization(
        await spawner.get_pod_manifest()
    )
    required = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert required[0]["matchExpressions"][1] == {
        "key": "node.kubernetes.io/instance-type",
        "operator": "NotIn",
        "values": ["r5.large"],
    }
    assert required[1]["matchExpressions"] == [
        {"key": "wbspawner.io/capacity", "operator": "In", "values": ["on-demand"]}
    ]
    messages = [item["message"] async for item in spawner.progress()]
    assert messages == [
        (
            "Spot capacity of this size (r5.large in us-east-1b) was reclaimed 2 "
            "minutes ago; starting on another spot type (r6i.large) or on-demand "
            "for now (spot is avoided there for 30 minutes after a reclaim)."
        )
    ]

    # Once the window has passed, the next start goes back to spot as usual.
    kube.events = [reclaim_event("r5.large", "us-east-1b", 1801)]
    await spawner.load_user_options()
    pod = spawner.api.api_client.sanitize_for_serialization(
        await spawner.get_pod_manifest()
    )
    assert "affinity" not in pod["spec"]
    assert [item["message"] async for item in spawner.progress()] == []


async def test_a_node_under_notice_counts_before_any_event(profiles: Profiles) -> None:
    spawner = make_spawner(Source(profiles), bob(), zone="us-east-1b")
    kube = spawner.kube
    assert isinstance(kube, FakeKube)
    labels = {
        "wbspawner.io/pool": "cpu16",
        "topology.kubernetes.io/zone": "us-east-1b",
        "node.kubernetes.io/instance-type": "r5.large",
    }
    taint = {"key": "aws-node-termination-handler/spot-itn", "effect": "NoSchedule"}
    kube.nodes = [{"metadata": {"labels": labels}, "spec": {"taints": [taint]}}]
    spawner.user_options = {"profile": "medium"}
    await spawner.load_user_options()
    assert spawner.node_affinity_required[0]["matchExpressions"][1]["values"] == [
        "r5.large"
    ]


def test_the_reason_of_a_stop_outlives_the_spawner_until_the_next_start(
    profiles: Profiles,
) -> None:
    """JupyterHub saves a stopped server's state after ``clear_state`` and gives
    it to the spawner it makes next (also after a hub restart)."""

    async def scenario() -> None:
        spawner = make_spawner(Source(profiles), bob(), zone="us-east-1b")
        spawner.user_options = {"profile": "medium"}
        await spawner.load_user_options()
        spawner._server = Server()  # running (a test spawner has no orm_spawner)
        spawner._stop_reason = "Your server was stopped because AWS reclaimed it."
        assert spawner.stop_reason is None  # not while the server runs
        spawner.server = None
        spawner.clear_state()
        saved = spawner.get_state()
        assert saved["stop_reason"] == spawner._stop_reason
        assert "size" not in saved and "zone" not in saved

        fresh = make_spawner(Source(profiles), bob())
        fresh.load_state(saved)
        assert fresh.stop_reason == "Your server was stopped because AWS reclaimed it."
        fresh.start()  # the next start: the reason explained the last stop only
        assert fresh.stop_reason is None
        assert "stop_reason" not in fresh.get_state()
        fresh._start_future.cancel()

    asyncio.run(scenario())


@pytest.mark.parametrize("namespace", [None, "dask-gateway"], ids=["off", "on"])
async def test_start_writes_the_users_dask_network_policies(
    profiles: Profiles, monkeypatch: pytest.MonkeyPatch, namespace: str | None
) -> None:
    calls: list[tuple[Any, ...]] = []

    async def ensure(api: Any, ns: str, user: str, log: Any, **kw: Any) -> None:
        calls.append((api, ns, user, kw["server_namespace"]))

    monkeypatch.setattr(spawner_module, "ensure_dask_network_policies", ensure)
    spawner = make_spawner(
        Source(profiles), bob(), cls=EventsSpawner, dask_namespace=namespace
    )
    spawner.user_options = {"profile": "large"}
    await spawner.load_user_options()
    started = spawner.start()
    await asyncio.sleep(0.05)
    started.cancel()
    expected = [(spawner.kube, namespace, "bob", "jhub")]
    assert calls == (expected if namespace else [])


@pytest.mark.parametrize(
    ("beat_age", "refused"),
    [
        pytest.param(timedelta(seconds=20), True, id="move-runs"),
        pytest.param(timedelta(minutes=11), False, id="stale-marker-ignored"),
    ],
)
async def test_spawn_is_refused_while_the_home_moves(
    profiles: Profiles, beat_age: timedelta, refused: bool
) -> None:
    """A claim made mid-move would bind an empty volume: refused, nothing created."""
    spawner = make_spawner(Source(profiles), bob(), zone="us-east-1a")
    beat = (datetime.now(UTC) - beat_age).strftime("%Y-%m-%dT%H:%M:%SZ")
    annotations = {
        MOVE_CLAIM: "jhub/home-bob",
        MOVE_STATE: "in-progress",
        MOVE_TO: "us-east-1b",
        MOVE_HEARTBEAT: beat,
    }
    spawner.kube.pvs = [{"metadata": {"name": "pv-old", "annotations": annotations}}]
    spawner.user_options = {"profile": "large"}
    if not refused:
        await spawner.load_user_options()
        assert spawner.get_state()["zone"] == "us-east-1a"
        return
    with pytest.raises(SpawnException, match="reason=home-move") as info:
        await spawner.load_user_options()
    assert info.value.message == (
        "Your home is being moved to us-east-1b; try again in a few minutes. "
        "Your files are kept."
    )
    assert info.value.status_code == 409
    assert spawner.kube.calls == [f"list pvs {USER_LABEL}=bob"]


async def test_a_hub_that_cannot_list_pvs_still_spawns(
    profiles: Profiles, caplog: pytest.LogCaptureFixture
) -> None:
    """No RBAC to list PVs: the check for a move cannot be made; logged, no refusal."""
    spawner = make_spawner(Source(profiles), bob(), zone="us-east-1a")

    async def forbidden(label_selector: str | None = None) -> list[dict[str, Any]]:
        raise KubeError("403 Forbidden: persistentvolumes", status=403)

    spawner.kube.list_pvs = forbidden  # type: ignore[method-assign]
    spawner.user_options = {"profile": "large"}
    caplog.set_level(logging.WARNING)
    await spawner.load_user_options()
    assert spawner.get_state()["zone"] == "us-east-1a"
    assert "no check for a move: 403 Forbidden" in caplog.text


async def test_form_advises_from_the_recorded_peaks(
    profiles: Profiles, tmp_path: Path
) -> None:
    """The advice is its own block, above the sizes, from the accounting's peaks."""
    url = f"sqlite:///{tmp_path / 'costs.sqlite'}"
    with open_db(url)() as session:
        for day in range(1, 4):
            start = Start(
                user="bob",
                size="large",
                pool="mem64",
                capacity_type="on-demand",
                price_per_hour=0.504,
                at=datetime(2026, 12, day, 9),
            )
            record(session, start)
            record_peak(session, "bob", 9 * 1024 - day)
            record_stop(session, "bob", datetime(2026, 12, day, 17))
    spawner = make_spawner(Source(profiles), bob(), cost_db_url=url)
    form = await spawner.get_options_form()
    advice = (
        "Your last 3 sessions on 64 GiB peaked at 9 GiB: 16 GiB would do, "
        "$0.13/h instead of $0.50/h."
    )
    assert f"<strong>Right size:</strong> {advice}</div>" in form
    assert form.index("wb-advice") < form.index('value="small"')
    ada = FakeUser("ada", ["jupyter-users"])
    other = make_spawner(Source(profiles), ada, cost_db_url=url)
    assert "wb-advice" not in await other.get_options_form()  # no session of hers
