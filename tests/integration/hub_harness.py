"""Driving the real hub over HTTP as a browser would, for the hub tests.

:class:`HubUser` is one person's browser session against the proxy: the login
form, the spawn form (whose ``action`` carries the XSRF token, as in a browser),
and the REST API through a token the user creates for themself. The stack itself
(slapd, devcluster, node groups, JupyterHub + configurable-http-proxy) is
:class:`devcluster.demo.workbench.Workbench`, the same one ``make demo`` runs;
:func:`restart_hub` restarts its hub as an operator would (servers keep running);
:func:`crash_hub` kills it with SIGKILL (no cleanup runs) and :func:`start_hub_again`
starts one after a crash; :func:`dask_cluster` makes a user a Dask cluster
through the hub's proxy, as a notebook does. :func:`stack_on_profiles` runs a
module's own stack on the shipped profiles with some files replaced, and
:func:`logged_in` is a demo user's session, logged in.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests

from devcluster.demo.workbench import NAMESPACE, Kube, Workbench, wait_for_hub
from devcluster.services.chp import repo_root
from devcluster.services.descendants import descendants, reap, still_alive
from devcluster.services.procs import Proc, free_port

T = TypeVar("T")

_ACTION = re.compile(r'id="spawn_form"\s+action="([^"]+)"')
_PROFILE = re.compile(
    r'<input\b[^>]*\btype="radio"[^>]*\bname="profile"[^>]*\bvalue="([^"]+)"'
)
_ERROR = re.compile(r'class="spawn-error-msg[^"]*">(.*?)</p>', re.S)
_LOGIN_ERROR = re.compile(r'<p class="login_error">(.*?)</p>', re.S)


def _waits(timeout: float, what: str) -> Iterator[None]:
    """One step per wait between two checks; ``TimeoutError`` once time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        yield
    raise TimeoutError(f"{what}: not within {timeout:g} s")


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    waits = _waits(timeout, what)
    while not (result := check()):
        next(waits)
        time.sleep(interval)
    return result


async def eventually(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.01
) -> T:
    """:func:`wait_until` for async tests: sleeps without blocking the loop."""
    waits = _waits(timeout, what)
    while not (result := check()):
        next(waits)
        await asyncio.sleep(interval)
    return result


class HubUser:
    """One person's session with the hub through the proxy."""

    def __init__(self, url: str, name: str, password: str) -> None:
        self.url = url
        self.name = name
        self.password = password
        self.http = requests.Session()
        self.http.trust_env = False
        self.action: str | None = None
        self._token: str | None = None

    def login(self) -> requests.Response:
        """Log in through the login form; return the POST's response (no redirect)."""
        page = self.http.get(f"{self.url}/hub/login", timeout=10)
        page.raise_for_status()
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert xsrf, "the login form has no _xsrf field"
        return self.http.post(
            f"{self.url}/hub/login?next=",
            data={
                "username": self.name,
                "password": self.password,
                "_xsrf": html.unescape(xsrf.group(1)),
            },
            allow_redirects=False,
            timeout=30,
        )

    def form(self) -> str:
        """Return the spawn page's HTML (and remember its form's action)."""
        page = self.http.get(f"{self.url}/hub/spawn", timeout=30)
        page.raise_for_status()
        page.encoding = "utf-8"
        found = _ACTION.search(page.text)
        assert found, f"no spawn form on {page.url}: {page.text[:300]}"
        self.action = html.unescape(found.group(1))
        return page.text

    def spawn(self, data: Mapping[str, str | list[str]]) -> requests.Response:
        """Submit the spawn form with ``data`` (fields as a browser sends them)."""
        if self.action is None:
            self.form()
        assert self.action is not None
        response = self.http.post(
            self.url + self.action, data=data, allow_redirects=False, timeout=60
        )
        response.encoding = "utf-8"
        return response

    def token(self) -> str:
        """Return an API token of this user (created once, with the session)."""
        if self._token is None:
            # The home page sets the hub's XSRF cookie whatever the server's
            # state (the spawn page redirects while a spawn or stop is pending).
            self.http.get(f"{self.url}/hub/home", timeout=30).raise_for_status()
            xsrf = next((c.value for c in self.http.cookies if c.name == "_xsrf"), None)
            assert xsrf, "the hub's home page set no _xsrf cookie"
            response = self.http.post(
                f"{self.url}/hub/api/users/{self.name}/tokens",
                json={"note": "hub tests", "expires_in": 3600},
                headers={"X-XSRFToken": xsrf},
                timeout=10,
            )
            response.raise_for_status()
            self._token = str(response.json()["token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the hub REST API (``/hub/api`` + ``path``) with this user's token."""
        headers = {"Authorization": f"token {self.token()}"}
        return self.http.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs
        )

    def progress(self, timeout: float = 150) -> list[dict[str, Any]]:
        """Return the spawn's progress events, until ready or failed."""
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        with self.http.get(
            f"{self.url}/hub/api/users/{self.name}/server/progress",
            headers={"Authorization": f"token {self.token()}"},
            stream=True,
            timeout=(10, timeout),
        ) as response:
            response.raise_for_status()
            for line in response.iter_lines(chunk_size=None):
                if line.startswith(b"data:"):
                    events.append(json.loads(line[5:]))
                    if events[-1].get("ready") or events[-1].get("failed"):
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"spawn progress not done in {timeout:g} s")
        return events

    def server_status(self) -> requests.Response:
        """GET ``/user/<name>/api/status`` through the proxy, with the token."""
        return requests.get(
            f"{self.url}/user/{self.name}/api/status",
            headers={"Authorization": f"token {self.token()}"},
            allow_redirects=False,
            timeout=10,
        )

    def wait_ready(self, timeout: float = 120) -> requests.Response:
        """Wait until the server answers through the proxy; return that answer."""

        def ready() -> requests.Response | None:
            response = self.server_status()
            return response if response.status_code == 200 else None

        return wait_until(ready, timeout, f"{self.name}'s server answering", 0.5)

    def stop(self, kube: Kube, timeout: float = 60) -> None:
        """Stop the server through the REST API and wait until the pod is gone."""
        response = self.api("DELETE", f"/users/{self.name}/server")
        assert response.status_code in (202, 204), response.text
        wait_until(lambda: pod_of(kube, self.name) is None, timeout, "pod gone", 0.5)
        wait_until(
            lambda: not self.api("GET", f"/users/{self.name}").json()["server"],
            timeout,
            "server stopped in the hub",
        )


