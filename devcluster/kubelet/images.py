"""Image pulls on the kubelet: a delay per node and image, then cached on that node.

Nothing is downloaded: a pull takes ``image_pull_s`` simulated seconds (scaled by
``time_factor``) and is reported with the Events a real kubelet sends
(``Pulling``, ``Pulled``, or ``Pulled`` "already present on machine").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

from devcluster.config import ClusterConfig
from devcluster.kubelet.pod import PodRun


def repository(image: str) -> str:
    """Return an image reference without its tag or digest."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def image_user(users: Iterable[tuple[str, str]], image: str) -> str:
    """Return the ``USER`` of ``image`` from ``(repository, user)`` pairs, or ""."""
    wanted = repository(image)
    return next((user for repo, user in users if repo == wanted), "")


class Images:
    """The images pulled on every node, and the pulls themselves.

    Args:
        config: the pull delay (``image_pull_s``) and ``time_factor``.
    """

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._pulled: set[tuple[str, str]] = set()

    def cached(self, node: str, image: str) -> bool:
        """Tell whether ``image`` was pulled on ``node`` (and remember it now)."""
        key = (node, image)
        if key in self._pulled:
            return True
        self._pulled.add(key)
        return False

    async def pull(self, run: PodRun, pod: dict[str, Any]) -> bool:
        """Pull every image (a delay unless cached); False if the pod went away."""
        spec = pod["spec"]
        every = [("initContainers", c) for c in spec.get("initContainers") or []]
        every += [("containers", c) for c in spec.get("containers") or []]
        for section, container in every:
            image = container.get("image", "")
            path = f"spec.{section}{{{container['name']}}}"
            if self.cached(run.node, image):
                run.event(
                    pod,
                    "Pulled",
                    f'Container image "{image}" already present on machine',
                    "Normal",
                    path,
                )
                continue
            run.event(pod, "Pulling", f'Pulling image "{image}"', "Normal", path)
            began = time.monotonic()
            delay = self.config.real(self.config.image_pull_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.terminate.wait(), delay)
            if run.terminate.is_set():
                return False
            factor = self.config.time_factor or 1.0
            took = f"{(time.monotonic() - began) / factor:.3f}s"  # in simulated time
            run.event(
                pod,
                "Pulled",
                f'Successfully pulled image "{image}" in {took} ({took} '
                "including waiting). Image size: 123456789 bytes.",
                "Normal",
                path,
            )
        return True
