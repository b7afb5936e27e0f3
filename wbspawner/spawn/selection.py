"""Checking what a user asked for before anything is created.

This module owns the rules for ``user_options`` (from the spawn form, a query
string or the REST API): the size must exist and be visible to the user, the
image must be one of the size's images the user may pick, free-form values and
unknown fields are refused. Only a field that was not sent means "the default": a
request that names the size or image with an empty value, or with anything but
one text value (a list from a repeated form field, a number, ``null``), is
refused. Options reused from an earlier spawn that name a size or image which no
longer exists (or which the user may no longer use) fall back to the defaults,
with a notice saying so, instead of failing.

Every refusal is a :class:`~wbspawner.errors.UserFacingError` whose message a
person understands and can act on. Values from the request are quoted shortened,
never echoed at length.

Pure: no I/O, no JupyterHub.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from wbspawner.errors import UserFacingError
from wbspawner.model import ImageChoice, Profiles, Size
from wbspawner.profiles import access
from wbspawner.spawn.form import IMAGE_OPTION

PROFILE_OPTION = "profile"
"""The user option naming the size (KubeSpawner's profile slug)."""
UNLISTED_SUFFIX = "--unlisted-choice"
"""KubeSpawner's suffix for a free-form value of a profile option."""
KNOWN_OPTIONS = frozenset({PROFILE_OPTION, IMAGE_OPTION})
_MAX_SHOWN = 40


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """A checked choice: the size and image to start, and what to tell the user."""

    size: Size
    """The size to start."""
    image: ImageChoice
    """The image to start."""
    notice: str | None = None
    """Shown to the user when a saved choice was replaced by a default."""

    @property
    def options(self) -> dict[str, str]:
        """Return the normalised ``user_options`` (a new dict)."""
        return {PROFILE_OPTION: self.size.slug, IMAGE_OPTION: self.image.slug}


def _quote(value: object) -> str:
    text = str(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return f"'{text}'"


def _names(items: Sequence[Size] | Sequence[ImageChoice]) -> str:
    return ", ".join(f"'{i.display_name}'" for i in items)


def _groups_text(groups: Collection[str]) -> str:
    return ", ".join(sorted(groups)) if groups else "no groups"


def _refuse(message: str, log_message: str, reason: str = "options") -> UserFacingError:
    return UserFacingError(message, reason=reason, log_message=log_message)


def _check_fields(user_options: Mapping[str, object]) -> None:
    unlisted = sorted(k for k in user_options if str(k).endswith(UNLISTED_SUFFIX))
    if unlisted:
        raise _refuse(
            "This hub does not accept custom values such as your own image; "
            "pick one of the listed choices.",
            f"unlisted choice in user_options: {', '.join(map(str, unlisted))}",
        )
    unknown = sorted(str(k) for k in user_options if k not in KNOWN_OPTIONS)
    if unknown:
        raise _refuse(
            "The request contained options this hub does not know "
            f"({', '.join(_quote(k) for k in unknown[:5])}). Start your server "
            "from the spawn page.",
            f"unknown user_options keys: {', '.join(unknown)}",
        )
    for key in KNOWN_OPTIONS:
        value = user_options.get(key)
        if value is not None and not isinstance(value, str):
            raise _refuse(
                f"The option '{key}' must be text. Start your server from the "
                "spawn page.",
                f"user_options[{key!r}] is a {type(value).__name__}",
            )


def _check_chosen(user_options: Mapping[str, object], visible: Sequence[Size]) -> None:
    """Refuse a size or image that was sent without a value.

    Leaving a field out asks for the default; sending it empty (or ``null``) is
    a choice of nothing, which a person did not make through the form.
    """
    if PROFILE_OPTION in user_options and not user_options[PROFILE_OPTION]:
        raise _refuse(
            f"No server size was chosen. Pick one of: {_names(visible)}.",
            f"user_options[{PROFILE_OPTION!r}] is empty",
        )
    if IMAGE_OPTION in user_options and not user_options[IMAGE_OPTION]:
        raise _refuse(
            "No image was chosen. Pick one of the size's images on the spawn page.",
            f"user_options[{IMAGE_OPTION!r}] is empty",
        )


def _pick_size(
    slug: str,
    profiles: Profiles,
    visible: Sequence[Size],
    groups: Collection[str],
    saved: bool,
) -> tuple[Size, str | None]:
    default = access.default_size(visible)
    assert default is not None  # the caller checked that ``visible`` is not empty
    if not slug:
        return default, None
    chosen = next((s for s in visible if s.slug == slug), None)
    if chosen is not None:
        return chosen, None
    existing = profiles.size(slug)
    if saved:
        what = (
            f"The size {_quote(slug)} you used last time is no longer offered"
            if existing is None
            else f"You may no longer use the size '{existing.display_name}'"
        )
        return default, f"{what}; starting '{default.display_name}' instead."
    if existing is None:
        raise _refuse(
            f"There is no server size {_quote(slug)}. Pick one of: {_names(visible)}.",
            f"unknown size {slug!r}",
        )
    need = " or ".join(f"'{g}'" for g in existing.allowed_groups)
    raise _refuse(
        f"The size '{existing.display_name}' is not available to your groups "
        f"({_groups_text(groups)}). Ask an admin to add you to {need}.",
        f"size {slug!r} not allowed for groups {sorted(groups)}",
        reason="forbidden",
    )


def _pick_image(
    slug: str,
    size: Size,
    groups: Collection[str],
    is_admin: bool,
    saved: bool,
) -> tuple[ImageChoice, str | None]:
    images = access.visible_images(size, groups, is_admin)
    default = access.default_image(images)
    if default is None:
        raise _refuse(
            f"None of the images of '{size.display_name}' is available to your "
            "groups. Ask an admin which image you may use.",
            f"no visible image for size {size.slug!r}, groups {sorted(groups)}",
            reason="forbidden",
        )
    if not slug:
        return default, None
    chosen = next((i for i in images if i.slug == slug), None)
    if chosen is not None:
        return chosen, None
    existing = next((i for i in size.images if i.slug == slug), None)
    if saved:
        return default, (
            f"The image {_quote(slug)} you used last time is not available for "
            f"'{size.display_name}'; starting '{default.display_name}' instead."
        )
    if existing is None:
        raise _refuse(
            f"There is no image {_quote(slug)} for '{size.display_name}'. Pick one "
            f"of: {_names(images)}.",
            f"unknown image {slug!r} for size {size.slug!r}",
        )
    need = " or ".join(f"'{g}'" for g in existing.allowed_groups)
    raise _refuse(
        f"The image '{existing.display_name}' is not available to your groups "
        f"({_groups_text(groups)}). Ask an admin to add you to {need}.",
        f"image {slug!r} not allowed for groups {sorted(groups)}",
        reason="forbidden",
    )


def options_from_form(
    formdata: Mapping[str, Sequence[str]], parsed: Mapping[str, object]
) -> dict[str, object]:
    """Return a spawn form's ``user_options``, keeping a size sent without a value.

    KubeSpawner reads the first ``profile`` value of the form and drops it when it
    is empty, so an empty or repeated field would start the default size. A form
    that sent the field chose something: an empty value is kept as ``""`` and
    several values as their list, for :func:`select` to refuse.

    Args:
        formdata: the form (or query) fields, each a list of values.
        parsed: what KubeSpawner made of them.

    Returns:
        A new dict: ``parsed``, with ``profile`` as sent when it was not one
        non-empty value.
    """
    sent = formdata.get(PROFILE_OPTION)
    if sent is None:
        return dict(parsed)
    values = list(sent)
    if len(values) == 1 and values[0]:
        return dict(parsed)
    return {**parsed, PROFILE_OPTION: values[0] if len(values) == 1 else values}


def options_sent(body: bytes, query: str) -> bool:
    """Return whether a start request itself chose a size.

    JupyterHub reuses the saved options when a start request carries none (the
    admin page, a REST call without a body); a request that chose a size names
    the ``profile`` option in its form body, JSON body or query string.

    Args:
        body: the request body.
        query: the request's query string.

    Returns:
        Whether the request names the ``profile`` option.
    """
    return PROFILE_OPTION.encode() in body or PROFILE_OPTION in query


def select(
    user_options: Mapping[str, object] | None,
    profiles: Profiles,
    groups: Collection[str],
    is_admin: bool,
    *,
    saved: bool = False,
) -> Selection:
    """Check a user's options and return the size and image to start.

    Args:
        user_options: what the user asked for (``{"profile": …, "image": …}``),
            or ``None``/empty for the defaults; a field left out means its
            default.
        profiles: the profiles in force.
        groups: the user's hub groups.
        is_admin: whether the user is a hub admin.
        saved: the options were reused from an earlier spawn rather than sent
            with this request; a size or image that is gone then falls back to
            the default with a notice instead of being refused.

    Returns:
        The checked selection.

    Raises:
        UserFacingError: the options are malformed, name an unknown or forbidden
            size or image or send one without a value (unless ``saved``), carry
            a free-form value or an unknown field, or the user may use no size
            at all.
    """
    options: Mapping[str, object] = user_options or {}
    if not isinstance(options, Mapping):
        raise _refuse(
            "The server options must be a set of named values. Start your server "
            "from the spawn page.",
            f"user_options is a {type(options).__name__}",
        )
    visible = access.visible_sizes(profiles, groups, is_admin)
    if not visible:
        allowed = sorted({*profiles.user_groups, *profiles.admin_groups})
        raise _refuse(
            f"Your groups ({_groups_text(groups)}) may not start any server. Ask an "
            f"admin to add you to one of: {', '.join(allowed)}.",
            f"no visible sizes for groups {sorted(groups)}",
            reason="forbidden",
        )
    if saved:
        # A saved request was valid once; only its size and image may be stale.
        options = {k: v for k, v in options.items() if k in KNOWN_OPTIONS}
    _check_fields(options)
    if not saved:
        _check_chosen(options, visible)
    size, size_notice = _pick_size(
        str(options.get(PROFILE_OPTION) or ""), profiles, visible, groups, saved
    )
    image_slug = "" if size_notice else str(options.get(IMAGE_OPTION) or "")
    image, image_notice = _pick_image(image_slug, size, groups, is_admin, saved)
    return Selection(size=size, image=image, notice=size_notice or image_notice)
