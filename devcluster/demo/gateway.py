"""Dask Gateway for the local workbench: a real ``dask-gateway-server`` process.

The demo and the tests start the gateway with the repository's
``dask_gateway_config.py`` (UnsafeLocalBackend: schedulers and workers are local
processes; dask-gateway's ``LocalBackend`` is never used, it chowns ``/`` as
root), and hand the hub the environment that wires it in: the hub service (the
dashboards front, which the hub starts on a free loopback port and which passes
on to the gateway's proxy), the users' access scope and the notebooks'
``DASK_GATEWAY__*`` variables.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from devcluster.services.chp import repo_root
from devcluster.services.procs import Proc, free_port, wait_for_http
from wbspawner.gateway.config import PREFIX


@dataclass
class LocalGateway:
    """A running gateway and the environment the hub needs to use it."""

    proc: Proc
    http_url: str
    hub_env: dict[str, str]

    def stop(self) -> None:
        """Stop the gateway and its clusters' processes, by PID."""
        self.proc.stop(timeout=15)


def start_gateway(
    state_dir: Path,
    profiles_dir: Path,
    hub_api_url: str,
    *,
    cost_db_url: str | None = None,
    timeout: float = 60.0,
) -> LocalGateway:
    """Start ``dask-gateway-server`` on free loopback ports and wait until healthy.

    Args:
        state_dir: where the gateway's log goes.
        profiles_dir: the profiles the gateway offers worker sizes from.
        hub_api_url: the hub's API (``…/hub/api``) for user auth and the reaper.
        cost_db_url: the accounting database Dask clusters are recorded in
            (the hub's); ``None``: a SQLite file in ``state_dir``.
        timeout: seconds to wait for the gateway's health endpoint.

    Returns:
        The running gateway.
    """
    http, tcp, api = free_port(), free_port(), free_port()
    token = secrets.token_hex(32)
    env = {
        "WBSPAWNER_MODE": "local",
        "WBSPAWNER_PROFILES": str(profiles_dir),
        "WBSPAWNER_DASK_GATEWAY_API_BIND": f"127.0.0.1:{api}",
        "WBSPAWNER_DASK_GATEWAY_HTTP_BIND": f"127.0.0.1:{http}",
        "WBSPAWNER_DASK_GATEWAY_TCP_BIND": f"127.0.0.1:{tcp}",
        "WBSPAWNER_DASK_GATEWAY_API_TOKEN": token,
        "WBSPAWNER_DASK_GATEWAY_HUB_API_URL": hub_api_url,
        "WBSPAWNER_COST_DB_URL": cost_db_url
        or f"sqlite:///{state_dir / 'wbspawner-costs.sqlite'}",
    }
    server = Path(sys.executable).parent / "dask-gateway-server"
    config = repo_root() / "dask_gateway_config.py"
    proc = Proc.start(
        [str(server), "-f", str(config)],
        state_dir / "gateway.log",
        env=env,
        cwd=state_dir,
    )
    http_url = f"http://127.0.0.1:{http}"
    try:
        wait_for_http(f"{http_url}{PREFIX}/api/health", timeout=timeout, proc=proc)
    except BaseException:
        proc.stop(timeout=5)
        raise
    hub_env = {
        "WBSPAWNER_DASK_GATEWAY_URL": http_url,
        "WBSPAWNER_DASK_GATEWAY_FRONT_URL": f"http://127.0.0.1:{free_port()}",
        "WBSPAWNER_DASK_GATEWAY_PROXY_ADDRESS": f"gateway://127.0.0.1:{tcp}",
        "WBSPAWNER_DASK_GATEWAY_API_TOKEN": token,
    }
    return LocalGateway(proc, http_url, hub_env)
