"""Running ``dask-gateway-server`` for the gateway tests, with a stand-in hub.

- ``running_gateway(state, config, env, active)``: the real gateway on loopback
  (local backend), its profiles the shipped ones plus tight limits for ``lim``,
  with a stand-in for the hub API (``FakeHub``) that reports ``active`` users.
- ``TEST_CONFIG``: a gateway configuration whose authenticator takes the shared
  ``PASSWORD`` and gives each user the ``GROUPS`` the hub would.
- ``PREFIX``: the path the gateway serves under (the hub service's).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from dask_gateway import BasicAuth, Gateway

from devcluster.services.procs import Proc, free_port, wait_for_http
from tests.paths import REPO
from wbspawner.costs.accounting import UsageRecord, open_db

PASSWORD = "gateway-test-pw"
PREFIX = "/services/dask-gateway"
GROUPS = {
    "bob": ["jupyter-users"],
    "gina": ["jupyter-users", "gpu-users"],
    "lim": ["jupyter-users"],
    "dave": ["jupyter-users"],
}

# A test authenticator: the shared password of SimpleAuthenticator, plus the
# groups the hub would report (SimpleAuthenticator knows no groups).
TEST_CONFIG = """\
import json
import os

from dask_gateway_server.auth import SimpleAuthenticator
from dask_gateway_server.models import User

from wbspawner.gateway.config import configure_from_env

c = get_config()  # noqa: F821
configure_from_env(c, os.environ)
GROUPS = json.loads(os.environ["TEST_GROUPS"])


class GroupsAuthenticator(SimpleAuthenticator):
    async def authenticate(self, request):
        user = await super().authenticate(request)
        return User(user.name, groups=GROUPS.get(user.name, []))


c.DaskGateway.authenticator_class = GroupsAuthenticator
"""


def write_profiles(target: Path) -> Path:
    """The example profiles, plus tight limits for the user ``lim``."""
    shutil.copytree(REPO / "profiles", target)
    dask_file = target / "30-dask.yaml"
    data = yaml.safe_load(dask_file.read_text(encoding="utf-8"))
    data["dask"]["user_limits"] = {"lim": {"max_clusters": 1, "max_workers": 3}}
    dask_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


# ------------------------------------------------------------ hub API stand-in


class FakeHub:
    """``GET /hub/api/users?state=active`` as JupyterHub pages it (one per page)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.active: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                hub.requests.append(
                    {"path": url.path, "query": query, **dict(self.headers)}
                )
                if self.headers.get("Authorization") != f"token {hub.token}":
                    return self._send(403, {"message": "bad token"})
                if url.path != "/hub/api/users" or query.get("state") != "active":
                    return self._send(404, {"message": "not here"})
                names = sorted(hub.active)
                offset = int(query.get("offset", 0))
                page = names[offset : offset + 1]  # the hub may cap the page size
                following = offset + 1 if offset + 1 < len(names) else None
                self._send(
                    200,
                    {
                        "items": [{"name": n, "servers": {"": {}}} for n in page],
                        "_pagination": {
                            "offset": offset,
                            "limit": 1,
                            "total": len(names),
                            "next": None
                            if following is None
                            else {"offset": following, "limit": 1, "url": ""},
                        },
                    },
                )

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass
class GatewayProc:
    proc: Proc
    address: str
    proxy_address: str
    hub: FakeHub
    db_url: str

    def client(self, user: str) -> Gateway:
        return Gateway(
            self.address,
            proxy_address=self.proxy_address,
            auth=BasicAuth(user, PASSWORD),
        )

    def records(self, name: str) -> list[UsageRecord]:
        """The accounting records of the cluster ``name``, oldest first."""
        with open_db(self.db_url)() as session:
            query = session.query(UsageRecord).filter(UsageRecord.name == name)
            return query.order_by(UsageRecord.id).all()


@contextlib.contextmanager
def running_gateway(
    state: Path, config: str, env: dict[str, str], active: set[str] = frozenset()
) -> Iterator[GatewayProc]:
    """Run ``dask-gateway-server`` on loopback with ``config`` until the block ends.

    Args:
        state: an empty folder for its profiles, config file, log and database.
        config: the text of its ``dask_gateway_config.py``.
        env: environment on top of the local mode, the shared password, the
            ports, a fresh API token, the cost database in ``state``.
        active: users the stand-in hub reports with a running server.

    Yields:
        The running gateway; it is stopped (by its PID) when the block ends.
    """
    profiles = write_profiles(state / "profiles")
    config_file = state / "dask_gateway_config.py"
    config_file.write_text(config, encoding="utf-8")
    http, tcp, api = free_port(), free_port(), free_port()
    token = secrets.token_hex(16)
    full_env = {
        "WBSPAWNER_MODE": "local",
        "WBSPAWNER_PROFILES": str(profiles),
        "WBSPAWNER_DASK_GATEWAY_AUTH": "simple",
        "WBSPAWNER_DASK_GATEWAY_PASSWORD": PASSWORD,
        "WBSPAWNER_DASK_GATEWAY_API_BIND": f"127.0.0.1:{api}",
        "WBSPAWNER_DASK_GATEWAY_HTTP_BIND": f"127.0.0.1:{http}",
        "WBSPAWNER_DASK_GATEWAY_TCP_BIND": f"127.0.0.1:{tcp}",
        "WBSPAWNER_DASK_GATEWAY_API_TOKEN": token,
        "WBSPAWNER_COST_DB_URL": f"sqlite:///{state / 'costs.sqlite'}",
        "TEST_GROUPS": json.dumps(GROUPS),
        **env,
    }
    address = f"http://127.0.0.1:{http}{PREFIX}"
    with FakeHub(token) as hub:
        hub.active = set(active)
        full_env["WBSPAWNER_DASK_GATEWAY_HUB_API_URL"] = hub.url
        server = Path(sys.executable).parent / "dask-gateway-server"
        proc = Proc.start(
            [str(server), "-f", str(config_file)], state / "gw.log", env=full_env
        )
        try:
            wait_for_http(f"{address}/api/health", timeout=30, proc=proc)
            yield GatewayProc(
                proc,
                address,
                f"gateway://127.0.0.1:{tcp}",
                hub,
                full_env["WBSPAWNER_COST_DB_URL"],
            )
        finally:
            proc.stop(timeout=15)
