"""One adapter per outside system: read from the source tree of ``wbspawner``.

import-linter keeps kubernetes_asyncio and aiohttp inside ``wbspawner.adapters``
(pyproject.toml); these checks add what a contract cannot say: one definition of
the Kubernetes error, one Kubernetes client, one hub API client.
"""

from __future__ import annotations

import ast
from functools import cache

from tests.paths import REPO

PACKAGE = REPO / "wbspawner"
HTTP_CLIENTS = (
    "aiohttp",
    "http.client",
    "httpx",
    "kubernetes_asyncio",
    "requests",
    "tornado.curl_httpclient",
    "tornado.httpclient",
    "tornado.simple_httpclient",
    "urllib.request",
)
"""Libraries that send HTTP requests (kubernetes_asyncio through aiohttp)."""


@cache
def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def uses(tree: ast.Module, libraries: tuple[str, ...]) -> bool:
    return any(
        name == lib or name.startswith(lib + ".")
        for name in imported(tree)
        for lib in libraries
    )


def strings(tree: ast.Module) -> list[str]:
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_the_tree_is_read() -> None:
    assert {"wbspawner.errors", "wbspawner.adapters.kube"} <= set(modules())


def test_exactly_one_module_defines_the_kubernetes_error() -> None:
    defining = [
        name
        for name, tree in modules().items()
        if any(
            isinstance(n, ast.ClassDef) and n.name == "KubeError"
            for n in ast.walk(tree)
        )
    ]
    assert defining == ["wbspawner.errors"]


def test_exactly_one_module_makes_kubernetes_clients() -> None:
    clients = [n for n, t in modules().items() if uses(t, ("kubernetes_asyncio",))]
    assert clients == ["wbspawner.adapters.kube"]


def test_exactly_one_module_talks_to_the_hub_api() -> None:
    """Hub API calls carry ``Authorization: token …`` and ask for its paged lists.

    The other HTTP clients: the dashboards front's, of the Dask Gateway's proxy
    (gatewayhttp); route_watch serves (a middleware on dask-gateway-server's own
    API); jupyterserver talks to one user's own Jupyter server, never to the hub:
    through the proxy with a service's token (proxied: the culler's status,
    kernels and notices, the SSH service's terminals and files) and at the
    server's own address with its own token (own: the hub's notices and memory
    readings); its token header is made in one place (base).
    """
    http = sorted(n for n, t in modules().items() if uses(t, HTTP_CLIENTS))
    assert http == [
        "wbspawner.adapters.gatewayhttp",
        "wbspawner.adapters.hubapi",
        "wbspawner.adapters.jupyterserver.own",
        "wbspawner.adapters.jupyterserver.proxied",
        "wbspawner.adapters.kube",
        "wbspawner.adapters.route_watch",
    ]
    hub = [
        name
        for name, tree in modules().items()
        if any(
            s.startswith("token ") or "jupyterhub-pagination" in s
            for s in strings(tree)
        )
    ]
    assert hub == [
        "wbspawner.adapters.hubapi",
        "wbspawner.adapters.jupyterserver.base",
    ]
    jupyter = [n for n in modules() if n.startswith("wbspawner.adapters.jupyterserver")]
    assert len(jupyter) == 4
    for name in jupyter:
        tree = modules()[name]
        assert not any(
            "/hub/" in s or "jupyterhub-pagination" in s for s in strings(tree)
        )
