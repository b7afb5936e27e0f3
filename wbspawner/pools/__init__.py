"""Node pools on AWS: launch templates and Auto Scaling groups from the profiles.

This package owns everything that turns the profiles' pools into EC2 objects and
into the settings of the tools that scale them:

- :mod:`~wbspawner.pools.desired`: the pure desired state, one launch template and
  one Auto Scaling group per pool × zone × capacity type.
- :mod:`~wbspawner.pools.plan`: the pure diff of desired against observed state, as
  an ordered list of actions with a table and a JSON rendering.
- :mod:`~wbspawner.pools.subnets`: the pure check that each zone's subnets have the
  addresses the pools may need.
- :mod:`~wbspawner.pools.nodes`: names, labels, taints and tags of a pool's nodes.
- :mod:`~wbspawner.pools.observed`: what exists on AWS, and how it is compared.
- :mod:`~wbspawner.pools.aws` and :mod:`~wbspawner.pools.aws_cluster`: thin
  typed AWS wrappers (observe and act; EKS facts and AMI ids) that call through
  :mod:`wbspawner.adapters.aws` (clients, botocore's retries, errors as advice).
- :mod:`~wbspawner.pools.apply`: runs a plan's actions in order, idempotently;
  :mod:`~wbspawner.pools.report` prints plans and outcomes.
- :mod:`~wbspawner.pools.autoscaler_values` and :mod:`~wbspawner.pools.render`:
  Cluster Autoscaler helm values, eksctl and Karpenter manifests from the same pools.

Nothing here is imported by the hub at spawn time; the admin CLI drives it.
"""

from __future__ import annotations

from wbspawner.errors import WbError


class PoolsError(WbError):
    """The pools cannot be built or applied as asked; ``message`` is for an admin."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


__all__ = ["PoolsError"]
