"""Plans: desired versus observed pools, ordering, safety rules, rendering (pure)."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable

import pytest

from tests.unit.pools.pools_support import observed_asg
from wbspawner.model import Catalog, Profiles
from wbspawner.pools.desired import ClusterSpec, DesiredState, desired_state
from wbspawner.pools.observed import ObservedAsg, ObservedState, contains
from wbspawner.pools.plan import ACTION_ORDER, make_plan
from wbspawner.pools.report import plan_table, plan_to_json

A, B = "us-east-1a", "us-east-1b"


def _kinds(plan):
    return [a.kind for a in plan.actions]


@pytest.fixture
def with_pool(profiles, catalog, spec):
    """``with_pool(name, **changes)``: the desired state with one pool changed."""

    def desired(name: str, **changes: object):
        pools = dict(profiles.pools)
        pools[name] = dataclasses.replace(pools[name], **changes)
        return desired_state(dataclasses.replace(profiles, pools=pools), catalog, spec)

    return desired


def test_empty_account_creates_every_template_before_every_group(
    shipped_desired: DesiredState,
):
    plan = make_plan(shipped_desired, ObservedState())
    n = len(shipped_desired.groups)
    assert _kinds(plan) == ["create-launch-template"] * n + ["create-asg"] * n
    assert not plan.blocked
    create = next(a for a in plan.actions if a.kind == "create-asg")
    group = shipped_desired.group(create.target)
    assert create.params["DesiredCapacity"] == group.asg.min_size
    assert create.params["VPCZoneIdentifier"] == ",".join(group.asg.subnets)
    tags = {t["Key"]: t for t in create.params["Tags"]}
    assert tags["wbspawner.io/pool"]["PropagateAtLaunch"] is True
    assert tags["k8s.io/cluster-autoscaler/enabled"]["PropagateAtLaunch"] is False


def test_what_aws_echoes_back_needs_no_change(
    shipped_desired: DesiredState, echoed: Callable
):
    plan = make_plan(shipped_desired, echoed(shipped_desired))
    assert plan.actions == ()
    assert plan.is_empty
    assert "No changes" in plan_table(plan)


def test_changed_max_nodes_updates_only_that_pools_groups(
    with_pool: Callable, echoed: Callable, shipped_desired: DesiredState
):
    desired = with_pool("mem64", max_nodes=12)
    plan = make_plan(desired, echoed(shipped_desired))
    mem64 = {g.asg.name for g in desired.groups if g.pool == "mem64"}
    assert {a.target for a in plan.actions} == mem64
    for a in plan.actions:
        assert a.kind == "update-asg"
        group = desired.group(a.target)
        assert a.params == {
            "AutoScalingGroupName": a.target,
            "MaxSize": 12,
            "MixedInstancesPolicy": dict(group.asg.mixed_instances_policy),
        }
        assert [(c.field, c.old, c.new) for c in a.changes] == [("MaxSize", "10", "12")]


def test_changed_root_volume_makes_a_new_template_version_and_tag(
    with_pool: Callable, echoed: Callable, shipped_desired: DesiredState
):
    desired = with_pool("cpu16", root_volume_gib=150)
    plan = make_plan(desired, echoed(shipped_desired))
    cpu16 = sorted(g.asg.name for g in desired.groups if g.pool == "cpu16")
    by_kind = {
        k: sorted(a.target for a in plan.actions if a.kind == k) for k in _kinds(plan)
    }
    assert by_kind == {
        "create-launch-template-version": cpu16,
        "set-default-version": cpu16,
        "update-tags": cpu16,
    }
    version = next(
        a for a in plan.actions if a.kind == "create-launch-template-version"
    )
    assert [(c.field, c.old, c.new) for c in version.changes] == [
        ("BlockDeviceMappings[0].Ebs.VolumeSize", "100", "150")
    ]
    tag = next(a for a in plan.actions if a.kind == "update-tags")
    assert [t["Key"] for t in tag.params["Tags"]] == [
        "k8s.io/cluster-autoscaler/node-template/resources/ephemeral-storage"
    ]
    # The new version is made before it becomes the default.
    kinds = _kinds(plan)
    assert kinds.index("create-launch-template-version") < kinds.index(
        "set-default-version"
    )


@pytest.fixture
def new_amis_desired(
    profiles: Profiles, catalog: Catalog, spec: ClusterSpec
) -> DesiredState:
    """The shipped profiles' desired state once every node AMI has a new release."""
    amis = {k: v + "-new" for k, v in spec.amis.items()}
    return desired_state(profiles, catalog, dataclasses.replace(spec, amis=amis))


