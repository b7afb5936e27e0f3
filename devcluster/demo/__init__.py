"""The local workbench: ``python -m devcluster.demo`` and the pieces tests reuse.

- ``workbench``: the whole stack as one object (slapd, devcluster, node groups,
  Dask Gateway, the hub).
- ``cli_env``: the ``wbspawner`` command pointed at it (the ``env`` file to
  ``source``), and ``wbspawner pools apply`` run that way for its node groups.
- ``node_groups``: node groups written straight into moto, for tests and the
  benchmark that run without devcluster's EKS account (the demo does not use it).
- ``gateway``: a real ``dask-gateway-server`` process for the hub.
"""
