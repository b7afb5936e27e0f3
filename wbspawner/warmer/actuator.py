"""The act half of the warmer's loop: placeholder pods that hold warm nodes.

This module owns turning a :class:`~wbspawner.warmer.policy.WarmPlan` into
placeholder pods, idempotently: one pod per warm node,
``warm-<pool>-<zone>-<capacity>-<n>``, priority class ``wbspawner-placeholder``
(−10, Cluster Autoscaler's expendable cutoff, so it still triggers a scale-up;
``preemptionPolicy: Never``), the pool's full-node request, selectors for pool,
zone and capacity type, the pool's tolerations, a pause container and
containers that pull the pool's user images. A user pod preempts it; the next
pass recreates it and the autoscaler starts a node for it. (The ``asg-min``
mode is :mod:`wbspawner.warmer.asgmin`.)

The pure part (:func:`placeholder_pod`, :func:`desired_pods`, :func:`diff`)
decides; the actuator only calls the adapter. One pool's failure is recorded
and the others carry on; a dry run decides without changing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from wbspawner.model import (
    CAPACITY_LABEL,
    LABEL_PREFIX,
    POOL_LABEL,
    ZONE_LABEL,
    Pool,
    Profiles,
)
from wbspawner.spawn.manifests import node_placement
from wbspawner.warmer.policy import WarmPlan
from wbspawner.warmer.snapshot import PLACEHOLDER, ROLE_LABEL

log = logging.getLogger(__name__)

PRIORITY_CLASS = "wbspawner-placeholder"
PLACEHOLDER_PRIORITY = -10  # CA's expendable cutoff: the lowest that scales up
HASH_ANNOTATION = f"{LABEL_PREFIX}/spec-hash"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
Verb = Literal["create", "delete", "set-min"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceholderSettings:
    """How placeholder pods are made."""

    namespace: str
    """Namespace of the user pods (and of the placeholders)."""
    image: str = PAUSE_IMAGE
    command: tuple[str, ...] = ()
    """Command of the pause container; empty: the image's own."""
    prepull: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Pool → user images to pull on its warm nodes."""
    prepull_command: tuple[str, ...] = ("sleep", "infinity")
    """Command of the image-pulling containers (they only need to keep running)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """One change: create or delete a placeholder, or set a group's MinSize."""

    verb: Verb
    pool: str
    name: str
    """Pod or group name."""
    detail: str = ""
    body: Mapping[str, Any] | None = None
    """The pod to create."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionError:
    """A failed change (or a failed listing, with ``pool`` ``*``)."""

    pool: str
    action: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """What one actuation decided and did."""

    planned: tuple[Action, ...] = ()
    done: tuple[Action, ...] = ()
    errors: tuple[ActionError, ...] = ()
    dry_run: bool = False


def placeholder_name(pool: str, zone: str, capacity: str, index: int) -> str:
    """Return a placeholder pod's name, ``warm-<pool>-<zone>-<capacity>-<n>``."""
    return f"warm-{pool}-{zone}-{capacity}-{index}"


def priority_class() -> dict[str, Any]:
    """Return the PriorityClass of placeholders (−10, never preempting)."""
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": PRIORITY_CLASS, "labels": {ROLE_LABEL: PLACEHOLDER}},
        "value": PLACEHOLDER_PRIORITY,
        "globalDefault": False,
        "preemptionPolicy": "Never",
        "description": "wbspawner warm-node placeholders: any user pod preempts "
        "them; Cluster Autoscaler still scales up for them.",
    }


