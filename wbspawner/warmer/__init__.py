"""The warmer: an admin hub service that keeps nodes warm per pool and zone.

Homes pin users to an availability zone, so warm capacity is kept per pool ×
zone, as low-priority placeholder pods with a pool's full-node request that the
autoscaler starts nodes for and that a user's pod preempts (or, in the
``asg-min`` mode, as a raised Auto Scaling group minimum).

The package is split like the idle-culler should have been:

- :mod:`~wbspawner.warmer.snapshot`: what was observed (dataclasses, pure
  parsing of Kubernetes objects, the observer);
- :mod:`~wbspawner.warmer.policy`: the pure decision ``plan(...) -> WarmPlan``;
- :mod:`~wbspawner.warmer.actuator`: placeholder pods and ASG minimums;
- :mod:`~wbspawner.warmer.report`: status, readiness, metrics and plots (pure);
- :mod:`~wbspawner.warmer.app` and :mod:`~wbspawner.warmer.web`: the service;
- :mod:`~wbspawner.hub.warmer_service`: its JupyterHub service entry and roles.

Kubernetes and the hub API are reached through :mod:`wbspawner.adapters.kube`
and :mod:`wbspawner.adapters.hubapi`. Importing the package has no side effects.
"""

from __future__ import annotations
