"""Cluster Autoscaler over moto Auto Scaling groups.

- ``decisions``: which group grows and which node goes (pure).
- ``asg``: the groups as CA's AWS provider reads them, and the boto3 adapter.
- ``loop``: the autoscaler loop (nodes join and leave, scale-up and scale-down,
  spot capacity that cannot be had).
"""
