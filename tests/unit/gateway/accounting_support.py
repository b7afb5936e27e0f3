"""An in-memory gateway backend under the accounting mixins, for unit tests.

``Accounted(cost_db_url=..., tracks_workers=...)``: the dask-gateway backend
calls the accounting relies on (clusters listed, started and stopped in
memory), the example profiles, and a clock the test sets (``now``).
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from dask_gateway_server.backends.base import Backend
from traitlets.config import Config

from tests.paths import REPO
from wbspawner.gateway.accounting import CostAccountingMixin
from wbspawner.gateway.options import ENV_POOL, ENV_SIZE
from wbspawner.model import Profiles
from wbspawner.profiles.loader import load_profiles

T0 = datetime(2026, 3, 2, 9, 0)


class MemoryBackend(Backend):
    """Clusters in a dict; a stopped cluster is no longer listed, but known."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clusters: dict[str, Any] = {}
        self.known: dict[str, Any] = {}

    async def setup(self, app: Any) -> None:
        pass

    async def cleanup(self) -> None:
        pass

    async def list_clusters(self, username: Any = None, statuses: Any = None) -> Any:
        return list(self.clusters.values())

    async def get_cluster(self, cluster_name: str, wait: bool = False) -> Any:
        return self.known.get(cluster_name)

    async def start_cluster(self, user: Any, cluster_options: Any) -> str:
        name = f"c{len(self.known) + 1}"
        env = {ENV_SIZE: "m64-quarter", ENV_POOL: "mem64"}
        self.clusters[name] = self.known[name] = SimpleNamespace(
            name=name, username=user.name, options={}, config={"environment": env}
        )
        return name

    async def stop_cluster(self, cluster_name: str, failed: bool = False) -> None:
        self.clusters.pop(cluster_name, None)

    async def on_cluster_heartbeat(self, cluster_name: str, msg: Any) -> None:
        pass


class Accounted(CostAccountingMixin, MemoryBackend):
    """The accounting mixin over the in-memory backend, on a test clock."""

    now = T0
    the_profiles: Profiles

    def profiles(self) -> Profiles:
        return self.the_profiles

    def cost_now(self) -> datetime:
        return self.now


def accounted(url: str, tracks_workers: bool = False) -> Accounted:
    """An accounted backend on ``url``, rounds only on changes (1 h timer)."""
    config = Config()
    config.CostAccountingMixin.cost_db_url = url
    config.CostAccountingMixin.cost_interval = 3600.0
    backend = Accounted(config=config)
    backend.cost_tracks_workers = tracks_workers
    backend.the_profiles = load_profiles([REPO / "profiles"])
    return backend
