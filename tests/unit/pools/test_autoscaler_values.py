"""Cluster Autoscaler values: the committed file, priorities, flags and reasons."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import yaml

from tests.paths import REPO
from wbspawner.model import Catalog, Profiles
from wbspawner.naming import group_regex
from wbspawner.pools.autoscaler_values import (
    FLAGS,
    METADATA_CIDR,
    autoscaler_values,
    expander_priorities,
    pod_hardening,
    render_values,
)
from wbspawner.pools.desired import desired_state

COMMITTED = REPO / "helm-values" / "cluster-autoscaler.yaml"


def test_committed_values_equal_a_fresh_render(profiles: Profiles):
    """Regenerate with ``wbspawner pools render --format autoscaler --output …``."""
    assert COMMITTED.read_text(encoding="utf-8") == render_values(
        profiles, "wbspawner", "1.33"
    )


def test_rendered_text_is_the_values_data(profiles: Profiles):
    text = render_values(profiles, "prod", "1.31")
    assert yaml.safe_load(text) == autoscaler_values(profiles, "prod", "1.31")


def test_values_essentials(profiles: Profiles):
    v = autoscaler_values(profiles, "prod", "1.33")
    assert v["cloudProvider"] == "aws"
    assert v["awsRegion"] == profiles.cost.region
    assert v["autoDiscovery"]["clusterName"] == "prod"
    assert v["image"]["tag"] == "v1.33.0"
    args = v["extraArgs"]
    assert args["expander"] == "priority"
    assert args["expendable-pods-priority-cutoff"] == -10
    assert args["balance-similar-node-groups"] is False
    assert args["skip-nodes-with-local-storage"] is False
    for flag in (
        "scale-down-unneeded-time",
        "scale-down-delay-after-add",
        "max-node-provision-time",
    ):
        assert re.fullmatch(r"\d+m", args[flag])


def test_values_lock_the_pod_down(profiles: Profiles):
    v = autoscaler_values(profiles, "prod", "1.33")
    assert {k: v[k] for k in pod_hardening()} == pod_hardening()
    assert v["securityContext"]["runAsUser"] >= 10000
    assert v["containerSecurityContext"]["readOnlyRootFilesystem"] is True
    (policy,) = v["extraObjects"]
    assert policy["kind"] == "NetworkPolicy" and policy["spec"]["ingress"] == []
    to_pods, to_addresses = policy["spec"]["egress"]
    assert to_pods["to"] == [{"namespaceSelector": {}}]
    assert to_addresses["to"][0]["ipBlock"]["except"] == [METADATA_CIDR]


def test_every_hardening_setting_has_a_written_reason_above_it(profiles: Profiles):
    lines = render_values(profiles, "prod").splitlines()
    for key in pod_hardening():
        i = lines.index(f"{key}:")
        assert lines[i - 1].startswith("# "), key


def test_every_flag_has_a_written_reason_above_it(profiles: Profiles):
    lines = render_values(profiles, "prod").splitlines()
    for flag, _, reason in FLAGS:
        i = next(n for n, line in enumerate(lines) if line.startswith(f"  {flag}:"))
        assert lines[i - 1].startswith("  # ")
        comment = []
        j = i - 1
        while lines[j].startswith("  # "):
            comment.insert(0, lines[j][4:])
            j -= 1
        assert " ".join(comment) == reason
        assert len(reason) > 40


def test_priorities_follow_each_pools_capacity_order(profiles: Profiles):
    prio = expander_priorities(profiles, "prod")
    assert list(prio) == sorted(prio, reverse=True)
    for pool in profiles.pools.values():
        ranks = [
            next(p for p, rx in prio.items() if group_regex("prod", pool.name, c) in rx)
            for c in pool.capacity_types
        ]
        assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == len(ranks)
    # The example's 512 GiB pool prefers on-demand.
    assert group_regex("prod", "mem512", "on-demand") in prio[max(prio)]


def test_each_group_matches_exactly_its_own_regex(
    profiles: Profiles, catalog: Catalog, cluster_spec: Callable
):
    desired = desired_state(
        profiles, catalog, cluster_spec(profiles, catalog, name="prod")
    )
    regexes = [
        (r, p) for p, rs in expander_priorities(profiles, "prod").items() for r in rs
    ]
    for g in desired.groups:
        matched = [r for r, _ in regexes if re.search(r, g.asg.name)]
        assert matched == [group_regex("prod", g.pool, g.capacity)], g.asg.name


def test_pool_names_that_prefix_each_other_do_not_collide(profiles: Profiles):
    pools = dict(profiles.pools)
    pools["gpu"] = dataclasses.replace(
        pools["gpu-t4"], name="gpu", capacity_types=("on-demand", "spot")
    )
    profiles = dataclasses.replace(profiles, pools=pools)
    regex = group_regex("prod", "gpu", "on-demand")
    assert not re.search(regex, "wbspawner-prod-gpu-t4-a-ondemand")
    assert re.search(regex, "wbspawner-prod-gpu-a-ondemand")
    assert regex in expander_priorities(profiles, "prod")[20]
