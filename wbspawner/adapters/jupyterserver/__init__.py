"""A user's running Jupyter server: the one adapter that talks to it.

Two clients, one per way the server is reached and which token is shown:

- :mod:`.proxied`: through the hub's proxy (``<proxy>/user/<name>/``) with a
  service's token: the culler (status, kernels, notices) and the SSH service
  (terminals, files);
- :mod:`.own`: at the server's own address with the server's own token: the hub
  (notices, memory).

:mod:`.base` is what both share: URL joining, the token header,
``no_track_activity``, the timeouts and :class:`ServerError`.
"""

from wbspawner.adapters.jupyterserver.base import (
    CULLER_TIMEOUT,
    NO_TRACK,
    ServerError,
)
from wbspawner.adapters.jupyterserver.own import MemoryUse, OwnServer
from wbspawner.adapters.jupyterserver.proxied import (
    CHUNK_BYTES,
    JupyterServer,
    JupyterServers,
    Terminal,
)

__all__ = [
    "CHUNK_BYTES",
    "CULLER_TIMEOUT",
    "NO_TRACK",
    "JupyterServer",
    "JupyterServers",
    "MemoryUse",
    "OwnServer",
    "ServerError",
    "Terminal",
]
