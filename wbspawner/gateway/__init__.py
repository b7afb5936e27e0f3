"""Dask Gateway for the workbench: options, limits, reaper, configuration, front.

This package runs inside ``dask-gateway-server`` (loaded from its config file or
the Helm chart's ``extraConfig``) and tells the hub how to wire the gateway in;
its dashboards front runs as a process of its own, in front of the gateway:

- :mod:`~wbspawner.gateway.options`: pure; worker sizes, limits and the
  per-user ``Options`` with their handler.
- :mod:`~wbspawner.gateway.workers`: pure; a worker's share of a node (its
  request and its part of the node's price).
- :mod:`~wbspawner.gateway.pods`: pure; Kubernetes pod pieces of Dask pods.
- :mod:`~wbspawner.gateway.limits`: the user's running clusters, as the
  gateway's backend knows them, for the limit check.
- :mod:`~wbspawner.gateway.reaper`: which clusters to stop because their
  user's server stopped (pure), and the loop that stops them.
- :mod:`~wbspawner.gateway.backends`: the backends wbspawner runs (options,
  limits, accounting and the reaper inside the gateway).
- :mod:`~wbspawner.gateway.netpol` (pure) and
  :mod:`~wbspawner.gateway.netpol_kube`: each user's Dask network policies,
  written by the hub's spawner.
- :mod:`~wbspawner.gateway.config`: ``configure(c, settings, profiles)`` for
  ``dask_gateway_config.py``.
- :mod:`~wbspawner.gateway.front_policy` (pure), :mod:`~wbspawner.gateway.
  front_web` and :mod:`~wbspawner.gateway.front`: the hub's ``dask-gateway``
  service, which passes the gateway's API through and shows a cluster's
  dashboard to its owner and hub admins only.
- :mod:`~wbspawner.hub.gateway_service`: pure; the hub's service, roles, token scopes
  and notebook environment.

It imports pure wbspawner modules, the adapters (the hub API, Kubernetes, the
gateway's HTTP) and ``dask_gateway_server``, never KubeSpawner; only the front's
two modules import JupyterHub (its service auth), and the gateway never loads
them. Importing it starts nothing.
"""

from __future__ import annotations
