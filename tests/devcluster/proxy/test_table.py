"""kube-proxy's service table: frontends and their backends (pure)."""

from __future__ import annotations

from typing import Any

from devcluster.proxy.table import service_table


def service(name: str, ip: str, *ports: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "jhub"},
        "spec": {"clusterIP": ip, "ports": list(ports), **spec},
    }


def slice_for(name: str, ports: list[dict[str, Any]], *endpoints: dict[str, Any]):
    return {
        "metadata": {
            "namespace": "jhub",
            "labels": {"kubernetes.io/service-name": name},
        },
        "ports": ports,
        "endpoints": list(endpoints),
    }


def endpoint(ip: str, ready: bool = True, terminating: bool = False) -> dict[str, Any]:
    return {
        "addresses": [ip],
        "conditions": {"ready": ready, "serving": True, "terminating": terminating},
    }


def test_each_tcp_port_of_a_cluster_ip_is_a_frontend():
    services = [
        service(
            "hub",
            "127.100.0.5",
            {"name": "hub", "port": 8081},
            {"name": "dns", "port": 53, "protocol": "UDP"},
        ),
        service("headless", "None", {"port": 80}),
        service("outside", "", {"port": 80}, type="ExternalName"),
    ]
    slices = [slice_for("hub", [{"name": "hub", "port": 8081}], endpoint("127.0.1.4"))]
    table = service_table(services, slices)
    assert list(table) == [("127.100.0.5", 8081)]
    entry = table[("127.100.0.5", 8081)]
    assert (entry.namespace, entry.service, entry.port_name) == ("jhub", "hub", "hub")
    assert entry.backends == (("127.0.1.4", 8081),)


def test_ready_endpoints_else_terminating_serving_ones():
    """ProxyTerminatingEndpoints: serving terminating endpoints when none is ready."""
    services = [service("web", "127.100.0.6", {"name": "http", "port": 80})]
    ports = [{"name": "http", "port": 8080}]
    both = [
        slice_for(
            "web",
            ports,
            endpoint("127.0.1.1"),
            endpoint("127.0.1.2", ready=False, terminating=True),
        )
    ]
    assert service_table(services, both)[("127.100.0.6", 80)].backends == (
        ("127.0.1.1", 8080),
    )
    going = [
        slice_for("web", ports, endpoint("127.0.1.2", ready=False, terminating=True))
    ]
    assert service_table(services, going)[("127.100.0.6", 80)].backends == (
        ("127.0.1.2", 8080),
    )
    none = [slice_for("web", ports, endpoint("127.0.1.3", ready=False))]
    assert service_table(services, none)[("127.100.0.6", 80)].backends == ()
