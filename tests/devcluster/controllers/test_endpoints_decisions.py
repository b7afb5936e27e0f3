"""Which pods serve a Service, as tables (the EndpointSlice and Endpoints
controllers' rules, Kubernetes 1.33)."""

from __future__ import annotations

from typing import Any

from devcluster.controllers.endpoints import decisions


def service(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "hub", "namespace": "jhub", "uid": "svc-uid"},
        "spec": {
            "selector": {"component": "hub"},
            "ports": [{"name": "hub", "port": 8081, "targetPort": "http"}],
            **spec,
        },
    }


def pod(
    name: str,
    ip: str | None = "127.0.1.5",
    ready: bool = True,
    labels: dict[str, str] | None = None,
    deleting: bool = False,
    phase: str = "Running",
    port_name: str = "http",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "jhub",
        "uid": f"{name}-uid",
        "labels": labels if labels is not None else {"component": "hub", "x": "y"},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if ip:
        status["podIP"] = ip
    return {
        "metadata": meta,
        "spec": {
            "nodeName": "core",
            "containers": [
                {
                    "name": "hub",
                    "ports": [{"name": port_name, "containerPort": 8081}],
                }
            ],
        },
        "status": status,
    }


def test_named_target_port_resolves_through_the_pods_container_ports():
    """targetPort by name: the container port of that name and protocol."""
    port = {"port": 80, "targetPort": "http", "protocol": "TCP"}
    assert decisions.resolve_port(port, pod("a")) == 8081
    assert decisions.resolve_port(port, pod("a", port_name="web")) is None
    assert decisions.resolve_port({"port": 80, "targetPort": 8000}, pod("a")) == 8000
    assert decisions.resolve_port({"port": 80}, pod("a")) == 80


def test_addresses_follow_the_selector_ip_and_readiness():
    """Selected pods with an IP that have not finished; ready/serving/terminating."""
    pods = [
        pod("ready"),
        pod("unready", ip="127.0.1.6", ready=False),
        pod("going", ip="127.0.1.7", deleting=True),
        pod("no-ip", ip=None),
        pod("done", phase="Succeeded"),
        pod("other", labels={"component": "proxy"}),
    ]
    found = {a.pod: a for a in decisions.addresses(service(), pods)}
    assert set(found) == {"ready", "unready", "going"}
    assert (found["ready"].ready, found["ready"].serving) == (True, True)
    assert (found["unready"].ready, found["unready"].serving) == (False, False)
    going = found["going"]
    assert (going.ready, going.serving, going.terminating) == (False, True, True)
    assert found["ready"].ports == (("hub", 8081, "TCP"),)


def test_publish_not_ready_addresses_makes_every_pod_ready():
    found = decisions.addresses(
        service(publishNotReadyAddresses=True), [pod("a", ready=False)]
    )
    assert found[0].ready


def test_endpoint_slice_shape():
    """One slice per port set, labelled with the Service and owned by it."""
    found = decisions.addresses(service(), [pod("a")])
    (slice_,) = decisions.endpoint_slices(service(), found)
    assert slice_["metadata"]["labels"] == {
        "kubernetes.io/service-name": "hub",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    assert slice_["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert slice_["addressType"] == "IPv4"
    assert slice_["ports"] == [{"name": "hub", "port": 8081, "protocol": "TCP"}]
    assert slice_["endpoints"] == [
        {
            "addresses": ["127.0.1.5"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": {
                "kind": "Pod",
                "namespace": "jhub",
                "name": "a",
                "uid": "a-uid",
            },
            "nodeName": "core",
        }
    ]


def test_a_service_without_pods_keeps_an_empty_slice():
    (slice_,) = decisions.endpoint_slices(service(), [])
    assert slice_["endpoints"] == [] and "ports" not in slice_


def test_endpoints_split_ready_and_not_ready_and_leave_terminating_out():
    pods = [pod("a"), pod("b", ip="127.0.1.6", ready=False), pod("c", deleting=True)]
    obj = decisions.endpoints(service(), decisions.addresses(service(), pods))
    (subset,) = obj["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == ["127.0.1.5"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["127.0.1.6"]
    assert subset["ports"] == [{"name": "hub", "port": 8081, "protocol": "TCP"}]
    assert obj["metadata"]["name"] == "hub"


def test_services_without_selector_are_not_managed():
    """A selector-less Service's endpoints (``kubernetes``) are its owner's."""
    assert not decisions.selects(service(selector=None))
