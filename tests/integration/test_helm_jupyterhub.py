"""helm-values/jupyterhub.yaml rendered by the real z2jh chart with the real helm.

Every rendered object passes strict validation; the network policies, security
contexts, resources and credential files an operator expects are asserted on the
rendered manifests;
and the hub configuration the chart ships (its ``extraConfig``, taken from the
rendered Secret) is executed against a traitlets ``Config`` with the hub
Deployment's environment, and must configure wbspawner's spawner.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.integration.helm_support import (
    FAKE_DB_URLS,
    HUB_NAMESPACE,
    IMAGE_HUB_CONFIG,
    K8S,
    REPO,
    hub_environ,
    hub_extra_config,
    hub_values,
    one,
    render_hub,
)

pytestmark = pytest.mark.integration

METADATA = "169.254.169.254"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render_hub()


def test_every_rendered_object_is_strictly_valid(rendered):
    kinds = {d["kind"] for d in rendered}
    assert {"Deployment", "Secret", "NetworkPolicy", "Service"} <= kinds
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S, strict=True)


def test_user_placeholder_and_user_scheduler_are_absent(rendered):
    names = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    for kind, name in names:
        assert "user-scheduler" not in name, (kind, name)
        assert "placeholder" not in name, (kind, name)
    assert not [d for d in rendered if d["kind"] in ("DaemonSet", "StatefulSet")]
    assert not [d for d in rendered if d["kind"] == "PriorityClass"]


def _egress_blocks(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        peer["ipBlock"]
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    ]


def _dns_only(rule: dict[str, Any]) -> bool:
    ports = {p.get("port") for p in rule.get("ports", [])}
    return bool(ports) and ports <= {53}


def _reachable(policy: dict[str, Any], address: str) -> bool:
    """Whether any ipBlock egress rule lets the pod reach ``address``."""
    ip = ipaddress.ip_address(address)
    for block in _egress_blocks(policy):
        if ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except", [])
        ):
            return True
    return False


@pytest.mark.parametrize("name", ["singleuser", "hub", "proxy"])
def test_no_pod_reaches_instance_metadata(rendered, name):
    policy = one(rendered, "NetworkPolicy", name)
    assert "Egress" in policy["spec"]["policyTypes"]
    assert not _reachable(policy, METADATA)
    assert _reachable(policy, "1.1.1.1")  # the internet stays reachable


@pytest.mark.parametrize(
    "address", ["10.0.12.7", "172.20.0.10", "192.168.3.4", METADATA]
)
def test_user_servers_reach_no_in_cluster_address_by_ip(rendered, address):
    policy = one(rendered, "NetworkPolicy", "singleuser")
    ip_rules = [
        rule
        for rule in policy["spec"]["egress"]
        if any("ipBlock" in p for p in rule.get("to", [])) and not _dns_only(rule)
    ]
    assert ip_rules, "expected the internet egress rule"
    assert not _reachable({"spec": {"egress": ip_rules}}, address)


def test_user_servers_reach_only_hub_proxy_and_gateway_pods(rendered):
    policy = one(rendered, "NetworkPolicy", "singleuser")
    selectors = []
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            if "podSelector" in peer:
                selectors.append(peer["podSelector"]["matchLabels"])
    components = {
        s.get("component") or s.get("app.kubernetes.io/component") for s in selectors
    }
    assert components == {"hub", "proxy", "autohttps", "dask-dashboards", "traefik"}
    gateway = [s for s in selectors if s.get("app.kubernetes.io/name")]
    # The gateway's HTTP side through the dashboards front only (its own
    # policy and test: test_helm_dashboards.py); traefik for schedulers only.
    assert gateway == [
        {
            "app.kubernetes.io/name": "wbspawner",
            "app.kubernetes.io/component": "dask-dashboards",
        },
        {
            "app.kubernetes.io/name": "dask-gateway",
            "app.kubernetes.io/component": "traefik",
        },
    ]
    traefik = [
        [p["port"] for p in rule["ports"]]
        for rule in policy["spec"]["egress"]
        for peer in rule.get("to", [])
        if peer.get("podSelector", {})
        .get("matchLabels", {})
        .get("app.kubernetes.io/component")
        == "traefik"
    ]
    assert traefik == [[8786]]
    # Nothing may select every pod (an empty selector would open the cluster).
    assert all(selectors)


def test_hub_admits_user_servers_by_their_kubespawner_labels(rendered):
    policy = one(rendered, "NetworkPolicy", "hub")
    peers = [p for rule in policy["spec"]["ingress"] for p in rule.get("from", [])]
    assert {
        "podSelector": {
            "matchLabels": {"app": "jupyterhub", "component": "singleuser-server"}
        }
    } in peers
    gateway = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": "dask-gateway"}
        },
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "dask-gateway",
                "app.kubernetes.io/component": "gateway",
            }
        },
    }
    assert gateway in peers
    assert all(p.get("podSelector") for p in peers)  # no namespace-wide opening


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("name", ["hub", "proxy"])
def test_core_pods_run_unprivileged(rendered, name):
    deployment = one(rendered, "Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    pod_seccomp = pod.get("securityContext", {}).get("seccompProfile")
    for container in _containers(deployment):
        sc = container["securityContext"]
        assert (sc.get("seccompProfile") or pod_seccomp) == {"type": "RuntimeDefault"}
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["runAsUser"] != 0


@pytest.mark.parametrize("name", ["hub", "proxy"])
def test_core_pods_have_requests_limits_and_read_only_roots(rendered, name):
    (container,) = one(rendered, "Deployment", name)["spec"]["template"]["spec"][
        "containers"
    ]
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) == {"cpu", "memory"}, bound
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_hub_writes_only_an_empty_dir_tmp(rendered):
    """Its state is in PostgreSQL: no volume of its own pins it to one zone."""
    pod = one(rendered, "Deployment", "hub")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = pod["containers"]
    writable = {
        m["mountPath"]: volumes[m["name"]]
        for m in container["volumeMounts"]
        if not m.get("readOnly")
        and not {"configMap", "secret"} & set(volumes[m["name"]])
    }
    assert set(writable) == {"/tmp"}
    assert "emptyDir" in writable["/tmp"]
    assert not [d for d in rendered if d["kind"] == "PersistentVolumeClaim"]


def test_the_hub_and_accounting_databases_come_from_a_secret(rendered):
    """PostgreSQL, its URLs (with their passwords) in the Secret wbspawner-db,
    mounted as files: nothing of them in the values or the pod's environment."""
    db = hub_values(rendered)["hub"]["db"]
    assert db["type"] == "postgres"
    assert not db.get("url") and not db.get("password")
    pod = one(rendered, "Deployment", "hub")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "WBSPAWNER_HUB_DB_URL" not in env and "WBSPAWNER_COST_DB_URL" not in env
    (volume,) = [v for v in pod["volumes"] if v["name"] == "wbspawner-db"]
    assert volume["secret"]["secretName"] == "wbspawner-db"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "wbspawner-db"]
    assert mount["readOnly"] is True
    files = {
        i["key"]: f"{mount['mountPath']}/{i['path']}" for i in volume["secret"]["items"]
    }
    assert env["WBSPAWNER_HUB_DB_URL_FILE"]["value"] == files["hub-url"]
    assert env["WBSPAWNER_COST_DB_URL_FILE"]["value"] == files["cost-url"]


