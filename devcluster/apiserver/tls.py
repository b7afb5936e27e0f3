"""The API server's serving certificate, for clients inside the cluster.

Clients in pods reach the API as the ``kubernetes`` Service over HTTPS (an
in-cluster configuration always says ``https://$KUBERNETES_SERVICE_HOST``) and
trust the cluster CA their ServiceAccount token volume holds (``ca.crt``, which
a cluster takes from the ``kube-root-ca.crt`` ConfigMaps; devcluster's kubelet
writes it directly, see ``devcluster.kubelet.volumes``). ``make_serving_cert``
makes a CA of this cluster and a certificate signed by it for the API's
addresses and the ``kubernetes`` Service's names;
``server_context`` is the TLS side of the API's second listener. The plain HTTP
listener stays what tests and kubeconfigs use.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)


@dataclass(frozen=True)
class ServingCert:
    """Files of the cluster CA and the API's certificate."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @property
    def ca_pem(self) -> str:
        """The CA certificate (a token volume's ``ca.crt``)."""
        return self.ca_file.read_text()


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_serving_cert(directory: Path, ips: list[str]) -> ServingCert:
    """Make a cluster CA and the API's certificate for ``ips`` and Service names."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=365)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("devcluster-ca"))
        .issuer_name(_name("devcluster-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVICE_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(ips)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    served = ServingCert(
        directory / "ca.crt", directory / "apiserver.crt", directory / "apiserver.key"
    )
    served.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    served.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    served.key_file.write_bytes(_pem_key(key))
    served.key_file.chmod(0o600)
    return served


def server_context(cert: ServingCert) -> ssl.SSLContext:
    """Return the TLS context of the API's HTTPS listener."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    return context
