"""Finalizers of the dask-gateway client that never wait (dask-gateway 2026.3.0).

Why: ``Gateway.__del__`` and ``GatewayCluster.__del__`` call ``close()``, which
submits a coroutine to the client's event loop and waits for its result, then
releases distributed's ``LoopRunner`` (under a class-wide, non-reentrant lock).
A finalizer runs wherever the garbage collector happens to run. When that is
the event loop's own thread, the loop waits for itself and every later call of
the client hangs: the notebook hangs. A ``new_cluster()`` that the gateway
refuses leaves its own ``Gateway`` in a reference cycle (through the
exception's traceback), so only the collector frees it, at a moment nobody
chooses. No dask-gateway release after 2026.3.0 exists to pin.

What: this module replaces the two ``__del__`` methods. Each hands ``close()``
to one daemon thread of this module and returns at once, so a finalizer never
waits, on any thread; the thread closes the object as the original finalizer
would have. The thread is drained at exit (pending closes get a few seconds).

How it is installed: ``wb_dask_gateway_fix.pth`` (in site-packages) imports
this module at interpreter start. Importing dask-gateway there would cost
seconds in every Python process, so the module only adds an import hook that
patches ``dask_gateway.client`` right after that module is first imported.
The notebook images install this package next to dask-gateway, and so does
the test environment (``make venv``).
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.machinery
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

TARGET = "dask_gateway.client"
"""The module whose classes are patched."""
MARKER = "_wb_dask_gateway_fix"
"""Attribute set on the patched classes (tests check it)."""
DRAIN_TIMEOUT_S = 10.0
"""At exit, how long pending closes may take."""

log = logging.getLogger(__name__)

_jobs: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
_closer: threading.Thread | None = None


def _run(jobs: queue.SimpleQueue[Callable[[], object] | None]) -> None:
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            job()
        except Exception:  # a finalizer has nobody to raise to
            log.debug("closing a collected dask-gateway object failed", exc_info=True)


def _start_closer() -> None:
    global _closer
    _closer = threading.Thread(
        target=_run, args=(_jobs,), name="dask-gateway-finalizers", daemon=True
    )
    _closer.start()


def _restart_in_child() -> None:
    # A forked child has no closer thread and must not close its parent's
    # objects: fresh queue, fresh thread.
    global _jobs
    _jobs = queue.SimpleQueue()
    _start_closer()


def _drain() -> None:
    closer = _closer
    if closer is not None and closer.is_alive():
        _jobs.put(None)
        closer.join(DRAIN_TIMEOUT_S)


def _gateway_del(self: Any) -> None:
    """``Gateway.__del__``: close a synchronous, still-open client, later."""
    if sys.is_finalizing() or getattr(self, "_asynchronous", True):
        return
    runner = getattr(self, "_loop_runner", None)
    if runner is None or not runner.is_started():  # never opened, or closed
        return
    # SimpleQueue.put takes no lock that this thread may already hold.
    _jobs.put(self.close)


def _cluster_del(self: Any) -> None:
    """``GatewayCluster.__del__``: close a synchronous, still-open cluster, later."""
    gateway = getattr(self, "gateway", None)
    if sys.is_finalizing() or gateway is None:
        return
    if (
        getattr(gateway, "_asynchronous", True)
        or getattr(self, "status", "") == "closed"
    ):
        return
    _jobs.put(self.close)


def patch(module: ModuleType) -> None:
    """Replace the finalizers of ``dask_gateway.client``'s classes (once).

    Args:
        module: the imported ``dask_gateway.client``.
    """
    gateway = getattr(module, "Gateway", None)
    cluster = getattr(module, "GatewayCluster", None)
    if gateway is None or cluster is None or getattr(gateway, MARKER, False):
        return
    gateway.__del__ = _gateway_del
    cluster.__del__ = _cluster_del
    setattr(gateway, MARKER, True)
    setattr(cluster, MARKER, True)
    _start_closer()
    # Registered after dask_gateway's own exit handler, so it runs first:
    # pending closes finish before dask_gateway closes lingering clusters.
    atexit.register(_drain)
    os.register_at_fork(after_in_child=_restart_in_child)


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then :func:`patch`; delegates everything else."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds ``dask_gateway.client`` as usual and wraps its loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def install() -> None:
    """Patch ``dask_gateway.client`` now if imported, else when it is imported."""
    loaded = sys.modules.get(TARGET)
    if loaded is not None:
        patch(loaded)
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


install()