def test_only_the_hub_gets_a_service_account_token(rendered):
    proxy = one(rendered, "Deployment", "proxy")["spec"]["template"]["spec"]
    assert proxy["automountServiceAccountToken"] is False
    assert proxy["securityContext"]["runAsNonRoot"] is True
    spawner = hub_values(rendered)["hub"]["config"]["KubeSpawner"]
    assert spawner["automount_service_account_token"] is False
    assert not hub_values(rendered)["singleuser"].get("serviceAccountName")


def test_hub_credentials_are_mounted_files(rendered):
    """Secrets reach the hub as variables only where no file can replace them."""
    pod = one(rendered, "Deployment", "hub")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    from_secrets = sorted(
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    )
    # The chart's own proxy token, and directory names (not credentials).
    ldap = (
        "bind-dn-template",
        "group-dn-template",
        "lookup-user",
        "server",
        "user-search-base",
    )
    assert from_secrets == [
        ("hub", "hub.config.ConfigurableHTTPProxy.auth_token"),
        *[("wbspawner-ldap", key) for key in ldap],
    ]
    secret_volumes = {
        v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v
    }
    mounts = {
        m["mountPath"]: secret_volumes[m["name"]]
        for m in container["volumeMounts"]
        if m["name"] in secret_volumes
    }
    files = {
        e["name"]: e["value"] for e in container["env"] if e["name"].endswith("_FILE")
    }
    assert set(files) >= {
        "WBSPAWNER_LDAP_BIND_PASSWORD_FILE",
        "WBSPAWNER_DASK_GATEWAY_API_TOKEN_FILE",
        "WBSPAWNER_HUB_DB_URL_FILE",
        "WBSPAWNER_COST_DB_URL_FILE",
    }
    for name, path in files.items():
        (secret,) = [
            s for m, s in mounts.items() if path.startswith(m.rstrip("/") + "/")
        ]
        assert secret in (
            "wbspawner-ldap",
            "wbspawner-dask-gateway",
            "wbspawner-db",
        ), name