def server_model(user: HubUser) -> dict[str, Any]:
    """Return the user's default server as the hub's REST API shows it."""
    model = user.api("GET", f"/users/{user.name}")
    model.raise_for_status()
    return dict(model.json()["servers"].get("", {}))


def leave_stopped(bench: Workbench, user: HubUser) -> None:
    """Stop the user's server if one runs (after its spawn ended), so that the
    next test, in any order, starts from a stopped user; nothing while the
    hub is down."""
    if bench.hub is None or not bench.hub.running or bench.kube is None:
        return
    wait_until(
        lambda: server_model(user).get("pending") != "spawn",
        150,
        f"{user.name}'s spawn ended",
        1.0,
    )
    if server_model(user):
        user.stop(bench.kube)


def logged_in(bench: Workbench, name: str) -> HubUser:
    """Return a demo user's session, logged in with the password ``<name>-pw``."""
    user = HubUser(bench.url, name, f"{name}-pw")
    response = user.login()
    assert response.status_code == 302, response.text[:300]
    # The API token now: making one reads the XSRF token from the spawn form,
    # which a running server's redirect would hide once a test starts one.
    user.token()
    return user


@contextlib.contextmanager
def stack_on_profiles(
    state: Path, files: Mapping[str, str], **options: Any
) -> Iterator[Workbench]:
    """Run the demo's stack in ``state`` on a copy of the shipped profiles.

    ``files`` replaces (or adds) files of the copy by name; ``options`` are
    :class:`Workbench`'s keyword arguments. The stack gets a free port of its own,
    not the demo's 8000 (see tests/conftest.py), and is stopped on the way out.
    """
    shutil.copytree(repo_root() / "profiles", state / "profiles")
    for name, text in files.items():
        (state / "profiles" / name).write_text(text, encoding="utf-8")
    with Workbench(state, public_port=free_port(), **options) as workbench:
        yield workbench


def sizes_on(form: str) -> list[str]:
    """Return the size slugs offered on a spawn page, in order."""
    return _PROFILE.findall(form)


def error_on(page: str) -> str:
    """Return the error message shown on a spawn page ('' when none)."""
    found = _ERROR.search(page)
    return (
        html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""
    )


def login_error_on(page: str) -> str:
    """Return the error message shown on a login page ('' when none)."""
    found = _LOGIN_ERROR.search(page)
    return html.unescape(found.group(1)).strip() if found else ""


