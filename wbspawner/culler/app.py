"""``python -m wbspawner.culler``: the idle culler as a JupyterHub service.

This module owns the service process, a thin loop around
:func:`wbspawner.culler.policy.decide` that runs every ``interval`` seconds:

1. list the ready servers through the hub API (their size from
   ``user_options``, the hub's last activity);
2. read each server's own ``api/status`` and ``api/kernels`` through the proxy
   (its last activity without the culler's requests; busy kernels), remembering
   since when each kernel has been busy;
3. decide; send the warning notice (kind ``cull``, with the stop time in the
   site's time zone and the $/hour; JupyterLab shows a "Keep running" button,
   whose click is a request to the server and so counts as use); withdraw it
   when the server was used again; or stop the server with the hub API, and
   once the hub says it is gone mark its accounting record ``cull``
   (:func:`wbspawner.costs.culls.mark_cull`).

Each pass then sweeps the namespace for server pods the hub has no server for
(:mod:`wbspawner.culler.orphans`: a failed start or stop left them running,
unseen): past ``culling.orphan_grace_s`` each is deleted (that pod only, by its
uid; claims and volumes are never touched), its open accounting record is
closed with cause ``orphan``, and one line says so in the log.

Dask clusters of a culled server's user are stopped by the gateway's reaper,
which stops the clusters of users without an active server. A pass never raises
(but on cancellation): a failure is logged and the next pass retries.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session
from tornado.ioloop import PeriodicCallback
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Unicode, default

from wbspawner.adapters.hubapi import HubApi
from wbspawner.adapters.jupyterserver import CULLER_TIMEOUT, JupyterServers
from wbspawner.adapters.kube import Kube, api_path
from wbspawner.adapters.parent import parent_gone, until_signal, watch_parent
from wbspawner.catalog.pricing import hourly_cost
from wbspawner.costs.accounting import MICRO, list_open, open_db, record_stop
from wbspawner.costs.culls import mark_cull
from wbspawner.culler import orphans, policy
from wbspawner.errors import KubeError
from wbspawner.model import Profiles
from wbspawner.profiles.loader import ProfilesSource
from wbspawner.service import ProfilesService
from wbspawner.timestamps import parse_time


def _now() -> datetime:
    return datetime.now(UTC)


class CullerApp(ProfilesService):
    """Warns, then stops, servers nobody used for their size's idle timeout."""

    name = "wbspawner-culler"
    description = "Stop idle servers after a warning (a JupyterHub service)."

    interval = Float(60.0, config=True, help="Seconds between two passes.")
    proxy_url = Unicode(
        config=True,
        help="""Where the proxy serves users' servers, e.g. ``http://127.0.0.1:8000``.

        The culler reads each server's kernels and sends its warning there,
        with its token (``access:servers``).""",
    )
    stop_wait_s = Float(
        120.0, config=True, help="Seconds to wait for a stopped server to be gone."
    )
    clock = AnyTrait(help="Returns the current aware time; tests only.")
    namespace = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Namespace of users' server pods, swept for pods of no server; "
        "``None``: no sweep.",
    )
    kubeconfig = Unicode(None, allow_none=True, config=True, help="kubeconfig file.")
    in_cluster = Bool(config=True, help="Use the pod's service account.")
    k8s_api_host = Unicode(None, allow_none=True, config=True, help="API URL override.")

    aliases = {
        "interval": "CullerApp.interval",
        "profiles": "CullerApp.profiles_dir",
        "proxy-url": "CullerApp.proxy_url",
        "namespace": "CullerApp.namespace",
        "log-level": "Application.log_level",
    }

    @default("in_cluster")
    def _default_in_cluster(self) -> bool:
        return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not self.kubeconfig

    @default("proxy_url")
    def _default_proxy_url(self) -> str:
        return "http://127.0.0.1:8000"

    @default("clock")
    def _default_clock(self) -> Callable[[], datetime]:
        return _now

    # ------------------------------------------------------------- state

    def init_state(self) -> None:
        """Read the profiles and make the clients (invalid profiles raise)."""
        self.source = ProfilesSource(self.profiles_dir, None, self.log)
        self.source.current()
        self.hub = HubApi(self.api_url, self.api_token, timeout=10.0)
        self.servers = JupyterServers(self.proxy_url, self.api_token, CULLER_TIMEOUT)
        self.warned: dict[str, datetime] = {}
        """Server key → when it was warned."""
        self.busy_since: dict[tuple[str, str], datetime] = {}
        """(server key, kernel id) → when the kernel was first seen busy."""
        self.stopping: set[str] = set()
        self._busy = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sessions: Any = None
        self.kube: Kube | None = None
        """The cluster, for the sweep (``None``: no sweep)."""

    # -------------------------------------------------------------- loop

    async def cull_pass(self) -> None:
        """One pass; failures are logged, never raised."""
        if self._busy.locked():
            return
        async with self._busy:
            try:
                await self._pass()
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError) as err:  # aiohttp's connection errors too
                # the hub or the proxy is away (restarting, or gone with the
                # hub that runs this service): expected, said in one line
                self.log.warning(
                    "culler: pass skipped, the hub is not reachable: %s", err
                )
            except Exception:  # the loop must survive anything
                self.log.exception("culler: pass failed")

    async def _pass(self) -> None:
        profiles = self.source.current()
        now = self.clock()
        users = await self.hub.users(state="ready")
        prices = await asyncio.to_thread(self._open_prices)
        views = []
        for user in users:
            for name, server in (user.get("servers") or {}).items():
                if not server.get("ready"):
                    continue
                view = await self._view(user["name"], name, server, profiles, now)
                views.append(replace(view, price_per_hour=prices.get(view.key)))
        seen = {v.key for v in views}
        self.warned = {k: t for k, t in self.warned.items() if k in seen}
        self.busy_since = {k: t for k, t in self.busy_since.items() if k[0] in seen}
        tz = ZoneInfo(profiles.warm.timezone)
        for decision in policy.decide_all(views, profiles.culling, now):
            await self._act(decision, profiles, now, tz)
        await self.sweep(profiles.culling.orphan_grace_s)

    # ------------------------------------------------------------- sweep

    async def sweep(self, grace_s: float) -> list[orphans.Orphan]:
        """Delete server pods the hub has no server for, past ``grace_s``.

        The hub's servers are listed before the pods, so a server that starts
        in between has a pod younger than the grace. Returns what was deleted.

        Raises:
            OSError, TimeoutError: the hub did not answer (the pass says so).
        """
        if self.kube is None or not self.namespace or grace_s <= 0:
            return []
        known = orphans.known_servers(await self.hub.users(state="active"))
        listed_at = self.clock()
        try:
            found = await self.kube.list_pods(self.namespace, orphans.SERVER_PODS)
        except KubeError as err:
            self.log.warning("culler: no sweep of orphan pods: %s", err)
            return []
        pods = [p for p in map(orphans.server_pod, found) if p is not None]
        deleted = []
        for orphan in orphans.orphans(pods, known, listed_at, grace_s):
            if await self._delete_orphan(orphan, listed_at):
                deleted.append(orphan)
        return deleted

    async def _delete_orphan(self, orphan: orphans.Orphan, listed_at: datetime) -> bool:
        assert self.kube is not None and self.namespace
        pod = orphan.pod
        path = api_path("pods", self.namespace, pod.name)
        try:
            await self.kube.delete(path, uid=pod.uid or None)
        except KubeError as err:  # 409: the name is a new server's pod now
            self.log.warning(
                "culler: pod %s/%s of no server not deleted: %s",
                self.namespace,
                pod.name,
                err,
            )
            return False
        record = await asyncio.to_thread(self._close_orphan, orphan, listed_at)
        self.log.warning(
            "culler: %s", orphans.deletion_line(orphan, self.namespace, record)
        )
        return True

    def _close_orphan(self, orphan: orphans.Orphan, listed_at: datetime) -> int | None:
        """Close the open accounting record of an orphan's server (its id)."""
        try:
            if self._sessions is None:
                self._sessions = open_db(self.cost_db_url)
            with self._sessions() as session:
                row = record_stop(
                    session,
                    orphan.pod.user,
                    self.clock(),
                    name=orphan.pod.server,
                    cause="orphan",
                    started_before=listed_at,
                )
                return None if row is None else row.id
        except Exception as err:
            self.log.warning(
                "culler: accounting of orphan pod %s not closed: %s",
                orphan.pod.name,
                err,
            )
            return None

    async def _view(
        self,
        user: str,
        name: str,
        server: dict[str, Any],
        profiles: Profiles,
        now: datetime,
    ) -> policy.ServerView:
        """Return what the policy needs of one ready server."""
        options = server.get("user_options") or {}
        size = options.get("profile") if isinstance(options, dict) else None
        view = policy.ServerView(
            user=user,
            name=name,
            size=size if isinstance(size, str) else None,
            started=parse_time(server.get("started")),
            last_activity=parse_time(server.get("last_activity")),
        )
        path = str(server.get("url") or f"/user/{user}/")
        jupyter = self.servers.server(path)
        try:
            status = await jupyter.status()
            kernels = await jupyter.kernels()
        except Exception as err:  # not answering: the hub's activity alone
            self.log.info("culler: %s: no status (%s)", view.key, err)
            return replace(view, warned_at=self.warned.get(view.key))
        own = parse_time(status.get("last_activity"))
        views = []
        for k in kernels:
            kid = str(k.get("id", ""))
            if k.get("execution_state") == policy.BUSY:
                first = parse_time(k.get("last_activity")) or now
                since = self.busy_since.setdefault((view.key, kid), min(first, now))
            else:
                self.busy_since.pop((view.key, kid), None)
                since = None
            state = str(k.get("execution_state", ""))
            views.append(
                policy.KernelView(id=kid, execution_state=state, busy_since=since)
            )
        return replace(
            view,
            last_activity=own or view.last_activity,
            kernels=tuple(views),
            warned_at=self.warned.get(view.key),
        )

    def _open_prices(self) -> dict[str, float]:
        """Return server key → $/hour of its open accounting record."""
        try:
            if self._sessions is None:
                self._sessions = open_db(self.cost_db_url)
            with self._sessions() as session:
                rows = list_open(session, "server")
        except Exception as err:
            self.log.warning("culler: no prices from the accounting: %s", err)
            return {}
        return {
            (f"{r.user}/{r.name}" if r.name else r.user): r.price_micro_per_hour / MICRO
            for r in rows
        }

    async def _act(
        self,
        decision: policy.Decision,
        profiles: Profiles,
        now: datetime,
        tz: ZoneInfo,
    ) -> None:
        server = decision.server
        key = server.key
        if decision.action == "keep":
            self.log.debug("culler: %s: %s", key, decision.reason)
            return
        self.log.info("culler: %s: %s: %s", key, decision.action, decision.reason)
        if decision.action == "reset":
            self.warned.pop(key, None)
        elif decision.action == "warn":
            if server.price_per_hour is None:
                price = self._list_price(server, profiles)
                decision = replace(
                    decision, server=replace(server, price_per_hour=price)
                )
            self.warned[key] = now
            await self._notice(server, policy.warning_text(decision, now, tz), now)
        elif decision.action == "cull" and key not in self.stopping:
            self.stopping.add(key)
            self.warned.pop(key, None)
            task = asyncio.ensure_future(self._cull(server, now))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _list_price(
        self, server: policy.ServerView, profiles: Profiles
    ) -> float | None:
        """Return the form's $/hour of a server's size (no accounting record)."""
        size = profiles.size(server.size or "")
        if size is None:
            return None
        pool = profiles.pool_of(size)
        return hourly_cost(pool, pool.capacity_types[0], None, profiles.cost).per_hour

    async def _notice(
        self, server: policy.ServerView, text: str, now: datetime
    ) -> None:
        notice = {
            "id": f"cull-{int(now.timestamp())}",
            "kind": "cull",
            "message": text,
            "save": False,
        }
        try:
            await self.servers.server(f"/user/{server.user}/{server.name}").notice(
                notice
            )
        except Exception as err:  # warned all the same: logged, never blocks
            self.log.warning("culler: %s: warning not shown: %s", server.key, err)

    async def _cull(self, server: policy.ServerView, asked: datetime) -> None:
        """Stop a server, wait until the hub says it is gone, record the cull."""
        try:
            status = await self.hub.stop_server(server.user, server.name)
            self.log.info("culler: %s: stop asked (%s)", server.key, status)
            deadline = asyncio.get_running_loop().time() + self.stop_wait_s
            while asyncio.get_running_loop().time() < deadline:
                model = await self.hub.user(server.user)
                if not ((model or {}).get("servers") or {}).get(server.name):
                    break
                await asyncio.sleep(1.0)
            else:
                self.log.warning("culler: %s: still not stopped", server.key)
                return
            row = await asyncio.to_thread(self._mark, server, asked)
            self.log.info("culler: %s culled (record %s)", server.key, row)
        except Exception:
            self.log.exception("culler: stopping %s failed", server.key)
        finally:
            self.stopping.discard(server.key)

    def _mark(self, server: policy.ServerView, asked: datetime) -> int | None:
        if self._sessions is None:
            self._sessions = open_db(self.cost_db_url)
        session: Session
        with self._sessions() as session:
            row = mark_cull(
                session,
                server.user,
                server.name,
                asked - timedelta(seconds=1),
                self.clock(),
            )
            return None if row is None else row.id

    # ----------------------------------------------------------- process

    def parent_gone(self) -> bool:
        """Return whether the hub named by ``parent_pid`` is no longer the parent."""
        return parent_gone(self.parent_pid)

    async def serve(self) -> None:
        """Pass at once and then periodically, until SIGINT/SIGTERM or the hub dies."""
        stop = asyncio.Event()
        watch = watch_parent(self.parent_pid, stop, self.log, "culler")
        self.init_state()
        await self._connect()
        periodic = PeriodicCallback(self.cull_pass, self.interval * 1000)
        try:
            await self.cull_pass()
            periodic.start()
            await until_signal(stop)
            self.log.info("culler stopping")
        finally:
            periodic.stop()
            if watch is not None:
                watch.stop()
            await self.hub.close()
            await self.servers.close()
            if self.kube is not None:
                await self.kube.close()

    async def _connect(self) -> None:
        """Connect to the cluster for the sweep; without one, the culler culls."""
        if not self.namespace:
            return
        try:
            self.kube = await Kube.connect(
                self.kubeconfig, in_cluster=self.in_cluster, api_host=self.k8s_api_host
            )
        except KubeError as err:
            self.log.warning("culler: no sweep of orphan pods: %s", err)

    def start(self) -> None:
        """Run the service until it is told to stop."""
        asyncio.run(self.serve())
