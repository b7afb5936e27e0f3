"""Users' homes on single-AZ EBS volumes: where a home lives and how it moves.

An EBS volume lives in one availability zone and a bound PersistentVolume pins
every pod that uses it to that zone. This package keeps that invisible to users
and safe for their data:

- :mod:`~wbspawner.homes.policy`: pure decisions: the zone of a new home, the
  zone of an existing one (read from its PV), whether to offer a move, and the
  user's message when the home's zone has no capacity.
- :mod:`~wbspawner.homes.records`: the data the move works on (volumes,
  snapshots, annotation and tag keys), the adapter protocols, the EC2 calls in
  worker threads, bounded waits.
- :mod:`~wbspawner.homes.objects`: pure builders of the static PV, the rebound
  claim and the tags of a move.
- :mod:`~wbspawner.homes.move`: moving a home to another zone as an idempotent,
  resumable state machine that never deletes the old volume (async, so that it
  can run in the hub's event loop as well as in the command line's).
- :mod:`~wbspawner.homes.gc`: deleting old volumes and snapshots after their
  retention, once the new home is bound.
- :mod:`~wbspawner.homes.volumes`: EBS volumes and snapshots, through
  :mod:`wbspawner.adapters.aws` (botocore's retries, errors as advice; no policy).
  Kubernetes is reached through :mod:`wbspawner.adapters.kube`.

The admin command line is :mod:`wbspawner.cli.home`.
"""

from __future__ import annotations

from wbspawner.errors import WbError


class HomeError(WbError):
    """A home operation cannot be done as asked; ``message`` is for an admin."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MoveRefusedError(HomeError):
    """A move was refused before anything changed (server running, no home …)."""


class MoveFailedError(HomeError):
    """A step of a move failed; the user's claim still points at an intact volume.

    Attributes:
        step: the step that failed (see :data:`wbspawner.homes.move.STEPS`).
    """

    def __init__(self, message: str, *, step: str) -> None:
        super().__init__(message)
        self.step = step


__all__ = [
    "HomeError",
    "MoveFailedError",
    "MoveRefusedError",
]