def test_hub_image_is_ours_and_user_defaults_are_locked_down(rendered):
    (container,) = one(rendered, "Deployment", "hub")["spec"]["template"]["spec"][
        "containers"
    ]
    versions = (REPO / "images" / "versions.env").read_text(encoding="utf-8")
    assert f"WBSPAWNER_VERSION={container['image'].rpartition(':')[2]}" in versions
    assert container["image"].startswith("ghcr.io/wbspawner/hub:")
    spawner = hub_values(rendered)["hub"]["config"]["KubeSpawner"]
    csc = spawner["container_security_context"]
    assert csc["runAsNonRoot"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert csc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spawner["pod_security_context"]["runAsNonRoot"] is True


def test_secrets_come_only_from_kubernetes_secrets(rendered):
    (container,) = one(rendered, "Deployment", "hub")["spec"]["template"]["spec"][
        "containers"
    ]
    for env in container["env"]:
        name = env["name"]
        secretish = any(w in name for w in ("PASSWORD", "TOKEN", "SECRET", "KEY"))
        if secretish and not name.endswith("_FILE"):
            assert "value" not in env, f"{name} carries a literal value"
    by_name = {e["name"]: e for e in container["env"]}
    ldap = by_name["WBSPAWNER_LDAP_SERVER"]["valueFrom"]["secretKeyRef"]
    assert ldap["name"] == "wbspawner-ldap"
    volumes = {
        v["name"]: v
        for v in one(rendered, "Deployment", "hub")["spec"]["template"]["spec"][
            "volumes"
        ]
    }
    assert volumes["wbspawner-ldap"]["secret"]["secretName"] == "wbspawner-ldap"


def test_profiles_config_map_is_mounted_for_hot_reload(rendered):
    deployment = one(rendered, "Deployment", "hub")
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["wbspawner-profiles"]["configMap"]["name"] == "wbspawner-profiles"
    (container,) = pod["containers"]
    mounts = [m for m in container["volumeMounts"] if m["name"] == "wbspawner-profiles"]
    # A subPath mount would never see an edit of the ConfigMap.
    assert mounts == [
        {
            "name": "wbspawner-profiles",
            "readOnly": True,
            "mountPath": "/etc/wbspawner/profiles",
        }
    ]


def test_culling_is_wbspawners_own(rendered, tmp_path):
    """The chart's culler is off; the hub runs wbspawner's, which reaches
    servers through the proxy's public Service."""
    assert hub_values(rendered)["cull"]["enabled"] is False
    env = hub_environ(rendered, tmp_path, HUB_NAMESPACE)
    assert float(env["WBSPAWNER_CULLER_INTERVAL"]) > 0
    assert env["WBSPAWNER_CULLER_PROXY_URL"] == "http://proxy-public"


def test_rendered_hub_config_loads_wbspawner(rendered, tmp_path, monkeypatch):
    extra = hub_values(rendered)["hub"]["extraConfig"]
    assert list(extra) == ["10-wbspawner"]
    dockerfile = (REPO / "images" / "hub" / "Dockerfile").read_text(encoding="utf-8")
    assert f"COPY jupyterhub_config.py {IMAGE_HUB_CONFIG}\n" in dockerfile
    c = hub_extra_config(rendered, tmp_path, monkeypatch)

    assert c.JupyterHub.spawner_class == "workbench"
    assert (
        c.JupyterHub.authenticator_class
        == "wbspawner.hub.login.WorkbenchLDAPAuthenticator"
    )
    from importlib.metadata import entry_points

    (ep,) = entry_points(group="jupyterhub.spawners", name="workbench")
    assert ep.value == "wbspawner.hub.spawner:WorkbenchSpawner"
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.api_url == "http://proxy-api:8001"
    assert c.JupyterHub.hub_connect_url == "http://hub:8081"
    assert c.KubeSpawner.namespace == HUB_NAMESPACE
    assert c.LDAPAuthenticator.server_address == "ldap.example.org"
    assert c.Authenticator.enable_auth_state is True
    # the databases named by the mounted Secret wbspawner-db
    assert c.JupyterHub.db_url == FAKE_DB_URLS["WBSPAWNER_HUB_DB_URL_FILE"]
    assert c.WorkbenchSpawner.cost_db_url == FAKE_DB_URLS["WBSPAWNER_COST_DB_URL_FILE"]
    source = c.WorkbenchSpawner.profiles_source()
    assert source.current().sizes, "the profiles mounted from the ConfigMap"


CHART_ETC = "/usr/local/etc/jupyterhub"
"""Where the chart mounts its config files, ConfigMap and Secret into the hub."""
CURL = 'AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")'
_PROBE = """
import json, sys
from traitlets.config.loader import PyFileConfigLoader
c = PyFileConfigLoader("jupyterhub_config.py", path=sys.argv[1]).load_config()
print(json.dumps({
    "spawner_class": c.JupyterHub.spawner_class,
    "authenticator_class": c.JupyterHub.authenticator_class,
    "should_start": c.ConfigurableHTTPProxy.should_start,
    "api_url": c.ConfigurableHTTPProxy.api_url,
    "hub_connect_url": c.JupyterHub.hub_connect_url,
    "namespace": c.KubeSpawner.namespace,
    "crypt_keys": len(c.CryptKeeper["keys"]),
    "csc": c.KubeSpawner.container_security_context,
    "profiles": type(c.WorkbenchSpawner.profiles_source()).__name__,
    "init_containers": [
        getattr(x, "name", None) or x["name"]
        for x in (c.KubeSpawner["init_containers"]
                  if "init_containers" in c.KubeSpawner else [])
    ],
}))
"""


def _chart_etc(rendered: list[dict[str, Any]], root: Path) -> None:
    """Lay out the hub pod's /usr/local/etc/jupyterhub under ``root``."""

    def local(text: str) -> str:
        text = text.replace(CHART_ETC, str(root))
        return text.replace(IMAGE_HUB_CONFIG, str(REPO / "jupyterhub_config.py"))

    data = one(rendered, "ConfigMap", "hub")["data"]
    (root / "config").mkdir(parents=True)
    for key, text in data.items():
        (root / "config" / key).write_text(text, encoding="utf-8")
    config = data["jupyterhub_config.py"]
    # The hub image installs pycurl (asserted below); the test venv does not.
    assert CURL in config
    config = config.replace(CURL, "pass")
    (root / "jupyterhub_config.py").write_text(local(config), encoding="utf-8")
    (root / "z2jh.py").write_text(local(data["z2jh.py"]), encoding="utf-8")
    (root / "secret").mkdir()
    for key, value in one(rendered, "Secret", "hub")["data"].items():
        text = base64.b64decode(value).decode()
        (root / "secret" / key).write_text(local(text), encoding="utf-8")


def test_chart_hub_config_with_our_values_loads_wbspawner(rendered, tmp_path):
    """The chart's own jupyterhub_config.py, then our extraConfig, as the hub runs."""
    dockerfile = (REPO / "images" / "hub" / "Dockerfile").read_text(encoding="utf-8")
    assert '"pycurl==${PYCURL_VERSION}"' in dockerfile
    # The chart's culler is off (test_culling_is_wbspawners_own): none installed.
    assert "jupyterhub-idle-culler==" not in dockerfile
    root = tmp_path / "etc"
    _chart_etc(rendered, root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WBSPAWNER_")}
    env.update(hub_environ(rendered, tmp_path, HUB_NAMESPACE))
    # Kubernetes sets these for the chart's Services.
    env.update(
        HUB_SERVICE_PORT="8081",
        PROXY_API_SERVICE_PORT="8001",
        PROXY_PUBLIC_SERVICE_PORT="80",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["spawner_class"] == "workbench"
    assert (
        got["authenticator_class"] == "wbspawner.hub.login.WorkbenchLDAPAuthenticator"
    )
    assert got["should_start"] is False
    assert got["api_url"] == "http://proxy-api:8001"
    assert got["hub_connect_url"] == "http://hub:8081"
    assert got["namespace"] == HUB_NAMESPACE
    assert got["crypt_keys"] >= 1  # auth state (uid/gid) is encrypted
    assert got["csc"]["capabilities"] == {"drop": ["ALL"]}
    assert got["profiles"] == "ProfilesSource"
    # No privileged root init container (the chart's iptables metadata block).
    assert got["init_containers"] == []
