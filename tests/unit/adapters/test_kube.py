"""The Kubernetes adapter against a small in-process API on loopback.

``FakeApi`` is an aiohttp app that answers like the API server where it matters
to the adapter: ``Status`` bodies with ``reason`` and ``message``, ``limit`` /
``continue`` pages, merge patches, 404 on missing objects, 409 on existing ones.
It records every request (method, path, query, headers, body), so each test can
check what went over the wire.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.unit.web_support import serve
from wbspawner.adapters.kube import Kube, api_path
from wbspawner.errors import KubeError

TOKEN = "kube-token-123"


class FakeApi:
    """Objects by path; lists page at most ``page_size`` items at a time."""

    def __init__(self, page_size: int = 2) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.page_size = page_size
        self.refuse: dict[str, int] = {}
        """Path → status to answer with instead (a ``Status`` body)."""

    @staticmethod
    def status(code: int, reason: str, message: str) -> web.Response:
        body = {"kind": "Status", "code": code, "reason": reason, "message": message}
        return web.json_response(body, status=code)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": body,
            }
        )
        path = request.path
        if path in self.refuse:
            code = self.refuse[path]
            return self.status(code, "Forbidden", f"{path} is forbidden")
        if request.method == "GET" and path in self.objects:
            return web.json_response(self.objects[path])
        if request.method == "GET" and any(
            k.startswith(path + "/") for k in self.objects
        ):
            return self.page(path, request.query)
        if request.method == "POST":
            name = body["metadata"]["name"]
            if f"{path}/{name}" in self.objects:
                return self.status(409, "AlreadyExists", f'"{name}" already exists')
            self.objects[f"{path}/{name}"] = body
            return web.json_response(body, status=201)
        if path not in self.objects:
            return self.status(404, "NotFound", f"{path} not found")
        if request.method == "PATCH":
            merged = {**self.objects[path]}
            for key, value in body.items():
                merged[key] = {**merged.get(key, {}), **value}
            self.objects[path] = merged
            return web.json_response(merged)
        if request.method == "PUT":
            self.objects[path] = body
            return web.json_response(body)
        if request.method == "DELETE":
            return web.json_response(self.objects.pop(path))
        return self.status(405, "MethodNotAllowed", "no")

    def page(self, path: str, query: Any) -> web.Response:
        names = sorted(k for k in self.objects if k.startswith(path + "/"))
        limit = min(int(query.get("limit") or len(names)), self.page_size)
        start = int(query.get("continue") or 0)
        items = [self.objects[k] for k in names[start : start + limit]]
        meta = {"continue": str(start + limit)} if start + limit < len(names) else {}
        return web.json_response({"items": items, "metadata": meta})


def kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""\
apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{server}"}}}}]
users: [{{name: admin, user: {{token: {TOKEN}}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: admin}}}}]
current-context: fake
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def api_and_kube(tmp_path: Path) -> AsyncIterator[tuple[FakeApi, Kube]]:
    api = FakeApi()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    async with serve(app) as url:
        kube = await Kube.connect(
            str(kubeconfig(tmp_path, url)), timeout=5, forbidden_hint="ask for RBAC"
        )
        try:
            yield api, kube
        finally:
            await kube.close()


def pvc(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {}}


# --------------------------------------------------------------------- paths
@pytest.mark.parametrize(
    ("args", "kw", "path"),
    [
        pytest.param(("nodes",), {}, "/api/v1/nodes", id="cluster-list"),
        pytest.param(("nodes", None, "n1"), {}, "/api/v1/nodes/n1", id="cluster-obj"),
        pytest.param(
            ("pods", "jhub", "jupyter-bob"),
            {},
            "/api/v1/namespaces/jhub/pods/jupyter-bob",
            id="namespaced",
        ),
        pytest.param(
            ("networkpolicies", "dask"),
            {"group": "networking.k8s.io/v1"},
            "/apis/networking.k8s.io/v1/namespaces/dask/networkpolicies",
            id="group",
        ),
        pytest.param(
            ("pods", "a/b", "c d"),
            {},
            "/api/v1/namespaces/a%2Fb/pods/c%20d",
            id="quoted",
        ),
    ],
)
def test_api_path(args: tuple[Any, ...], kw: dict[str, str], path: str) -> None:
    assert api_path(*args, **kw) == path


# ------------------------------------------------------------------- verbs
async def test_reads_writes_and_sends_the_kubeconfig_token(
    api_and_kube: tuple[FakeApi, Kube],
) -> None:
    api, kube = api_and_kube
    assert await kube.get_pvc("jhub", "home-bob") is None, "404 reads as None"
    await kube.create_pvc("jhub", pvc("home-bob"))
    assert (await kube.get_pvc("jhub", "home-bob") or {})["metadata"]["name"] == (
        "home-bob"
    )
    patched = await kube.patch_pvc(
        "jhub", "home-bob", {"metadata": {"labels": {"a": "1"}}}
    )
    assert patched["metadata"]["labels"] == {"a": "1"}
    patch = next(r for r in api.requests if r["method"] == "PATCH")
    assert patch["headers"]["Content-Type"] == "application/merge-patch+json"
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in api.requests)
    await kube.delete_pod("jhub", "jupyter-bob")  # missing: no error
    delete = [r for r in api.requests if r["method"] == "DELETE"][-1]
    assert delete["query"] == {"gracePeriodSeconds": "0"}
    await kube.delete_pvc("jhub", "home-bob")
    assert await kube.get_pvc("jhub", "home-bob") is None


async def test_lists_follow_every_page(api_and_kube: tuple[FakeApi, Kube]) -> None:
    api, kube = api_and_kube
    for i in range(5):
        await kube.create_pvc("jhub", pvc(f"home-{i}"))
    names = [p["metadata"]["name"] for p in await kube.list_pvcs("jhub")]
    assert names == [f"home-{i}" for i in range(5)]
    lists = [r["query"] for r in api.requests if r["method"] == "GET"]
    assert [q.get("continue") for q in lists] == [None, "2", "4"]
    assert all(q["limit"] == "500" for q in lists)


async def test_pods_using_a_claim_skip_finished_ones(
    api_and_kube: tuple[FakeApi, Kube],
) -> None:
    api, kube = api_and_kube

    def pod(name: str, claim: str, phase: str) -> dict[str, Any]:
        volume = {"name": "home", "persistentVolumeClaim": {"claimName": claim}}
        return {
            "metadata": {"name": name},
            "spec": {"volumes": [volume]},
            "status": {"phase": phase},
        }

    for body in (
        pod("b", "home-bob", "Running"),
        pod("a", "home-bob", "Pending"),
        pod("c", "home-bob", "Succeeded"),
        pod("d", "home-ann", "Running"),
    ):
        await kube.create_pod("jhub", body)
    assert await kube.pods_using_claim("jhub", "home-bob") == ["a", "b"]


async def test_priority_class_is_created_once(
    api_and_kube: tuple[FakeApi, Kube],
) -> None:
    _, kube = api_and_kube
    body = {"metadata": {"name": "low"}, "value": -10}
    assert await kube.ensure_priority_class(body) is True
    assert await kube.ensure_priority_class(body) is False


# ------------------------------------------------------------------ errors
async def test_conflict_and_refusal_carry_status_reason_and_hint(
    api_and_kube: tuple[FakeApi, Kube],
) -> None:
    api, kube = api_and_kube
    await kube.create_pv(pvc("pv-1"))
    with pytest.raises(KubeError, match="POST /api/v1/persistentvolumes: 409 Already"):
        await kube.create_pv(pvc("pv-1"))
    api.refuse["/api/v1/persistentvolumes/pv-1"] = 403
    with pytest.raises(
        KubeError,
        match=r"the Kubernetes API refused GET /api/v1/persistentvolumes/pv-1 "
        r"\(403 Forbidden\): .* is forbidden; ask for RBAC",
    ) as info:
        await kube.get_pv("pv-1")
    assert (info.value.status, info.value.reason) == (403, "Forbidden")


async def test_no_answer_is_bounded_by_the_timeout(silent_server: str) -> None:
    from kubernetes_asyncio.client import ApiClient, Configuration

    async with ApiClient(Configuration(host=silent_server)) as client:
        kube = Kube.of(client, timeout=0.3)
        with pytest.raises(KubeError, match="no answer .* within 0.3 s") as info:
            await kube.list_nodes()
        assert info.value.status == 0
        await kube.close()  # not its client: leaves it open
        assert not client.rest_client.pool_manager.closed


async def test_unreachable_api_and_bad_kubeconfig_are_kube_errors(
    tmp_path: Path,
) -> None:
    kube = await Kube.connect(str(kubeconfig(tmp_path, "http://127.0.0.1:9")))
    try:
        with pytest.raises(KubeError, match="cannot reach the Kubernetes API at"):
            await kube.get_node("n1")
    finally:
        await kube.close()
    with pytest.raises(KubeError, match="cannot use kubeconfig .*missing"):
        await Kube.connect(str(tmp_path / "missing"))


async def test_of_accepts_an_api_object_holding_a_client() -> None:
    class Api:
        api_client = object()

    assert Kube.of(Api()).api_client is Api.api_client
