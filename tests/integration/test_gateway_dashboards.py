"""Dask dashboards answer only their owner and hub admins, on the real stack.

The demo's stack (slapd, devcluster, Dask Gateway, JupyterHub with
configurable-http-proxy, as :class:`devcluster.demo.workbench.Workbench` runs
it) with bob's server running and one Dask cluster of bob's. Every request goes
through the hub's public proxy, as a browser or a notebook sends it:

- nobody logged in: a browser is sent to the hub's login (OAuth), a client with
  a bad token gets 401;
- gina (a user, not an admin; see ``devcluster.services.ldap_seed``) gets 403,
  with her token and with her browser session;
- bob gets his dashboard with a token in each form clients send it
  (``token``, ``Bearer``, ``jupyterhub`` as ``dask_gateway`` sends it), with his
  server's own token (a notebook), and with his browser session after the OAuth
  round trip; alice (an admin) gets it too;
- the scheduler's websocket (``/eventstream``, the dashboard's only one without
  bokeh) opens for bob with a token or his browser's cookies and answers a
  ping; gina and nobody are refused before the upgrade;
- an unknown cluster is 404, and the gateway's own API still works through the
  same prefix (the cluster was made through it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from devcluster.demo.workbench import Workbench
from tests.integration.hub_harness import HubUser, dask_cluster, server_environ

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PREFIX = "/services/dask-gateway"
ROUTES = {
    # dashboard path → something only the real page has
    "info/main/workers.html": "Worker",
    "info/main/logs.html": "Logs",
    "json/identity.json": '"type": "Scheduler"',
    "metrics": "dask_scheduler_",
}


@dataclass
class Dashboards:
    """The running stack, bob's cluster and everyone's credentials."""

    bench: Workbench
    cluster: str
    tokens: dict[str, str]
    """User → API token (created through the hub with the user's session)."""
    sessions: dict[str, HubUser]
    """User → a logged-in browser session (cookies only)."""
    server_token: str
    """bob's server's own token, as his notebooks use it."""

    def url(self, path: str, cluster: str | None = None) -> str:
        return f"{self.bench.url}{PREFIX}/clusters/{cluster or self.cluster}/{path}"


def _anonymous() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["cpu16"], "zones": ["us-east-1a"], "warmer": False}


@pytest.fixture(scope="module")
def dash(workbench: Workbench) -> Iterator[Dashboards]:
    users = {
        name: HubUser(workbench.url, name, f"{name}-pw")
        for name in ("bob", "gina", "alice")
    }
    for user in users.values():
        assert user.login().status_code == 302
    tokens = {name: user.token() for name, user in users.items()}
    # bob's server runs, so the gateway's reaper leaves his cluster alone.
    bob = users["bob"]
    assert bob.spawn({"profile": "medium"}).status_code == 302
    bob.wait_ready(timeout=150)
    server_token = server_environ(workbench, "bob")["JUPYTERHUB_API_TOKEN"]
    with dask_cluster(workbench, tokens["bob"]) as cluster:
        yield Dashboards(workbench, cluster, tokens, users, server_token)


def _get(url: str, **kwargs: object) -> requests.Response:
    return _anonymous().get(url, allow_redirects=False, timeout=30, **kwargs)


# ---------------------------------------------------------------- plain HTTP


@pytest.mark.parametrize("path", list(ROUTES))
def test_nobody_is_sent_to_the_hub_login(dash: Dashboards, path: str) -> None:
    response = _get(dash.url(path))
    assert response.status_code == 302, response.text[:300]
    location = response.headers["Location"]
    assert urlsplit(location).path == "/hub/api/oauth2/authorize", location
    # Followed without a hub session, the OAuth flow ends on the login page.
    login = _anonymous().get(
        dash.bench.url + location, allow_redirects=False, timeout=30
    )
    assert login.status_code == 302
    assert urlsplit(login.headers["Location"]).path == "/hub/login"


@pytest.mark.parametrize("path", list(ROUTES))
def test_a_bad_token_gets_401(dash: Dashboards, path: str) -> None:
    response = _get(dash.url(path), headers={"Authorization": "token not-a-token"})
    assert response.status_code == 401, response.text[:300]
    assert ROUTES[path] not in response.text


@pytest.mark.parametrize("path", list(ROUTES))
def test_another_user_gets_403_with_a_token(dash: Dashboards, path: str) -> None:
    headers = {"Authorization": f"token {dash.tokens['gina']}"}
    response = _get(dash.url(path), headers=headers)
    assert response.status_code == 403, response.text[:300]
    assert ROUTES[path] not in response.text


@pytest.mark.parametrize("path", list(ROUTES))
def test_another_user_gets_403_in_the_browser(dash: Dashboards, path: str) -> None:
    response = dash.sessions["gina"].http.get(dash.url(path), timeout=30)
    assert response.status_code == 403, response.text[:300]
    assert ROUTES[path] not in response.text
    # She went through the hub's OAuth (on her first visit): the refusal is
    # about the cluster, not about who she is.
    assert "service-dask-gateway" in dash.sessions["gina"].http.cookies


@pytest.mark.parametrize("scheme", ["token", "Bearer", "jupyterhub"])
@pytest.mark.parametrize("path", list(ROUTES))
def test_the_owner_gets_his_dashboard_with_a_token(
    dash: Dashboards, path: str, scheme: str
) -> None:
    headers = {"Authorization": f"{scheme} {dash.tokens['bob']}"}
    response = _get(dash.url(path), headers=headers)
    assert response.status_code == 200, response.text[:300]
    assert ROUTES[path] in response.text


