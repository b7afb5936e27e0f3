"""SSH and SFTP into a user's server, on the real stack.

slapd (with the openssh-lpk schema; bob's and carol's keys put in their
entries as an admin would), devcluster, JupyterHub with the SSH service it
starts (``python -m wbspawner.ssh``), and Debian's OpenSSH client (``ssh``,
``sftp``) or asyncssh's as the person at the other end. bob logs in with the
key of his directory entry, his server is started for him (his default size),
and runs his commands as his LDAP uid; a file he copies with SFTP is in his
server's contents API (what JupyterLab's file browser lists); his hub token
works as a password; a wrong key, a wrong token and carol (not in a group
of the hub) are refused, carol with a message saying why.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh
import pytest
import requests

from tests.integration.hub_harness import HubUser, server_model

if TYPE_CHECKING:
    from devcluster.demo.workbench import Workbench
    from devcluster.services.ldap import LdapServer

pytestmark = pytest.mark.integration

BOB_UID = 10002
"""bob's uidNumber in the demo directory."""


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    # bob's default size (medium) runs on cpu16; nothing else is needed.
    return {
        "pools": ["cpu16"],
        "zones": ["us-east-1b"],
        "warmer": False,
        "culler_interval": None,
        "ssh": True,
    }


@pytest.fixture(scope="module")
def bench(workbench: Workbench) -> Workbench:
    return workbench


def _key(path: Path, ldap: LdapServer | None = None, uid: str = "") -> Path:
    """Write a new Ed25519 key to ``path``; put its public half in ``uid``'s entry."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"{uid or 'x'}@test")
    key.write_private_key(str(path))
    path.chmod(0o600)
    if ldap is not None:
        ldap.set_ssh_keys(uid, [key.export_public_key("openssh").decode().strip()])
    return path


@pytest.fixture(scope="module")
def keys(
    ldap_server: LdapServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    """Private key files: bob's and carol's (in their entries), and a stranger's."""
    folder = tmp_path_factory.mktemp("ssh-keys")
    made = {
        "bob": _key(folder / "bob", ldap_server, "bob"),
        "carol": _key(folder / "carol", ldap_server, "carol"),
        "wrong": _key(folder / "wrong"),
    }
    yield made
    # the session's directory is shared: leave it without keys
    ldap_server.set_ssh_keys("bob", [])
    ldap_server.set_ssh_keys("carol", [])


def _ssh_options(bench: Workbench, key: Path) -> list[str]:
    return [
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=10",
        "-i",
        str(key),
    ]


