"""``WorkbenchSpawner``: KubeSpawner with sizes from the profiles, checked first.

This module owns only the glue between JupyterHub/KubeSpawner and the pure core:
it gathers who the user is (groups, admin, uid/gid, their home's zone), asks the
pure modules (form, selection, manifests, progress, homes.policy, costs.budget)
what to do, tells the accounting (costs.hooks) when a server runs and stops, and
turns their :class:`~wbspawner.errors.UserFacingError` into what JupyterHub shows.
KubeSpawner keeps rendering the form, applying overrides and managing the pod.
Decisions do not belong here: each hook below gathers, asks and acts, and the
I/O it needs is in :mod:`wbspawner.hub.spawner_io` and the adapters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from jupyterhub.utils import maybe_future
from kubespawner import KubeSpawner
from traitlets import Callable, Float, Unicode, default

from wbspawner.adapters import statefiles
from wbspawner.adapters.jupyterserver import MemoryUse, OwnServer
from wbspawner.adapters.kube import Kube, retry_transient
from wbspawner.catalog.pricing import SpotPrices
from wbspawner.costs.accounting import StopCause
from wbspawner.errors import KubeError, UserFacingError, to_hub_error
from wbspawner.gateway.netpol_kube import ensure_dask_network_policies
from wbspawner.homes.policy import first_home_zone
from wbspawner.hub import accounting as hooks
from wbspawner.hub import spawner_io
from wbspawner.hub.automove import HomeMoves, Stuck, move_blocks_spawn
from wbspawner.hub.hubdb import wait_for_hub_database
from wbspawner.hub.ldap import posix_ids
from wbspawner.hub.memory import MemoryWatch
from wbspawner.model import Pool, Profiles, WaitTimes, WarmStatus
from wbspawner.pages import spawnform
from wbspawner.profiles import access
from wbspawner.profiles.data_access import DataAccess, access_for
from wbspawner.spawn import (
    advice,
    data_pods,
    form,
    interruptions,
    manifests,
    progress,
    reclaims,
)
from wbspawner.spawn.budget import BudgetState, check_size
from wbspawner.spawn.manifests import SpawnUser
from wbspawner.spawn.selection import (
    Selection,
    options_from_form,
    options_sent,
    select,
)
from wbspawner.spawn.waits import Waits

STOP_REASON_STATE = "stop_reason"
"""The key of the spawner's saved state that says why the cluster took the
last server (``templates/home.html`` shows it). JupyterHub saves the state of
a stopped server after :meth:`WorkbenchSpawner.clear_state` and gives it back
to the spawner it makes after a restart, so the reason outlives the hub; the
next start clears it."""


class WorkbenchSpawner(KubeSpawner):
    """Spawn a user's server on a whole node of the size they picked."""

    profiles_source = Callable(
        None,
        allow_none=True,
        config=True,
        help="""
        Callable returning the hub's profiles source (``current()`` gives the
        profiles in force, ``last_error`` the problems of a rejected edit).

        ``hubconfig.apply`` sets a closure over one ``ProfilesSource`` that re-reads
        the profiles when they change; a callable because traitlets deep-copies
        configured values.
        """,
    )
    warm_status_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help='The warmer\'s ready nodes ({"<pool>": {"<zone>": n}}) for the form.',
    )
    wait_times_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        The warmer's observed cold starts per pool and zone (``WAIT_TIMES_FILE``).

        The form's "Starts in about …" and the progress page's waits are their
        medians; ``None`` or no sample: the stated figures.
        """,
    )
    spot_prices_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help='Observed spot prices ({"<type>/<zone>": <USD/h>}); else estimated.',
    )
    dask_namespace = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Namespace of Dask pods, where each user's network policies go.",
    )
    cost_db_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        SQLAlchemy URL of the accounting database (SQLite or PostgreSQL) that
        records every server's start and stop with its $/hour and holds the
        spend that group budgets are checked against; ``None``: no accounting.
        """,
    )
    reclaim_avoid_seconds = Float(
        reclaims.AVOID_S,
        config=True,
        help="""
        Seconds a start avoids a spot type that was reclaimed in its zone.

        A start pinned to a zone (the home's) where the cluster shows a spot
        interruption notice of one of its pool's types within this time (a
        node's aws-node-termination-handler taint, or its ``SpotInterruption``
        Event) requires another spot type of the pool or on-demand capacity,
        and the progress page says why. ``0`` turns it off.
        """,
    )
    capacity_grace_seconds = Float(
        30.0,
        config=True,
        help="""
        Seconds the autoscaler must keep refusing to start a node for the pod
        before the spawn fails with a message, rather than at ``start_timeout``.
        """,
    )

    accounting_retry_seconds = Float(
        600.0,
        config=True,
        help="""
        Seconds a start or stop is tried again while the accounting database
        cannot be reached (a PostgreSQL restart), in the background.

        The record keeps the moment of the start or stop. ``0``: tried once.
        """,
    )

    memory_sample_seconds = Float(
        60.0,
        config=True,
        help="""
        Seconds between two readings of a running server's memory.

        The hub reads the server's own metrics (jupyter-resource-usage's
        ``/api/metrics/v1``) this often and once more as the server stops, and
        the accounting keeps the highest value as the session's peak, which
        the spawn form's right-size advice and the costs page read. ``0``: at
        the stop only.
        """,
    )

    aws_endpoint_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        AWS endpoint of the calls that move a home (``homes.auto_move``): a local
        moto server in tests and the demo; ``None``: AWS itself.
        """,
    )

    user_options: dict[str, Any]  # JupyterHub's trait, typed for mypy only
    _kept_options: dict[str, Any]
    _selection: Selection | None = None
    _size: str | None = None
    _pool: str | None = None
    _zone: str | None = None
    _home: str | None = None
    _spawn_user: SpawnUser | None = None
    _notes: asyncio.Queue[dict[str, Any] | None] | None = None
    _policies: asyncio.Future[None] | None = None
    _deletion: asyncio.Future[None] | None = None
    _stop_cause: StopCause | None = None
    """Why the running server stops, once known (recorded with the stop)."""
    _avoid: reclaims.Avoidance | None = None
    """How this start avoids reclaimed spot capacity, if it does."""
    _stop_reason: str | None = None
    """Why the cluster took the last server (saved state: :data:`STOP_REASON_STATE`)."""
    _kube: Kube | None = None
    _times: WaitTimes | None = None
    """Cold starts observed when this start began (its progress messages)."""
    _groups: tuple[str, ...] | None = None
    """The user's groups when the start was checked (accounting reads them
    after, when the hub's database may be away)."""
    _ledger: asyncio.Future[Any] | None = None
    _memory: MemoryWatch | None = None
    """Samples the running server's memory (its peak goes to the accounting)."""
    """The last accounting write of this server (the next waits for it)."""
    _data: DataAccess | None = None
    """The buckets and volumes of the user's groups at this start."""
    _start_clock: float = 0.0
    _start_wall: datetime | None = None
    """When the current start began (its accounting record is not older)."""
    _start_failed: bool = False
    """The current start failed or the hub gave up on it (then its pod and
    any accounting record of it go)."""
    _cleanup: asyncio.Future[None] | None = None
    """The deletion of the pod of a start that failed."""
    _start_name: str = ""
    """``_log_name`` at the start (reading it loads the user from the database)."""

    def __init__(self, **kwargs: Any) -> None:
        """Build the spawner; the hub passes the options it saved last."""
        super().__init__(**kwargs)
        self._kept_options = dict(self.user_options or {})
        # A start without data grants gets the configured identity back.
        self._identity = {
            "service_account": self.service_account,
            "automount_service_account_token": self.automount_service_account_token,
        }
        # KubeSpawner's one client (its reflectors share it) retries what a
        # loaded API server sheds, as client-go would.
        retry_transient(self.api, log=self.log)

    @property
    def kube(self) -> Kube:
        """The cluster as JSON, over KubeSpawner's own client (one connection)."""
        if self._kube is None:
            # Each read tried for as long as KubeSpawner retries its own calls.
            self._kube = Kube.of(
                self.api,
                timeout=self.k8s_api_request_timeout,
                retry_for=self.k8s_api_request_retry_timeout,
            )
        return self._kube

    @kube.setter
    def kube(self, value: Kube) -> None:
        self._kube = value

    @default("profile_list")
    def _default_profile_list(self) -> Any:
        return self._workbench_profiles

    @default("options_form")
    def _default_options_form(self) -> Any:
        return self._workbench_form

    # ------------------------------------------------------------------ gathering
    def _provider(self) -> Any:
        if self.profiles_source is None:
            raise RuntimeError("WorkbenchSpawner.profiles_source is not configured")
        return self.profiles_source()

    def _who(self) -> tuple[list[str], bool]:
        groups = sorted(getattr(g, "name", str(g)) for g in self.user.groups)
        return groups, bool(getattr(self.user, "admin", False))

    def _spot(self) -> dict[tuple[str, str], float] | None:
        return statefiles.read_spot_prices(self.spot_prices_file, self.log)

    def _warm(self) -> WarmStatus | None:
        return statefiles.read_warm_status(self.warm_status_file, self.log)

    def _waits(self) -> WaitTimes | None:
        return statefiles.read_wait_times(self.wait_times_file, self.log)

    def _workbench_profiles(
        self,
        spawner: Any = None,
        state: BudgetState | None = None,
        spot: tuple[SpotPrices | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the sizes for the form; ``spot``: spot prices already read."""
        groups, is_admin = self._who()
        warm = self._warm()
        ready = warm.by_pool(self._zone) if warm else None
        profiles = self._provider().current()
        waits = Waits(times=self._waits(), zone=self._zone)
        (prices,) = spot or (self._spot(),)
        return form.kubespawner_profiles(
            profiles, groups, is_admin, ready, prices, state, waits
        )

    def _costs(self) -> hooks.Accounting:
        return hooks.Accounting(
            self.cost_db_url, self.log, retry_for=self.accounting_retry_seconds
        )

    async def _budget(self, profiles: Profiles) -> BudgetState:
        """Return the user's budget state; an admin starting it may override."""
        groups, is_admin = self._who()
        acting = getattr(getattr(self, "handler", None), "current_user", None)
        is_admin = is_admin or bool(getattr(acting, "admin", False))
        return await self._costs().budget(profiles, groups, is_admin)

    async def _workbench_form(self, spawner: Any = None) -> str:
        provider = self._provider()
        profiles, (groups, is_admin) = provider.current(), self._who()
        banners = []
        if is_admin and provider.last_error:
            banners.append(form.admin_warning(str(provider.last_error)))
        try:
            notice = select(self.user_options, profiles, groups, is_admin, saved=True)
            banners.append(form.banner(notice.notice, "info") if notice.notice else "")
        except UserFacingError as err:
            banners.append(form.banner(err.message, "info"))
        state = await self._budget(profiles)
        visible = access.visible_sizes(profiles, groups, is_admin)
        banners.append(form.budget_banner(state, visible))
        spot = self._spot()
        history = await self._costs().history(self.user.name)
        advised = advice.advise(history, visible, profiles, spot)
        banners.append(advice.advice_html(advised))
        sizes = self._workbench_profiles(None, state, (spot,))
        return self._render_cards(sizes, banners)

    def _render_options_form(self, profile_list: list[dict[str, Any]]) -> str:
        """Render the sizes as cards (KubeSpawner's entry point of its template)."""
        return self._render_cards(profile_list, [])

    def _render_cards(
        self, profile_list: list[dict[str, Any]], notices: list[str]
    ) -> str:
        """Render the form: ``notices`` above the sizes, then one card per size.

        The saved options preselect a size and image only while the list
        still offers them, as KubeSpawner's own form does.
        """
        sizes = self._get_initialized_profile_list(profile_list)
        saved = dict(self.user_options or {})
        if saved and sizes:
            try:
                self._validate_user_options(sizes)
            except ValueError as err:
                self.log.info(
                    "%s: Not pre-selecting the saved options: %s", self._log_name, err
                )
                saved = {}
        return spawnform.render(sizes, saved, notices)

    def _options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """Return the form's options; a size sent empty or twice stays to be refused."""
        return options_from_form(formdata, super()._options_from_form(formdata))

    def _options_are_saved(self) -> bool:
        """Whether ``user_options`` were reused from the last spawn, not sent now."""
        request = getattr(getattr(self, "handler", None), "request", None)
        if request is None:
            return True
        return not options_sent(request.body or b"", request.query or "")

    def _first_zone(self, pool: Pool, profiles: Profiles) -> str | None:
        """Pick the zone of a first home from the warmer's report and spot prices."""
        default = profiles.homes.default_zone
        pick = first_home_zone(pool, self._warm(), self._spot(), default)
        if pick:
            self.log.info("%s: home in %s: %s", self._log_name, pick.zone, pick.reason)
        return pick.zone if pick else None

    # ------------------------------------------------------------ user options
    async def _check(self, profiles: Profiles) -> tuple[Selection, SpawnUser]:
        """Return the checked choice and the user, or raise what the hub shows."""
        groups, is_admin = self._who()
        self._groups = tuple(groups)
        saved = self._options_are_saved()
        try:
            chosen = select(self.user_options, profiles, groups, is_admin, saved=saved)
            visible = access.visible_sizes(profiles, groups, is_admin)
            check_size(await self._budget(profiles), chosen.size, visible)
            uid, gid = posix_ids(await self.user.get_auth_state())
            size_gib = access.home_size_gib(chosen.size, groups)
            user = SpawnUser(
                name=self.user.name, uid=uid, gid=gid, home_size_gib=size_gib
            )
            # Refuses a missing or root uid/gid before anything exists.
            manifests.security_context(uid, gid, user.name)
        except UserFacingError as err:
            self.log.warning("Refused %s: %s", self._log_name, err.log_message)
            raise self._refused(err, saved) from None
        return chosen, user

    def _refused(self, err: UserFacingError, saved: bool) -> Exception:
        """Forget refused options; return the error the hub shows.

        JupyterHub saves the options a start request sends before they are
        checked, to reuse them when a later start sends none (the admin page).
        Sent options that are refused go back to those saved before; the hub
        writes that to its database when it cleans up the failed start.
        """
        self.user_options = dict(self._kept_options)  # the form preselects them
        if not saved and self.orm_spawner is not None:
            self.orm_spawner.user_options = dict(self._kept_options)
        return to_hub_error(err)

    async def load_user_options(self) -> None:
        """Check the user's options, then let KubeSpawner apply the chosen size.

        Raises:
            SpawnException: the options are refused (unknown or forbidden size or
                image, forged field) or the account has no usable uid/gid; the
                message says why, and nothing has been created.
        """
        profiles = self._provider().current()
        chosen, user = await self._check(profiles)
        await self._refuse_while_moving()
        asked = dict(self.user_options or {})  # checked: a mapping
        if chosen.notice:
            self.log.info("%s: %s", self._log_name, chosen.notice)
        self.user_options = chosen.options
        try:
            await super().load_user_options()
        except ValueError as err:
            # KubeSpawner writes these messages for users (unknown profile, bad
            # unlisted choice); anything else is a bug and keeps its traceback.
            self.log.warning("KubeSpawner refused %s: %s", self._log_name, err)
            refusal = UserFacingError(str(err), reason="profile")
            raise self._refused(refusal, self._options_are_saved()) from None
        self._kept_options = asked
        pool = profiles.pool_of(chosen.size)
        home = await spawner_io.home_zone(self.kube, self.namespace, self.pvc_name)
        self._zone = home or self._first_zone(pool, profiles)
        self._home, self._spawn_user = home, user
        self._times = self._waits()
        self._data = access_for(profiles.data, self._groups or ())
        overrides = self._with_data(
            manifests.overrides_for(
                chosen.size, chosen.image, pool, user, self._zone, profiles.homes
            )
        )
        self._avoid = await self._avoid_reclaimed(pool)
        # Set either way: an earlier start's avoidance must not linger.
        overrides["node_affinity_required"] = (
            self._avoid.node_affinity_required if self._avoid else []
        )
        self._apply_overrides(overrides)
        self._selection = chosen
        self._size, self._pool = chosen.size.slug, pool.name
        self.log.info(
            "Starting %s: size %s on pool %s, zone %s",
            self._log_name,
            chosen.size.slug,
            pool.name,
            self._zone or "any",
        )

    async def _avoid_reclaimed(self, pool: Pool) -> reclaims.Avoidance | None:
        """Return how this start avoids spot capacity reclaimed in its zone."""
        if not self._zone or self.reclaim_avoid_seconds <= 0:
            return None
        now = datetime.now(UTC)
        try:
            found = await spawner_io.recent_reclaims(
                self.kube, pool.name, self._zone, now
            )
        except KubeError as err:
            self.log.warning("%s: reclaims not read: %s", self._log_name, err)
            return None
        avoid = reclaims.avoidance(
            pool, self._zone, found, now, self.reclaim_avoid_seconds
        )
        if avoid is not None:
            self.log.info("%s: %s", self._log_name, avoid.message)
        return avoid

    async def _refuse_while_moving(self) -> None:
        """Refuse while the home moves: a claim made now would bind an empty volume."""
        try:
            why = await move_blocks_spawn(
                self.kube, self.namespace, self.pvc_name, self.user.name
            )
        except KubeError as err:  # e.g. no list on PVs: cannot tell; go on
            self.log.warning("%s: no check for a move: %s", self._log_name, err)
            return
        if why is not None:
            self.log.warning("Refused %s: %s", self._log_name, why)
            moving = UserFacingError(why, reason="home-move", status_code=409)
            raise self._refused(moving, self._options_are_saved())

    # ----------------------------------------------------------------- progress
    def _context(self) -> progress.ProgressContext | None:
        pool = self._provider().current().pools.get(self._pool or "")
        if pool is None:
            return None
        return progress.ProgressContext.for_pool(pool, self._zone, self._times)

    async def progress(self) -> Any:
        """Yield KubeSpawner's progress, events explained in plain words.

        The spawner's own lines (a move of the home) come in between.
        """
        if self._selection is not None and self._selection.notice:
            yield {"progress": 1, "message": self._selection.notice}
        if self._avoid is not None:
            yield {"progress": 1, "message": self._avoid.message}
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._notes = queue
        pump = asyncio.ensure_future(spawner_io.pump(super().progress(), queue))
        try:
            while (item := await queue.get()) is not None:
                event = item.get("raw_event")
                ctx = self._context()
                if event is not None and ctx is not None:
                    item = {**item, "message": progress.describe_event(event, ctx)}
                yield item
        finally:
            pump.cancel()
            self._notes = None

    def _note(self, message: str) -> None:
        """Show a line on the progress page (when someone follows it)."""
        self.log.info("%s: %s", self._log_name, message)
        if self._notes is not None:
            self._notes.put_nowait({"progress": 50, "message": message})

    def start(self) -> Any:
        """Start the pod, failing early when no node can be started for it."""
        self._stop_reason = None  # it explained the last stop only
        self._stop_cause = None
        self._start_clock = asyncio.get_running_loop().time()
        self._start_wall, self._start_failed = datetime.now(UTC), False
        self._start_name = self._log_name
        inner = super().start()
        if self.dask_namespace:  # Dask pods: own server + workers (bounded, logs)
            self._policies = asyncio.ensure_future(
                ensure_dask_network_policies(
                    self.kube,
                    self.dask_namespace,
                    self.user.name,
                    self.log,
                    server_namespace=self.namespace,
                )
            )
        self._start_future = asyncio.ensure_future(self._start_or_refuse(inner))
        return self._start_future

    async def _outcome(self, inner: asyncio.Future[Any]) -> Any:
        grace = self.capacity_grace_seconds
        refused = spawner_io.capacity_refusal(lambda: self.events, self._context, grace)
        watch = asyncio.ensure_future(refused)
        try:
            return await spawner_io.first_outcome(inner, watch, self._timeout_message)
        except Exception as err:
            text = f"{err} {getattr(err, 'body', '')}"
            refusal = data_pods.missing_account(text, self._data or DataAccess())
            if refusal is None:
                raise
            return None, refusal

    async def _start_or_refuse(self, inner: asyncio.Future[Any]) -> Any:
        """Start; on any failure (the hub's timeout too) delete the pod by name.

        JupyterHub's clean-up after a failed start stops the server only when
        its poll finds the pod; a pod whose create was answered late (a loaded
        API server, a cancelled start) is not in KubeSpawner's reflector yet,
        and would run on, unseen by the hub.
        """
        try:
            return await self._start_checked(inner)
        except BaseException:
            self._start_failed = True
            self._cleanup = asyncio.ensure_future(self._delete_failed_pod())
            raise

    async def _delete_failed_pod(self) -> None:
        retry_for = float(self.k8s_api_request_retry_timeout)
        why = await spawner_io.delete_pod(
            self.kube, self.namespace, self.pod_name, retry_for
        )
        if why is not None:
            self.log.warning(
                "%s: the pod %s/%s of a failed start was not deleted: %s",
                self._start_name,
                self.namespace,
                self.pod_name,
                why,
            )

    async def _start_checked(self, inner: asyncio.Future[Any]) -> Any:
        refusal: UserFacingError | None
        result, refusal = await self._outcome(inner)
        if refusal is not None and refusal.reason == "capacity":
            moved_to, refusal = await self._follow_capacity(refusal)
            if moved_to is not None:
                own = self._start_future
                inner = super().start()  # the same spawn, in the home's new zone
                self._start_future = own
                result, refusal = await self._outcome(inner)
        if refusal is not None:
            self.log.warning("Cannot start %s: %s", self._log_name, refusal.message)
            raise to_hub_error(refusal)
        await self._hub_database()
        await self._record_start()
        self._watch_deletion()
        self._watch_memory()
        return result

    async def _hub_database(self) -> None:
        """Return only once the hub can record the server (see :mod:`.hubdb`)."""
        if self.db is None:  # no hub around it (the unit tests)
            return
        spent = asyncio.get_running_loop().time() - self._start_clock
        left = self.start_timeout - spent - 5.0  # the hub's own timeout ends later
        await wait_for_hub_database(self.db, left, self.log, self._start_name)

    def _with_data(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Add the ServiceAccount and shared volumes of the user's data grants."""
        data = self._data or DataAccess()
        return {**self._identity, **data_pods.with_data(overrides, data)}

    async def _follow_capacity(
        self, refusal: UserFacingError
    ) -> tuple[str | None, UserFacingError | None]:
        """Move the home when its zone cannot get a node (``homes.auto_move``).

        Returns the zone the home moved to (then the pod follows it there), or
        the refusal to show, offering the admin's move command when auto_move
        is off and another zone has capacity.
        """
        profiles = self._provider().current()
        pool = profiles.pools.get(self._pool or "")
        chosen, user = self._selection, self._spawn_user
        if not self._home or pool is None or chosen is None or user is None:
            return None, refusal
        if not progress.zone_is_short(self.events):
            return None, refusal
        stuck = Stuck(
            user=self.user.name,
            namespace=self.namespace,
            claim=self.pvc_name,
            home_zone=self._home,
            pool=pool,
            settings=profiles.homes,
            warm=self._warm(),
        )
        moves = HomeMoves(
            self.kube,
            region=profiles.cost.region,
            endpoint_url=self.aws_endpoint_url,
            note=self._note,
            log=self.log,
        )
        zone, shown = await moves.after_refusal(
            stuck, refusal, partial(self.stop, now=True)
        )
        if zone is not None:
            self._home = self._zone = zone
            self._apply_overrides(
                self._with_data(
                    manifests.overrides_for(
                        chosen.size, chosen.image, pool, user, zone, profiles.homes
                    )
                )
            )
        return zone, shown

    def _timeout_message(self) -> str | None:
        ctx, seconds = self._context(), self.start_timeout
        return progress.timeout_message(self.events, ctx, seconds) if ctx else None

    # ---------------------------------------------------------------- accounting
    async def _record_start(self) -> None:
        """Record the running server in the accounting database (never raises).

        A database that cannot be reached is tried again in the background;
        the start waits for the write a few seconds at most.
        """
        profiles = self._provider().current()
        pool = profiles.pools.get(self._pool or "")
        if pool is None or not self._size:
            return
        groups = self._groups if self._groups is not None else tuple(self._who()[0])
        server = hooks.Server(self.user.name, self.name, self._size, pool, groups)
        read = partial(spawner_io.node_of_pod, self.kube, self.namespace, self.pod_name)
        costs, spot = self._costs(), self._spot()
        await self._account(lambda: costs.started(server, profiles, spot, read))

    async def _account(self, write: Any, wait: float = 10.0) -> None:
        """Run an accounting write after this server's earlier ones.

        Waits ``wait`` seconds at most; the write goes on in the background.
        """
        before = self._ledger

        async def run() -> Any:
            if before is not None and not before.done():
                await asyncio.wait({before})
            return await write()

        self._ledger = asyncio.ensure_future(run())
        await asyncio.wait({self._ledger}, timeout=wait)

    def _watch_memory(self) -> None:
        """Sample the running server's memory for its record's peak."""
        if self._memory is not None:
            self._memory.start()
            return
        costs, user, name = self._costs(), self.user.name, self.name

        async def read() -> tuple[MemoryUse | None, str | None]:
            if self.server is None or not self.api_token:
                return None, "no server address or token"
            return await OwnServer(self.server.url, self.api_token).memory()

        async def write(peak_mib: int) -> None:
            await self._account(lambda: costs.peaked(user, name, peak_mib), wait=5.0)

        interval = self.memory_sample_seconds
        who = f"{user}/{name}" if name else user
        self._memory = MemoryWatch(read, write, interval, self.log, who)
        self._memory.start()

    async def stop(self, now: bool = False) -> Any:
        """Stop the server; a stop nobody else explained is a requested one.

        The server's memory is read once more first (the session's peak).

        KubeSpawner gives up on the pod's delete at the first error the API
        answers (after the client's few retries): the hub then forgets the
        server while its pod runs on. The delete is tried again for
        ``k8s_api_request_retry_timeout``; only then does the stop fail.
        """
        self._stop_cause = self._stop_cause or "stop"
        watch, self._memory = self._memory, None
        if watch is not None:
            await watch.finish()
        try:
            return await super().stop(now=now)
        except Exception as err:
            retry_for = float(self.k8s_api_request_retry_timeout)
            self.log.warning(
                "%s: the pod's delete failed (%s); trying again for %g s",
                self._log_name,
                err,
                retry_for,
            )
            grace = 0 if now else int(self.delete_grace_period)
            why = await spawner_io.delete_pod(
                self.kube, self.namespace, self.pod_name, retry_for, grace_s=grace
            )
            if why is not None:
                self.log.error(
                    "%s: the pod %s/%s was not deleted (%s); the culler's sweep "
                    "deletes it once the hub has no server for it",
                    self._log_name,
                    self.namespace,
                    self.pod_name,
                    why,
                )
                raise
            return None

    async def run_post_stop_hook(self) -> Any:
        """Record the stop and why.

        The hub calls this also for a server found dead: its cause is then the
        node's interruption, when one was seen.
        """
        cause, self._stop_cause = self._stop_cause, None
        costs, user, name = self._costs(), self.user.name, self.name
        # The hub also stops a server whose start failed, or that never
        # answered it (``_waiting_for_response``): never the user's.
        failed = self._start_failed or bool(getattr(self, "_waiting_for_response", 0))
        since, self._start_failed = self._start_wall, False
        if self._cleanup is not None:  # bounded by the retry timeout
            await asyncio.wait({self._cleanup})
            self._cleanup = None
        if failed and since is not None:
            await self._account(lambda: costs.failed_start(user, name, since))
        else:
            await self._account(lambda: costs.stopped(user, name, cause))
        return await maybe_future(super().run_post_stop_hook())

    # ------------------------------------------------------------ hub restart
    async def poll(self) -> int | None:
        """Return ``None`` while the pod runs or starts, else an exit status.

        At the hub's start (``pending == "check"``) a server the hub has a record
        of is taken up again (:meth:`_resume`).
        """
        status: int | None = await super().poll()
        if status is not None or self.pending != "check":
            return status
        return await self._resume()

    async def _resume(self) -> int | None:
        """Take up a server found at the hub's start; ``None`` once its pod runs.

        A hub killed while a start was under way left a record without the
        pod's address (JupyterHub's random port) and no accounting row, and
        checks the record's URL as soon as the pod exists. The pod says what it
        is and where it runs: wait for it (a refused node or the start timeout
        ends the wait, and the hub then stops the server), let KubeSpawner's
        poll correct the record, and record the run (kept if already recorded).
        """
        key = f"{self.namespace}/{self.pod_name}"
        pod = self.pod_reflector.pods.get(key)
        found = manifests.choice_of_pod(pod)
        self._size = found.size or self._size
        self._pool = found.pool or self._pool
        self._zone = found.zone or self._zone
        if not self.is_pod_running(pod):
            self.log.info("%s: waiting for the pod of a start", self._log_name)
            why = await self._wait_for_pod(key, str(pod["metadata"]["uid"]))
            if why is not None:
                self.log.warning("Not resuming %s: %s", self._log_name, why)
                return 1
            again: int | None = await super().poll()  # the pod's IP and port
            if again is not None:
                return again
        await self._record_start()
        self._watch_deletion()
        self._watch_memory()
        return None

    async def _wait_for_pod(self, key: str, uid: str) -> str | None:
        """Wait for a pod this hub did not create to run (``None``), or say why not."""
        if self.events_enabled:
            await self._start_watching_events()

        def events() -> list[Any]:  # this pod's own, not those of earlier ones
            return [e for e in self.events if e["involvedObject"].get("uid") == uid]

        refused = spawner_io.capacity_refusal(
            events, self._context, self.capacity_grace_seconds
        )
        return await spawner_io.pod_outcome(
            lambda: self.pod_reflector.pods.get(key),
            self.is_pod_running,
            refused,
            self.start_timeout,
        )

    # ------------------------------------------------------------ interruptions
    def _watch_deletion(self) -> None:
        """Watch the running server's pod for the cluster taking its node."""
        if self._deletion is None or self._deletion.done():
            key = f"{self.namespace}/{self.pod_name}"
            self._deletion = asyncio.ensure_future(self._on_deletion(key))

    async def _on_deletion(self, key: str) -> None:
        """Tell the user why the cluster takes the server, in JupyterLab and after.

        The notice has the id the pod's own ``preStop`` hook gives its notice
        (``stop-<pod uid>``), so JupyterLab shows one notification, saves once,
        and says the reason whichever of the two arrives first.
        """
        uid = str(
            ((self.pod_reflector.pods.get(key) or {}).get("metadata") or {}).get(
                "uid", ""
            )
        )
        try:
            found, running = await spawner_io.deletion_cause(
                self.kube, lambda: self.pod_reflector.pods.get(key)
            )
        except KubeError as err:
            self.log.warning("Why %s stops is unknown: %s", self._log_name, err)
            return
        if found is None:
            return
        self._stop_reason = interruptions.home_message(found)
        reclaim = found.reason == interruptions.SPOT_RECLAIM
        self._stop_cause = "reclaim" if reclaim else "node-gone"
        message = interruptions.lab_message(found, datetime.now(UTC))
        self.log.info("%s: %s", self._log_name, message)
        if not running or self.server is None or not self.api_token:
            return
        notice = {
            "id": f"stop-{uid}",
            "kind": "reclaim" if reclaim else "stop",
            "message": message,
            "save": True,
        }
        why = await OwnServer(self.server.url, self.api_token).notice(notice)
        if why is not None:
            self.log.warning("Notice to %s not sent: %s", self._log_name, why)

    # -------------------------------------------------------------------- state
    @property
    def stop_reason(self) -> str | None:
        """Why the cluster took the last server (the home page shows it)."""
        return None if self.server is not None else self._stop_reason

    def get_state(self) -> dict[str, Any]:
        """Return KubeSpawner's state plus the size, pool and zone of the server.

        Also why the cluster stopped the last server, kept after a stop.
        """
        state: dict[str, Any] = super().get_state()
        extra = {
            "size": self._size,
            "pool": self._pool,
            "zone": self._zone,
            STOP_REASON_STATE: self._stop_reason,
        }
        state.update({k: v for k, v in extra.items() if v})
        return state

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore KubeSpawner's state, the size, pool and zone, and the reason."""
        super().load_state(state)
        self._size, self._pool, self._zone, self._stop_reason = (
            state.get(k) or None for k in ("size", "pool", "zone", STOP_REASON_STATE)
        )

    def clear_state(self) -> None:
        """Forget the size, pool and zone of a stopped server (not why it stopped)."""
        super().clear_state()
        self._selection = self._avoid = self._spawn_user = self._groups = None
        self._size = self._pool = self._zone = self._home = None
