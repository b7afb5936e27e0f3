"""devcluster's kube-proxy: Services reachable on their cluster IPs, on loopback.

- ``table``: what each Service port forwards to, from the Services and their
  EndpointSlices (pure).
- ``proxy``: ``KubeProxy``, a TCP listener per Service port on its cluster IP
  (a loopback address, see ``ClusterConfig.service_cidr``) that forwards each
  connection to one ready endpoint, kept in step with the store.

Cluster DNS is not served: the kubelet writes service names into each pod's
``/etc/hosts`` instead (``devcluster.kubelet.hosts``).
"""

from devcluster.proxy.proxy import KubeProxy

__all__ = ["KubeProxy"]
