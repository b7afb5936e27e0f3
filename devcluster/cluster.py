"""Composition of one devcluster: store, HTTP API, kubelet and the controllers.

``Cluster`` builds a ``Store`` (with validation), bootstraps namespaces,
ServiceAccounts, system PriorityClasses and static nodes, serves the API on
loopback (over HTTP, and over HTTPS as the ``kubernetes`` Service,
``devcluster.apiserver.tls``), runs kube-proxy (every Service on its loopback
cluster IP, ``devcluster.proxy``), starts the kubelet,
the workload and endpoints controllers and, with a moto server, the scheduler,
autoscaler and volume controllers. Everything runs in the caller's asyncio loop.
With a moto server, pods whose ServiceAccount names an IAM role get a web
identity (``devcluster.apiserver.irsa``): the cluster's token issuer
(``devcluster.tokens``) takes the EKS cluster's OIDC issuer URL from moto and
is registered with moto's STS layer (``devcluster.services.sts``), which
verifies the tokens against the JWKS the API serves.
``kubeconfig()`` renders a kubeconfig for clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import inspect
import ipaddress
import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from devcluster.apiserver import validation
from devcluster.apiserver.app import FAULTS_KEY, REQUESTS_KEY, make_app
from devcluster.apiserver.patches import merge_patch
from devcluster.apiserver.routes import Faults
from devcluster.apiserver.store import Store
from devcluster.apiserver.tls import ServingCert, make_serving_cert, server_context
from devcluster.config import ClusterConfig
from devcluster.controllers.nodes import standard_labels
from devcluster.kubelet import Kubelet
from devcluster.proxy import KubeProxy
from devcluster.services import sts
from devcluster.services.moto_server import make_client
from devcluster.tokens import TokenIssuer

log = logging.getLogger(__name__)

STATIC_INSTANCE_TYPE = "m5.xlarge"
"""What a static node is (its 4 CPUs and 16 GiB), for its instance-type label."""

SYSTEM_PRIORITY_CLASSES = (
    ("system-cluster-critical", 2000000000),
    ("system-node-critical", 2000001000),
)


def static_node(
    partial: dict[str, Any], index: int, config: ClusterConfig | None = None
) -> dict[str, Any]:
    """Complete a partial Node dict from ``ClusterConfig.static_nodes``.

    A static node carries the well-known labels an EKS worker gets, as the nodes
    of Auto Scaling groups do (``devcluster.controllers.nodes``): its zone (the
    cluster's zones in turn), region, instance type and capacity type
    (on-demand). Labels of ``partial`` win.
    """
    cfg = config or ClusterConfig()
    name = str((partial.get("metadata") or {}).get("name") or f"static-{index}")
    zone = cfg.zones[index % len(cfg.zones)] if cfg.zones else ""
    labels = standard_labels(
        name, STATIC_INSTANCE_TYPE, "amd64", zone, cfg.region, "on-demand"
    )
    base: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
        },
    }
    return merge_patch(base, partial)


def kubeconfig_text(url: str, namespace: str = "jhub", name: str = "devcluster") -> str:
    """Return a kubeconfig (YAML) for an unauthenticated server at ``url``."""
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        f"clusters:\n- name: {name}\n  cluster:\n    server: {url}\n"
        f"users:\n- name: {name}\n  user: {{}}\n"
        f"contexts:\n- name: {name}\n  context:\n    cluster: {name}\n"
        f"    user: {name}\n    namespace: {namespace}\n"
        f"current-context: {name}\n"
    )


class Cluster:
    """One running devcluster (use ``async with Cluster(config) as cluster``).

    Args:
        config: the settings (ports, delays, modes, static nodes).
        aws_endpoint: the moto server URL, handed to the controllers.
        controllers: start ``devcluster.controllers.manager`` when it is importable.
    """

    def __init__(
        self,
        config: ClusterConfig | None = None,
        *,
        aws_endpoint: str | None = None,
        controllers: bool = True,
    ) -> None:
        self.config = config or ClusterConfig()
        self.aws_endpoint = aws_endpoint
        self.want_controllers = controllers
        self.store: Store | None = None
        self.kubelet: Kubelet | None = None
        self.proxy: KubeProxy | None = None
        self.controllers: Any = None
        self.core_controllers: Any = None
        self.app: web.Application | None = None
        self.port = 0
        self.tls_port = 0
        """The API's HTTPS port (the ``kubernetes`` Service's endpoint)."""
        self.serving_cert: ServingCert | None = None
        self.issuer = TokenIssuer()
        """Signs the pods' ServiceAccount tokens (``oidc_issuer`` is its URL)."""
        self._registered = False
        self.state_dir = Path()
        self._tmp: str | None = None
        self._runner: web.AppRunner | None = None
        self._unsubscribe: Any = None
        self._range_lock: int | None = None

    @property
    def oidc_issuer(self) -> str:
        """The ServiceAccount token issuer URL (the EKS cluster's OIDC issuer)."""
        return self.issuer.issuer

    @property
    def url(self) -> str:
        """The API server URL (``http://127.0.0.1:PORT``)."""
        return f"http://{self.config.host}:{self.port}"

    @property
    def faults(self) -> Faults:
        """Failure injection of the HTTP API (``faults.fail_next(...)``)."""
        assert self.app is not None, "cluster not started"
        return self.app[FAULTS_KEY]  # type: ignore[return-value]

    @property
    def requests(self) -> Any:
        """The recent requests as ``(method, path_qs, status)`` tuples."""
        assert self.app is not None, "cluster not started"
        return self.app[REQUESTS_KEY]

    async def start(self) -> Cluster:
        """Build everything and start serving; return self.

        When a step fails, what was started is stopped before the error is
        raised, so a caller that never got a cluster has nothing to stop.
        """
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    def _claim_service_range(self) -> None:
        """Take a /24 of the service range no other devcluster here uses.

        Cluster IPs are loopback addresses shared by every program on this
        machine, so two devclusters (a demo and a test run) must not hand out
        the same ones: each takes the first /24 of ``service_cidr`` whose lock
        file (in the temporary directory) it can hold, until it stops. A range
        of /24 or smaller is used as it is.
        """
        network = ipaddress.IPv4Network(self.config.service_cidr)
        if network.prefixlen >= 24:
            return
        for subnet in network.subnets(new_prefix=24):
            name = f"devcluster-services-{subnet.network_address}.lock"
            fd = os.open(Path(tempfile.gettempdir()) / name, os.O_CREAT | os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self._range_lock = fd
            self.config = dataclasses.replace(self.config, service_cidr=str(subnet))
            return
        raise RuntimeError(f"every /24 of {network} is taken by another devcluster")

    async def _start(self) -> Cluster:
        self._claim_service_range()
        cfg = self.config
        if cfg.state_dir:
            self.state_dir = Path(cfg.state_dir)
        else:
            self._tmp = tempfile.mkdtemp(prefix="devcluster-")
            self.state_dir = Path(self._tmp)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.serving_cert = await asyncio.to_thread(
            make_serving_cert, self.state_dir / "pki", [cfg.host, self._api_ip]
        )
        if self.aws_endpoint is not None:
            self.config = cfg = dataclasses.replace(
                cfg, pod_aws_endpoint=self.aws_endpoint
            )
            self.issuer.issuer = await asyncio.to_thread(self._oidc_issuer)
        validator = None
        if cfg.validate:
            await asyncio.to_thread(validation.warm_up)
            validator = validation.validate
        store = self.store = Store(cfg, validator=validator, history=cfg.watch_history)
        self._bootstrap(store)
        self.kubelet = Kubelet(
            store,
            cfg,
            self.state_dir,
            ca_pem=self.serving_cert.ca_pem,
            issuer=self.issuer,
        )
        self.kubelet.start()
        self.app = make_app(
            store,
            logs=self.kubelet.read_log,
            streams=self.kubelet.stream,
            issuer=self.issuer,
        )
        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.api_port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        tls_site = web.TCPSite(
            self._runner,
            cfg.host,
            0,
            ssl_context=server_context(self.serving_cert),
            reuse_address=True,
        )
        await tls_site.start()
        self.tls_port = int(self._runner.addresses[1][1])
        self._publish_api(store)
        if self.aws_endpoint is not None:
            await self._register_issuer()
        self.proxy = KubeProxy(store)
        await self.proxy.start()
        if self.want_controllers:
            await self._start_controllers(store)
        return self

    async def _register_issuer(self) -> None:
        """Tell moto's STS layer where this cluster's issuer documents are."""
        assert self.aws_endpoint is not None
        try:
            await asyncio.to_thread(
                sts.register_issuer, self.aws_endpoint, self.issuer.issuer, self.url
            )
        except OSError as exc:
            # a moto server without devcluster's STS layer: pods still get
            # their web identity, but STS cannot verify it
            log.warning(
                "the AWS endpoint %s did not take the OIDC issuer %s (%s): "
                "AssumeRoleWithWebIdentity will refuse this cluster's tokens",
                self.aws_endpoint,
                self.issuer.issuer,
                exc,
            )
            return
        self._registered = True

    def _oidc_issuer(self) -> str:
        """The OIDC issuer URL of the EKS cluster moto records (else one like it).

        ``wbspawner`` and eksctl read it from ``DescribeCluster`` to make the
        account's IAM OIDC provider and the roles' trust policies, so tokens
        must name it. Without such a cluster in moto, devcluster names one of
        the same shape.
        """
        assert self.aws_endpoint is not None
        eks = make_client("eks", self.aws_endpoint, self.config.region)
        try:
            found = eks.describe_cluster(name=self.config.cluster_name)["cluster"]
            return str(found["identity"]["oidc"]["issuer"])
        except eks.exceptions.ResourceNotFoundException:
            region = self.config.region
            return f"https://oidc.eks.{region}.amazonaws.com/id/{secrets.token_hex(16).upper()}"

    def _bootstrap(self, store: Store) -> None:
        self._unsubscribe = store.subscribe(self._on_change)
        for namespace in self.config.namespaces:
            store.ensure("namespaces", None, {"metadata": {"name": namespace}})
        for name, value in SYSTEM_PRIORITY_CLASSES:
            store.ensure(
                "priorityclasses",
                None,
                {
                    "metadata": {"name": name},
                    "value": value,
                    "description": "Used for system critical pods.",
                },
            )
        for index, partial in enumerate(self.config.static_nodes):
            node = static_node(dict(partial), index, self.config)
            store.ensure("nodes", None, node)

    @property
    def _api_ip(self) -> str:
        """The ``kubernetes`` Service's cluster IP: the first of the range."""
        return str(next(ipaddress.IPv4Network(self.config.service_cidr).hosts()))

    def _publish_api(self, store: Store) -> None:
        """The ``kubernetes`` Service in ``default``: the API over HTTPS, for pods.

        As the apiserver does, it holds the first address of the service range
        and its endpoints are the API server itself (its HTTPS listener); pods
        get ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` from it
        and trust the cluster CA their token volume holds (``ca.crt``).
        """
        ip = self._api_ip
        store.ensure(
            "services",
            "default",
            {
                "metadata": {
                    "name": "kubernetes",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": ip,
                    "ports": [
                        {
                            "name": "https",
                            "port": 443,
                            "protocol": "TCP",
                            "targetPort": self.tls_port,
                        }
                    ],
                },
            },
        )
        store.ensure(
            "endpointslices",
            "default",
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": "kubernetes",
                    "labels": {"kubernetes.io/service-name": "kubernetes"},
                },
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": [self.config.host], "conditions": {"ready": True}}
                ],
                "ports": [{"name": "https", "port": self.tls_port, "protocol": "TCP"}],
            },
        )

    def _on_change(self, event_type: str, kind: str, obj: dict[str, Any]) -> None:
        # The ServiceAccount controller: every new namespace gets "default".
        if kind == "namespaces" and event_type == "ADDED":
            name = obj["metadata"]["name"]
            asyncio.get_running_loop().call_soon(self._default_sa, name)

    def _default_sa(self, namespace: str) -> None:
        if self.store is None:
            return
        with contextlib.suppress(Exception):
            self.store.ensure(
                "serviceaccounts", namespace, {"metadata": {"name": "default"}}
            )

    async def _start_controllers(self, store: Store) -> None:
        from devcluster.controllers.manager import start_core_controllers

        self.core_controllers = start_core_controllers(store, self.config)
        if self.aws_endpoint is None:
            log.info("no AWS endpoint: scheduler and autoscaler not started")
            return
        from devcluster.controllers.manager import start_controllers
        from devcluster.controllers.volumes import snapshots

        result: Any = start_controllers(store, self.config, self.aws_endpoint)
        if inspect.isawaitable(result):
            result = await result
        self.controllers = result
        # A volume made from a snapshot starts with the snapshot's files, so a
        # home moved to another zone keeps its data (wbspawner home move).
        snapshots.install(self.controllers.volumes, self.state_dir)

    async def stop(self) -> None:
        """Stop controllers, kubelet (killing pod processes) and the server."""
        if self.controllers is not None:
            stop = getattr(self.controllers, "stop", None) or self.controllers
            if callable(stop):
                result = stop()
                if inspect.isawaitable(result):
                    await result
            self.controllers = None
        if self.core_controllers is not None:
            await self.core_controllers.stop()
            self.core_controllers = None
        if self._registered and self.aws_endpoint is not None:
            self._registered = False
            with contextlib.suppress(OSError):
                await asyncio.to_thread(
                    sts.unregister_issuer,
                    self.aws_endpoint,
                    self.issuer.issuer,
                    self.url,
                )
        if self.proxy is not None:
            await self.proxy.stop()
            self.proxy = None
        if self.kubelet is not None:
            await self.kubelet.stop()
        if self.store is not None:
            self.store.close()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if self._range_lock is not None:
            os.close(self._range_lock)  # the service range is free again
            self._range_lock = None

    def kubeconfig(self, namespace: str = "jhub") -> str:
        """Return a kubeconfig for this cluster."""
        return kubeconfig_text(self.url, namespace)

    def write_kubeconfig(self, path: Path | str, namespace: str = "jhub") -> Path:
        """Write the kubeconfig to ``path`` and return it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.kubeconfig(namespace))
        return target

    async def __aenter__(self) -> Cluster:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
