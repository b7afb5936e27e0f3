"""The spawn form: the sizes one user may pick, in KubeSpawner's ``profile_list``.

This module owns what a person reads on the spawn page: each size's memory, CPUs,
GPUs, what an hour costs (on-demand, and spot with where the price comes from),
whether a warm node is ready, whether the group's spent budget keeps it from
starting, and the banners shown above the sizes (including the budget's). It
builds the list KubeSpawner applies overrides from, one entry per size the user
may see; each entry also carries its :class:`SizeCard`, the plain-text card the
hub's own template (``wbspawner/pages/templates/spawn-form.html``) renders.

Pure: no I/O. The entries carry no HTML description: the cards are all the form
shows. The admin-written names KubeSpawner itself reads (the entry's and the
image choices' ``display_name``) are HTML-escaped here, because KubeSpawner's
own template would insert them unescaped; a card holds plain text, escaped by
the hub's template.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wbspawner.catalog.pricing import SpotPrices, format_price, hourly_cost
from wbspawner.model import ImageChoice, Pool, Profiles, Size
from wbspawner.profiles import access
from wbspawner.spawn.budget import BudgetState, summary, unavailable_sizes
from wbspawner.spawn.manifests import size_overrides
from wbspawner.spawn.waits import Waits, estimate, wait_words

IMAGE_OPTION = "image"
"""The ``profile_options`` key of the image choice (also the user option name)."""

CARD = "wb_card"
"""The ``profile_list`` entry key of a size's :class:`SizeCard`."""

ReadyNodes = Mapping[str, int]
"""Warm nodes ready now, by pool name (:meth:`wbspawner.model.WarmStatus.by_pool`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageOption:
    """One image a size's card offers."""

    slug: str
    """The value the form sends (``profile-option-<size>--image``)."""
    name: str
    """The admin's display name (plain text)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeCard:
    """What one size's card on the spawn form says, in plain text."""

    name: str
    """The size's display name, e.g. ``64 GiB``."""
    hardware: str
    """Memory, CPUs and GPUs (:func:`hardware`)."""
    gpu: bool
    """Whether the size has GPUs (the card shows a GPU badge)."""
    on_demand: str
    """An hour on-demand, e.g. ``$0.50/h on-demand``."""
    spot: str | None
    """An hour on spot and where the figure comes from, or ``None`` (no spot)."""
    wait: str | None
    """``Ready now`` or ``Starts in about …`` (:func:`warm_text`), or ``None``."""
    ready: bool
    """Whether a warm node is ready now."""
    unavailable: str | None
    """Why the size cannot start now (a spent budget), or ``None``."""
    note: str | None
    """The admin's description of the size, or ``None``."""
    images: tuple[ImageOption, ...]
    """The images the user may pick (a choice only when more than one)."""
    image: str
    """The slug of the image chosen by default (``""`` when there is none)."""


def _gib(mib: int) -> str:
    gib = mib / 1024
    return f"{gib:.0f} GiB" if gib >= 10 or gib.is_integer() else f"{gib:.1f} GiB"


def hardware(pool: Pool) -> str:
    """Return a size's hardware in words, e.g. ``64 GiB memory · 8 CPUs``.

    Args:
        pool: the size's pool.

    Returns:
        Plain text (not escaped).
    """
    parts = [f"{_gib(pool.memory_mib)} memory", f"{pool.vcpu} CPUs"]
    if pool.is_gpu:
        kind = pool.gpu_kind or "GPU"
        parts.append(f"{pool.gpu_count}× NVIDIA {kind} GPU")
    return " · ".join(parts)


def _prices(
    pool: Pool, spot_prices: SpotPrices | None, profiles: Profiles
) -> tuple[str, str | None]:
    """Return (an hour on-demand, an hour on spot or ``None``) in words.

    The spot figure says whether it is the observed price (``current price``)
    or estimated from the admin's assumed discount (``estimated``).
    """
    on_demand = hourly_cost(pool, "on-demand", spot_prices, profiles.cost)
    if "spot" not in pool.capacity_types:
        return f"{format_price(on_demand.per_hour)} on-demand", None
    spot = hourly_cost(pool, "spot", spot_prices, profiles.cost)
    source = "estimated" if spot.is_estimate else "current price"
    return (
        f"{format_price(on_demand.per_hour)} on-demand",
        f"{format_price(spot.per_hour)} spot ({source})",
    )


def warm_text(
    pool: Pool, warm_status: ReadyNodes | None, waits: Waits | None = None
) -> str | None:
    """Return whether a node is ready for the size, or how long one takes.

    The wait of a cold start is the one observed for the pool in the user's
    zone (:mod:`wbspawner.spawn.waits`), else the stated figure.

    Args:
        pool: the size's pool.
        warm_status: ready warm nodes by pool, or ``None`` when unknown.
        waits: the observed cold starts and the user's zone, or ``None``.

    Returns:
        ``Ready now``, ``Starts in about N seconds`` (or ``minutes``), or
        ``None`` when unknown.
    """
    if warm_status is None:
        return None
    if warm_status.get(pool.name, 0) > 0:
        return "Ready now"
    wait = waits.of(pool) if waits else estimate(pool, None, None)
    return f"Starts in {wait_words(wait.total_s)}"


