"""Thin, synchronous Kubernetes adapter for homes: claims, PVs and the pods using them.

This module owns the HTTP calls the home move, the garbage collector and the home
command line make to the Kubernetes API (implements
:class:`~wbspawner.homes.records.ClaimApi`). It is a small client over
``urllib`` (the admin command line is synchronous), configured from a kubeconfig
or the pod's service account through kubernetes_asyncio's loaders, so exec
plugins (``aws eks get-token``), client certificates and tokens all work. Reads
of missing objects return ``None``; failures raise
:class:`~wbspawner.homes.KubeError`. No policy lives here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from wbspawner.homes import KubeError
from wbspawner.homes.records import Obj

_TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeConnection:
    """Where the API is and how to authenticate."""

    host: str
    """API URL, e.g. ``https://…eks.amazonaws.com`` or ``http://127.0.0.1:6443``."""
    authorization: str | None = None
    """``Authorization`` header value (``Bearer …``), if any."""
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True


def _from_configuration(cfg: Any) -> KubeConnection:
    return KubeConnection(
        host=str(cfg.host).rstrip("/"),
        authorization=(cfg.api_key or {}).get("BearerToken")
        or (cfg.api_key or {}).get("authorization"),
        ca_file=cfg.ssl_ca_cert,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        verify=bool(cfg.verify_ssl),
    )


def connection_from_kubeconfig(path: str, context: str | None = None) -> KubeConnection:
    """Read a kubeconfig (running an exec plugin if it names one).

    Args:
        path: the kubeconfig file.
        context: a context name; ``None``: the current context.

    Returns:
        The connection.

    Raises:
        KubeError: the file is missing or invalid.
    """
    from kubernetes_asyncio.client import Configuration
    from kubernetes_asyncio.config import ConfigException, load_kube_config

    cfg = Configuration()

    async def load() -> None:
        await load_kube_config(
            config_file=path,
            context=context,
            client_configuration=cfg,
            persist_config=False,
        )

    try:
        asyncio.run(load())
    except (ConfigException, OSError) as err:
        raise KubeError(f"cannot use kubeconfig {path}: {err}") from err
    return _from_configuration(cfg)


