"""What a user would see and get: sizes, prices and placement, as plain data.

This module owns the preview behind ``wbspawner render``: for one user (groups
and admin flag) the sizes they may pick, each with memory, CPUs, GPUs, its
$/hour on-demand and on spot (observed, or estimated from the assumed spot
discount, saying which), the images they may choose, and the placement the size
maps to (node selector, tolerated taints, requests = limits), exactly as the
spawner builds it (:mod:`wbspawner.spawn.manifests`); and the data their groups
reach (buckets, the ServiceAccount their pods get, shared volumes,
:mod:`wbspawner.spawn.data_pods`).

Pure: returns JSON-ready dicts; no I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from wbspawner.catalog import pricing
from wbspawner.catalog.pricing import SpotPrices
from wbspawner.model import Profiles, Size
from wbspawner.profiles import access
from wbspawner.profiles.data_access import DataAccess, access_for
from wbspawner.spawn import data_pods, manifests


def size_preview(
    profiles: Profiles,
    size: Size,
    groups: Collection[str],
    is_admin: bool,
    spot_prices: SpotPrices | None = None,
) -> dict[str, Any]:
    """Return one size as a user would see and get it.

    Args:
        profiles: the profiles.
        size: a size the user may use.
        groups: the user's groups.
        is_admin: whether the user is a hub admin.
        spot_prices: observed spot prices by ``(type, zone)``, or ``None``.

    Returns:
        JSON-ready data: the size, its resources, prices, images and placement.
    """
    pool = profiles.pool_of(size)
    spot = pricing.hourly_cost(pool, "spot", spot_prices, profiles.cost)
    placement = manifests.node_placement(pool)
    request = pool.request.as_k8s()
    images = access.visible_images(size, groups, is_admin)
    default_image = access.default_image(images)
    return {
        "slug": size.slug,
        "display_name": size.display_name,
        "description": size.description,
        "default": size.default,
        "memory_mib": pool.request.memory_mib,
        "cpu_m": pool.request.cpu_m,
        "gpus": pool.request.gpus,
        "gpu_kind": pool.gpu_kind,
        "price_per_hour": {
            "on_demand": pool.price_per_hour,
            "spot": round(spot.per_hour, 6),
            "spot_source": spot.source,
            "preferred": pool.capacity_types[0],
        },
        "pool": pool.name,
        "instance_types": list(pool.instance_types),
        "capacity_types": list(pool.capacity_types),
        "zones": list(pool.zones),
        "placement": {
            "node_selector": placement["node_selector"],
            "tolerations": placement["tolerations"],
            "requests": request,
            "limits": dict(request),
        },
        "images": [
            {
                "slug": i.slug,
                "display_name": i.display_name,
                "image": i.image,
                "default": i is default_image,
            }
            for i in images
        ],
        "environment": dict(size.environment),
        "home_size_gib": access.home_size_gib(size, groups),
        "idle_timeout_s": (
            profiles.culling.idle_timeout_of(size.slug)
            if profiles.culling.enabled
            else None
        ),
    }


def user_preview(
    profiles: Profiles,
    user: str,
    groups: Collection[str],
    is_admin: bool,
    spot_prices: SpotPrices | None = None,
) -> dict[str, Any]:
    """Return everything a user would see on the spawn form.

    A member of an admin group is an admin even without ``is_admin``, as on the
    hub.

    Args:
        profiles: the profiles.
        user: the user name (shown only).
        groups: the user's groups.
        is_admin: whether the user is a hub admin.
        spot_prices: observed spot prices by ``(type, zone)``, or ``None``.

    Returns:
        JSON-ready data: whether the user may log in, the default size, and one
        :func:`size_preview` per visible size.
    """
    admin = is_admin or access.is_admin_member(profiles, groups)
    sizes = access.visible_sizes(profiles, groups, admin)
    default = access.default_size(sizes)
    return {
        "user": user,
        "groups": sorted(groups),
        "is_admin": admin,
        "may_log_in": access.may_log_in(profiles, groups, admin),
        "default_size": default.slug if default else None,
        "spot_discount": profiles.cost.spot_discount,
        "currency": profiles.cost.currency,
        "sizes": [size_preview(profiles, s, groups, admin, spot_prices) for s in sizes],
        "data": data_preview(access_for(profiles.data, groups)),
    }


def data_preview(data: DataAccess) -> dict[str, Any]:
    """Return what a user's groups reach: buckets, ServiceAccount, volumes.

    Args:
        data: the union of the user's data grants.

    Returns:
        JSON-ready data: the ServiceAccount (``None``: the pod keeps the
        configured one), each S3 grant and each volume with its mount.
    """
    return {
        "service_account": data.service_account,
        "s3": [
            {"bucket": g.bucket, "prefix": g.prefix, "access": g.access}
            for g in data.s3
        ],
        "volumes": [
            {
                "name": v.name,
                "mount_path": v.mount_path,
                "read_only": v.read_only,
                "source": data_pods.pod_volume(v),
            }
            for v in data.volumes
        ],
    }
