"""Applying plans through fake adapters: order, dry run, failures, idempotency."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from tests.unit.pools.pools_support import observed_asg
from wbspawner.adapters.aws import AlreadyExistsError, NotFoundError
from wbspawner.errors import TemporaryAwsError
from wbspawner.model import Catalog, Profiles
from wbspawner.pools import PoolsError
from wbspawner.pools.apply import Adapters, apply, ensure_subnets
from wbspawner.pools.desired import ClusterSpec, DesiredState, desired_state
from wbspawner.pools.observed import ObservedAsg, ObservedLaunchTemplate, ObservedState
from wbspawner.pools.plan import make_plan
from wbspawner.pools.report import report_table
from wbspawner.pools.subnets import SubnetInfo, check_subnets


def _stray(instances: int) -> ObservedAsg:
    """A group named ``old`` of no pool, with ``instances`` running nodes."""
    return observed_asg("old", desired_capacity=instances, instances=instances)


class Recorder:
    """Fake EC2 and ASG adapters: record calls, fail on request."""

    def __init__(self, fail: Mapping[tuple[str, str], Exception] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = dict(fail or {})

    def _call(self, method: str, target: str) -> None:
        self.calls.append((method, target))
        err = self.fail.get((method, target))
        if err is not None:
            raise err

    def observe_launch_templates(
        self, cluster: str
    ) -> Mapping[str, ObservedLaunchTemplate]:
        return {}

    def observe(self, cluster: str) -> Mapping[str, ObservedAsg]:
        return {}

    def create_launch_template(self, params: Mapping[str, Any]) -> int:
        self._call("create_launch_template", params["LaunchTemplateName"])
        return 1

    def create_launch_template_version(self, params: Mapping[str, Any]) -> int:
        self._call("create_launch_template_version", params["LaunchTemplateName"])
        return 2

    def set_default_version(self, name: str, version: str | None) -> str:
        self._call("set_default_version", name)
        return version or "2"

    def delete_launch_template(self, name: str) -> None:
        self._call("delete_launch_template", name)

    def create(self, params: Mapping[str, Any]) -> None:
        self._call("create", params["AutoScalingGroupName"])

    def update(self, params: Mapping[str, Any]) -> None:
        self._call("update", params["AutoScalingGroupName"])

    def put_tags(self, tags: Sequence[Mapping[str, Any]]) -> None:
        self._call("put_tags", tags[0]["ResourceId"])

    def delete_tags(self, tags: Sequence[Mapping[str, Any]]) -> None:
        self._call("delete_tags", tags[0]["ResourceId"])

    def delete(self, name: str, force: bool) -> None:
        self._call("delete", name)


def _adapters(rec: Recorder) -> Adapters:
    return Adapters(ec2=rec, asg=rec)


def test_apply_runs_every_action_in_plan_order(shipped_desired: DesiredState):
    plan = make_plan(shipped_desired, ObservedState())
    rec = Recorder()
    report = apply(plan, _adapters(rec))
    assert report.ok
    assert report.count("done") == len(plan.actions)
    n = len(shipped_desired.groups)
    assert [c[0] for c in rec.calls] == ["create_launch_template"] * n + ["create"] * n
    assert [c[1] for c in rec.calls] == [a.target for a in plan.actions]


def test_dry_run_calls_nothing(shipped_desired: DesiredState):
    plan = make_plan(shipped_desired, ObservedState())
    rec = Recorder()
    report = apply(plan, _adapters(rec), dry_run=True)
    assert rec.calls == []
    assert report.count("would run") == len(plan.actions)
    assert "Apply (dry run)" in report_table(report)


def test_first_failure_stops_the_run(shipped_desired: DesiredState):
    plan = make_plan(shipped_desired, ObservedState())
    third = plan.actions[2]
    err = TemporaryAwsError("AWS is throttling", code="Throttling")
    rec = Recorder(fail={("create_launch_template", third.target): err})
    report = apply(plan, _adapters(rec))
    assert not report.ok
    assert report.failed is not None and report.failed.action == third
    assert report.failed.detail == "AWS is throttling"
    assert report.count("done") == 2
    assert report.count("not run") == len(plan.actions) - 3
    assert len(rec.calls) == 3
    text = report_table(report)
    assert "failed" in text and "run apply again" in text


def test_objects_made_by_a_lost_response_count_as_done(shipped_desired: DesiredState):
    plan = make_plan(shipped_desired, ObservedState())
    first = plan.actions[0]
    rec = Recorder(
        fail={("create_launch_template", first.target): AlreadyExistsError("exists")}
    )
    report = apply(plan, _adapters(rec))
    assert report.ok
    assert report.results[0].status == "already done"


def test_deleting_what_is_gone_is_done_but_updating_it_fails(
    shipped_desired: DesiredState,
    profiles: Profiles,
    echoed: Callable,
    catalog: Catalog,
    spec: ClusterSpec,
):
    stray = _stray(0)
    observed = dataclasses.replace(
        echoed(shipped_desired), asgs={**echoed(shipped_desired).asgs, "old": stray}
    )
    plan = make_plan(shipped_desired, observed, allow_delete=True)
    rec = Recorder(fail={("delete", "old"): NotFoundError("old not found")})
    assert apply(plan, _adapters(rec)).results[-1].status == "already done"

    changed = dataclasses.replace(
        profiles,
        pools={
            **profiles.pools,
            "mem64": dataclasses.replace(profiles.pools["mem64"], max_nodes=3),
        },
    )
    plan = make_plan(
        desired_state(changed, catalog, spec),
        echoed(shipped_desired),
    )
    target = plan.actions[0].target
    rec = Recorder(fail={("update", target): NotFoundError("gone")})
    report = apply(plan, _adapters(rec))
    assert report.failed is not None and report.failed.action.target == target


def test_blocked_actions_are_reported_not_run(
    shipped_desired: DesiredState, echoed: Callable
):
    stray = _stray(1)
    plan = make_plan(
        shipped_desired,
        ObservedState(
            asgs={**echoed(shipped_desired).asgs, "old": stray},
            launch_templates=echoed(shipped_desired).launch_templates,
        ),
    )
    rec = Recorder()
    report = apply(plan, _adapters(rec))
    assert rec.calls == []
    assert [r.status for r in report.results] == ["blocked"]
    assert report.ok


def _subnets(free: int) -> list[SubnetInfo]:
    return [
        SubnetInfo(id=f"subnet-{z}", zone=f"us-east-1{z}", free_ips=free) for z in "abc"
    ]


def test_apply_refuses_small_subnets_unless_forced(
    shipped_desired: DesiredState, profiles: Profiles, catalog: Catalog
):
    small = check_subnets(shipped_desired, profiles, catalog, _subnets(100))
    with pytest.raises(
        PoolsError,
        match=r"subnets too small: us-east-1a has 100 free addresses "
        r"but its groups may need \d+",
    ):
        ensure_subnets(small)
    ensure_subnets(small, force=True)
    ensure_subnets(check_subnets(shipped_desired, profiles, catalog, _subnets(100_000)))
