"""core/v1 Events as controllers and the kubelet record them.

``build_event`` makes a new Event about an object, named like client-go's
recorder names them (``<object name>.<hex nanoseconds>``, unique and increasing,
so names sort in time order); the store aggregates repeats into one Event.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from devcluster.apiserver.resources import RESOURCES
from devcluster.timestamps import now_iso

_last_stamp = [0]


def _event_stamp() -> int:
    """Return unique, increasing nanoseconds: event names sort in time order."""
    stamp = max(time.time_ns(), _last_stamp[0] + 1)
    _last_stamp[0] = stamp
    return stamp


def build_event(
    involved: dict[str, Any],
    reason: str,
    message: str,
    type_: str,
    source: str,
    host: str = "",
    field_path: str = "",
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return a new core/v1 Event about ``involved`` (not yet stored).

    ``annotations`` go on the Event itself (aws-node-termination-handler
    describes the instance there).
    """
    meta = involved.get("metadata") or {}
    res = next((r for r in RESOURCES.values() if r.kind == involved.get("kind")), None)
    stamp = now_iso()
    ref = {
        "kind": involved.get("kind", res.kind if res else ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "apiVersion": involved.get("apiVersion", res.api_version if res else "v1"),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return {
        "metadata": {
            "name": f"{meta.get('name', 'unknown')}.{_event_stamp():x}",
            "namespace": meta.get("namespace") or "default",
            **({"annotations": dict(annotations)} if annotations else {}),
        },
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": source, **({"host": host} if host else {})},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": None,
        "count": 1,
        "reportingComponent": source,
        "reportingInstance": host,
    }
