"""The culler: an admin hub service that stops idle servers, after a warning.

It replaces the chart's jupyterhub-idle-culler (one timeout, no warning, the
hub's activity only):

- :mod:`~wbspawner.culler.policy`: the pure rules (per-size timeouts, the
  warning before the stop, busy kernels as use until a maximum age);
- :mod:`~wbspawner.culler.app`: the service, a loop around the policy that
  reads the hub API and each server's kernels, sends the warning notice, stops
  the server and records the cull in the accounting;
- :mod:`~wbspawner.hub.culler_service`: its JupyterHub service entry and role.

Importing the package has no side effects.
"""

from __future__ import annotations
