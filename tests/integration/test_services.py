"""The local real parts: slapd, process control, moto, configurable-http-proxy."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import ldap3
import pytest

from devcluster.services import chp, ldap, procs
from devcluster.services.chp import CHP_VERSION, chp_command
from devcluster.services.descendants import still_alive
from devcluster.services.ldap import DEMO_USERS, LdapServer
from devcluster.services.moto_server import MotoServer
from devcluster.services.procs import Proc, ProcessExitedError, free_port, started

pytestmark = pytest.mark.integration


def _bind(server: LdapServer, dn: str, password: str) -> bool:
    conn = ldap3.Connection(
        ldap3.Server(server.host, port=server.port, connect_timeout=2), dn, password
    )
    try:
        return bool(conn.bind())
    finally:
        conn.unbind()


def _groups_of(server: LdapServer, uid: str) -> set[str]:
    """Group names whose ``member`` is the user, searched anonymously."""
    conn = ldap3.Connection(ldap3.Server(server.host, port=server.port))
    assert conn.bind()
    try:
        conn.search(
            f"ou=groups,{server.base_dn}",
            f"(member={server.user_dn(uid)})",
            attributes=["cn"],
        )
        return {str(entry.cn) for entry in conn.entries}
    finally:
        conn.unbind()


# ---------------------------------------------------------------- slapd


@pytest.mark.parametrize("user", [pytest.param(u, id=u.uid) for u in DEMO_USERS])
def test_demo_user_binds_with_password(
    ldap_server: LdapServer, user: ldap.DemoUser
) -> None:
    assert _bind(ldap_server, ldap_server.user_dn(user.uid), user.password)


def test_wrong_password_is_refused(ldap_server: LdapServer) -> None:
    assert not _bind(ldap_server, ldap_server.user_dn("bob"), "alice-pw")


@pytest.mark.parametrize(
    ("uid", "groups"),
    [
        pytest.param("alice", {"jupyter-users", "jupyter-admins"}, id="alice"),
        pytest.param("bob", {"jupyter-users"}, id="bob"),
        pytest.param("gina", {"jupyter-users", "gpu-users"}, id="gina"),
        pytest.param("carol", set(), id="carol-in-none"),
    ],
)
def test_group_membership_is_searchable(
    ldap_server: LdapServer, uid: str, groups: set[str]
) -> None:
    assert _groups_of(ldap_server, uid) == groups


def test_memberof_and_posix_attributes(ldap_server: LdapServer) -> None:
    with ldap_server.admin_connection() as conn:
        conn.search(
            ldap_server.user_dn("gina"),
            "(objectClass=posixAccount)",
            "BASE",
            attributes=["memberOf", "uidNumber", "gidNumber", "homeDirectory"],
        )
        entry = conn.entries[0]
    assert set(entry.memberOf.values) == {
        ldap_server.group_dn("jupyter-users"),
        ldap_server.group_dn("gpu-users"),
    }
    assert (entry.uidNumber.value, entry.gidNumber.value) == (10003, 100)
    assert entry.homeDirectory.value == "/home/gina"


def test_people_hold_ssh_keys_of_the_openssh_lpk_schema(
    ldap_server: LdapServer,
) -> None:
    """An admin puts keys in an entry; anyone may read them; none are left."""
    keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGina gina@a", "ssh-rsa AAAAB3Nza g@b"]
    ldap_server.set_ssh_keys("gina", keys)
    try:
        server = ldap3.Server(ldap_server.host, port=ldap_server.port)
        with ldap3.Connection(server, auto_bind=True) as anonymous:
            anonymous.search(
                ldap_server.user_dn("gina"),
                "(objectClass=ldapPublicKey)",
                "BASE",
                attributes=["sshPublicKey"],
            )
            values = anonymous.entries[0].sshPublicKey.values
        assert sorted(v.decode() if isinstance(v, bytes) else v for v in values) == (
            sorted(keys)
        )
    finally:
        ldap_server.set_ssh_keys("gina", [])


def test_restart_keeps_data_and_port(tmp_path: Path) -> None:
    server = LdapServer(tmp_path / "slapd")
    try:
        server.start()
        port = server.port
        server.set_password("bob", "changed-pw")
        server.add_user("dave", "dave-pw", 10005, ["gpu-users"])
        server.stop()
        assert not _port_open(port)
        server.start()
        assert server.port == port
        assert _bind(server, server.user_dn("bob"), "changed-pw")
        assert not _bind(server, server.user_dn("bob"), "bob-pw")
        assert _groups_of(server, "dave") == {"gpu-users"}
        assert sorted(server.group_members("gpu-users")) == [
            server.user_dn("dave"),
            server.user_dn("gina"),
        ]
    finally:
        server.stop()


def test_second_slapd_on_a_busy_port_fails_with_its_log(
    ldap_server: LdapServer, tmp_path: Path
) -> None:
    other = LdapServer(tmp_path / "other", port=ldap_server.port)
    with pytest.raises(ProcessExitedError, match="Address already in use"):
        other.start()
    assert other.proc is None


def test_missing_slapd_names_the_setup_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ldap, "SLAPD", str(tmp_path / "no-slapd"))
    with pytest.raises(RuntimeError, match=r"scripts/setup-system\.sh"):
        LdapServer(tmp_path / "state").start()


# ---------------------------------------------------------------- processes


def _port_open(port: int) -> bool:
    try:
        procs.wait_for_port("127.0.0.1", port, timeout=0)
    except TimeoutError:
        return False
    return True


def _children_pids(pid_file: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if pid_file.exists():
            lines = pid_file.read_text().split()
            if len(lines) == count:
                return [int(x) for x in lines]
        time.sleep(0.02)
    raise TimeoutError(f"{pid_file} did not list {count} pids")


def test_stop_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    script = (
        f"sleep 300 & echo $! >> {pid_file}; sleep 300 & echo $! >> {pid_file}; wait"
    )
    proc = Proc.start(["sh", "-c", script], tmp_path / "log")
    try:
        children = _children_pids(pid_file, 2)
        assert still_alive(children) == children
    finally:
        code = proc.stop(timeout=5)
    assert code == -15
    assert not still_alive(children)


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    script = f'trap "" TERM; sleep 300 & echo $! >> {pid_file}; wait'
    proc = Proc.start(["sh", "-c", script], tmp_path / "log")
    try:
        (child,) = _children_pids(pid_file, 1)
    finally:
        started_at = time.monotonic()
        code = proc.stop(timeout=0.5)
    assert code == -9
    assert 0.5 <= time.monotonic() - started_at < 5
    assert not still_alive([child])


def test_wait_for_port_times_out_with_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(TimeoutError, match=rf"nothing listens on 127\.0\.0\.1:{port}"):
        procs.wait_for_port("127.0.0.1", port, timeout=0.3)


def test_wait_for_port_error_carries_the_log_tail(tmp_path: Path) -> None:
    port = free_port()
    argv = ["sh", "-c", "echo starting-but-never-listening; sleep 30"]
    proc = Proc.start(argv, tmp_path / "log")
    try:
        with pytest.raises(TimeoutError, match="starting-but-never-listening"):
            procs.wait_for_port("127.0.0.1", port, timeout=0.5, proc=proc)
    finally:
        proc.stop()


def test_wait_stops_when_the_process_exits(tmp_path: Path) -> None:
    argv = ["sh", "-c", "echo config is broken >&2; exit 3"]
    with pytest.raises(ProcessExitedError, match=r"code 3(.|\n)*config is broken"):
        with started(argv, tmp_path / "log", port=("127.0.0.1", free_port())):
            pass


def test_started_waits_for_http_and_stops_by_pid(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    url = f"http://127.0.0.1:{port}/"
    with started(argv, tmp_path / "log", cwd=tmp_path, ready_url=url) as proc:
        assert procs.http_status(url + "missing") == 404
        with pytest.raises(TimeoutError, match=r"last: status 200"):
            procs.wait_for_http(url, timeout=0.3, expect_status=201, proc=proc)
    assert proc.returncode is not None
    assert not _port_open(port)


# ---------------------------------------------------------------- moto


def test_moto_serves_ec2_on_loopback(moto: MotoServer) -> None:
    assert moto.endpoint_url.startswith("http://127.0.0.1:")
    ec2 = moto.client("ec2")
    tag = {"Key": "wbspawner.io/test", "Value": "moto-loopback"}
    created = ec2.create_volume(
        AvailabilityZone="us-east-1b",
        Size=20,
        VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": [tag]}],
    )
    found = ec2.describe_volumes(
        Filters=[{"Name": "tag:wbspawner.io/test", "Values": ["moto-loopback"]}]
    )["Volumes"]
    assert [v["VolumeId"] for v in found] == [created["VolumeId"]]
    assert ec2.meta.region_name == "us-east-1"


def test_moto_client_ignores_the_aws_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "aws-config"
    broken.write_text("[default]\nregion = eu-west-1\nnot an ini line\n")
    with MotoServer() as server:
        monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(broken))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(broken))
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        sts = server.client("sts")
        monkeypatch.undo()  # moto itself (the server side) reads the environment
        assert sts.get_caller_identity()["Account"] == "123456789012"
        assert sts.meta.region_name == "us-east-1"


def test_moto_reset_wipes_state(moto: MotoServer) -> None:
    ec2 = moto.client("ec2")
    ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)
    assert ec2.describe_volumes()["Volumes"] != []
    moto.reset()
    assert ec2.describe_volumes()["Volumes"] == []


# ------------------------------------------------------- configurable-http-proxy


def test_chp_command_runs() -> None:
    command = chp_command()
    assert Path(command[0]).is_file()
    done = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == CHP_VERSION == chp.chp_version()


def test_chp_serves_its_api(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    argv = [*chp_command(), "--ip", "127.0.0.1", "--port", str(port)]
    argv += ["--api-ip", "127.0.0.1", "--api-port", str(api_port)]
    env = {"CONFIGPROXY_AUTH_TOKEN": "test-token"}
    api = f"http://127.0.0.1:{api_port}/api/routes"
    with started(argv, tmp_path / "chp.log", env=env, ready_url=api, expect_status=403):
        assert procs.http_status(f"http://127.0.0.1:{port}/anything") == 404


def test_chp_command_names_the_setup_script_when_missing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"scripts/setup-system\.sh"):
        chp_command(tmp_path)


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 0 < port < 65536
