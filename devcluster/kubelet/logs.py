"""Container logs as ``GET pods/{name}/log`` serves them.

Each container's output goes to a file the kubelet keeps while the pod runs; a
read picks the container (required when the pod has several), then applies
``tailLines`` and ``limitBytes``. Errors are worded like the apiserver's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devcluster.errors import ApiError


async def read_log(
    name: str,
    pod: dict[str, Any],
    log_paths: Mapping[str, Path],
    query: Mapping[str, str],
) -> str:
    """Return a container's log (``container``, ``tailLines``, ``limitBytes``).

    Args:
        name: the pod's name.
        pod: the pod.
        log_paths: the log file of each started container.
        query: the request's query parameters.

    Raises:
        ApiError: 400 when the container has not started or is ambiguous.
    """
    names = [c["name"] for c in pod["spec"].get("containers") or []]
    container = query.get("container") or ""
    if not container:
        if len(names) != 1:
            raise ApiError(
                400,
                "BadRequest",
                f"a container name must be specified "
                f"for pod {name}, choose one of: [{' '.join(names)}]",
            )
        container = names[0]
    if container not in names:
        raise ApiError(
            400, "BadRequest", f"container {container} is not valid for pod {name}"
        )
    path = log_paths.get(container)
    if path is None or not path.exists():
        raise ApiError(
            400,
            "BadRequest",
            f'container "{container}" in pod "{name}" is '
            "waiting to start: ContainerCreating",
        )
    data = await asyncio.to_thread(path.read_bytes)
    text = data.decode(errors="replace")
    tail = query.get("tailLines")
    if tail not in (None, ""):
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-int(tail) :]) if int(tail) > 0 else ""
    limit = query.get("limitBytes")
    if limit not in (None, ""):
        text = text.encode()[: int(limit)].decode(errors="ignore")
    return text