def _containers(pool: Pool, settings: PlaceholderSettings) -> list[dict[str, Any]]:
    request = pool.request.as_k8s()
    pause: dict[str, Any] = {
        "name": "pause",
        "image": settings.image,
        "resources": {"requests": dict(request), "limits": dict(request)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if settings.command:
        pause["command"] = list(settings.command)
    # The user images first: the kubelet pulls one image after the other, and
    # a node is only really warm once the user's image is on it.
    pulls = [
        {
            "name": f"pull-{i}",
            "image": image,
            "command": list(settings.prepull_command),
            "securityContext": dict(pause["securityContext"]),
        }
        for i, image in enumerate(settings.prepull.get(pool.name, ()))
    ]
    return [*pulls, pause]


def placeholder_pod(
    pool: Pool, zone: str, capacity: str, index: int, settings: PlaceholderSettings
) -> dict[str, Any]:
    """Return one placeholder pod holding a whole node of a pool in a zone.

    Args:
        pool: the pool.
        zone: the zone.
        capacity: ``spot`` or ``on-demand`` (selected on the node's label).
        index: its number within the pool × zone × capacity type.
        settings: image, command, namespace, images to pre-pull.

    Returns:
        The Pod, with a hash of its spec in an annotation.
    """
    placement = node_placement(pool, zone)
    selector = {**placement["node_selector"], CAPACITY_LABEL: capacity}
    spec: dict[str, Any] = {
        "priorityClassName": PRIORITY_CLASS,
        "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": selector,
        "tolerations": placement["tolerations"],
        "containers": _containers(pool, settings),
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65535},
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": placeholder_name(pool.name, zone, capacity, index),
            "namespace": settings.namespace,
            "labels": {
                ROLE_LABEL: PLACEHOLDER,
                POOL_LABEL: pool.name,
                ZONE_LABEL: zone,
                CAPACITY_LABEL: capacity,
            },
            "annotations": {HASH_ANNOTATION: digest[:16]},
        },
        "spec": spec,
    }


def prepull_images(profiles: Profiles) -> dict[str, tuple[str, ...]]:
    """Return pool → the default images of its sizes, to pull on warm nodes.

    Args:
        profiles: the profiles.

    Returns:
        Images per pool, without repeats, in size order.
    """
    out: dict[str, tuple[str, ...]] = {}
    for size in profiles.sizes:
        image = next((i.image for i in size.images if i.default), None)
        image = image or (size.images[0].image if size.images else None)
        if image and image not in out.get(size.pool, ()):
            out[size.pool] = out.get(size.pool, ()) + (image,)
    return out


def desired_pods(
    plan: WarmPlan, pools: Mapping[str, Pool], settings: PlaceholderSettings
) -> dict[str, dict[str, Any]]:
    """Return the placeholder pods a plan wants, by name (none in ``asg-min`` mode).

    Args:
        plan: the plan.
        pools: the pools by name.
        settings: how placeholders are made.

    Returns:
        Pods by name.
    """
    if plan.mode != "placeholders":
        return {}
    out: dict[str, dict[str, Any]] = {}
    for t in plan.targets:
        for i in range(t.count):
            pod = placeholder_pod(pools[t.pool], t.zone, t.capacity_type, i, settings)
            out[pod["metadata"]["name"]] = pod
    return out


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def diff(
    desired: Mapping[str, Mapping[str, Any]], existing: Sequence[Mapping[str, Any]]
) -> list[Action]:
    """Return the changes from existing placeholders to the desired ones.

    A missing pod is created; an unwanted one is deleted; one whose spec hash
    changed is deleted (the next pass creates it anew, as the name is taken
    until it is gone); a pod already being deleted is left alone.

    Args:
        desired: desired pods by name.
        existing: placeholder pods found.

    Returns:
        Deletions first, then creations, each sorted by name.
    """
    found = {_name(p): p for p in existing}
    deletes: list[Action] = []
    creates: list[Action] = []
    for name, pod in sorted(found.items()):
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        pool = str(labels.get(POOL_LABEL, "?"))
        if meta.get("deletionTimestamp"):
            continue
        want = desired.get(name)
        if want is None:
            deletes.append(
                Action(verb="delete", pool=pool, name=name, detail="unwanted")
            )
            continue
        have = (meta.get("annotations") or {}).get(HASH_ANNOTATION)
        if have != want["metadata"]["annotations"][HASH_ANNOTATION]:
            deletes.append(
                Action(verb="delete", pool=pool, name=name, detail="spec changed")
            )
    for name, pod in sorted(desired.items()):
        if name not in found:
            pool = str(pod["metadata"]["labels"][POOL_LABEL])
            creates.append(Action(verb="create", pool=pool, name=name, body=pod))
    return deletes + creates


