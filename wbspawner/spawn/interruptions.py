"""Why the cluster is taking a server's node, read from the node's taints.

When AWS reclaims a spot instance (two minutes' notice), schedules maintenance,
or its Auto Scaling group scales in, aws-node-termination-handler (NTH) taints
the node before it drains it (``taintNode``). The taint says why; this module
turns it into what the user reads, in JupyterLab while the server stops and on
the hub's home page afterwards:

- :func:`interruption_of`: the :class:`Interruption` a node carries, if any;
- :func:`lab_message`: the notice in JupyterLab ("… reclaimed in about 2
  minutes."), counted from when the taint was added;
- :func:`home_message`: the line on the home page once the server is gone.

Karpenter and EKS Auto Mode drain without a reason on the node that says which
kind of interruption it was; their servers get the hook's own notice
(``wb_lab_notices.stopping``) and no reason on the home page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wbspawner.timestamps import parse_time

SPOT_RECLAIM = "spot-reclaim"
MAINTENANCE = "maintenance"
SCALE_IN = "scale-in"
SPOT_ITN_TAINT = "aws-node-termination-handler/spot-itn"
"""aws-node-termination-handler's taint on a node under a spot interruption notice."""
NTH_TAINTS = {
    SPOT_ITN_TAINT: SPOT_RECLAIM,
    "aws-node-termination-handler/scheduled-maintenance": MAINTENANCE,
    "aws-node-termination-handler/asg-lifecycle-termination": SCALE_IN,
}
"""aws-node-termination-handler's taints and what each means."""
SPOT_NOTICE_S = 120
"""How long before the instance goes AWS sends a spot interruption notice."""


@dataclass(frozen=True, slots=True)
class Interruption:
    """A node being taken away, and when its taint said so."""

    reason: str
    """:data:`SPOT_RECLAIM`, :data:`MAINTENANCE` or :data:`SCALE_IN`."""
    noticed: datetime | None
    """When the taint was added (``timeAdded``), if it says."""


def interruption_of(node: Mapping[str, Any] | None) -> Interruption | None:
    """Return the interruption a node's taints announce (the first one), if any."""
    taints = ((node or {}).get("spec") or {}).get("taints") or []
    for taint in taints:
        reason = NTH_TAINTS.get(str(taint.get("key", "")))
        if reason is not None:
            return Interruption(reason, parse_time(taint.get("timeAdded")))
    return None


def lab_message(interruption: Interruption, now: datetime) -> str:
    """Return the notice the user reads in JupyterLab while the server stops."""
    if interruption.reason == SPOT_RECLAIM:
        if interruption.noticed is None:
            return "This server's spot node will be reclaimed in about 2 minutes."
        left = SPOT_NOTICE_S - (now - interruption.noticed).total_seconds()
        if left <= 30:
            return "This server's spot node is being reclaimed now."
        minutes = max(1, math.ceil(left / 60))
        unit = "minute" if minutes == 1 else "minutes"
        return f"This server's spot node will be reclaimed in about {minutes} {unit}."
    if interruption.reason == MAINTENANCE:
        return "This server's node is going away for scheduled maintenance."
    return "This server's node is being removed from the cluster."


def home_message(interruption: Interruption) -> str:
    """Return what the hub's home page says about the stopped server."""
    why = {
        SPOT_RECLAIM: "AWS reclaimed its spot node",
        MAINTENANCE: "its node went away for scheduled maintenance",
        SCALE_IN: "its node was removed from the cluster",
    }[interruption.reason]
    return (
        f"Your server was stopped because {why}. Open documents were saved "
        "before it stopped; start it again to go on."
    )
