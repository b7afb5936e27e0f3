"""The Service environment variables and the hosts file a pod gets (pure).

The variables follow the kubelet's ``pkg/kubelet/envvars`` (Kubernetes 1.33);
the hosts file is the kubelet's managed ``/etc/hosts`` plus devcluster's
stand-in for cluster DNS.
"""

from __future__ import annotations

from typing import Any

from devcluster.kubelet import podspec
from devcluster.kubelet.hosts import hosts_text, service_entries


def svc(name: str, namespace: str, ip: str, *ports: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterIP": ip, "ports": list(ports)},
    }


SERVICES = [
    svc("kubernetes", "default", "127.100.0.1", {"name": "https", "port": 443}),
    svc(
        "proxy-api",
        "jhub",
        "127.100.0.7",
        {"name": "http-api", "port": 8001, "protocol": "TCP"},
        {"name": "metrics", "port": 9000},
    ),
    svc("hub", "jhub", "127.100.0.8", {"port": 8081}),
    svc("headless", "jhub", "None", {"port": 80}),
    svc("elsewhere", "other", "127.100.0.9", {"port": 80}),
]


def test_service_variables_of_the_pods_namespace_and_the_api():
    env = podspec.service_env(SERVICES, "jhub")
    assert env["KUBERNETES_SERVICE_HOST"] == "127.100.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["PROXY_API_SERVICE_HOST"] == "127.100.0.7"
    assert env["PROXY_API_SERVICE_PORT"] == "8001"  # the first port
    assert env["PROXY_API_SERVICE_PORT_HTTP_API"] == "8001"
    assert env["PROXY_API_SERVICE_PORT_METRICS"] == "9000"
    assert env["HUB_SERVICE_HOST"] == "127.100.0.8"
    assert env["HUB_SERVICE_PORT"] == "8081"
    assert not any(k.startswith(("HEADLESS_", "ELSEWHERE_")) for k in env)


def test_docker_link_variables():
    env = podspec.service_env(SERVICES, "jhub")
    assert env["PROXY_API_PORT"] == "tcp://127.100.0.7:8001"
    assert env["PROXY_API_PORT_8001_TCP"] == "tcp://127.100.0.7:8001"
    assert env["PROXY_API_PORT_8001_TCP_PROTO"] == "tcp"
    assert env["PROXY_API_PORT_8001_TCP_PORT"] == "8001"
    assert env["PROXY_API_PORT_8001_TCP_ADDR"] == "127.100.0.7"
    assert env["PROXY_API_PORT_9000_TCP"] == "tcp://127.100.0.7:9000"


def test_enable_service_links_false_keeps_only_the_api():
    env = podspec.service_env(SERVICES, "jhub", links=False)
    assert {k.split("_")[0] for k in env} == {"KUBERNETES"}


def test_container_env_wins_over_service_variables_and_may_refer_to_them():
    pod = {"metadata": {"namespace": "jhub"}, "spec": {}}
    container = {
        "env": [
            {"name": "HUB_SERVICE_PORT", "value": "9999"},
            {"name": "HUB_URL", "value": "http://$(HUB_SERVICE_HOST):8081"},
        ]
    }
    services = podspec.service_env(SERVICES, "jhub")
    env = podspec.container_env(
        pod, container, lambda *_: None, "127.0.1.2", "127.0.0.1", services
    )
    assert env["HUB_SERVICE_PORT"] == "9999"
    assert env["HUB_URL"] == "http://127.100.0.8:8081"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.100.0.1"


def test_hosts_file_names_services_as_cluster_dns_does():
    slices = [
        {
            "metadata": {
                "namespace": "jhub",
                "labels": {"kubernetes.io/service-name": "headless"},
            },
            "endpoints": [
                {"addresses": ["127.0.1.9"], "conditions": {"ready": True}},
                {"addresses": ["127.0.1.10"], "conditions": {"ready": False}},
            ],
        }
    ]
    entries = dict(
        (names[0], (ip, names))
        for ip, names in service_entries(SERVICES, slices, "jhub")
    )
    ip, names = entries["hub.jhub.svc.cluster.local"]
    assert ip == "127.100.0.8"
    assert set(names) == {
        "hub.jhub.svc.cluster.local",
        "hub.jhub.svc",
        "hub.jhub",
        "hub",
    }
    ip, names = entries["elsewhere.other.svc.cluster.local"]
    assert "elsewhere" not in names  # another namespace: only qualified names
    assert entries["headless.jhub.svc.cluster.local"][0] == "127.0.1.9"
    pod = {
        "metadata": {"name": "web-1", "namespace": "jhub"},
        "spec": {"hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db", "db.local"]}]},
    }
    entries_jhub = service_entries(SERVICES, slices, "jhub")
    text = hosts_text(pod, "127.0.1.3", entries_jhub, machine="build-host")
    lines = text.splitlines()
    assert lines[0] == "# Kubernetes-managed hosts file."
    assert "127.0.0.1\tlocalhost" in lines
    # the pod's name, and the name its processes get from gethostname() (no
    # UTS namespace here: the machine's), both name the pod's own IP
    assert "127.0.1.3\tweb-1 build-host" in lines
    assert "10.0.0.1\tdb\tdb.local" in lines
    assert "127.100.0.8\thub.jhub.svc.cluster.local hub.jhub.svc hub.jhub hub" in lines
