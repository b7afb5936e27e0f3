"""The Jinja2 environment of the admin pages and what JupyterHub's page.html needs.

This module owns:

- :func:`environment`: templates from ``wbspawner/pages/templates`` first, then
  JupyterHub's installed templates, also under the ``templates/`` prefix (as
  the hub loads them, so ``{% extends "templates/page.html" %}`` works in both);
- :func:`hub_layout`: the variables ``page.html`` reads (hub prefix, a
  ``static_url`` into the hub's ``/hub/static/``, the user, logout, the
  Services menu), built from the hub's OAuth user model;
- :func:`render`: a page with those variables and its own.

It decides nothing about who may see a page: the handlers' hub OAuth does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub._data import DATA_FILES_PATH
from markupsafe import Markup

TEMPLATES = Path(__file__).with_name("templates")
"""wbspawner's page templates (and the Services menu override of page.html)."""


def jupyterhub_templates() -> Path:
    """Return the folder of the templates JupyterHub installs."""
    return Path(DATA_FILES_PATH) / "templates"


@functools.cache
def environment() -> Environment:
    """Return the pages' Jinja2 environment (autoescaping on, as the hub's)."""
    hub = str(jupyterhub_templates())
    loader = ChoiceLoader(
        [
            FileSystemLoader([str(TEMPLATES), hub]),
            PrefixLoader({"templates": FileSystemLoader(hub)}, delimiter="/"),
        ]
    )
    return Environment(loader=loader, autoescape=True)


def _js_string(text: str) -> str:
    quoted = json.dumps(text)[1:-1]
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        quoted = quoted.replace(char, code)
    return quoted


def _url_join(prefix: str, path: str) -> str:
    return prefix.rstrip("/") + "/" + path.lstrip("/")


def hub_layout(
    user: Mapping[str, Any],
    *,
    hub_prefix: str,
    base_url: str,
    services: Sequence[Mapping[str, str]],
    xsrf_token: str = "",
) -> dict[str, Any]:
    """Return the variables JupyterHub's ``page.html`` reads, for a service's page.

    Args:
        user: the hub's user model as hub OAuth gives it (``name``, ``admin``).
        hub_prefix: the hub's URL prefix, e.g. ``/hub/``.
        base_url: the hub's base URL, e.g. ``/``.
        services: ``{"name", "href"}`` of the services for the Services menu.
        xsrf_token: the page's XSRF token (page.html hands it to its scripts).

    Returns:
        A new dict; ``static_url`` points into the hub's static files.
    """
    name = str(user.get("name") or "")
    admin = bool(user.get("admin"))

    def static_url(path: str, include_version: bool = True) -> str:
        return _url_join(_url_join(hub_prefix, "static"), path)

    return {
        "base_url": hub_prefix,
        "prefix": base_url,
        "static_url": static_url,
        "version_hash": "",
        "user": {
            "name": name,
            # page.html writes it into a JavaScript string literal unescaped:
            # JSON, with what could end the <script> element escaped too
            "json_escaped_name": Markup(_js_string(name)),
        },
        "admin_access": admin,
        "parsed_scopes": {"admin-ui"} if admin else set(),
        "no_spawner_check": True,
        "services": [dict(s) for s in services],
        "logout_url": _url_join(hub_prefix, "logout"),
        "login_url": _url_join(hub_prefix, "login"),
        "logo_url": "",
        "announcement": None,
        "xsrf_token": xsrf_token,
    }


def render(template: str, layout: Mapping[str, Any], **values: Any) -> str:
    """Return a page: ``template`` with the layout's variables and ``values``.

    Args:
        template: a template name under ``wbspawner/pages/templates``.
        layout: :func:`hub_layout` (or the same keys).
        **values: the page's own variables (they win over the layout's).

    Returns:
        HTML; every value not marked safe is escaped.
    """
    return environment().get_template(template).render({**layout, **values})


def standalone_layout(name: str = "") -> dict[str, Any]:
    """Return a layout for a page rendered outside a hub service (tests, files).

    Args:
        name: the user shown in the navbar.

    Returns:
        :func:`hub_layout` for a hub at ``/``.
    """
    return hub_layout({"name": name}, hub_prefix="/hub/", base_url="/", services=[])


def service_layout(handler: Any) -> dict[str, Any]:
    """Return :func:`hub_layout` for a ``HubOAuthenticated`` handler's user.

    The Services menu lists the handler's own service: the user reached this
    page, so they may access it, and it is the hub's one displayed service
    (``display: True``; the gateway's is not). The hub's pages compute the same
    menu from the user's scopes.

    Args:
        handler: a tornado handler with ``hub_auth`` and ``current_user``;
            its application's settings may name the service
            (``service_name``, default ``warmer``).

    Returns:
        The layout.
    """
    auth = handler.hub_auth
    hub_prefix = str(auth.hub_prefix)
    base_url = hub_prefix[: -len("hub/")] if hub_prefix.endswith("hub/") else "/"
    name = str(handler.settings.get("service_name") or "warmer")
    # No XSRF token: these pages post nothing, and tornado's would set an
    # ``_xsrf`` cookie at ``/`` beside the hub's own.
    return hub_layout(
        handler.current_user or {},
        hub_prefix=hub_prefix,
        base_url=base_url or "/",
        services=[{"name": name, "href": str(auth.base_url)}],
    )
