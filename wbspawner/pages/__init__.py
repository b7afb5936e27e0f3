"""Admin pages in the hub's own layout, rendered by the service that owns the data.

The warmer and costs pages are served by the warmer service (where the warm
state and the accounting reader live) and rendered with JupyterHub's own
Jinja2 templates: each page extends JupyterHub's ``page.html``, loaded from the
templates JupyterHub installs, with the variables that template needs (the
hub's prefix, ``static_url`` pointing at the hub's ``/hub/static/``, the user,
the logout URL, the Services menu). So the pages show the hub's navbar,
theme, dark-mode toggle (``darkmode.js`` reads the same per-origin
``localStorage`` key as the hub's pages, so the theme follows the hub's) and
logout, while the URLs, the OAuth access (``access:services!service=warmer``:
everyone else gets 403) and the JSON APIs stay the service's.

Why not hub-side pages (``JupyterHub.extra_handlers``): the hub would have to
fetch the warmer's in-memory state over HTTP with a token of its own, and
render in its event loop what a separate process already holds; a service
page keeps one owner per datum and keeps working while the hub restarts its
handlers.

This package owns the Jinja2 environment (:mod:`wbspawner.pages.layout`) and
the templates under ``templates/``; ``page.html`` there is also in the hub's
``template_paths`` so the hub's own pages list the warmer's two pages in the
same Services menu.
"""