def ssh(
    bench: Workbench, user: str, key: Path, command: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run ``ssh -p PORT user@127.0.0.1 command`` with Debian's OpenSSH client."""
    binary = shutil.which("ssh")
    assert binary, "ssh not found: run scripts/setup-system.sh (openssh-client)"
    argv = [binary, *_ssh_options(bench, key), "-p", str(bench.ssh_port)]
    argv += [f"{user}@127.0.0.1", command]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def sftp(
    bench: Workbench, user: str, key: Path, batch: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run ``sftp -b - -P PORT user@127.0.0.1`` with ``batch`` as its commands."""
    binary = shutil.which("sftp")
    assert binary, "sftp not found: run scripts/setup-system.sh (openssh-client)"
    argv = [binary, *_ssh_options(bench, key), "-P", str(bench.ssh_port), "-b", "-"]
    argv.append(f"{user}@127.0.0.1")
    return subprocess.run(
        argv, input=batch, capture_output=True, text=True, timeout=timeout
    )


def contents(user: HubUser, path: str = "") -> dict[str, Any]:
    """Return the user's server's contents model of ``path`` (JupyterLab's view)."""
    response = requests.get(
        f"{user.url}/user/{user.name}/api/contents/{path}",
        headers={"Authorization": f"token {user.token()}"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


def test_bob_comes_in_with_his_ldap_key(
    bench: Workbench, bob: HubUser, keys: dict[str, Path], tmp_path: Path
) -> None:
    """His server starts for him; he runs as his uid; SFTP files show in JupyterLab."""
    if server_model(bob):
        bob.stop(bench.kube)  # type: ignore[arg-type]
    first = ssh(bench, "bob", keys["bob"], "id -u")
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"{BOB_UID}\n"
    assert "your server is not running: starting it with your default size" in (
        first.stderr
    )
    # the default size of the shipped profiles
    assert server_model(bob)["user_options"]["profile"] == "medium"

    local = tmp_path / "results.csv"
    local.write_text("a,b\n1,2\n")
    copied = sftp(
        bench,
        "bob",
        keys["bob"],
        f"mkdir data\nput {local} data/results.csv\nls -l data\n",
    )
    assert copied.returncode == 0, copied.stderr
    assert "results.csv" in copied.stdout
    listed = {m["name"]: m for m in contents(bob, "data")["content"]}
    assert listed["results.csv"]["size"] == len("a,b\n1,2\n")

    # a terminal: ls writes columns unless told one name a line
    home = ssh(bench, "bob", keys["bob"], "ls -1 ~ && cat ~/data/results.csv; exit 3")
    assert home.returncode == 3, home.stderr
    *names, first_row, second_row = home.stdout.splitlines()
    assert set(names) == {m["name"] for m in contents(bob)["content"]}
    assert "data" in names
    assert (first_row, second_row) == ("a,b", "1,2")
    back = tmp_path / "back.csv"
    fetched = sftp(bench, "bob", keys["bob"], f"get data/results.csv {back}\n")
    assert fetched.returncode == 0, fetched.stderr
    assert back.read_text() == "a,b\n1,2\n"


def test_a_wrong_key_is_refused(bench: Workbench, keys: dict[str, Path]) -> None:
    refused = ssh(bench, "bob", keys["wrong"], "id -u", timeout=60)
    assert refused.returncode == 255
    assert "Permission denied (publickey,password)" in refused.stderr
    assert refused.stdout == ""


def test_carol_is_refused_and_told_why(bench: Workbench, keys: dict[str, Path]) -> None:
    """Her key is right, but she is in none of the hub's groups."""
    refused = ssh(bench, "carol", keys["carol"], "id -u", timeout=60)
    assert refused.returncode == 255
    assert "carol is not in a group allowed to use this hub." in refused.stderr
    assert "jupyter-users" in refused.stderr
    assert "Permission denied" in refused.stderr


async def _with_password(bench: Workbench, password: str, command: str) -> Any:
    async with asyncssh.connect(
        "127.0.0.1",
        bench.ssh_port,
        username="bob",
        password=password,
        client_keys=None,
        known_hosts=None,
        agent_path=None,
        preferred_auth="password",
    ) as conn:
        return await asyncio.wait_for(conn.run(command), 240)


async def test_bob_s_hub_token_is_a_password(bench: Workbench, bob: HubUser) -> None:
    done = await _with_password(bench, bob.token(), "echo $((6 * 7))")
    assert done.exit_status == 0
    assert done.stdout == "42\n"
    with pytest.raises(asyncssh.PermissionDenied):
        await _with_password(bench, "not-a-token", "true")


async def test_an_interactive_shell_follows_the_window(
    bench: Workbench, bob: HubUser
) -> None:
    """A terminal session: the size the client asks for, typing, exit."""
    async with asyncssh.connect(
        "127.0.0.1",
        bench.ssh_port,
        username="bob",
        password=bob.token(),
        client_keys=None,
        known_hosts=None,
        agent_path=None,
    ) as conn:
        process = await conn.create_process(term_type="xterm", term_size=(91, 37))
        process.stdin.write("stty size; exit\n")
        output = await asyncio.wait_for(process.stdout.read(), 240)
        await process.wait_closed()
    assert "37 91" in output