def test_new_ami_changes_templates_not_groups(
    new_amis_desired: DesiredState, echoed: Callable, shipped_desired: DesiredState
):
    plan = make_plan(new_amis_desired, echoed(shipped_desired))
    assert set(_kinds(plan)) == {
        "create-launch-template-version",
        "set-default-version",
    }
    first = plan.actions[0]
    assert [(c.field, c.new) for c in first.changes] == [
        ("ImageId", first.params["LaunchTemplateData"]["ImageId"])
    ]
    default = next(a for a in plan.actions if a.kind == "set-default-version")
    assert default.params["DefaultVersion"] is None  # the version just created


def test_version_made_but_not_default_is_only_made_default(
    new_amis_desired: DesiredState, echoed: Callable, shipped_desired: DesiredState
):
    """A run that stopped between the two calls is finished, not repeated."""
    desired = new_amis_desired
    observed = echoed(shipped_desired)
    name = desired.groups[0].launch_template.name
    lt = observed.launch_templates[name]
    half = dataclasses.replace(
        lt, latest_version=2, latest_data=dict(desired.groups[0].launch_template.data)
    )
    plan = make_plan(
        desired,
        dataclasses.replace(
            observed, launch_templates={**observed.launch_templates, name: half}
        ),
    )
    mine = [a for a in plan.actions if a.target == name]
    assert [(a.kind, a.params["DefaultVersion"]) for a in mine] == [
        ("set-default-version", "2")
    ]


def test_user_data_change_shows_the_labels_and_taints_that_change(
    make_pool: Callable,
    catalog: Catalog,
    spec: ClusterSpec,
    make_profiles: Callable,
    echoed: Callable,
):
    pool = make_pool(name="m64", instance_types=("r5.2xlarge",), zones=(A, B))
    before = desired_state(make_profiles(pool), catalog, spec)
    relabelled = dataclasses.replace(pool, name="m64", labels={"team": "geo"})
    after = desired_state(make_profiles(relabelled), catalog, spec)
    plan = make_plan(after, echoed(before))
    version = next(
        a for a in plan.actions if a.kind == "create-launch-template-version"
    )
    assert [(c.field, c.old, c.new) for c in version.changes] == [
        ("UserData node-labels", "—", "team=geo")
    ]
    gpu = make_pool(name="m64", instance_types=("g4dn.xlarge",), zones=(A, B))
    plan = make_plan(desired_state(make_profiles(gpu), catalog, spec), echoed(before))
    version = next(
        a for a in plan.actions if a.kind == "create-launch-template-version"
    )
    fields = {c.field: (c.old, c.new) for c in version.changes}
    assert fields["UserData node-labels"] == (
        "—",
        "k8s.amazonaws.com/accelerator=nvidia-t4",
    )
    assert fields["UserData register-with-taints"] == ("—", "nvidia.com/gpu:NoSchedule")
    assert fields["InstanceType"] == ("r5.2xlarge", "g4dn.xlarge")


def test_changed_instance_types_update_the_policy(
    with_pool: Callable, echoed: Callable, shipped_desired: DesiredState
):
    desired = with_pool("mem64", instance_types=("r5.2xlarge",))
    plan = make_plan(desired, echoed(shipped_desired))
    updates = [a for a in plan.actions if a.kind == "update-asg"]
    assert updates and all(
        set(a.params) == {"AutoScalingGroupName", "MixedInstancesPolicy"}
        for a in updates
    )
    assert "r6i.2xlarge" in updates[0].changes[0].old
    assert "r6i.2xlarge" not in updates[0].changes[0].new


def _observed_with_group(base: ObservedState, extra: ObservedAsg) -> ObservedState:
    return dataclasses.replace(base, asgs={**base.asgs, extra.name: extra})


def _stray(instances: int) -> ObservedAsg:
    name = "wbspawner-dev-old-a-spot"
    return observed_asg(
        name,
        max_size=3,
        desired_capacity=instances,
        instances=instances,
        subnets=("subnet-a",),
        capacity_rebalance=True,
        tags={"wbspawner.io/cluster": "dev"},
        launch_template=name,
    )


@pytest.mark.parametrize(
    "instances", [pytest.param(0, id="empty"), pytest.param(2, id="with-nodes")]
)
def test_groups_not_in_profiles_are_only_deleted_when_allowed(
    shipped_desired: DesiredState, echoed: Callable, instances
):
    observed = _observed_with_group(echoed(shipped_desired), _stray(instances))
    plan = make_plan(shipped_desired, observed)
    (action,) = plan.actions
    assert action.kind == "delete-asg"
    assert action.blocked is not None and "--allow-delete" in action.blocked
    assert ("has 2 node(s)" in action.blocked) == bool(instances)
    assert plan.is_empty
    allowed = make_plan(shipped_desired, observed, allow_delete=True)
    (action,) = allowed.actions
    assert action.blocked is None
    assert action.params == {
        "AutoScalingGroupName": "wbspawner-dev-old-a-spot",
        "ForceDelete": bool(instances),
    }


