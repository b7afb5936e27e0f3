"""The one Kubernetes client of wbspawner: plain JSON in and out, by API path.

This module owns every call wbspawner makes to the Kubernetes API (the warmer,
the home move and its command line, the gateway's network policies, the
spawner's reads) and the only place a Kubernetes client is made. It sits on
kubernetes_asyncio's ``ApiClient``, which reads kubeconfig files (exec plugins
such as ``aws eks get-token``, client certificates) and refreshes the in-cluster
service account token, but uses none of its model classes: bodies are the dicts
the API server sends and takes. Every request is bounded by a timeout; a
failure raises :class:`~wbspawner.errors.KubeError` with the API's status and
reason. It holds no policy.

A loaded API server sheds requests with ``429`` and ``Retry-After`` and
answers some with ``5xx``; client-go retries those, kubernetes_asyncio does not.
:func:`retry_transient` makes a kubernetes_asyncio client retry them a bounded
number of times (KubeSpawner's client in the hub, and every client made here).

A :class:`Kube` is made by :meth:`Kube.connect` (its own connection, from a
kubeconfig or the pod's service account; never at import or in ``__init__``) or
by :meth:`Kube.of` around an existing client, so that the hub keeps the one
connection KubeSpawner made. :func:`kubeconfig_namespace` reads the namespace a
kubeconfig context names (the admin CLI's default).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

from wbspawner.errors import KubeError

Obj = dict[str, Any]
"""A Kubernetes object as JSON (camelCase keys)."""

DEFAULT_TIMEOUT = 30.0
"""Seconds one request may take (connection, answer and body)."""
PAGE_SIZE = 500
"""Objects per page of a list (``limit``; the rest follows with ``continue``)."""
MERGE_PATCH = "application/merge-patch+json"
TRANSIENT = frozenset({429, 500, 502, 503, 504})
"""Answers worth another try: shed (429), failed or timed out on the server."""
RETRY_ATTEMPTS = 4
"""Tries of one request in all, the first included."""
RETRY_CAP_S = 4.0
"""Longest wait between two tries (a larger ``Retry-After`` is capped)."""
_log = logging.getLogger(__name__)
_OWN_RETRIES: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "wbspawner_kube_own_retries", default=False
)
"""Set while :meth:`Kube.request` runs: it retries by itself."""
_FINISHED_PHASES = ("Succeeded", "Failed")


def api_path(
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    *,
    group: str = "",
) -> str:
    """Return the API path of a collection or of one object.

    Args:
        resource: the plural resource name (``pods``, ``networkpolicies`` …).
        namespace: its namespace; ``None`` for cluster-scoped resources (and
            for lists across every namespace).
        name: the object's name; ``None`` for the collection.
        group: ``group/version`` (``networking.k8s.io/v1``); empty: core ``v1``.

    Returns:
        The path, e.g. ``/api/v1/namespaces/jhub/pods/jupyter-bob``.
    """
    path = f"/apis/{group}" if group else "/api/v1"
    if namespace is not None:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{resource}"
    return path + (f"/{quote(name, safe='')}" if name is not None else "")


def kubeconfig_namespace(path: str, context: str | None = None) -> str | None:
    """Return the namespace a kubeconfig context names, as ``kubectl`` uses it.

    Args:
        path: the kubeconfig file.
        context: a context of the file; ``None``: its ``current-context``.

    Returns:
        The namespace, or ``None`` when the file cannot be read or parsed, the
        context does not exist, or it names no namespace.
    """
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(config, dict):
        return None
    name = context or config.get("current-context")
    for entry in config.get("contexts") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            namespace = (entry.get("context") or {}).get("namespace")
            return str(namespace) if namespace else None
    return None


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for, if it says."""
    try:
        return max(0.0, float((headers or {}).get("Retry-After", "")))
    except ValueError:
        return None


