"""devcluster: a local stand-in for an EKS cluster, for tests, benchmarks and the demo.

It serves a Kubernetes API over HTTP (on loopback), schedules pods like
kube-scheduler, scales moto Auto Scaling groups like Cluster Autoscaler and runs
pods' commands as local processes like a kubelet. wbspawner never imports it.

The parts, from the top (a part imports only the parts below it, and no module
imports itself through others; import-linter contracts in ``pyproject.toml``
check both):

- ``demo``: ``python -m devcluster.demo``, the whole workbench for people, and
  the pieces the hub tests reuse.
- ``__main__`` and ``cluster``: ``python -m devcluster``, and the composition of
  one cluster (store, HTTP API, kubelet, controllers) in one asyncio loop.
- ``controllers``: scheduler, Cluster Autoscaler, volume and attach/detach
  controllers, spot interruptions, Deployments and ReplicaSets, endpoints.
  ``kubelet``: pods as local processes (with each pod's ``/etc/hosts``, the
  stand-in for cluster DNS). ``proxy``: kube-proxy, every Service on its
  loopback cluster IP.
- ``apiserver``: the Kubernetes API over HTTP and its object store.
  ``services``: real local services (slapd, moto server, configurable-http-proxy
  lookup, process control, kubectl/helm binaries).
- ``config``, ``errors``, ``pki``, ``quantity``, ``timestamps``, ``tokens``:
  settings, the API error, certificates, resource quantities, RFC 3339
  timestamps, the ServiceAccount token issuer; shared by every part.

New behaviour goes to the part that owns it: API features (server-side apply,
OpenAPI documents, authorization reviews, new resources) to ``apiserver/``; a new
controller to ``controllers/`` as a package with its pure decisions and its
``loop``; pod features (exec and attach, probes,
lifecycle hooks, init containers) to ``kubelet/``.
"""
