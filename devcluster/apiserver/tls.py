"""The API server's serving certificate, for clients inside the cluster.

Clients in pods reach the API as the ``kubernetes`` Service over HTTPS (an
in-cluster configuration always says ``https://$KUBERNETES_SERVICE_HOST``) and
trust the cluster CA their ServiceAccount token volume holds (``ca.crt``, which
a cluster takes from the ``kube-root-ca.crt`` ConfigMaps; devcluster's kubelet
writes it directly, see ``devcluster.kubelet.volumes``). ``make_serving_cert``
makes a CA of this cluster and a certificate signed by it for the API's
addresses and the ``kubernetes`` Service's names (``devcluster.pki``);
``server_context`` is the TLS side of the API's second listener. The plain HTTP
listener stays what tests and kubeconfigs use.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from devcluster.pki import ServerCert, make_server_cert

SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)

ServingCert = ServerCert


def make_serving_cert(directory: Path, ips: list[str]) -> ServingCert:
    """Make a cluster CA and the API's certificate for ``ips`` and Service names."""
    return make_server_cert(directory, "apiserver", ips, SERVICE_NAMES)


def server_context(cert: ServingCert) -> ssl.SSLContext:
    """Return the TLS context of the API's HTTPS listener."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    return context
