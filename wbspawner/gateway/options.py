"""Dask Gateway cluster options derived from the profiles.

This module owns what a notebook user may ask the gateway for and what that
turns into: the worker sizes their groups may use (each worker a share of a
pool's node, :mod:`~wbspawner.gateway.workers`) and the per-user
:class:`dask_gateway_server.options.Options` whose handler checks the new cluster
against the user's limits (:mod:`~wbspawner.gateway.limits`, re-exported here)
and returns its configuration (for Kubernetes with the pod pieces of
:mod:`~wbspawner.gateway.pods`).

Pure: no I/O; reads frozen profiles, returns new dicts. Expected failures raise
:class:`~wbspawner.errors.UserFacingError`; the gateway turns ``str(exc)`` into
the HTTP 422 reason the client shows, which is the user message.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dask_gateway_server.options import Integer, Options, Select, String

from wbspawner.errors import UserFacingError
from wbspawner.gateway import pods
from wbspawner.gateway.limits import (
    ENV_GPUS,
    ClusterUsage,
    check_limits,
    default_workers,
    limits_for,
    max_workers_bounds,
    usage_from_config,
    worker_usage,
)
from wbspawner.gateway.workers import worker_resources
from wbspawner.model import DaskLimits, DaskWorkerSize, Profiles, Resources
from wbspawner.profiles import access
from wbspawner.profiles.data_access import access_for

BackendKind = Literal["local", "kube"]
"""``local``: UnsafeLocalBackend processes; ``kube``: KubeBackend pods."""

ENV_SIZE = "WBSPAWNER_DASK_WORKER_SIZE"
ENV_POOL = "WBSPAWNER_DASK_POOL"
ENV_USER = "WBSPAWNER_USER"
_MIB = 2**20


class GatewayUser(Protocol):
    """What the gateway knows about a user (``dask_gateway_server.models.User``)."""

    name: str
    groups: Collection[str]
    admin: bool


def is_admin(profiles: Profiles, user: GatewayUser) -> bool:
    """Return whether the user is a hub admin or in an admin group.

    Args:
        profiles: the profiles.
        user: the gateway user (groups come from the hub).

    Returns:
        Whether admin rules apply.
    """
    return bool(user.admin) or access.is_admin_member(profiles, user.groups)


def worker_sizes_for(
    profiles: Profiles, groups: Collection[str], is_admin: bool
) -> tuple[DaskWorkerSize, ...]:
    """Return the worker sizes a user may pick, in the profiles' order.

    Args:
        profiles: the profiles.
        groups: the user's groups.
        is_admin: whether the user is an admin (admins may use every size).

    Returns:
        The sizes; empty when the user may not log in.
    """
    if not access.may_log_in(profiles, groups, is_admin):
        return ()
    return tuple(
        w
        for w in profiles.dask.worker_sizes
        if access.allowed(w.allowed_groups, groups, is_admin)
    )


def threads_for(resources: Resources) -> int:
    """Return the Dask threads of a worker: its cores, rounded, at least one.

    Args:
        resources: the worker's request.

    Returns:
        ``--nthreads`` of the worker.
    """
    return max(1, (resources.cpu_m + 500) // 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionsContext:
    """Everything besides the profiles that a user's options depend on."""

    backend: BackendKind = "kube"
    """Which backend the handler writes configuration for."""
    existing: tuple[ClusterUsage, ...] = ()
    """The user's pending and running clusters."""
    default_image: str | None = None
    """Image when the client sends none; ``None``: the user's default image."""


def default_image_for(profiles: Profiles, groups: Collection[str], admin: bool) -> str:
    """Return the image of the user's default server size and default image choice.

    Args:
        profiles: the profiles.
        groups: the user's groups.
        admin: whether admin rules apply.

    Returns:
        The image reference, or ``""`` when the user may use no size.
    """
    size = access.default_size(access.visible_sizes(profiles, groups, admin))
    if size is None:
        return ""
    image = access.default_image(access.visible_images(size, groups, admin))
    return image.image if image else ""


def allowed_images(
    profiles: Profiles, groups: Collection[str], admin: bool
) -> tuple[str, ...]:
    """Return the images a user may run workers with: those of their server sizes.

    Args:
        profiles: the profiles.
        groups: the user's groups.
        admin: whether admin rules apply.

    Returns:
        Image references, without duplicates, in profiles order.
    """
    found: dict[str, None] = {}
    for size in access.visible_sizes(profiles, groups, admin):
        for image in access.visible_images(size, groups, admin):
            found.setdefault(image.image)
    return tuple(found)


