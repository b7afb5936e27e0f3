"""The local workbench: ``python -m devcluster.demo`` and the pieces tests reuse.

- ``workbench``: the whole stack as one object (slapd, devcluster, node groups,
  Dask Gateway, the hub).
- ``node_groups``: one moto Auto Scaling group per pool × zone × capacity type.
- ``gateway``: a real ``dask-gateway-server`` process for the hub.
"""