def _image_options(
    images: tuple[ImageChoice, ...], chosen: ImageChoice | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (extra overrides, profile_options) for a size's images."""
    if len(images) <= 1:
        return ({"image": chosen.image} if chosen else {}), {}
    choices = {
        image.slug: {
            "display_name": html.escape(image.display_name),
            "default": image is chosen,
            "kubespawner_override": {"image": image.image},
        }
        for image in images
    }
    return {}, {IMAGE_OPTION: {"display_name": "Image", "choices": choices}}


def size_card(
    size: Size,
    pool: Pool,
    profiles: Profiles,
    warm_status: ReadyNodes | None,
    spot_prices: SpotPrices | None,
    images: tuple[ImageChoice, ...] = (),
    unavailable: str | None = None,
    waits: Waits | None = None,
) -> SizeCard:
    """Return the card of one size on the spawn form.

    Args:
        size: the size.
        pool: its pool.
        profiles: the profiles (cost settings).
        warm_status: ready warm nodes by pool, or ``None``.
        spot_prices: observed spot prices, or ``None``.
        images: the size's images the user may pick.
        unavailable: why the size cannot start now (a spent budget), or ``None``.
        waits: the observed cold starts and the user's zone, or ``None``.

    Returns:
        The card, in plain text.
    """
    on_demand, spot = _prices(pool, spot_prices, profiles)
    wait = warm_text(pool, warm_status, waits)
    chosen = access.default_image(images)
    return SizeCard(
        name=size.display_name,
        hardware=hardware(pool),
        gpu=pool.is_gpu,
        on_demand=on_demand,
        spot=spot,
        wait=wait,
        ready=wait == "Ready now",
        unavailable=unavailable,
        note=size.description or None,
        images=tuple(ImageOption(slug=i.slug, name=i.display_name) for i in images),
        image=chosen.slug if chosen else "",
    )


def kubespawner_profiles(
    profiles: Profiles,
    groups: Collection[str],
    is_admin: bool,
    warm_status: ReadyNodes | None = None,
    spot_prices: SpotPrices | None = None,
    budget: BudgetState | None = None,
    waits: Waits | None = None,
) -> list[dict[str, Any]]:
    """Return the sizes a user may pick as KubeSpawner's ``profile_list``.

    Each entry carries the size's user-independent overrides (placement,
    full-node resources, labels, environment) and its card (:data:`CARD`);
    image choices become a ``profile_options`` dropdown when the user may pick
    more than one. Sizes a spent budget keeps from starting stay listed, marked
    with the reason.

    Args:
        profiles: the profiles in force.
        groups: the user's hub groups.
        is_admin: whether the user is a hub admin (admins see every size).
        warm_status: ready warm nodes by pool, or ``None`` when unknown.
        spot_prices: observed spot prices by ``(type, zone)``, or ``None``.
        budget: the user's budget state, or ``None`` when unknown.
        waits: the observed cold starts and the user's zone, or ``None``.

    Returns:
        A new list of new dicts; exactly one entry has ``default: True`` (none
        when the list is empty): the configured default, or when the budget
        refuses it, the first size that may start.
    """
    sizes = access.visible_sizes(profiles, groups, is_admin)
    refused = unavailable_sizes(budget, sizes) if budget else {}
    default = access.default_size(sizes)
    if default is not None and default.slug in refused:
        default = next((s for s in sizes if s.slug not in refused), default)
    out: list[dict[str, Any]] = []
    for size in sizes:
        pool = profiles.pool_of(size)
        override = size_overrides(size, pool)
        images = access.visible_images(size, groups, is_admin)
        image_override, options = _image_options(images, access.default_image(images))
        override.update(image_override)
        card = size_card(
            size,
            pool,
            profiles,
            warm_status,
            spot_prices,
            images,
            refused.get(size.slug),
            waits,
        )
        entry: dict[str, Any] = {
            "slug": size.slug,
            "display_name": html.escape(size.display_name),
            "default": size is default,
            "kubespawner_override": override,
            CARD: card,
        }
        if options:
            entry["profile_options"] = options
        out.append(entry)
    return out


def banner(text: str, kind: str = "warning") -> str:
    """Return a Bootstrap alert shown above the sizes.

    Args:
        text: plain text (it is escaped).
        kind: Bootstrap alert kind: ``warning``, ``info`` or ``danger``.

    Returns:
        HTML.
    """
    safe_kind = kind if kind in ("warning", "info", "danger") else "warning"
    return (
        f'<div class="alert alert-{safe_kind} wb-banner" role="alert">'
        f"{html.escape(text)}</div>"
    )


def budget_banner(state: BudgetState, sizes: Iterable[Size] = ()) -> str:
    """Return the banner about the group's budget ("" below the warning level).

    Args:
        state: the user's budget state.
        sizes: the sizes the user sees (to name those that still start).

    Returns:
        HTML: a warning from the warning level, a danger alert once spent.
    """
    text = summary(state, sizes)
    if text is None:
        return ""
    return banner(text, "danger" if state.level == "over" else "warning")


def admin_warning(error_text: str) -> str:
    """Return the banner telling admins that the last profiles edit was rejected.

    Args:
        error_text: every problem, one per line (``file: $.path: message``).

    Returns:
        HTML: a warning that the previous profiles stay in force, and the problems.
    """
    problems = "".join(
        f"<li>{html.escape(line)}</li>" for line in error_text.splitlines() if line
    )
    return (
        '<div class="alert alert-warning wb-banner wb-admin-warning" role="alert">'
        "<strong>The last edit of the profiles is invalid and was not applied."
        "</strong> Users keep seeing the previous sizes until it is fixed "
        "(<code>wbspawner validate</code> lists the same problems)."
        f"<ul>{problems}</ul></div>"
    )
