"""Builders for the node pool tests.

- ``observed_asg(name, **fields)``: an :class:`~wbspawner.pools.observed.ObservedAsg`
  as AWS would report an empty group of that name with no policy, tags or
  subnets (0 to 1 nodes, none running); ``fields`` replace any of that.
"""

from __future__ import annotations

from typing import Any

from wbspawner.pools.observed import ObservedAsg


def observed_asg(name: str, **fields: Any) -> ObservedAsg:
    values: dict[str, Any] = {
        "min_size": 0,
        "max_size": 1,
        "desired_capacity": 0,
        "instances": 0,
        "subnets": (),
        "mixed_instances_policy": None,
        "capacity_rebalance": False,
        "tags": {},
        "propagate_at_launch": frozenset(),
    }
    return ObservedAsg(name=name, **{**values, **fields})
