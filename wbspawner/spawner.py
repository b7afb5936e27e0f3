"""``WorkbenchSpawner``: KubeSpawner with sizes from the profiles, checked first.

This module owns only the glue between JupyterHub/KubeSpawner and the pure core:
it gathers who the user is (groups, admin, uid/gid, their home's zone), asks the
pure modules (form, selection, manifests, progress, homes.policy) what to do, and
turns their :class:`~wbspawner.errors.UserFacingError` into what JupyterHub shows.
KubeSpawner keeps rendering the form, applying overrides and managing the pod.
Decisions do not belong here (STYLE: at most 300 lines).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import Callable, Float, Unicode, default

from wbspawner import access, form, manifests, progress
from wbspawner.errors import UserFacingError, to_hub_error
from wbspawner.homes.policy import first_home_zone, zone_of_pv
from wbspawner.ldap import posix_ids
from wbspawner.manifests import SpawnUser
from wbspawner.model import Pool, Profiles
from wbspawner.selection import Selection, options_sent, select


def _read_json(path: str | None) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        return None


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
        help="""
        JSON file of ready warm nodes from the warmer, ``{"<pool>": {"<zone>": n}}``;
        when set, the form says "Ready now" or how long a new node takes.
        """,
    )
    spot_prices_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        JSON file of observed spot prices, ``{"<type>/<zone>": <USD/h>}``; without
        it the form shows spot prices estimated from the assumed discount.
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

    user_options: dict[str, Any]  # JupyterHub's trait, typed for mypy only
    _selection: Selection | None = None
    _size: str | None = None
    _pool: str | None = None
    _zone: str | None = None

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

    def _workbench_profiles(self, spawner: Any = None) -> list[dict[str, Any]]:
        groups, is_admin = self._who()
        warm = form.warm_status_from_json(_read_json(self.warm_status_file), self._zone)
        spot = form.spot_prices_from_json(_read_json(self.spot_prices_file))
        profiles = self._provider().current()
        return form.kubespawner_profiles(profiles, groups, is_admin, warm, spot)

    async def _workbench_form(self, spawner: Any = None) -> str:
        provider = self._provider()
        profiles = provider.current()
        banners = []
        if self._who()[1] and provider.last_error:
            banners.append(form.admin_warning(str(provider.last_error)))
        try:
            notice = select(
                self.user_options, profiles, *self._who(), saved=True
            ).notice
        except UserFacingError as err:
            notice = err.message
        if notice:
            banners.append(form.banner(notice, "info"))
        rendered: str = self._render_options_form(self._workbench_profiles())
        return "".join(banners) + rendered

    def _options_are_saved(self) -> bool:
        """Whether ``user_options`` were reused from the last spawn, not sent now."""
        request = getattr(getattr(self, "handler", None), "request", None)
        if request is None:
            return True
        return not options_sent(request.body or b"", request.query or "")

    def _first_zone(self, pool: Pool, profiles: Profiles) -> str | None:
        """Pick the zone of a first home from the warmer's report and spot prices."""
        spot = form.spot_prices_from_json(_read_json(self.spot_prices_file))
        warm = _read_json(self.warm_status_file)
        pick = first_home_zone(pool, warm, spot, profiles.homes.default_zone)
        if pick:
            self.log.info("%s: home in %s: %s", self._log_name, pick.zone, pick.reason)
        return pick.zone if pick else None

    async def _home_zone(self) -> str | None:
        """Return the zone of the user's bound home volume, if it exists."""
        api, timeout = self.api, self.k8s_api_request_timeout
        try:
            read = api.read_namespaced_persistent_volume_claim
            pvc = await asyncio.wait_for(read(self.pvc_name, self.namespace), timeout)
            volume = pvc.spec.volume_name if pvc.spec else None
            if not volume:
                return None
            pv = await asyncio.wait_for(api.read_persistent_volume(volume), timeout)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return zone_of_pv(self.api.api_client.sanitize_for_serialization(pv))

    # ------------------------------------------------------------ user options
    async def _check(self, profiles: Profiles) -> tuple[Selection, SpawnUser]:
        """Return the checked choice and the user, or raise what the hub shows."""
        groups, is_admin = self._who()
        saved = self._options_are_saved()
        try:
            chosen = select(self.user_options, profiles, groups, is_admin, saved=saved)
            uid, gid = posix_ids(await self.user.get_auth_state())
            size_gib = access.home_size_gib(chosen.size, groups)
            user = SpawnUser(
                name=self.user.name, uid=uid, gid=gid, home_size_gib=size_gib
            )
            # Refuses a missing or root uid/gid before anything exists.
            manifests.security_context(uid, gid, user.name)
        except UserFacingError as err:
            self.log.warning("Refused %s: %s", self._log_name, err.log_message)
            self.user_options = {}  # the form preselects the defaults again
            raise to_hub_error(err) from None
        return chosen, user

    async def load_user_options(self) -> None:
        """Check the user's options, then let KubeSpawner apply the chosen size.

        Raises:
            SpawnException: the options are refused (unknown or forbidden size or
                image, forged field) or the account has no usable uid/gid; the
                message says why, and nothing has been created.
        """
        profiles = self._provider().current()
        chosen, user = await self._check(profiles)
        if chosen.notice:
            self.log.info("%s: %s", self._log_name, chosen.notice)
        self.user_options = chosen.options
        try:
            await super().load_user_options()
        except ValueError as err:
            # KubeSpawner writes these messages for users (unknown profile, bad
            # unlisted choice); anything else is a bug and keeps its traceback.
            self.log.warning("KubeSpawner refused %s: %s", self._log_name, err)
            raise to_hub_error(UserFacingError(str(err), reason="profile")) from None
        pool = profiles.pool_of(chosen.size)
        self._zone = await self._home_zone() or self._first_zone(pool, profiles)
        self._apply_overrides(
            manifests.overrides_for(
                chosen.size, chosen.image, pool, user, self._zone, profiles.homes
            )
        )
        self._selection = chosen
        self._size, self._pool = chosen.size.slug, pool.name
        self.log.info(
            "Starting %s: size %s on pool %s, zone %s",
            self._log_name,
            chosen.size.slug,
            pool.name,
            self._zone or "any",
        )

    # ----------------------------------------------------------------- progress
    def _context(self) -> progress.ProgressContext | None:
        pool = self._provider().current().pools.get(self._pool or "")
        return progress.ProgressContext.for_pool(pool, self._zone) if pool else None

    async def progress(self) -> Any:
        """Yield KubeSpawner's progress with events explained in plain words."""
        if self._selection is not None and self._selection.notice:
            yield {"progress": 1, "message": self._selection.notice}
        async for item in super().progress():
            event = item.get("raw_event")
            ctx = self._context()
            if event is not None and ctx is not None:
                item = {**item, "message": progress.describe_event(event, ctx)}
            yield item

    def start(self) -> Any:
        """Start the pod, failing early when no node can be started for it."""
        inner = super().start()
        self._start_future = asyncio.ensure_future(self._start_or_refuse(inner))
        return self._start_future

    async def _start_or_refuse(self, inner: asyncio.Future[Any]) -> Any:
        watch = asyncio.ensure_future(self._capacity_refusal())
        try:
            await asyncio.wait({inner, watch}, return_when=asyncio.FIRST_COMPLETED)
            ctx = self._context()
            if inner.done():
                timed_out = not inner.cancelled() and isinstance(
                    inner.exception(), TimeoutError
                )
                if ctx is None or not timed_out:
                    return inner.result()
                reason, code = "timeout", 504
                message = progress.timeout_message(self.events, ctx, self.start_timeout)
            else:
                reason, code, message = "capacity", 503, watch.result()
            self.log.warning("Cannot start %s: %s", self._log_name, message)
            raise to_hub_error(
                UserFacingError(message, reason=reason, status_code=code)
            )
        finally:
            watch.cancel()
            if not inner.done():
                inner.cancel()  # refused, or the hub gave up waiting for us

    async def _capacity_refusal(self) -> str:
        """Return a failure once the autoscaler has refused a node long enough."""
        loop = asyncio.get_running_loop()
        since: float | None = None
        while True:
            await asyncio.sleep(1.0)
            ctx = self._context()
            failure = progress.capacity_failure(self.events, ctx) if ctx else None
            if failure is None:
                since = None
            elif since is None:
                since = loop.time()
            elif loop.time() - since >= self.capacity_grace_seconds:
                return failure

    # -------------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        """Return KubeSpawner's state plus the size, pool and zone of the server."""
        state: dict[str, Any] = super().get_state()
        extra = {"size": self._size, "pool": self._pool, "zone": self._zone}
        state.update({k: v for k, v in extra.items() if v})
        return state

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore KubeSpawner's state and the size, pool and zone."""
        super().load_state(state)
        self._size, self._pool, self._zone = (
            state.get(k) or None for k in ("size", "pool", "zone")
        )

    def clear_state(self) -> None:
        """Forget the size, pool and zone of a stopped server."""
        super().clear_state()
        self._selection = None
        self._size = self._pool = self._zone = None
