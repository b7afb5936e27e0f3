"""helm-values/ssh.yaml starts the SSH service the way the service understands.

The Deployment's command line is parsed by the service's own application (an
unknown flag or a wrong value fails here, not in a cluster), its environment
names only variables the service reads, and every file it is told about is
mounted from the Secret or ConfigMap that holds it.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from tests.paths import REPO
from wbspawner.ssh.app import LDAP_ENV, SSHApp

VALUES = REPO / "helm-values" / "ssh.yaml"


def _objects() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(VALUES.read_text(encoding="utf-8")) if d]
    return {d["kind"]: d for d in docs}


def _container() -> dict[str, Any]:
    (container,) = _objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_command_is_the_services_own(monkeypatch: pytest.MonkeyPatch) -> None:
    command = _container()["command"]
    assert command[:3] == ["python", "-m", "wbspawner.ssh"]
    for env in _container()["env"]:
        monkeypatch.setenv(env["name"], env.get("value", "x"))
    app = SSHApp()
    app.parse_command_line(command[3:])
    assert (app.ip, app.port) == ("0.0.0.0", 2222)
    assert app.proxy_url == "http://proxy-public"
    assert not app.create_host_key  # the key comes from the Secret, never made
    assert app.api_url == "http://hub:8081/hub/api"
    assert app.api_token_file == "/etc/wbspawner/ssh/token"
    assert app.ldap_tls == "starttls"
    assert app.ldap_password_file == "/etc/wbspawner/ldap/bind-password"


def test_the_environment_names_only_what_the_service_reads() -> None:
    names = {e["name"] for e in _container()["env"]}
    service = {"JUPYTERHUB_API_URL", "WBSPAWNER_PROFILES"}
    assert names - service == {n for n in names if n.startswith(LDAP_ENV)}
    assert service <= names


def test_every_file_it_reads_is_mounted() -> None:
    container = _container()
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    files = [
        a.split("=", 1)[1]
        for a in container["command"]
        if a.startswith(("--host-key=", "--api-token-file="))
    ]
    files += [
        e["value"]
        for e in container["env"]
        if e["name"].endswith("_FILE") or e["name"] == "WBSPAWNER_PROFILES"
    ]
    for path in files:
        assert any(PurePosixPath(path).is_relative_to(m) for m in mounts), path


def test_the_service_reaches_the_pod_port() -> None:
    objects = _objects()
    (port,) = objects["Service"]["spec"]["ports"]
    assert port["port"] == 22 and port["targetPort"] == "ssh"
    (ingress,) = objects["NetworkPolicy"]["spec"]["ingress"]
    assert ingress["ports"] == [{"port": 2222, "protocol": "TCP"}]
