"""dask-gateway-server configuration of the workbench.

Run: ``dask-gateway-server -f dask_gateway_config.py`` with the ``WBSPAWNER_*``
variables described in :mod:`wbspawner.gateway.config` (local mode:
``WBSPAWNER_MODE=local``) and ``WBSPAWNER_COST_DB_URL``, the accounting database
Dask clusters are recorded in (the hub's; default: a SQLite file in the working
directory). An invalid profile stops the gateway with every problem listed.
"""

from __future__ import annotations

import os

from wbspawner.gateway.config import configure_from_env

c = get_config()  # noqa: F821 - provided by the traitlets config loader
configure_from_env(c, os.environ)
