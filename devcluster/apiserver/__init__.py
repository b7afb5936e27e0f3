"""The Kubernetes API server of devcluster: HTTP in front of one object store.

- ``app``: the aiohttp application (routing, verbs, subresources, Status errors);
  ``routes`` its wire helpers, ``watch_http`` the watch streams, ``tables`` the
  server-side printing for kubectl, ``discovery`` the discovery documents,
  ``openapi`` the OpenAPI v2/v3 documents (``openapi_proto`` their protobuf
  form), ``protobuf`` the protobuf request bodies clients send.
- ``resources``: the registry of the resources served.
- ``store``: the objects themselves (CRUD, resourceVersions, watch cache,
  graceful deletion and garbage collection, Events).
- What a write goes through: ``admission`` (kind, namespace, names),
  ``defaults`` (per-kind defaulting and admission plugins), ``irsa`` (the EKS
  pod identity webhook's mutation of pods with an IAM role), ``validation``
  (schema and semantic checks, ``fieldValidation``), ``patches`` (merge,
  strategic, JSON patch), ``apply`` (server-side apply and managed fields);
  ``selectors`` parses and matches label and field selectors.
- Subresources and reviews: ``scale`` (``/scale`` of Deployments and
  ReplicaSets), ``authorization`` (access reviews answered from RBAC objects).
"""