class KubeWriter(Protocol):
    """What the placeholder actuator needs from Kubernetes."""

    async def list_pods(
        self, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """List pods of a namespace by label selector."""
        ...

    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a pod."""
        ...

    async def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a pod at once."""
        ...

    async def ensure_priority_class(self, body: dict[str, Any]) -> bool:
        """Create a PriorityClass unless it exists."""
        ...


def _message(err: Exception) -> str:
    return str(getattr(err, "message", None) or f"{type(err).__name__}: {err}")


async def run_by_pool(
    actions: Sequence[Action], run: Any, dry_run: bool
) -> tuple[list[Action], list[ActionError]]:
    """Run actions pool by pool; a pool's first failure stops only that pool.

    Args:
        actions: the changes, in order.
        run: coroutine function that makes one change.
        dry_run: make none, report all as done.

    Returns:
        The changes made and the failures.
    """
    done: list[Action] = []
    errors: list[ActionError] = []
    failed: set[str] = set()
    for action in actions:
        if action.pool in failed:
            continue
        if dry_run:
            done.append(action)
            continue
        try:
            await run(action)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # recorded; the other pools carry on
            failed.add(action.pool)
            message = _message(err)
            log.warning("warmer: %s %s failed: %s", action.verb, action.name, message)
            errors.append(
                ActionError(
                    pool=action.pool,
                    action=f"{action.verb} {action.name}",
                    message=str(message),
                )
            )
            continue
        log.info("warmer: %s %s %s", action.verb, action.name, action.detail)
        done.append(action)
    return done, errors


class PlaceholderActuator:
    """Keeps the placeholder pods equal to the plan.

    Args:
        kube: the Kubernetes adapter.
        settings: how placeholders are made.
    """

    def __init__(self, kube: KubeWriter, settings: PlaceholderSettings) -> None:
        self.kube = kube
        self.settings = settings
        self._priority_class_ok = False

    async def apply(
        self, plan: WarmPlan, pools: Mapping[str, Pool], *, dry_run: bool = False
    ) -> ApplyResult:
        """Create and delete placeholders so that they match the plan.

        Args:
            plan: the plan (``asg-min`` mode: every placeholder goes).
            pools: the pools by name.
            dry_run: decide, log and report, but change nothing.

        Returns:
            What was planned, done and what failed.
        """
        ns = self.settings.namespace
        errors: list[ActionError] = []
        try:
            if not dry_run and not self._priority_class_ok:
                await self.kube.ensure_priority_class(priority_class())
                self._priority_class_ok = True
            existing = await self.kube.list_pods(ns, f"{ROLE_LABEL}={PLACEHOLDER}")
        except asyncio.CancelledError:
            raise
        except Exception as err:
            message = _message(err)
            log.warning("warmer: cannot read placeholders: %s", message)
            errors.append(ActionError(pool="*", action="list", message=str(message)))
            return ApplyResult(errors=tuple(errors), dry_run=dry_run)
        actions = diff(desired_pods(plan, pools, self.settings), existing)

        async def run(action: Action) -> None:
            if action.verb == "create":
                assert action.body is not None
                await self.kube.create_pod(ns, dict(action.body))
            else:
                await self.kube.delete_pod(ns, action.name)

        done, failures = await run_by_pool(actions, run, dry_run)
        return ApplyResult(
            planned=tuple(actions),
            done=tuple(done),
            errors=tuple(errors + failures),
            dry_run=dry_run,
        )