def test_the_owners_notebook_gets_the_dashboard(dash: Dashboards) -> None:
    headers = {"Authorization": f"token {dash.server_token}"}
    response = _get(dash.url("json/identity.json"), headers=headers)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["type"] == "Scheduler"


@pytest.mark.parametrize("path", list(ROUTES))
def test_the_owner_gets_his_dashboard_in_the_browser(
    dash: Dashboards, path: str
) -> None:
    response = dash.sessions["bob"].http.get(dash.url(path), timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert ROUTES[path] in response.text


@pytest.mark.parametrize("path", list(ROUTES))
def test_an_admin_gets_any_dashboard(dash: Dashboards, path: str) -> None:
    headers = {"Authorization": f"token {dash.tokens['alice']}"}
    assert _get(dash.url(path), headers=headers).status_code == 200
    response = dash.sessions["alice"].http.get(dash.url(path), timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert ROUTES[path] in response.text


def test_an_unknown_cluster_is_404(dash: Dashboards) -> None:
    headers = {"Authorization": f"token {dash.tokens['bob']}"}
    response = _get(dash.url("json/identity.json", "f" * 32), headers=headers)
    assert response.status_code == 404, response.text[:300]


def test_the_gateway_api_still_answers_through_the_prefix(dash: Dashboards) -> None:
    bob = {"Authorization": f"jupyterhub {dash.tokens['bob']}"}
    mine = _get(f"{dash.bench.url}{PREFIX}/api/v1/clusters/", headers=bob)
    assert mine.status_code == 200
    assert dash.cluster in mine.json()
    gina = {"Authorization": f"jupyterhub {dash.tokens['gina']}"}
    api = f"{dash.bench.url}{PREFIX}/api/v1/clusters/{dash.cluster}"
    hers = _get(api, headers=gina)
    assert hers.status_code == 403  # the gateway's own check, passed through


# ---------------------------------------------------------------- websockets


def _ws_url(dash: Dashboards, cluster: str | None = None) -> str:
    return "ws" + dash.url("eventstream", cluster).removeprefix("http")


async def _connect(url: str, headers: dict[str, str]) -> WebSocketClientConnection:
    request = HTTPRequest(url, headers=headers, connect_timeout=10, request_timeout=30)
    return await websocket_connect(request)


async def _ping_pong(conn: WebSocketClientConnection) -> dict[str, object]:
    await conn.write_message(json.dumps({"name": "ping"}))
    while True:
        message = await asyncio.wait_for(conn.read_message(), timeout=20)
        assert message is not None, "the websocket closed before the pong"
        data = json.loads(message)
        if data.get("name") == "pong":
            return dict(data)


def _browser_headers(dash: Dashboards, user: str) -> dict[str, str]:
    """The Cookie and Origin headers a browser sends with its websocket."""
    session = dash.sessions[user].http
    # A page load first: the OAuth round trip gives the service's cookie.
    session.get(dash.url("info/main/workers.html"), timeout=30)
    prepared = session.prepare_request(requests.Request("GET", dash.url("eventstream")))
    return {
        "Cookie": prepared.headers["Cookie"],
        "Origin": dash.bench.url,
        "Sec-Fetch-Mode": "websocket",
    }


async def test_the_owners_websocket_opens_with_a_token(dash: Dashboards) -> None:
    conn = await _connect(
        _ws_url(dash), {"Authorization": f"jupyterhub {dash.tokens['bob']}"}
    )
    try:
        assert (await _ping_pong(conn))["name"] == "pong"
    finally:
        conn.close()


async def test_the_owners_websocket_opens_with_his_browser_cookies(
    dash: Dashboards,
) -> None:
    conn = await _connect(_ws_url(dash), _browser_headers(dash, "bob"))
    try:
        assert (await _ping_pong(conn))["name"] == "pong"
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("who", "status"),
    [
        pytest.param("nobody", 401, id="nobody"),
        pytest.param("gina-token", 403, id="gina-token"),
        pytest.param("gina-browser", 403, id="gina-browser"),
    ],
)
async def test_websockets_of_others_are_refused(
    dash: Dashboards, who: str, status: int
) -> None:
    headers = {
        "nobody": lambda: {"Origin": dash.bench.url},
        "gina-token": lambda: {"Authorization": f"token {dash.tokens['gina']}"},
        "gina-browser": lambda: _browser_headers(dash, "gina"),
    }[who]()
    with pytest.raises(HTTPClientError) as refused:
        conn = await _connect(_ws_url(dash), headers)
        conn.close()
    assert refused.value.code == status


# ---------------------------------------------------------------- afterwards


def test_no_token_of_this_run_reaches_a_log(dash: Dashboards) -> None:
    """Runs last: every request above has been logged by now."""
    assert dash.bench.gateway is not None
    secrets = {f"{user}'s token": token for user, token in dash.tokens.items()}
    secrets["bob's server token"] = dash.server_token
    secrets["the service token"] = dash.bench.gateway.hub_env[
        "WBSPAWNER_DASK_GATEWAY_API_TOKEN"
    ]
    logs = sorted(dash.bench.state_dir.rglob("*.log"))
    assert any(p.name == "hub.log" for p in logs)
    found = [
        f"{path.name}: {what}"
        for path in logs
        for what, secret in secrets.items()
        if secret in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert found == []
