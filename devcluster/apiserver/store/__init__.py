"""The object store of the Kubernetes API emulator: one ``Store`` per cluster.

- ``store``: ``Store``, the API of the store (reads, writes, binding, Events,
  deletion, watches), composed of the parts below.
- ``table``: the objects by resource and key; versioned writes; subscribers.
- ``history``: the resourceVersion counter and the watch cache (410 Gone).
- ``updates`` (what an update may change), ``lifecycle`` (graceful deletion,
  finalizers, garbage collection, namespace termination), ``watch`` (one watch
  and its events), ``paging`` (list pages and continue tokens), ``events``
  (core/v1 Events).
"""

from devcluster.apiserver.store.paging import ListPage
from devcluster.apiserver.store.store import Store
from devcluster.apiserver.store.watch import Watch, WatchEvent

__all__ = ["ListPage", "Store", "Watch", "WatchEvent"]
