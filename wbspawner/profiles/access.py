"""Who may use what: the one place access rules on profiles are decided.

This module owns the rules that the spawn form, the spawner's option check, the
``render`` command and the profile checks all apply:

- a user may log in when they are an admin, belong to an admin or user group, or
  when no user group is configured at all;
- admins see every size and every image;
- anyone else sees a size or image whose ``allowed_groups`` is empty or shares a
  group with theirs (and sees nothing when they may not log in).

Pure: no I/O, no JupyterHub; functions over :mod:`wbspawner.model` values.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from wbspawner.model import ImageChoice, Profiles, Size


def allowed(
    allowed_groups: Collection[str], groups: Collection[str], is_admin: bool
) -> bool:
    """Return whether a user may use something restricted to ``allowed_groups``.

    Args:
        allowed_groups: the item's groups; empty means everyone (who may log in).
        groups: the user's groups.
        is_admin: whether the user is a hub admin (admins may use everything).

    Returns:
        Whether the item is available to the user.
    """
    if is_admin or not allowed_groups:
        return True
    return not set(allowed_groups).isdisjoint(groups)


def is_admin_member(profiles: Profiles, groups: Collection[str]) -> bool:
    """Return whether one of the groups is an admin group.

    Args:
        profiles: the profiles.
        groups: the user's groups.

    Returns:
        Whether membership makes the user an admin.
    """
    return not set(profiles.admin_groups).isdisjoint(groups)


def may_log_in(profiles: Profiles, groups: Collection[str], is_admin: bool) -> bool:
    """Return whether a user may log in to the hub.

    Args:
        profiles: the profiles.
        groups: the user's groups.
        is_admin: whether the user is a hub admin.

    Returns:
        ``True`` for admins and members of an admin or user group; for everyone
        when no user group is configured.
    """
    if is_admin or not profiles.user_groups:
        return True
    permitted = set(profiles.user_groups) | set(profiles.admin_groups)
    return not permitted.isdisjoint(groups)


def visible_sizes(
    profiles: Profiles, groups: Collection[str], is_admin: bool
) -> tuple[Size, ...]:
    """Return the sizes a user may pick, in the profiles' order.

    Args:
        profiles: the profiles.
        groups: the user's groups.
        is_admin: whether the user is a hub admin (admins see every size).

    Returns:
        The sizes; empty when the user may not log in.
    """
    if not may_log_in(profiles, groups, is_admin):
        return ()
    return tuple(
        s for s in profiles.sizes if allowed(s.allowed_groups, groups, is_admin)
    )


def visible_images(
    size: Size, groups: Collection[str], is_admin: bool
) -> tuple[ImageChoice, ...]:
    """Return the image choices of a size that a user may pick.

    Args:
        size: the size (already visible to the user).
        groups: the user's groups.
        is_admin: whether the user is a hub admin.

    Returns:
        The images, in the size's order.
    """
    return tuple(i for i in size.images if allowed(i.allowed_groups, groups, is_admin))


def default_size(sizes: Sequence[Size]) -> Size | None:
    """Return the preselected size of a list: the one marked default, else the first.

    Args:
        sizes: the sizes one user sees.

    Returns:
        The default size, or ``None`` for an empty list.
    """
    return next((s for s in sizes if s.default), sizes[0] if sizes else None)


def default_image(images: Sequence[ImageChoice]) -> ImageChoice | None:
    """Return the preselected image: the one marked default, else the first.

    Args:
        images: the images one user sees for a size.

    Returns:
        The default image, or ``None`` for an empty list.
    """
    return next((i for i in images if i.default), images[0] if images else None)


def home_size_gib(size: Size, groups: Collection[str]) -> int:
    """Return the size of a new home volume for a user starting this size.

    Args:
        size: the size being started.
        groups: the user's groups.

    Returns:
        The largest of the size's ``home_size_gib`` and the sizes configured for
        the user's groups in ``home_size_by_group``.
    """
    extra = [gib for group, gib in size.home_size_by_group.items() if group in groups]
    return max([size.home_size_gib, *extra])
