"""Image pulls on the kubelet: a delay per node and image, then cached on that node.

Nothing is downloaded: a pull takes ``image_pull_s`` simulated seconds (scaled by
``time_factor``) and is reported with the Events a real kubelet sends
(``Pulling``, ``Pulled``, or ``Pulled`` "already present on machine").

With an image mapping (``ClusterConfig.image_environments``) an image "exists"
when it maps to a built local environment (``devcluster.services.image_envs``);
``environment`` tells which one a container runs in. An image the mapping lacks,
or whose environment is not built, fails to pull as a missing image does:
``Failed`` Events (``Failed to pull image …``, ``Error: ErrImagePull``), and
``pull`` returns a ``PullError`` the pod worker reports as the container's
``ErrImagePull`` and then ``ImagePullBackOff``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcluster.config import ClusterConfig
from devcluster.kubelet.pod import PodRun
from devcluster.services.image_envs import Environments, ImageEnvironment


@dataclass(frozen=True)
class PullError:
    """An image that cannot be pulled: which container, which image, why."""

    container: str
    image: str
    message: str


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


def image_env(variables: Iterable[tuple[str, str]], image: str) -> dict[str, str]:
    """Return the ``ENV`` of ``image`` from ``(repository, NAME=VALUE)`` pairs."""
    wanted = repository(image)
    env = {}
    for repo, item in variables:
        name, equals, value = item.partition("=")
        if repo == wanted and equals:
            env[name] = value
    return env


class Images:
    """The images pulled on every node, and the pulls themselves.

    Args:
        config: the pull delay (``image_pull_s``) and ``time_factor``.
    """

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._pulled: set[tuple[str, str]] = set()
        self.environments = (
            Environments(Path(config.image_environments))
            if config.image_environments
            else None
        )

    def environment(self, image: str) -> ImageEnvironment | None:
        """Return the local environment of ``image`` (None without a mapping)."""
        if self.environments is None:
            return None
        return self.environments.lookup(image)

    def _missing(self, image: str) -> str | None:
        """Why ``image`` cannot be pulled (None when it can)."""
        if self.environments is None:
            return None
        env = self.environments.lookup(image)
        if env is None:
            return (
                f"devcluster has no local environment for {image} "
                f"({self.environments.mapping_file.name} does not map it)"
            )
        if not env.built:
            return (
                f"the local environment {env.name} of {image} is not built "
                "(make image-envs)"
            )
        return None

    def cached(self, node: str, image: str) -> bool:
        """Tell whether ``image`` was pulled on ``node`` (and remember it now)."""
        key = (node, image)
        if key in self._pulled:
            return True
        self._pulled.add(key)
        return False

    async def pull(self, run: PodRun, pod: dict[str, Any]) -> bool | PullError:
        """Pull every image (a delay unless cached).

        Returns:
            True when all are there, False if the pod went away, a
            ``PullError`` for the first image that cannot be pulled.
        """
        spec = pod["spec"]
        every = [("initContainers", c) for c in spec.get("initContainers") or []]
        every += [("containers", c) for c in spec.get("containers") or []]
        for section, container in every:
            image = container.get("image", "")
            path = f"spec.{section}{{{container['name']}}}"
            missing = self._missing(image)
            if missing is not None:
                run.event(pod, "Pulling", f'Pulling image "{image}"', "Normal", path)
                message = f'Failed to pull image "{image}": {missing}'
                run.event(pod, "Failed", message, "Warning", path)
                run.event(pod, "Failed", "Error: ErrImagePull", "Warning", path)
                return PullError(container["name"], image, message)
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