class _WorkerSizeSelect(Select):  # type: ignore[misc,unused-ignore]
    """A ``Select`` that explains why a known size is refused to this user."""

    def __init__(self, *args: Any, refused: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # validates the default: no refusals yet
        self.refused = dict(refused)

    def validate(self, x: Any) -> Any:
        if isinstance(x, str) and x in getattr(self, "refused", {}):
            raise UserFacingError(self.refused[x], reason="dask-size", status_code=422)
        if isinstance(x, str) and x not in self.options:
            raise UserFacingError(
                f"Unknown worker size {x!r}; choose one of: {', '.join(self.options)}.",
                reason="dask-size",
                status_code=422,
            )
        return super().validate(x)


class _WorkersField(Integer):  # type: ignore[misc,unused-ignore]
    """``max_workers``, whose default depends on the chosen worker size.

    A request that leaves the field out gets the share of the user's limits of
    the size it asks for (:func:`~wbspawner.gateway.limits.default_workers`),
    resolved by the handler. Clients are shown the share of the default size;
    a client that sends every field (an ``Options`` object) sends that number
    as its own choice, which the limit check treats like any other.
    """

    def get_default(self) -> Any:
        # Only a request without the field asks for its default: mark it so the
        # handler can pick the default of the requested worker size.
        return None

    def validate(self, x: Any) -> Any:
        return None if x is None else super().validate(x)


def _refusals(
    profiles: Profiles, user: GatewayUser, sizes: Sequence[DaskWorkerSize]
) -> dict[str, str]:
    offered = ", ".join(s.name for s in sizes) or "none"
    groups = ", ".join(sorted(user.groups)) or "no groups"
    refused = [w for w in profiles.dask.worker_sizes if w not in sizes]
    if not sizes:
        needed = ", ".join((*profiles.user_groups, *profiles.admin_groups))
        text = (
            f"Your account ({groups}) may not start Dask clusters here: that "
            f"needs membership in one of {needed}. Ask an admin to add you."
        )
        return {w.name: text for w in refused}
    return {
        w.name: (
            f"Worker size '{w.name}' is not available to your groups ({groups}). "
            f"It needs membership in {' or '.join(w.allowed_groups)}; ask an admin "
            f"to add you. Worker sizes you may use: {offered}."
        )
        for w in refused
    }


def cluster_options_for(
    profiles: Profiles, user: GatewayUser, context: OptionsContext | None = None
) -> Options:
    """Return the cluster options one user sees, with the handler that applies them.

    Fields: ``worker_size`` (a known size the user may not use is refused with
    the group it needs), ``max_workers`` (the cluster's scale cap, bounded by
    the per-cluster cap and the user's worker limit; left out, the worker
    size's share of the user's limits) and ``image`` (notebooks send theirs
    through ``DASK_GATEWAY__CLUSTER__OPTIONS__IMAGE``).

    Args:
        profiles: the profiles in force.
        user: the gateway user (name, hub groups, admin flag).
        context: backend, the user's running clusters and the default image.

    Returns:
        Options whose handler returns ``ClusterConfig`` overrides, or raises
        :class:`UserFacingError` (size refused, image refused, limit exceeded).
    """
    ctx = context or OptionsContext()
    admin = is_admin(profiles, user)
    sizes = worker_sizes_for(profiles, user.groups, admin)
    limits = limits_for(profiles, user.name, user.groups)
    max_workers = max_workers_bounds(limits, profiles.dask.max_workers_per_cluster)[1]
    image = ctx.default_image or default_image_for(profiles, user.groups, admin)
    offered = sizes or profiles.dask.worker_sizes
    if not offered:
        return Options(handler=_no_dask)
    shares = {
        s.name: _default_workers(profiles, s, limits, ctx.backend) for s in offered
    }
    names = [s.name for s in offered]
    default = profiles.dask.default_worker_size
    default = default if default in names else names[0]
    fields = (
        _WorkerSizeSelect(
            "worker_size",
            names,
            default=default,
            label="Worker size",
            refused=_refusals(profiles, user, sizes),
        ),
        _WorkersField(
            "max_workers",
            default=shares[default],
            min=1,
            max=max_workers,
            label="Maximum workers",
        ),
        String("image", default=image, label="Image"),
    )
    images = allowed_images(profiles, user.groups, admin)

    def handler(options: Any, user: GatewayUser) -> dict[str, Any]:
        size = next(s for s in offered if s.name == options.worker_size)
        chosen = options.image or image  # an empty image means the default
        if chosen != image and not admin:
            _check_image(chosen, images)
        asked = options.max_workers
        workers = shares[size.name] if asked is None else int(asked)
        return overrides_for(profiles, size, user, workers, chosen, ctx)

    return Options(*fields, handler=handler)


def _no_dask(options: Any, user: GatewayUser) -> dict[str, Any]:
    raise UserFacingError(
        "Dask clusters are not set up on this workbench (no worker sizes).",
        reason="dask-size",
        status_code=422,
    )


def _check_image(image: str, images: Sequence[str]) -> None:
    if image in images:
        return
    raise UserFacingError(
        f"Image {image!r} is not one of the workbench images you may use. Leave "
        f"'image' unset to use your notebook's image, or pick one of: "
        f"{', '.join(images) or 'none'}.",
        reason="dask-image",
        status_code=422,
    )


def overrides_for(
    profiles: Profiles,
    size: DaskWorkerSize,
    user: GatewayUser,
    workers: int,
    image: str,
    ctx: OptionsContext,
) -> dict[str, Any]:
    """Return the ``ClusterConfig`` overrides of one cluster, after the limit check.

    Args:
        profiles: the profiles.
        size: the chosen worker size (already allowed for the user).
        user: the gateway user.
        workers: the cluster's maximum number of workers.
        image: the image of scheduler and workers (Kubernetes only; empty: the
            gateway's configured image).
        ctx: backend and the user's running clusters.

    Returns:
        New overrides: resources, threads, environment, idle timeout and
        ``cluster_max_*``; on Kubernetes also image and pod pieces.

    Raises:
        UserFacingError: the cluster would exceed one of the user's limits.
    """
    pool = profiles.pools[size.pool]
    sched_pool = profiles.pools.get(profiles.dask.scheduler_pool or "", pool)
    worker = worker_resources(size, pool)
    out = _size_config(profiles, size, ctx.backend)
    out["environment"] = {**out["environment"], ENV_USER: user.name}
    out["idle_timeout"] = float(profiles.dask.idle_timeout_s)
    out.update(_cluster_max(out, workers))
    check_limits(
        limits_for(profiles, user.name, user.groups),
        ctx.existing,
        usage_from_config("", out),
        per_worker=worker_usage(out),
    )
    if ctx.backend == "kube":
        if image:
            out["image"] = image
        out.update(pods.kube_overrides(size, pool, sched_pool, worker, user.name))
        out = pods.with_data(out, access_for(profiles.data, user.groups))
    return out


def _size_config(
    profiles: Profiles, size: DaskWorkerSize, backend: BackendKind
) -> dict[str, Any]:
    """Return the resources and environment of a cluster of one worker size."""
    pool = profiles.pools[size.pool]
    worker = worker_resources(size, pool)
    sched = Resources(
        cpu_m=round(profiles.dask.scheduler_cores * 1000),
        memory_mib=round(profiles.dask.scheduler_memory_gib * 1024),
    )
    out = _resources(worker, sched, backend)
    out["environment"] = {
        ENV_SIZE: size.name,
        ENV_POOL: pool.name,
        ENV_GPUS: str(worker.gpus),
    }
    return out


def _default_workers(
    profiles: Profiles, size: DaskWorkerSize, limits: DaskLimits, backend: BackendKind
) -> int:
    """Return the default ``max_workers`` of a cluster of this size for these limits."""
    config = _size_config(profiles, size, backend)
    return default_workers(
        limits,
        profiles.dask.max_workers_per_cluster,
        worker_usage(config),
        usage_from_config("", {**config, "cluster_max_workers": 0}),
    )


def _resources(
    worker: Resources, sched: Resources, backend: BackendKind
) -> dict[str, Any]:
    threads = threads_for(worker)
    if backend == "local":
        # LocalClusterConfig.worker_cores is an Integer (min 1): whole cores.
        return {
            "worker_cores": threads,
            "worker_threads": threads,
            "worker_memory": worker.memory_mib * _MIB,
            "scheduler_cores": max(1, round(sched.cpu_m / 1000)),
            "scheduler_memory": sched.memory_mib * _MIB,
        }
    # Request = limit: Guaranteed QoS, so packed workers never squeeze each other.
    return {
        "worker_cores": worker.cpu_m / 1000,
        "worker_cores_limit": worker.cpu_m / 1000,
        "worker_threads": threads,
        "worker_memory": worker.memory_mib * _MIB,
        "worker_memory_limit": worker.memory_mib * _MIB,
        "scheduler_cores": sched.cpu_m / 1000,
        "scheduler_cores_limit": sched.cpu_m / 1000,
        "scheduler_memory": sched.memory_mib * _MIB,
        "scheduler_memory_limit": sched.memory_mib * _MIB,
    }


def _cluster_max(out: Mapping[str, Any], workers: int) -> dict[str, Any]:
    """Return ``cluster_max_*`` so the gateway itself caps the cluster's scale.

    The gateway derives a worker cap from cores and memory by floor division;
    a small margin on the cores keeps float rounding from losing a worker.
    """
    cores = out["scheduler_cores"] + workers * out["worker_cores"]
    return {
        "cluster_max_workers": workers,
        "cluster_max_cores": round(cores, 3) + 0.0005,
        "cluster_max_memory": out["scheduler_memory"] + workers * out["worker_memory"],
    }
