"""The warmer's actuators against fakes: idempotent, dry-run, one pool failing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.unit.warmer.clock_support import NOW, A, B
from wbspawner.errors import WbError
from wbspawner.model import CAPACITY_LABEL, POOL_LABEL, ZONE_LABEL, Pool, Resources
from wbspawner.warmer.actuator import (
    PRIORITY_CLASS,
    PlaceholderActuator,
    PlaceholderSettings,
    desired_pods,
    diff,
    placeholder_pod,
    priority_class,
)
from wbspawner.warmer.asgmin import AsgMinActuator
from wbspawner.warmer.policy import AsgMinTarget, PlaceholderTarget, WarmPlan


@pytest.fixture(scope="module")
def pools(make_pool: Callable[..., Pool]) -> dict[str, Pool]:
    def pool(name: str, gpus: int = 0) -> Pool:
        return make_pool(
            name=name,
            display_name=name,
            instance_types=("r5.2xlarge",),
            zones=(A, B),
            request=Resources(cpu_m=7710, memory_mib=62170, gpus=gpus),
            gpu_count=gpus,
            gpu_kind="T4" if gpus else None,
        )

    return {"mem64": pool("mem64"), "cpu16": pool("cpu16"), "gpu": pool("gpu", 1)}


SETTINGS = PlaceholderSettings(
    namespace="jhub",
    command=("sleep", "infinity"),
    prepull={"mem64": ("quay.io/jupyter/scipy-notebook:2026-07-20",)},
)


def target(
    pool: str, zone: str, count: int, capacity: str = "spot"
) -> PlaceholderTarget:
    return PlaceholderTarget(
        pool=pool,
        zone=zone,
        capacity_type=capacity,  # type: ignore[arg-type]
        count=count,
        reason="test",
        price_per_hour=0.2,
    )


def make_plan(*targets: PlaceholderTarget, mode: str = "placeholders") -> WarmPlan:
    return WarmPlan(
        at=NOW,
        mode=mode,  # type: ignore[arg-type]
        targets=targets,
        decisions=(),
        cost_per_hour=sum(t.cost_per_hour for t in targets),
        budget_per_hour=None,
    )


class BoomError(WbError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FakeKube:
    """Pods in a dict; creation fails for pools in ``broken``."""

    def __init__(self) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.priority_classes: dict[str, dict[str, Any]] = {}
        self.broken: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.list_fails = False

    async def list_pods(
        self, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.calls.append(("list", label_selector or ""))
        if self.list_fails:
            raise BoomError("API server unreachable")
        key, _, value = (label_selector or "").partition("=")
        return [
            p
            for p in self.pods.values()
            if p["metadata"]["namespace"] == namespace
            and (not key or p["metadata"].get("labels", {}).get(key) == value)
        ]

    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        self.calls.append(("create", name))
        if body["metadata"]["labels"][POOL_LABEL] in self.broken:
            raise BoomError(f"pods {name!r} is forbidden: exceeded quota")
        assert name not in self.pods, "created twice"
        self.pods[name] = {
            **body,
            "metadata": {**body["metadata"], "namespace": namespace},
        }
        return body

    async def delete_pod(self, namespace: str, name: str) -> None:
        self.calls.append(("delete", name))
        self.pods.pop(name, None)

    async def ensure_priority_class(self, body: dict[str, Any]) -> bool:
        self.calls.append(("priorityclass", body["metadata"]["name"]))
        created = body["metadata"]["name"] not in self.priority_classes
        self.priority_classes.setdefault(body["metadata"]["name"], body)
        return created


def test_placeholder_pod_holds_a_whole_node_of_the_pool_in_its_zone(
    pools: dict[str, Pool],
) -> None:
    pod = placeholder_pod(pools["gpu"], B, "on-demand", 2, SETTINGS)
    spec = pod["spec"]
    assert pod["metadata"]["name"] == "warm-gpu-us-east-1b-on-demand-2"
    assert spec["priorityClassName"] == PRIORITY_CLASS
    assert spec["nodeSelector"] == {
        POOL_LABEL: "gpu",
        ZONE_LABEL: B,
        CAPACITY_LABEL: "on-demand",
    }
    keys = {t["key"] for t in spec["tolerations"]}
    assert keys == {POOL_LABEL, CAPACITY_LABEL, "nvidia.com/gpu"}
    pause = spec["containers"][-1]
    assert pause["name"] == "pause"
    assert pause["resources"]["requests"] == {
        "cpu": "7710m",
        "memory": "62170Mi",
        "nvidia.com/gpu": "1",
    }
    assert pause["resources"]["limits"] == pause["resources"]["requests"]
    assert pause["command"] == ["sleep", "infinity"]
    assert spec["terminationGracePeriodSeconds"] == 0


def test_prepull_containers_request_nothing(pools: dict[str, Pool]) -> None:
    pod = placeholder_pod(pools["mem64"], A, "spot", 0, SETTINGS)
    pulls = pod["spec"]["containers"][:-1]
    assert [c["image"] for c in pulls] == ["quay.io/jupyter/scipy-notebook:2026-07-20"]
    assert all("resources" not in c for c in pulls)


def test_priority_class_is_minus_ten_and_never_preempts() -> None:
    pc = priority_class()
    assert (pc["value"], pc["preemptionPolicy"], pc["globalDefault"]) == (
        -10,
        "Never",
        False,
    )


def test_default_image_is_pause_without_command(pools: dict[str, Pool]) -> None:
    pod = placeholder_pod(
        pools["cpu16"], A, "spot", 0, PlaceholderSettings(namespace="x")
    )
    assert pod["spec"]["containers"][0]["image"].startswith("registry.k8s.io/pause:")
    assert "command" not in pod["spec"]["containers"][0]
    assert len(pod["spec"]["containers"]) == 1


async def test_apply_creates_then_is_idempotent(pools: dict[str, Pool]) -> None:
    kube = FakeKube()
    actuator = PlaceholderActuator(kube, SETTINGS)
    plan = make_plan(target("mem64", A, 2), target("cpu16", B, 1, "on-demand"))
    first = await actuator.apply(plan, pools)
    assert sorted(kube.pods) == [
        "warm-cpu16-us-east-1b-on-demand-0",
        "warm-mem64-us-east-1a-spot-0",
        "warm-mem64-us-east-1a-spot-1",
    ]
    assert [a.verb for a in first.done] == ["create"] * 3
    assert kube.priority_classes[PRIORITY_CLASS]["value"] == -10
    kube.calls.clear()
    second = await actuator.apply(plan, pools)
    assert second.planned == () and second.errors == ()
    assert [c[0] for c in kube.calls] == ["list"]


async def test_apply_shrinks_and_moves(pools: dict[str, Pool]) -> None:
    kube = FakeKube()
    actuator = PlaceholderActuator(kube, SETTINGS)
    await actuator.apply(make_plan(target("mem64", A, 2)), pools)
    result = await actuator.apply(
        make_plan(target("mem64", A, 1), target("mem64", B, 1)), pools
    )
    assert sorted(kube.pods) == [
        "warm-mem64-us-east-1a-spot-0",
        "warm-mem64-us-east-1b-spot-0",
    ]
    assert [(a.verb, a.name) for a in result.done] == [
        ("delete", "warm-mem64-us-east-1a-spot-1"),
        ("create", "warm-mem64-us-east-1b-spot-0"),
    ]


async def test_dry_run_changes_nothing_but_reports(pools: dict[str, Pool]) -> None:
    kube = FakeKube()
    result = await PlaceholderActuator(kube, SETTINGS).apply(
        make_plan(target("mem64", A, 1)), pools, dry_run=True
    )
    assert kube.pods == {} and kube.priority_classes == {}
    assert result.dry_run
    assert [(a.verb, a.name) for a in result.done] == [
        ("create", "warm-mem64-us-east-1a-spot-0")
    ]


async def test_one_pool_failing_does_not_stop_the_others(
    pools: dict[str, Pool],
) -> None:
    kube = FakeKube()
    kube.broken.add("mem64")
    plan = make_plan(
        target("cpu16", A, 1), target("mem64", A, 2), target("mem64", B, 1)
    )
    result = await PlaceholderActuator(kube, SETTINGS).apply(plan, pools)
    assert sorted(kube.pods) == ["warm-cpu16-us-east-1a-spot-0"]
    assert [(e.pool, e.action) for e in result.errors] == [
        ("mem64", "create warm-mem64-us-east-1a-spot-0")
    ]
    assert "exceeded quota" in result.errors[0].message


async def test_listing_failure_is_recorded_not_raised(pools: dict[str, Pool]) -> None:
    kube = FakeKube()
    kube.list_fails = True
    result = await PlaceholderActuator(kube, SETTINGS).apply(
        make_plan(target("mem64", A, 1)), pools
    )
    assert [(e.pool, e.message) for e in result.errors] == [
        ("*", "API server unreachable")
    ]


async def test_asg_min_mode_removes_placeholders(pools: dict[str, Pool]) -> None:
    kube = FakeKube()
    actuator = PlaceholderActuator(kube, SETTINGS)
    await actuator.apply(make_plan(target("mem64", A, 1)), pools)
    await actuator.apply(make_plan(target("mem64", A, 1), mode="asg-min"), pools)
    assert kube.pods == {}


def test_diff_recreates_changed_and_waits_for_terminating(
    pools: dict[str, Pool],
) -> None:
    desired = desired_pods(make_plan(target("mem64", A, 2)), pools, SETTINGS)
    changed = placeholder_pod(
        pools["mem64"], A, "spot", 0, PlaceholderSettings(namespace="jhub")
    )
    going = placeholder_pod(pools["mem64"], A, "spot", 1, SETTINGS)
    going["metadata"]["deletionTimestamp"] = "2026-11-25T14:00:00Z"
    actions = diff(desired, [changed, going])
    assert [(a.verb, a.name, a.detail) for a in actions] == [
        ("delete", "warm-mem64-us-east-1a-spot-0", "spec changed"),
    ]


def _asg(name: str, min_size: int, desired: int) -> dict[str, Any]:
    return {
        "AutoScalingGroupName": name,
        "MinSize": min_size,
        "MaxSize": 10,
        "DesiredCapacity": desired,
        "DefaultCooldown": 300,
        "AvailabilityZones": [A],
        "HealthCheckType": "EC2",
        "CreatedTime": NOW,
    }


@pytest.fixture
def autoscaling() -> Any:
    """An Auto Scaling client for the Stubber (nothing is sent)."""
    return boto3.client(
        "autoscaling",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def asg_min_plan(*targets: tuple[str, str, int]) -> WarmPlan:
    """An asg-min plan with these (pool, zone, spot minimum) targets."""
    return WarmPlan(
        at=NOW,
        mode="asg-min",
        targets=(),
        decisions=(),
        cost_per_hour=0,
        budget_per_hour=None,
        asg_min=tuple(
            AsgMinTarget(
                pool=pool, zone=zone, capacity_type="spot", min_size=n, reason="r"
            )
            for pool, zone, n in targets
        ),
    )


async def test_asg_min_actuator_sets_min_and_desired(autoscaling: Any) -> None:
    names = ["wbspawner-dev-mem64-a-spot", "wbspawner-dev-mem64-b-spot"]
    plan = asg_min_plan(("mem64", A, 2), ("mem64", B, 0))
    with Stubber(autoscaling) as stub:
        stub.add_response(
            "describe_auto_scaling_groups",
            {"AutoScalingGroups": [_asg(names[0], 0, 1), _asg(names[1], 0, 0)]},
            {"AutoScalingGroupNames": names},
        )
        stub.add_response(
            "update_auto_scaling_group",
            {},
            {"AutoScalingGroupName": names[0], "MinSize": 2, "DesiredCapacity": 2},
        )
        result = await AsgMinActuator(autoscaling, "dev", "us-east-1").apply(plan)
        stub.assert_no_pending_responses()
    assert [(a.verb, a.name) for a in result.done] == [("set-min", names[0])]
    assert result.errors == ()


@pytest.mark.parametrize(
    ("dry_run", "updates"),
    [pytest.param(True, 0, id="dry-run"), pytest.param(False, 1, id="apply")],
)
async def test_asg_min_actuator_missing_group_is_an_error(
    autoscaling: Any, dry_run: bool, updates: int
) -> None:
    names = ["wbspawner-dev-cpu16-a-spot", "wbspawner-dev-mem64-a-spot"]
    plan = asg_min_plan(("mem64", A, 1), ("cpu16", A, 1))
    with Stubber(autoscaling) as stub:
        stub.add_response(
            "describe_auto_scaling_groups",
            {"AutoScalingGroups": [_asg(names[1], 0, 3)]},
            {"AutoScalingGroupNames": names},
        )
        if updates:
            stub.add_response(
                "update_auto_scaling_group",
                {},
                {"AutoScalingGroupName": names[1], "MinSize": 1},
            )
        result = await AsgMinActuator(autoscaling, "dev", "us-east-1").apply(
            plan, dry_run=dry_run
        )
        stub.assert_no_pending_responses()
    assert [(e.pool, e.message) for e in result.errors] == [
        ("cpu16", f"no group {names[0]}")
    ]
    assert [a.name for a in result.done] == [names[1]]


async def test_asg_min_actuator_failures_carry_the_aws_advice(autoscaling: Any) -> None:
    """A refused update is recorded with the adapter's advice, not botocore's text."""
    name = "wbspawner-dev-mem64-a-spot"
    plan = asg_min_plan(("mem64", A, 1))
    with Stubber(autoscaling) as stub:
        stub.add_response(
            "describe_auto_scaling_groups", {"AutoScalingGroups": [_asg(name, 0, 0)]}
        )
        stub.add_client_error("update_auto_scaling_group", "AccessDenied", "no")
        result = await AsgMinActuator(autoscaling, "dev", "us-east-1").apply(plan)
        stub.assert_no_pending_responses()
    advice = (
        f"AWS denied autoscaling:UpdateAutoScalingGroup for {name} (AccessDenied): "
        "the credentials in use lack the IAM permission "
        "autoscaling:UpdateAutoScalingGroup. no"
    )
    assert [(e.pool, e.message) for e in result.errors] == [("mem64", advice)]
