"""``python -m wbspawner.warmer``: the warmer as a JupyterHub service.

This module owns the service process, built like jupyterhub-idle-culler: a
traitlets :class:`WarmerApp` whose traits carry help and CLI aliases, and a loop
that runs at once and then every ``interval`` seconds::

    snapshot = await observer.observe(now)           # thin: list the cluster
    plan = policy.plan(pools, warm, snapshot, now)    # pure, with reasons
    result = await actuator.apply(plan, pools)        # thin: idempotent changes

The pass never raises (except on cancellation): a failure is logged, kept for
the status page and the metrics, and the next pass tries again. The clock is
injected (:class:`~wbspawner.warmer.observer.Clock`). The web face (admin page,
JSON, metrics behind hub OAuth) is :mod:`wbspawner.warmer.web`.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from tornado.ioloop import PeriodicCallback
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Int, List, Unicode, default
from traitlets.config import Application

from wbspawner.form import spot_prices_from_json
from wbspawner.loader import ProfilesSource
from wbspawner.model import Profiles
from wbspawner.warmer import policy, report
from wbspawner.warmer.actuator import (
    ApplyResult,
    PlaceholderActuator,
    PlaceholderSettings,
    prepull_images,
)
from wbspawner.warmer.asgmin import AsgMinActuator
from wbspawner.warmer.metrics import WarmerMetrics
from wbspawner.warmer.observer import Observer, ObserveSettings, WallClock
from wbspawner.warmer.snapshot import ClusterSnapshot


class WarmerApp(Application):
    """Keeps nodes warm per pool × zone, and shows admins what it does."""

    name = "wbspawner-warmer"
    description = "Keep spot nodes warm per size and zone (a JupyterHub service)."

    interval = Float(30.0, config=True, help="Seconds between two reconcile passes.")
    dry_run = Bool(False, config=True, help="Decide and report, but change nothing.")
    profiles_dir = List(
        Unicode(), config=True, help="Profiles directories or files, merged in order."
    )
    api_url = Unicode(config=True, help="The hub API URL ($JUPYTERHUB_API_URL).")
    api_token = Unicode(
        config=True, help="Token to read users' last sizes ($JUPYTERHUB_API_TOKEN)."
    )
    service_url = Unicode(
        config=True, help="Where to listen ($JUPYTERHUB_SERVICE_URL's host and port)."
    )
    prefix = Unicode(config=True, help="URL prefix ($JUPYTERHUB_SERVICE_PREFIX).")
    bind_ip = Unicode(config=True, help="Address to listen on (the service URL's).")
    namespace = Unicode(config=True, help="Namespace of user pods and placeholders.")
    kubeconfig = Unicode(None, allow_none=True, config=True, help="kubeconfig file.")
    in_cluster = Bool(config=True, help="Use the pod's service account.")
    k8s_api_host = Unicode(None, allow_none=True, config=True, help="API URL override.")
    cluster_name = Unicode("wbspawner", config=True, help="Cluster name (ASG names).")
    aws_endpoint_url = Unicode(
        None, allow_none=True, config=True, help="AWS endpoint (asg-min mode; tests)."
    )
    placeholder_image = Unicode(
        "registry.k8s.io/pause:3.10", config=True, help="Image of placeholder pods."
    )
    placeholder_command = List(
        Unicode(), config=True, help="Command of placeholders; empty: the image's."
    )
    prepull_images = Bool(
        True, config=True, help="Placeholders also pull their pool's user images."
    )
    read_hub_sizes = Bool(
        True, config=True, help="Read users' last sizes from the hub (read:servers)."
    )
    warm_status_file = Unicode(
        None, allow_none=True, config=True, help="Write {pool: {zone: ready}} here."
    )
    spot_prices_file = Unicode(
        None, allow_none=True, config=True, help='Read {"type/zone": $/h} from here.'
    )
    shortage_ttl_s = Float(900.0, config=True, help="Seconds a shortage counts.")
    pending_shortage_s = Float(
        600.0, config=True, help="Seconds a spot placeholder may wait for a node."
    )
    history_hours = Float(48.0, config=True, help="Hours of timeline kept.")
    max_errors = Int(50, config=True, help="Errors kept for the status page.")
    metrics_require_auth = Bool(
        True, config=True, help="Metrics need the same hub access as the page."
    )
    clock = AnyTrait(help="Injected clock (``now()``, ``from_api()``); tests only.")

    aliases = {
        "interval": "WarmerApp.interval",
        "profiles": "WarmerApp.profiles_dir",
        "namespace": "WarmerApp.namespace",
        "kubeconfig": "WarmerApp.kubeconfig",
        "cluster-name": "WarmerApp.cluster_name",
        "warm-status-file": "WarmerApp.warm_status_file",
        "log-level": "Application.log_level",
    }
    flags = {
        "dry-run": ({"WarmerApp": {"dry_run": True}}, "Change nothing."),
        "no-hub-sizes": ({"WarmerApp": {"read_hub_sizes": False}}, "Skip the hub."),
    }

    @default("api_url")
    def _default_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    @default("api_token")
    def _default_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    @default("bind_ip")
    def _default_bind_ip(self) -> str:
        return urlparse(self.service_url).hostname or "127.0.0.1"

    @default("prefix")
    def _default_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/warmer/")

    @default("namespace")
    def _default_namespace(self) -> str:
        return os.environ.get("WBSPAWNER_NAMESPACE", "jupyterhub")

    @default("profiles_dir")
    def _default_profiles_dir(self) -> list[str]:
        raw = os.environ.get("WBSPAWNER_PROFILES", "/etc/wbspawner/profiles")
        return [p for p in raw.split(os.pathsep) if p]

    @default("in_cluster")
    def _default_in_cluster(self) -> bool:
        return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not self.kubeconfig

    @default("clock")
    def _default_clock(self) -> Any:
        return WallClock()

    # ------------------------------------------------------------- state

    def init_state(self, kube: Any) -> None:
        """Build the loop's parts around a Kubernetes adapter (no I/O).

        Args:
            kube: :class:`~wbspawner.warmer.kube.Kube` or a fake.
        """
        self.source = ProfilesSource(self.profiles_dir, None, self.log)
        profiles = self.source.current()  # invalid profiles: the service won't start
        self.kube = kube
        self.observer = Observer(kube, self._observe_settings(profiles), self.clock)
        self.placeholders = PlaceholderActuator(
            kube, self._placeholder_settings(profiles)
        )
        self.asg: AsgMinActuator | None = None
        self.metrics = WarmerMetrics()
        self.snapshot: ClusterSnapshot | None = None
        self.plan: policy.WarmPlan | None = None
        self.result = ApplyResult()
        self.errors: deque[dict[str, str]] = deque(maxlen=self.max_errors)
        self.samples: deque[report.Sample] = deque()
        self.updated_at: datetime | None = None
        self._busy = asyncio.Lock()

    def _observe_settings(self, profiles: Profiles) -> ObserveSettings:
        return ObserveSettings(
            namespace=self.namespace,
            pool_zones={n: p.zones for n, p in profiles.pools.items()},
            region=profiles.cost.region,
            demand_window_s=profiles.warm.demand_window_s,
            shortage_ttl_s=self.shortage_ttl_s,
            pending_shortage_s=self.pending_shortage_s,
        )

    def _placeholder_settings(self, profiles: Profiles) -> PlaceholderSettings:
        return PlaceholderSettings(
            namespace=self.namespace,
            image=self.placeholder_image,
            command=tuple(self.placeholder_command),
            prepull=prepull_images(profiles) if self.prepull_images else {},
        )

    def record_error(self, pool: str, action: str, message: str) -> None:
        """Keep an error for the status page and count it."""
        self.log.warning("warmer: %s %s: %s", pool, action, message)
        at = self.clock.now().isoformat(timespec="seconds")
        self.errors.append(
            {"at": at, "pool": pool, "action": action, "message": message}
        )
        self.metrics.errors.labels(pool=pool).inc()

    # -------------------------------------------------------------- loop

    async def reconcile(self) -> None:
        """One observe → plan → act pass; records failures instead of raising."""
        if self._busy.locked():
            self.log.info("warmer: previous pass still running; skipping")
            return
        async with self._busy:
            try:
                await self._reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the loop must survive anything
                self.log.exception("warmer: reconcile pass failed")
                self.record_error("*", "reconcile", f"{type(err).__name__}: {err}")
                self.metrics.passes.labels(outcome="failed").inc()

    async def _reconcile(self) -> None:
        now = self.clock.now()
        profiles = self.source.current()
        last_pools = await self._last_pools(profiles) if self.read_hub_sizes else {}
        snapshot = await self.observer.observe(now, last_pools, self._spot_prices())
        options = policy.PolicyOptions(
            cost=profiles.cost, shortage_ttl_s=self.shortage_ttl_s
        )
        plan = policy.plan(
            profiles.pools, profiles.warm, snapshot, now, options=options
        )
        self._log_changes(plan)
        result = await self.placeholders.apply(
            plan, profiles.pools, dry_run=self.dry_run
        )
        if plan.mode == "asg-min":
            more = await self._asg(profiles).apply(plan, dry_run=self.dry_run)
            result = ApplyResult(
                planned=result.planned + more.planned,
                done=result.done + more.done,
                errors=result.errors + more.errors,
                dry_run=self.dry_run,
            )
        for err in result.errors:
            self.record_error(err.pool, err.action, err.message)
        self.snapshot, self.plan, self.result, self.updated_at = (
            snapshot,
            plan,
            result,
            now,
        )
        cells = report.cells(profiles.pools, snapshot, plan, profiles.cost)
        self.samples.append(report.sample(now, cells))
        while self.samples and now - self.samples[0].at > timedelta(
            hours=self.history_hours
        ):
            self.samples.popleft()
        self.metrics.update(cells, plan, self._today(now, profiles))
        self.metrics.passes.labels(
            outcome="ok" if not result.errors else "errors"
        ).inc()
        self._write_status_file(profiles, snapshot, now)

    def _log_changes(self, plan: policy.WarmPlan) -> None:
        before = {d.message for d in self.plan.decisions} if self.plan else set()
        for d in plan.decisions:
            if d.message not in before:
                self.log.info("warmer: %s %s: %s", d.pool, d.zone or "", d.message)

    def _asg(self, profiles: Profiles) -> AsgMinActuator:
        if self.asg is None:
            import boto3

            client = boto3.client(
                "autoscaling",
                region_name=profiles.cost.region,
                endpoint_url=self.aws_endpoint_url,
            )
            self.asg = AsgMinActuator(client, self.cluster_name, profiles.cost.region)
        return self.asg

    def _spot_prices(self) -> dict[tuple[str, str], float]:
        if not self.spot_prices_file:
            return {}
        try:
            raw = json.loads(Path(self.spot_prices_file).read_text())
        except (OSError, ValueError) as err:
            self.record_error("*", "spot prices", str(err))
            return {}
        return dict(spot_prices_from_json(raw) or {})

    async def _last_pools(self, profiles: Profiles) -> dict[str, str]:
        from wbspawner.warmer.hubapi import last_sizes

        try:
            sizes = await last_sizes(self.api_url, self.api_token)
        except Exception as err:
            self.record_error("*", "hub users", f"{type(err).__name__}: {err}")
            return {}
        out = {}
        for user, slug in sizes.items():
            size = profiles.size(slug)
            if size is not None:
                out[user] = size.pool
        return out

    def _today(self, now: datetime, profiles: Profiles) -> float:
        start = report.local_midnight(now, ZoneInfo(profiles.warm.timezone))
        return report.cost_since(list(self.samples), start, now)

    def _write_status_file(
        self, profiles: Profiles, snapshot: ClusterSnapshot, now: datetime
    ) -> None:
        if not self.warm_status_file:
            return
        ready = report.readiness(profiles.pools, profiles.sizes, snapshot, now)["pools"]
        target = Path(self.warm_status_file)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=target.parent, delete=False, suffix=".tmp"
            ) as tmp:
                json.dump(ready, tmp)
            os.replace(tmp.name, target)  # readers never see half a file
        except OSError as err:
            self.record_error("*", "status file", str(err))

    # -------------------------------------------------------- for the web

    def status(self) -> dict[str, Any]:
        """Return the status page's data (see ``GET <prefix>api/status``)."""
        profiles = self.source.current()
        view = report.StatusView(
            pools=profiles.pools,
            cost=profiles.cost,
            timezone=profiles.warm.timezone,
            snapshot=self.snapshot,
            plan=self.plan,
            errors=list(self.errors),
            samples=list(self.samples),
            now=self.clock.now(),
            dry_run=self.dry_run,
            last_actions=[f"{a.verb} {a.name} {a.detail}" for a in self.result.done],
        )
        return report.status_json(view)

    def readiness(self) -> dict[str, object]:
        """Return per size "ready now" or about how many minutes."""
        profiles = self.source.current()
        snapshot = self.snapshot or ClusterSnapshot(taken_at=self.clock.now())
        return report.readiness(
            profiles.pools, profiles.sizes, snapshot, self.clock.now()
        )

    def timeline(self) -> str:
        """Return the timeline plot (SVG)."""
        tz = ZoneInfo(self.source.current().warm.timezone)
        return report.timeline_svg(list(self.samples), tz)

    def metrics_text(self) -> tuple[bytes, str]:
        """Return the Prometheus exposition and its content type."""
        return self.metrics.render()

    # ------------------------------------------------------------- serve

    def make_web_app(self) -> Any:
        """Return the tornado application of the service."""
        from tornado import web

        from wbspawner.warmer.web import make_handlers

        return web.Application(
            make_handlers(self.prefix),
            warmer=self,
            cookie_secret=os.urandom(32),
            xsrf_cookies=False,
        )

    async def serve(self) -> None:
        """Connect, listen, reconcile at once and then periodically, forever."""
        from wbspawner.warmer.kube import Kube

        kube = await Kube.connect(
            self.kubeconfig, in_cluster=self.in_cluster, api_host=self.k8s_api_host
        )
        self.init_state(kube)
        url = urlparse(self.service_url)
        self.make_web_app().listen(url.port or 80, self.bind_ip)
        self.log.info("warmer listening on %s%s", self.service_url, self.prefix)
        await self.reconcile()
        periodic = PeriodicCallback(self.reconcile, self.interval * 1000)
        periodic.start()
        try:
            await asyncio.Event().wait()
        finally:
            periodic.stop()
            await kube.close()

    def start(self) -> None:
        """Run the service until interrupted."""
        asyncio.run(self.serve())


def main(argv: list[str] | None = None) -> None:
    """Run the warmer from the command line."""
    app = WarmerApp()
    app.initialize(argv)
    app.start()
