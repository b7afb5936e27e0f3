"""``python -m wbspawner.warmer``: the warmer as a JupyterHub service.

This module owns the service process, built like jupyterhub-idle-culler: a
traitlets :class:`WarmerApp` whose traits carry help and CLI aliases, and a loop
that runs at once and then every ``interval`` seconds::

    snapshot = await observer.observe(now)           # thin: list the cluster
    plan = policy.plan(pools, warm, snapshot, now)    # pure, with reasons
    result = await actuator.apply(plan, pools)        # thin: idempotent changes

A pass never raises (but on cancellation): a failure is logged and kept for the
page and metrics, and the next pass retries. Web face: :mod:`wbspawner.warmer.web`.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from tornado.ioloop import PeriodicCallback
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Int, List, Unicode, default

from wbspawner.adapters import statefiles
from wbspawner.adapters.hubapi import HubApi
from wbspawner.adapters.parent import parent_gone, until_signal, watch_parent
from wbspawner.model import Profiles, WarmStatus
from wbspawner.profiles.loader import ProfilesSource
from wbspawner.service import ProfilesService
from wbspawner.spawn.waits import summarize
from wbspawner.warmer import policy, report
from wbspawner.warmer import status as status_doc
from wbspawner.warmer.actuator import (
    ApplyResult,
    PlaceholderActuator,
    PlaceholderSettings,
    prepull_images,
)
from wbspawner.warmer.asgmin import AsgMinActuator
from wbspawner.warmer.habits import HabitReader
from wbspawner.warmer.metrics import WarmerMetrics
from wbspawner.warmer.observer import Observer, ObserveSettings, WallClock
from wbspawner.warmer.snapshot import ClusterSnapshot


class WarmerApp(ProfilesService):
    """Keeps nodes warm per pool × zone, and shows admins what it does."""

    name = "wbspawner-warmer"
    description = "Keep spot nodes warm per size and zone (a JupyterHub service)."

    interval = Float(30.0, config=True, help="Seconds between two reconcile passes.")
    dry_run = Bool(False, config=True, help="Decide and report, but change nothing.")
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
    wait_times_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Where the warmer writes the cold starts it observed, for the hub.

        The medians of the last few per pool and zone (a pod's wait for a new
        node, then for being Ready on it), written after every pass; the spawn
        form and the progress page say the wait from them. The samples are
        kept in ``memory_file``. ``None``: the hub says the stated figures.""",
    )
    memory_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Where the warmer keeps what it remembers between passes.

        Recent spawns (demand) and capacity shortages are seen once and then
        remembered; kept in this file after every pass and read back at start,
        they survive a restart of the warmer, so the placeholders they asked
        for are kept rather than deleted and made anew. ``None``: in memory only.""",
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

    @default("in_cluster")
    def _default_in_cluster(self) -> bool:
        return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not self.kubeconfig

    @default("clock")
    def _default_clock(self) -> Any:
        return WallClock()

    # ------------------------------------------------------------- state

    def init_state(self, kube: Any) -> None:
        """Build the loop's parts around a Kubernetes adapter; read the profiles.

        Args:
            kube: :class:`~wbspawner.adapters.kube.Kube` or a fake.

        Raises:
            ProfileConfigError: the profiles are invalid (the service must not run).
        """
        self.source = ProfilesSource(self.profiles_dir, None, self.log)
        profiles = self.source.current()  # invalid profiles: the service won't start
        self.kube = kube
        self.hub = HubApi(self.api_url, self.api_token, timeout=10.0)
        self.observer = Observer(kube, self._observe_settings(profiles), self.clock)
        memory = statefiles.read_warmer_memory(self.memory_file, self.log)
        if memory is not None:
            self.observer.remember(memory)
            self.log.info(
                "warmer: remembering %d spawn(s) and %d shortage(s) from %s",
                len(memory.spawns),
                len(memory.shortages),
                self.memory_file,
            )
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
        self._busy = asyncio.Lock()
        self.habits = HabitReader(
            self.cost_db_url,
            on_error=lambda message: self.record_error("*", "habits", message),
        )
        self._digest = profiles.digest

    def _observe_settings(self, profiles: Profiles) -> ObserveSettings:
        return ObserveSettings(
            namespace=self.namespace,
            pool_zones={n: p.zones for n, p in profiles.pools.items()},
            pool_types={n: p.instance_types for n, p in profiles.pools.items()},
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
        if profiles.digest != self._digest:  # an edit took effect: follow it
            self.observer.settings = self._observe_settings(profiles)
            self.placeholders.settings = self._placeholder_settings(profiles)
            self._digest = profiles.digest
        last_pools = await self._last_pools(profiles) if self.read_hub_sizes else {}
        snapshot = await self.observer.observe(now, last_pools, self._spot_prices())
        habits = await self.habits.habits(profiles.warm, now)
        snapshot = replace(snapshot, habits=habits)
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
        self.snapshot, self.plan, self.result = snapshot, plan, result
        self._record(profiles, snapshot, plan, result, now)

    def _record(
        self,
        profiles: Profiles,
        snapshot: ClusterSnapshot,
        plan: policy.WarmPlan,
        result: ApplyResult,
        now: datetime,
    ) -> None:
        """Keep the pass for the timeline, the metrics and the hub's status file."""
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
        self._write_status_file(profiles, snapshot)
        self._write_memory_file()
        self._write_wait_times()

    def _log_changes(self, plan: policy.WarmPlan) -> None:  # only what changed
        before = {d.message for d in self.plan.decisions} if self.plan else set()
        for d in plan.decisions:
            if d.message not in before:
                self.log.info("warmer: %s %s: %s", d.pool, d.zone or "", d.message)

    def _asg(self, profiles: Profiles) -> AsgMinActuator:
        if self.asg is None:
            # Imported here: botocore is loaded only in asg-min mode.
            from wbspawner.adapters.aws import make_client

            client = make_client(
                "autoscaling", profiles.cost.region, self.aws_endpoint_url
            )
            self.asg = AsgMinActuator(client, self.cluster_name, profiles.cost.region)
        return self.asg

    def _spot_prices(self) -> dict[tuple[str, str], float]:
        if not self.spot_prices_file:
            return {}
        try:
            return statefiles.load_spot_prices(self.spot_prices_file)
        except statefiles.StateFileError as err:  # kept for the page, then retried
            self.record_error("*", "spot prices", str(err))
            return {}

    async def _last_pools(self, profiles: Profiles) -> dict[str, str]:
        """Return user → pool of their last size (sizes no longer offered: none)."""
        try:
            sizes = await self.hub.last_sizes()
        except Exception as err:  # the hub may be restarting: carry on without
            self.record_error("*", "hub users", f"{type(err).__name__}: {err}")
            return {}
        return {u: s.pool for u, slug in sizes.items() if (s := profiles.size(slug))}

    def _today(self, now: datetime, profiles: Profiles) -> float:
        start = report.local_midnight(now, ZoneInfo(profiles.warm.timezone))
        return report.cost_since(list(self.samples), start, now)

    def _write_status_file(self, profiles: Profiles, snapshot: ClusterSnapshot) -> None:
        if not self.warm_status_file:
            return
        ready = WarmStatus.of(report.ready_nodes(profiles.pools, snapshot))
        try:
            statefiles.write_warm_status(self.warm_status_file, ready)
        except OSError as err:
            self.record_error("*", "status file", str(err))

    def _write_memory_file(self) -> None:
        if not self.memory_file:
            return
        try:
            statefiles.write_warmer_memory(self.memory_file, self.observer.memory())
        except OSError as err:
            self.record_error("*", "memory file", str(err))

    def _write_wait_times(self) -> None:
        if not self.wait_times_file:
            return
        try:
            times = summarize(self.observer.waits)
            statefiles.write_wait_times(self.wait_times_file, times)
        except OSError as err:
            self.record_error("*", "wait times file", str(err))

    def status(self) -> dict[str, Any]:
        """Return the status page's data (see ``GET <prefix>api/status``)."""
        profiles = self.source.current()
        view = status_doc.StatusView(
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
        return status_doc.status_json(view)

    def readiness(self) -> dict[str, object]:
        """Return per size "ready now" or about how many minutes."""
        p, now = self.source.current(), self.clock.now()
        snap = self.snapshot or ClusterSnapshot(taken_at=now)
        return report.readiness(p.pools, p.sizes, snap, now)

    def timeline(self) -> report.Timeline:
        """Return the timeline charts (SVG) and their table."""
        tz = ZoneInfo(self.source.current().warm.timezone)
        return report.timeline(list(self.samples), tz)

    def metrics_text(self) -> tuple[bytes, str]:
        """Return the Prometheus exposition and its content type."""
        return self.metrics.render()

    def parent_gone(self) -> bool:
        """Return whether the hub named by ``parent_pid`` is no longer the parent."""
        return parent_gone(self.parent_pid)

    async def serve(self) -> None:
        """Connect, listen, reconcile at once and then periodically.

        Runs until cancelled, or until the managing hub is gone
        (:attr:`parent_pid`).
        """
        stop = asyncio.Event()
        watch = watch_parent(self.parent_pid, stop, self.log, "warmer")
        try:
            if not stop.is_set():
                await self._serve_until(stop)
        finally:
            if watch is not None:
                watch.stop()

    async def _serve_until(self, stop: asyncio.Event) -> None:
        from wbspawner.adapters.kube import Kube
        from wbspawner.warmer.web import make_app

        ProfilesSource(self.profiles_dir, None, self.log).current()  # fail first
        kube = await Kube.connect(
            self.kubeconfig, in_cluster=self.in_cluster, api_host=self.k8s_api_host
        )
        self.init_state(kube)
        url = urlparse(self.service_url)
        make_app(self, self.prefix).listen(url.port or 80, self.bind_ip)
        self.log.info("warmer listening on %s%s", self.service_url, self.prefix)
        await self.reconcile()
        periodic = PeriodicCallback(self.reconcile, self.interval * 1000)
        periodic.start()
        try:
            await self.until_stopped(stop)
        finally:
            periodic.stop()
            await self.hub.close()
            await kube.close()

    async def until_stopped(self, stop: asyncio.Event | None = None) -> None:
        """Return when the process gets SIGINT or SIGTERM, or ``stop`` is set.

        The hub stops its services with SIGINT, then SIGTERM; either ends the
        service cleanly (connections closed, exit code 0) instead of with a
        ``KeyboardInterrupt`` traceback in the hub's log.

        Args:
            stop: also ends the wait when set (the managing hub is gone).
        """
        await until_signal(stop or asyncio.Event())
        self.log.info("warmer stopping")

    def start(self) -> None:
        """Run the service until it is told to stop."""
        asyncio.run(self.serve())