def pod_of(kube: Kube, user: str) -> dict[str, Any] | None:
    """Return the user's server pod, if it exists."""
    result: dict[str, Any] | None = kube.get(
        f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-{user}"
    )
    return result


def server_environ(bench: Workbench, user: str) -> dict[str, str]:
    """Return the environment the hub gave the user's server (its pod's spec)."""
    assert bench.kube is not None
    pod = pod_of(bench.kube, user)
    assert pod is not None, f"{user} has no server pod"
    (container,) = pod["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def pvc_of(kube: Kube, user: str) -> dict[str, Any] | None:
    """Return the user's home claim, if it exists."""
    result: dict[str, Any] | None = kube.get(
        f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims/home-{user}"
    )
    return result


def hub_log(bench: Workbench) -> str:
    """Return the hub's log so far."""
    return (bench.state_dir / "hub.log").read_text(errors="replace")


def edit_profiles(bench: Workbench, name: str, text: str) -> Path:
    """Write a profiles file of the running hub (the hub re-reads it by itself)."""
    path = bench.profiles_dir / name
    path.write_text(text, encoding="utf-8")
    return path


def environ_of(pid: int) -> dict[str, str]:
    """Return the environment a running process was started with (Linux)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def restart_hub(bench: Workbench, timeout: float = 90) -> None:
    """Stop the hub (and the proxy it started) by PID and start it again.

    The new hub gets the same command, environment (ports, crypt key, proxy
    token, Dask Gateway wiring) and state directory, so user sessions, tokens and
    running servers (``cleanup_servers`` is off) carry over, as after a restart
    of the hub pod.
    """
    old = bench.hub
    assert old is not None and old.running, "the hub is not running"
    environ = environ_of(old.pid)
    old.stop(timeout=15)
    start_hub_again(bench, old, environ, timeout)


def crash_hub(bench: Workbench, timeout: float = 10) -> dict[str, str]:
    """``kill -9`` the hub, as a crash would; return the environment it had.

    What the hub started (the proxy, managed services) ends with it on its own
    (their lifeline); this waits for that, and collects their exit status: the
    test run adopts orphans (``tests/process_leftovers.py``), and an orphan
    nobody reaps still holds its PID, which a new hub would take for a proxy
    still running.

    Args:
        bench: the stack.
        timeout: seconds the hub's children may take to end.

    Returns:
        The dead hub's environment, for :func:`start_hub_again`.
    """
    hub = bench.hub
    assert hub is not None and hub.running, "the hub is not running"
    environ = environ_of(hub.pid)
    children = {p.pid: p.command for p in descendants(hub.pid)}
    os.kill(hub.pid, signal.SIGKILL)
    hub.stop(timeout=5)  # reaps the hub itself
    wait_until(
        lambda: not still_alive(children),
        timeout,
        f"the dead hub's children {children}",
    )
    reap(children)
    return environ


def start_hub_again(
    bench: Workbench, old: Proc, environ: dict[str, str], timeout: float = 90
) -> None:
    """Start a hub like ``old`` (stopped or dead) with the environment it had."""
    bench.hub = Proc.start(
        old.argv,
        old.log_path,
        env=environ,
        inherit_env=False,
        cwd=bench.state_dir / "hub",
    )
    wait_for_hub(environ["WBSPAWNER_HUB_BIND_URL"], bench.url, bench.hub, timeout)


def user_gateway(bench: Workbench, token: str) -> Any:
    """Return a ``dask_gateway.Gateway`` as a user's server makes it (a context).

    Through the hub's proxy at the gateway service's prefix, with the user's
    hub API token.
    """
    from dask_gateway import Gateway, JupyterHubAuth  # heavy, and few tests use it

    assert bench.gateway is not None
    return Gateway(
        f"{bench.url}/services/dask-gateway",
        proxy_address=bench.gateway.hub_env["WBSPAWNER_DASK_GATEWAY_PROXY_ADDRESS"],
        auth=JupyterHubAuth(api_token=token),
    )


@contextlib.contextmanager
def dask_cluster(bench: Workbench, token: str) -> Iterator[str]:
    """Make a one-worker Dask cluster with the user's hub API token; yield its name.

    Through the hub's proxy at the gateway service's prefix, as ``dask_gateway``
    in a user's server does; the cluster is shut down on the way out.
    """
    with user_gateway(bench, token) as gateway:
        cluster = gateway.new_cluster(max_workers=1)
        try:
            yield cluster.name
        finally:
            cluster.shutdown()
