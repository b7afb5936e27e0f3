"""The spawn form's HTML: the sizes as cards, the notices above them.

This module owns turning the list :func:`wbspawner.spawn.form.kubespawner_profiles`
builds into the HTML inside JupyterHub's spawn page (``spawn-form.html``): one
radio group of size cards, each with its image choice, and a slot for the
notices (budget, saved options, the admins' warning, advice) above the sizes.
The field names are KubeSpawner's (``profile``, ``profile-option-<size>--image``),
so its ``options_from_form`` and option checks work unchanged.

It decides nothing: which sizes, which is the default and what a card says come
in; which size and image are preselected follow KubeSpawner's rules (the saved
options when the list still offers them, else the defaults).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from wbspawner.pages.layout import environment

TEMPLATE = "spawn-form.html"


def chosen_size(profile_list: Sequence[Mapping[str, Any]], saved: str | None) -> str:
    """Return the slug of the size to preselect.

    Args:
        profile_list: the sizes (``slug``, ``default``).
        saved: the size of the user's saved options, or ``None``.

    Returns:
        ``saved`` when listed, else the default (else the first); ``""`` when
        the list is empty.
    """
    slugs = [str(p["slug"]) for p in profile_list]
    if saved in slugs:
        return str(saved)
    default = next((str(p["slug"]) for p in profile_list if p.get("default")), None)
    return default or (slugs[0] if slugs else "")


def render(
    profile_list: Sequence[Mapping[str, Any]],
    user_options: Mapping[str, Any],
    notices: Sequence[str] = (),
) -> str:
    """Return the form's HTML.

    Args:
        profile_list: KubeSpawner's initialized ``profile_list``, each entry
            with its card (:data:`wbspawner.spawn.form.CARD`).
        user_options: the saved options, already checked against the list
            (``{}`` when they do not fit it).
        notices: HTML blocks shown above the sizes (already escaped, e.g.
            :func:`wbspawner.spawn.form.banner`).

    Returns:
        HTML; every card text is escaped by the template.
    """
    chosen = chosen_size(profile_list, user_options.get("profile"))
    saved_image = user_options.get("image") if user_options.get("profile") else None
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            sizes=profile_list,
            chosen=chosen,
            saved_image=saved_image,
            # the notices are HTML their builders escaped (form.banner and the like)
            notices=[Markup(n) for n in notices if n],
        )
    )
