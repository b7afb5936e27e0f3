"""No token, password or key in any log the end-to-end runs leave.

Convention: every integration run writes its process logs as ``*.log`` files
(``hub.log``, ``devcluster.log``, ...) under pytest's session temporary
directory (``tmp_path_factory``), as :class:`devcluster.demo.workbench.Workbench` does.
This module runs its own short login cycle on a real stack (every demo user
logs in, a wrong password is tried, a user creates an API token, calls the
REST API, starts a server and stops it), then scans

- its own stack's logs for every secret of that run: the demo passwords, the
  wrong password, the hub's auth-state crypt key and proxy token (read from the
  hub process's environment), the cookie secret, the user's API token and
  the server's API token;
- every ``*.log`` of the session (the other end-to-end runs, e.g. the hub
  tests, when they ran before in the same session) for the demo passwords,
  which are the same in every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devcluster.demo.workbench import Workbench
from devcluster.services.ldap_seed import DEMO_USERS
from tests.integration.hub_harness import HubUser, environ_of, server_environ

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

WRONG_PASSWORD = "not-alices-pw-7f3a9c"
"""A failed login's password: must not be logged either."""


def log_files(root: Path) -> list[Path]:
    """Return every log file under ``root`` (``*.log`` and files named ``log``)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and (p.suffix == ".log" or p.name == "log")
    )


def find_secrets(files: list[Path], secrets: dict[str, str]) -> list[str]:
    """Return ``file: what`` for every secret that occurs in one of the files."""
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for what, secret in secrets.items():
            assert len(secret) >= 6, f"{what}: too short to scan for"
            if secret in text:
                found.append(f"{path}: {what}")
    return found


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["cpu16"], "zones": ["us-east-1b"], "capacity_grace_s": 1.0}


@pytest.fixture(scope="module")
def run_secrets(workbench: Workbench) -> dict[str, str]:
    """Do a login cycle; return every secret it involved, by what it is."""
    secrets = {f"password of {u.uid}": u.password for u in DEMO_USERS}
    secrets["wrong password"] = WRONG_PASSWORD
    for user in DEMO_USERS:
        response = HubUser(workbench.url, user.uid, user.password).login()
        assert response.status_code in (302, 403), (user.uid, response.status_code)
    wrong = HubUser(workbench.url, "alice", WRONG_PASSWORD).login()
    assert wrong.status_code == 403
    bob = HubUser(workbench.url, "bob", "bob-pw")
    assert bob.login().status_code == 302
    bob.form()
    secrets["bob's API token"] = bob.token()
    assert bob.api("GET", "/users/bob").status_code == 200
    # A server start and stop: the server gets its own hub API token.
    response = bob.spawn({"profile": "medium", "profile-option-medium--image": "scipy"})
    assert response.status_code == 302, response.text[:300]
    bob.wait_ready(timeout=150)
    server_env = server_environ(workbench, "bob")
    secrets["bob's server API token"] = server_env["JUPYTERHUB_API_TOKEN"]
    assert workbench.kube is not None
    bob.stop(workbench.kube)
    assert workbench.hub is not None and workbench.hub.running
    env = environ_of(workbench.hub.pid)
    secrets["JUPYTERHUB_CRYPT_KEY"] = env["JUPYTERHUB_CRYPT_KEY"]
    secrets["CONFIGPROXY_AUTH_TOKEN"] = env["CONFIGPROXY_AUTH_TOKEN"]
    cookie = workbench.state_dir / "hub" / "jupyterhub_cookie_secret"
    secrets["cookie secret"] = cookie.read_text(encoding="utf-8").strip()
    return secrets


def test_this_runs_logs_hold_no_secret(workbench: Workbench, run_secrets):
    files = log_files(workbench.state_dir)
    hub_log = workbench.state_dir / "hub.log"
    assert hub_log in files
    # The scan reads the real log: the logins above are in it.
    text = hub_log.read_text(encoding="utf-8", errors="replace")
    assert "bob" in text and "alice" in text
    assert find_secrets(files, run_secrets) == []


def test_no_log_of_the_session_holds_a_demo_password(
    workbench: Workbench, run_secrets, tmp_path_factory: pytest.TempPathFactory
):
    # `make demo` prints the logins on purpose (test_demo_cli keeps that output
    # in demo.log); every other log must not hold them.
    files = [
        f for f in log_files(tmp_path_factory.getbasetemp()) if f.name != "demo.log"
    ]
    assert workbench.state_dir / "hub.log" in files
    passwords = {f"password of {u.uid}": u.password for u in DEMO_USERS}
    assert find_secrets(files, passwords) == []


def test_the_scan_finds_a_planted_secret(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hub.log").write_text("login ok\nkey=s3cr3t-value\n")
    (tmp_path / "other.txt").write_text("s3cr3t-value\n")
    files = log_files(tmp_path)
    assert files == [tmp_path / "sub" / "hub.log"]
    assert find_secrets(files, {"the key": "s3cr3t-value"}) == [
        f"{tmp_path / 'sub' / 'hub.log'}: the key"
    ]
    with pytest.raises(AssertionError, match="too short"):
        find_secrets(files, {"empty": ""})