def test_templates_not_in_profiles_are_deleted_after_groups(
    echoed: Callable, shipped_desired: DesiredState
):
    base = echoed(shipped_desired)
    lt = dataclasses.replace(
        next(iter(base.launch_templates.values())), name="wbspawner-dev-old-a-spot"
    )
    observed = dataclasses.replace(
        _observed_with_group(echoed(shipped_desired), _stray(0)),
        launch_templates={**base.launch_templates, lt.name: lt},
    )
    plan = make_plan(shipped_desired, observed, allow_delete=True)
    assert _kinds(plan) == ["delete-asg", "delete-launch-template"]
    blocked = make_plan(shipped_desired, observed)
    assert all(a.blocked for a in blocked.actions)


def test_tags_owned_by_others_are_left_alone_and_stale_ones_removed(
    echoed: Callable, shipped_desired: DesiredState
):
    base = echoed(shipped_desired)
    name = shipped_desired.groups[0].asg.name
    seen = base.asgs[name]
    tags = dict(seen.tags)
    tags["team-budget"] = "geo"  # not ours
    tags["k8s.io/cluster-autoscaler/node-template/label/old"] = "x"  # ours, stale
    tags["wbspawner.io/pool"] = "wrong"
    observed = dataclasses.replace(
        base, asgs={**base.asgs, name: dataclasses.replace(seen, tags=tags)}
    )
    plan = make_plan(shipped_desired, observed)
    put = next(a for a in plan.actions if a.kind == "update-tags")
    delete = next(a for a in plan.actions if a.kind == "delete-tags")
    assert [
        (t["Key"], t["Value"], t["PropagateAtLaunch"]) for t in put.params["Tags"]
    ] == [("wbspawner.io/pool", shipped_desired.groups[0].pool, True)]
    assert [t["Key"] for t in delete.params["Tags"]] == [
        "k8s.io/cluster-autoscaler/node-template/label/old"
    ]
    assert "PropagateAtLaunch" not in delete.params["Tags"][0]


def test_propagation_flag_change_is_a_tag_update(
    echoed: Callable, shipped_desired: DesiredState
):
    base = echoed(shipped_desired)
    name = shipped_desired.groups[0].asg.name
    seen = base.asgs[name]
    observed = dataclasses.replace(
        base,
        asgs={
            **base.asgs,
            name: dataclasses.replace(seen, propagate_at_launch=frozenset()),
        },
    )
    plan = make_plan(shipped_desired, observed)
    assert {a.kind for a in plan.actions} == {"update-tags"}
    assert {t["Key"] for t in plan.actions[0].params["Tags"]} == set(
        seen.propagate_at_launch
    )


@pytest.mark.parametrize(
    ("observed", "desired", "same"),
    [
        pytest.param({"a": 1, "extra": 2}, {"a": 1}, True, id="extra-keys-ignored"),
        pytest.param({"a": 1}, {"a": 2}, False, id="value-differs"),
        pytest.param({"a": [1, 2]}, {"a": [1]}, False, id="list-length"),
        pytest.param(
            [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}],
            [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
            True,
            id="tags-any-order",
        ),
        pytest.param(
            [
                {"ResourceType": "volume", "Tags": []},
                {"ResourceType": "launch-template", "Tags": []},
            ],
            [{"ResourceType": "volume", "Tags": []}],
            True,
            id="tag-specs-by-type",
        ),
        pytest.param(
            [{"ResourceType": "instance", "Tags": []}],
            [{"ResourceType": "volume", "Tags": []}],
            False,
            id="tag-spec-missing",
        ),
        pytest.param(None, {"a": 1}, False, id="missing"),
    ],
)
def test_contains(observed, desired, same):
    assert contains(observed, desired) is same


def test_table_and_json_show_every_action(
    with_pool: Callable, echoed: Callable, shipped_desired: DesiredState
):
    desired = with_pool("mem64", max_nodes=12)
    observed = _observed_with_group(echoed(shipped_desired), _stray(1))
    plan = make_plan(desired, observed)
    text = plan_table(plan)
    assert (
        text.splitlines()[0] == f"Plan for cluster dev: {len(plan.runnable)} update-asg"
    )
    assert "MaxSize  10    12" in text
    assert "delete-asg (blocked)" in text and "pass --allow-delete" in text
    data = json.loads(json.dumps(plan_to_json(plan)))
    assert data["changes"] == len(plan.runnable) and data["blocked"] == 1
    assert {a["kind"] for a in data["actions"]} == {"update-asg", "delete-asg"}


def test_action_order_constant_matches_the_documented_order():
    assert ACTION_ORDER[0] == "create-launch-template"
    assert ACTION_ORDER.index("create-asg") > ACTION_ORDER.index("set-default-version")
    assert ACTION_ORDER[-2:] == ("delete-asg", "delete-launch-template")


def test_user_data_is_base64_of_the_node_config(shipped_desired: DesiredState):
    raw = base64.b64decode(
        shipped_desired.groups[0].launch_template.data["UserData"]
    ).decode()
    assert raw.startswith("MIME-Version: 1.0\n")
