"""Which dashboard links are the hub's Dask Gateway's, and where to check them.

dask-labextension checks a dashboard from the user's server: it fetches
``individual-plots.json`` under the link. A gateway cluster's link is the
gateway's public address (``DASK_GATEWAY__PUBLIC_ADDRESS``) with
``/clusters/<name>/`` after it, which the hub's dashboards front serves to the
cluster's owner only. :func:`plots_url` says whether a link is one of those and
returns the URL to fetch instead: the same path under the gateway's address
(``DASK_GATEWAY__ADDRESS``), where the dask-gateway client already sends the
server's token. So the token goes nowhere the client does not send it, whatever
host a link names.

No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
"""A cluster name as dask-gateway makes them (a hex id, on Kubernetes with the
namespace and a dot in front)."""


@dataclass(frozen=True, slots=True)
class Gateway:
    """The gateway's two addresses, as the notebook's dask-gateway client has them."""

    address: str
    """``DASK_GATEWAY__ADDRESS``: where the client (and this check) sends requests."""
    public_address: str
    """``DASK_GATEWAY__PUBLIC_ADDRESS``: the base of dashboard links (absolute, or
    a path on the hub's host)."""

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Gateway | None:
        """Return the gateway of the environment, ``None`` when there is none.

        Args:
            env: the server's environment variables.

        Returns:
            The gateway, when ``DASK_GATEWAY__ADDRESS`` is an http(s) URL.
        """
        address = env.get("DASK_GATEWAY__ADDRESS", "").rstrip("/")
        if urlsplit(address).scheme not in ("http", "https"):
            return None
        public = env.get("DASK_GATEWAY__PUBLIC_ADDRESS", "").rstrip("/") or address
        return cls(address=address, public_address=public)


def cluster_of(link: str, gateway: Gateway) -> str | None:
    """Return the cluster whose dashboard ``link`` is, ``None`` if it is none.

    A link is a gateway dashboard when its path is the public address's path
    followed by ``/clusters/<name>/`` and, optionally, ``status`` (the link
    dask-gateway gives); when the public address names a host, the link must
    name the same scheme and host.

    Args:
        link: the dashboard URL dask-labextension asks about.
        gateway: the gateway's addresses.

    Returns:
        The cluster name, or ``None``.
    """
    url, public = urlsplit(link), urlsplit(gateway.public_address)
    if public.netloc and (url.scheme, url.netloc) != (public.scheme, public.netloc):
        return None
    prefix = public.path.rstrip("/") + "/clusters/"
    if url.query or url.fragment or not url.path.startswith(prefix):
        return None
    name, _, rest = unquote(url.path[len(prefix) :]).partition("/")
    if not CLUSTER_NAME.fullmatch(name) or rest.strip("/") not in ("", "status"):
        return None
    return name


def plots_url(link: str, gateway: Gateway) -> str | None:
    """Return where to fetch the plots of a gateway dashboard link, else ``None``.

    Args:
        link: the dashboard URL dask-labextension asks about.
        gateway: the gateway's addresses.

    Returns:
        ``<address>/clusters/<name>/individual-plots.json``, or ``None`` when
        ``link`` is not a dashboard of this gateway.
    """
    name = cluster_of(link, gateway)
    if name is None:
        return None
    return f"{gateway.address}/clusters/{name}/individual-plots.json"


def dashboard_base(link: str) -> str:
    """Return a dashboard link without its ``status`` page, ending in ``/``."""
    base = link.rstrip("/")
    base = base.removesuffix("/status")
    return base + "/"
