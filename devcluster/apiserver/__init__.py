"""The Kubernetes API server of devcluster: HTTP in front of one object store.

- ``app``: the aiohttp application (routing, verbs, subresources, Status errors);
  ``routes`` its wire helpers, ``watch_http`` the watch streams, ``tables`` the
  server-side printing for kubectl, ``discovery`` the discovery documents.
- ``resources``: the registry of the resources served.
- ``store``: the objects themselves (CRUD, resourceVersions, watch history,
  graceful deletion and garbage collection, Events).
- What a write goes through: ``admission`` (kind, namespace, names),
  ``defaults`` (per-kind defaulting and admission plugins), ``validation``
  (schema and semantic checks), ``patches`` (merge, strategic, JSON patch);
  ``selectors`` parses and matches label and field selectors.
"""