def in_cluster_connection() -> KubeConnection:
    """Use the service account Kubernetes mounts into pods.

    Returns:
        The connection.

    Raises:
        KubeError: not running in a pod.
    """
    from kubernetes_asyncio.client import Configuration
    from kubernetes_asyncio.config import ConfigException, load_incluster_config

    cfg = Configuration()
    try:
        load_incluster_config(  # type: ignore[no-untyped-call,unused-ignore]
            client_configuration=cfg, try_refresh_token=False
        )
    except ConfigException as err:
        raise KubeError(f"not running inside a Kubernetes pod: {err}") from err
    return _from_configuration(cfg)


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Kube:
    """Claims, PVs and pods over the Kubernetes REST API.

    Args:
        conn: where the API is and how to authenticate.
        timeout: seconds per request.
    """

    def __init__(self, conn: KubeConnection, *, timeout: float = 30.0) -> None:
        self.conn = conn
        self.timeout = timeout
        handlers: list[urllib.request.BaseHandler] = []
        if _is_loopback(conn.host):
            handlers.append(urllib.request.ProxyHandler({}))
        if conn.host.startswith("https"):
            handlers.append(urllib.request.HTTPSHandler(context=self._ssl()))
        self._opener = urllib.request.build_opener(*handlers)

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.conn.ca_file)
        if not self.conn.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.conn.cert_file:
            ctx.load_cert_chain(self.conn.cert_file, self.conn.key_file)
        return ctx

    def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send one request; return the decoded JSON body.

        Raises:
            KubeError: an HTTP error (with status and reason) or no connection.
        """
        url = self.conn.host + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.conn.authorization:
            req.add_header("Authorization", self.conn.authorization)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raise _http_error(method, path, err) from None
        except (urllib.error.URLError, OSError) as err:
            raise KubeError(
                f"cannot reach the Kubernetes API at {self.conn.host}: {err}"
            ) from err
        return json.loads(raw) if raw else None

    def _get(self, path: str) -> Obj | None:
        try:
            found: Obj = self.request("GET", path)
        except KubeError as err:
            if err.status == 404:
                return None
            raise
        return found

    def _delete(self, path: str) -> None:
        try:
            self.request("DELETE", path)
        except KubeError as err:
            if err.status != 404:
                raise

    def _patch(self, path: str, patch: Obj) -> Obj:
        result: Obj = self.request(
            "PATCH", path, patch, content_type="application/merge-patch+json"
        )
        return result

    def _list(self, path: str, query: dict[str, str]) -> list[Obj]:
        items: list[Obj] = []
        while True:
            page = self.request("GET", path, query=dict(query, limit="500"))
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            query = dict(query, **{"continue": token})

    # --------------------------------------------------------------- claims
    def get_pvc(self, namespace: str, name: str) -> Obj | None:
        """Return a claim, or ``None``."""
        return self._get(
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"
        )

    def list_pvcs(self, namespace: str) -> list[Obj]:
        """Return the claims of a namespace."""
        return self._list(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", {})

    def create_pvc(self, namespace: str, body: Obj) -> Obj:
        """Create a claim."""
        path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
        created: Obj = self.request("POST", path, body)
        return created

    def patch_pvc(self, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge-patch a claim."""
        return self._patch(
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}", patch
        )

    def delete_pvc(self, namespace: str, name: str) -> None:
        """Delete a claim (no error when it is already gone)."""
        self._delete(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}")

    # ------------------------------------------------------------------ PVs
    def get_pv(self, name: str) -> Obj | None:
        """Return a PV, or ``None``."""
        return self._get(f"/api/v1/persistentvolumes/{name}")

    def list_pvs(self, label_selector: str | None = None) -> list[Obj]:
        """Return PVs, optionally filtered by a label selector."""
        query = {"labelSelector": label_selector} if label_selector else {}
        return self._list("/api/v1/persistentvolumes", query)

    def create_pv(self, body: Obj) -> Obj:
        """Create a PV."""
        created: Obj = self.request("POST", "/api/v1/persistentvolumes", body)
        return created

    def patch_pv(self, name: str, patch: Obj) -> Obj:
        """Merge-patch a PV."""
        return self._patch(f"/api/v1/persistentvolumes/{name}", patch)

    def delete_pv(self, name: str) -> None:
        """Delete a PV (no error when it is already gone)."""
        self._delete(f"/api/v1/persistentvolumes/{name}")

    # ----------------------------------------------------------------- pods
    def pods_using_claim(self, namespace: str, claim: str) -> list[str]:
        """Return the names of pods that use a claim and have not finished."""
        pods = self._list(f"/api/v1/namespaces/{namespace}/pods", {})
        return sorted(
            str(pod["metadata"]["name"])
            for pod in pods
            if (pod.get("status") or {}).get("phase") not in _TERMINAL_PHASES
            and any(
                (v.get("persistentVolumeClaim") or {}).get("claimName") == claim
                for v in (pod.get("spec") or {}).get("volumes") or []
            )
        )

    def events_for(self, namespace: str, kind: str, name: str) -> list[Obj]:
        """Return the Events about one object, oldest first."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        events = self._list(
            f"/api/v1/namespaces/{namespace}/events", {"fieldSelector": selector}
        )
        return sorted(events, key=lambda e: str(e.get("lastTimestamp") or ""))


def _http_error(method: str, path: str, err: urllib.error.HTTPError) -> KubeError:
    try:
        status: Obj = json.loads(err.read() or b"{}")
    except ValueError:
        status = {}
    message = str(status.get("message") or err.reason)
    reason = str(status.get("reason") or "")
    if err.code in (401, 403):
        message = (
            f"the Kubernetes API refused {method} {path} ({err.code} {reason}): "
            f"{message}; the account in use needs get/list/create/patch/delete on "
            "persistentvolumes and persistentvolumeclaims and list on pods"
        )
    return KubeError(message, status=err.code, reason=reason)