def retry_transient(
    api: Any,
    *,
    attempts: int = RETRY_ATTEMPTS,
    base_s: float = 0.25,
    cap_s: float = RETRY_CAP_S,
    log: logging.Logger | logging.LoggerAdapter[Any] = _log,
) -> None:
    """Make a kubernetes_asyncio client retry :data:`TRANSIENT` answers.

    Each request is tried up to ``attempts`` times, waiting what ``Retry-After``
    says or ``base_s`` doubled per try (with jitter), at most ``cap_s``; the
    last answer is the caller's, as before. A create retried after a ``5xx``
    that did take effect meets ``409 AlreadyExists``, which its callers
    handle. Wrapping the same client twice changes nothing.

    Args:
        api: an ``ApiClient``, or an API object holding one as ``api_client``.
        attempts: tries in all.
        base_s: first wait without ``Retry-After``.
        cap_s: longest wait.
        log: where each retry is said (a warning, no traceback).
    """
    rest = getattr(api, "api_client", api).rest_client
    if getattr(rest, "_wbspawner_retries", False):
        return
    from kubernetes_asyncio.client.exceptions import ApiException

    inner = rest.request

    async def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if _OWN_RETRIES.get():  # Kube.request retries, each try timed alone
            return await inner(method, url, *args, **kwargs)
        for attempt in range(1, attempts + 1):
            try:
                response = await inner(method, url, *args, **kwargs)
            except ApiException as err:
                if err.status not in TRANSIENT or attempt == attempts:
                    raise
                status, asked = err.status, _retry_after(err.headers)
            else:
                status = getattr(response, "status", 200)
                if status not in TRANSIENT or attempt == attempts:
                    return response
                asked = _retry_after(getattr(response, "headers", None))
                response.release()
            backoff = base_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            delay = min(cap_s, backoff if asked is None else asked)
            log.warning(
                "Kubernetes API answered %s to %s %s; try %d of %d in %.1f s",
                status,
                method,
                url.split("?")[0],
                attempt + 1,
                attempts,
                delay,
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the last try returned or raised

    rest.request = request
    rest._wbspawner_retries = True


class Kube:
    """Kubernetes objects as JSON dicts, over a kubernetes_asyncio ``ApiClient``.

    Args:
        api_client: a ``kubernetes_asyncio.client.ApiClient``.
        timeout: seconds per request.
        forbidden_hint: added to the message of a 401 or 403 answer (which
            permissions the caller needs).
        owns_client: :meth:`close` closes the client (it was made here).
    """

    def __init__(
        self,
        api_client: Any,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        forbidden_hint: str = "",
        owns_client: bool = False,
        retry_for: float | None = None,
    ) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self.retry_for = retry_for
        self.forbidden_hint = forbidden_hint
        self._owns_client = owns_client

    @classmethod
    def of(
        cls,
        api: Any,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry_for: float | None = None,
    ) -> Kube:
        """Return an adapter over an existing client (which stays the owner's).

        Args:
            api: an ``ApiClient``, or an API object holding one as
                ``api_client`` (KubeSpawner's ``self.api``).
            timeout: seconds per request (one try).
            retry_for: seconds a retried request may take in all (see
                :class:`Kube`).

        Returns:
            The adapter; :meth:`close` leaves the client open.
        """
        client = getattr(api, "api_client", api)
        return cls(client, timeout=timeout, retry_for=retry_for)

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        *,
        context: str | None = None,
        in_cluster: bool = False,
        api_host: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        forbidden_hint: str = "",
    ) -> Kube:
        """Return an adapter with its own connection.

        Args:
            kubeconfig: kubeconfig file; ``None``: the default one.
            context: a context of the kubeconfig; ``None``: its current one.
            in_cluster: use the pod's service account instead of a kubeconfig.
            api_host: API URL overriding the configuration's server.
            timeout: seconds per request.
            forbidden_hint: see :class:`Kube`.

        Returns:
            The adapter (call :meth:`close` when done).

        Raises:
            KubeError: the kubeconfig is missing or invalid, or (in-cluster) this
                is not a pod.
        """
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        if in_cluster:
            try:
                # kubernetes_asyncio does not annotate this loader.
                config.load_incluster_config(  # type: ignore[no-untyped-call,unused-ignore]
                    client_configuration=configuration
                )
            except config.ConfigException as err:
                raise KubeError(f"not running inside a Kubernetes pod: {err}") from err
        else:
            try:
                # persist_config=False: never rewrite the admin's kubeconfig.
                await config.load_kube_config(
                    config_file=kubeconfig,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except (config.ConfigException, OSError) as err:
                where = kubeconfig or "(default kubeconfig)"
                raise KubeError(f"cannot use kubeconfig {where}: {err}") from err
        if api_host:
            configuration.host = api_host
        api_client = client.ApiClient(configuration)
        retry_transient(api_client)
        return cls(
            api_client,
            timeout=timeout,
            forbidden_hint=forbidden_hint,
            owns_client=True,
        )

    async def close(self) -> None:
        """Close the connection, if :meth:`connect` made it."""
        if self._owns_client:
            await self.api_client.close()

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self.api_client.configuration.host)

    # ------------------------------------------------------------ requests
    async def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send one request; return the decoded JSON answer (``None`` when empty).

        Args:
            method: ``GET``, ``POST``, ``PUT``, ``PATCH`` or ``DELETE``.
            path: the API path (see :func:`api_path`).
            body: the JSON body, if any.
            query: query parameters.
            content_type: the body's type (``application/merge-patch+json`` …).

        Returns:
            The decoded answer.

        Raises:
            KubeError: an error status, no answer within the timeout, or no
                connection.
        """
        # Retried here, each try with its own timeout: a shed request (429)
        # always, it was not served; a 5xx or no answer only for a read, which
        # changes nothing (a write may have taken effect). Tries are counted
        # (RETRY_ATTEMPTS) or, with retry_for, bounded by that time in all.
        loop = asyncio.get_running_loop()
        began = loop.time()
        token = _OWN_RETRIES.set(True)
        try:
            attempt = 0
            failure: TimeoutError | None
            while True:
                attempt += 1
                try:
                    status, data, asked = await self._request_once(
                        method, path, body, query=query, content_type=content_type
                    )
                except TimeoutError as err:
                    if method != "GET":
                        raise self._no_answer(method, path, attempt, began) from err
                    said, asked, failure = (
                        f"no answer within {self.timeout:g} s",
                        None,
                        err,
                    )
                else:
                    if 200 <= status <= 299:
                        return json.loads(data) if data else None
                    again = status == 429 or (method == "GET" and status in TRANSIENT)
                    if not again:
                        raise self._refused(method, path, status, data)
                    said, failure = f"answered {status}", None
                backoff = 0.25 * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
                delay = min(RETRY_CAP_S, backoff if asked is None else asked)
                if self._out_of_tries(attempt, loop.time() + delay - began):
                    if failure is not None:
                        raise self._no_answer(method, path, attempt, began) from failure
                    refused = self._refused(method, path, status, data)
                    raise KubeError(
                        f"{refused}{self._gave_up(attempt, began)}",
                        status=refused.status,
                        reason=refused.reason,
                    )
                _log.warning(
                    "Kubernetes API %s to %s %s; try %d %s in %.1f s",
                    said,
                    method,
                    path,
                    attempt + 1,
                    self._budget(),
                    delay,
                )
                await asyncio.sleep(delay)
        finally:
            _OWN_RETRIES.reset(token)

    def _out_of_tries(self, attempt: int, spent_after_wait: float) -> bool:
        """Whether a request tried ``attempt`` times may not be tried again."""
        if self.retry_for is None:
            return attempt >= RETRY_ATTEMPTS
        return spent_after_wait >= self.retry_for

    def _budget(self) -> str:
        """How retries are bounded, for the log."""
        if self.retry_for is None:
            return f"of {RETRY_ATTEMPTS}"
        return f"of those allowed within {self.retry_for:g} s"

    def _gave_up(self, attempt: int, began: float) -> str:
        """What a final error adds when the request was tried more than once."""
        if attempt == 1:
            return ""
        spent = asyncio.get_running_loop().time() - began
        return f"; gave up after {attempt} tries in {spent:.1f} s"

    def _no_answer(
        self, method: str, path: str, attempt: int, began: float
    ) -> KubeError:
        return KubeError(
            f"no answer from the Kubernetes API at {self.host} "
            f"within {self.timeout:g} s ({method} {path})"
            f"{self._gave_up(attempt, began)}"
        )

    async def _request_once(
        self,
        method: str,
        path: str,
        body: Obj | None,
        *,
        query: dict[str, str] | None,
        content_type: str,
    ) -> tuple[int, bytes, float | None]:
        """Send the request once: its status, body and ``Retry-After``.

        Raises:
            TimeoutError: no whole answer within the timeout.
            KubeError: no connection.
        """
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.api_client.call_api(
                    path,
                    method,
                    query_params=dict(query) if query else None,
                    header_params=headers,
                    body=body,
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
                try:
                    data = await response.read()
                finally:
                    response.release()
        except TimeoutError:
            raise
        except (OSError, aiohttp.ClientError) as err:
            raise KubeError(
                f"cannot reach the Kubernetes API at {self.host}: {err}"
            ) from err
        return response.status, data, _retry_after(response.headers)

    def _refused(self, method: str, path: str, status: int, data: bytes) -> KubeError:
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        said = str(answer.get("message") or data[:200].decode(errors="replace"))
        reason = str(answer.get("reason") or "")
        code = f"{status} {reason}".strip()
        if status not in (401, 403):
            message = f"{method} {path}: {code}: {said}"
        else:
            message = f"the Kubernetes API refused {method} {path} ({code}): {said}"
            if self.forbidden_hint:
                message += f"; {self.forbidden_hint}"
        return KubeError(message, status=status, reason=reason)

    async def get(self, path: str) -> Obj | None:
        """Return the object at ``path``, or ``None`` when it does not exist."""
        try:
            found: Obj = await self.request("GET", path)
        except KubeError as err:
            if err.status == 404:
                return None
            raise
        return found

    async def list_items(
        self,
        path: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        """Return every object of a collection, following ``continue`` pages."""
        query = {"limit": str(PAGE_SIZE)}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        items: list[Obj] = []
        while True:
            page = await self.request("GET", path, query=query) or {}
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            query = {**query, "continue": str(token)}

    async def create(self, path: str, body: Obj) -> Obj:
        """Create an object in the collection at ``path`` and return it."""
        created: Obj = await self.request("POST", path, body)
        return created

    async def replace(self, path: str, body: Obj) -> Obj:
        """Replace the object at ``path`` (``metadata.resourceVersion`` guards it)."""
        replaced: Obj = await self.request("PUT", path, body)
        return replaced

    async def patch(self, path: str, patch: Obj) -> Obj:
        """Merge-patch (RFC 7386) the object at ``path`` and return it."""
        patched: Obj = await self.request(
            "PATCH", path, patch, content_type=MERGE_PATCH
        )
        return patched

    async def delete(
        self, path: str, *, grace_period_s: int | None = None, uid: str | None = None
    ) -> bool:
        """Delete the object at ``path``; ``False`` when it was already gone.

        With ``uid``, only that object: one made since under the same name is
        refused with ``409 Conflict`` (a ``KubeError``).
        """
        query = None
        if grace_period_s is not None:
            query = {"gracePeriodSeconds": str(grace_period_s)}
        body: Obj | None = None
        if uid:
            body = {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "preconditions": {"uid": uid},
            }
        try:
            await self.request("DELETE", path, body, query=query)
        except KubeError as err:
            if err.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------- nodes and pods
    async def list_nodes(self) -> list[Obj]:
        """List every Node."""
        return await self.list_items(api_path("nodes"))

    async def get_node(self, name: str) -> Obj | None:
        """Return a Node, or ``None``."""
        return await self.get(api_path("nodes", None, name))

    async def list_pods(
        self, namespace: str, label_selector: str | None = None
    ) -> list[Obj]:
        """List the Pods of a namespace (optionally by label selector)."""
        path = api_path("pods", namespace)
        return await self.list_items(path, label_selector=label_selector)

    async def get_pod(self, namespace: str, name: str) -> Obj | None:
        """Return a Pod, or ``None``."""
        return await self.get(api_path("pods", namespace, name))

    async def create_pod(self, namespace: str, body: Obj) -> Obj:
        """Create a Pod and return it."""
        return await self.create(api_path("pods", namespace), body)

    async def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a Pod at once (a missing pod is not an error)."""
        await self.delete(api_path("pods", namespace, name), grace_period_s=0)

    async def pods_using_claim(self, namespace: str, claim: str) -> list[str]:
        """Return the names of pods that use a claim and have not finished."""
        return sorted(
            str(pod["metadata"]["name"])
            for pod in await self.list_pods(namespace)
            if (pod.get("status") or {}).get("phase") not in _FINISHED_PHASES
            and any(
                (v.get("persistentVolumeClaim") or {}).get("claimName") == claim
                for v in (pod.get("spec") or {}).get("volumes") or []
            )
        )

    async def list_events(
        self, namespace: str | None, field_selector: str | None = None
    ) -> list[Obj]:
        """List Events of a namespace (``None``: of every namespace)."""
        path = api_path("events", namespace)
        return await self.list_items(path, field_selector=field_selector)

    # ------------------------------------------------------- claims and PVs
    async def list_pvcs(self, namespace: str) -> list[Obj]:
        """List the PersistentVolumeClaims of a namespace."""
        return await self.list_items(api_path("persistentvolumeclaims", namespace))

    async def get_pvc(self, namespace: str, name: str) -> Obj | None:
        """Return a claim, or ``None``."""
        return await self.get(api_path("persistentvolumeclaims", namespace, name))

    async def create_pvc(self, namespace: str, body: Obj) -> Obj:
        """Create a claim."""
        return await self.create(api_path("persistentvolumeclaims", namespace), body)

    async def patch_pvc(self, namespace: str, name: str, patch: Obj) -> Obj:
        """Merge-patch a claim."""
        path = api_path("persistentvolumeclaims", namespace, name)
        return await self.patch(path, patch)

    async def delete_pvc(self, namespace: str, name: str) -> None:
        """Delete a claim (no error when it is already gone)."""
        await self.delete(api_path("persistentvolumeclaims", namespace, name))

    async def list_pvs(self, label_selector: str | None = None) -> list[Obj]:
        """List PersistentVolumes, optionally by a label selector."""
        path = api_path("persistentvolumes")
        return await self.list_items(path, label_selector=label_selector)

    async def get_pv(self, name: str) -> Obj | None:
        """Return a PV, or ``None``."""
        return await self.get(api_path("persistentvolumes", None, name))

    async def create_pv(self, body: Obj) -> Obj:
        """Create a PV."""
        return await self.create(api_path("persistentvolumes"), body)

    async def patch_pv(self, name: str, patch: Obj) -> Obj:
        """Merge-patch a PV."""
        return await self.patch(api_path("persistentvolumes", None, name), patch)

    async def delete_pv(self, name: str) -> None:
        """Delete a PV (no error when it is already gone)."""
        await self.delete(api_path("persistentvolumes", None, name))

    # ------------------------------------------------------------ priority
    async def ensure_priority_class(self, body: Obj) -> bool:
        """Create a PriorityClass unless it exists.

        Returns:
            Whether it was created now.
        """
        group = "scheduling.k8s.io/v1"
        name = body["metadata"]["name"]
        if await self.get(api_path("priorityclasses", None, name, group=group)):
            return False
        try:
            await self.create(api_path("priorityclasses", group=group), body)
        except KubeError as err:
            if err.status != 409:  # created meanwhile
                raise
            return False
        return True
