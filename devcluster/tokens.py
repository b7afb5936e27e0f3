"""The cluster's ServiceAccount token issuer: a signing key, its JWKS, its discovery.

As the apiserver with ``--service-account-issuer`` and a signing key: every
projected ServiceAccount token the kubelet writes is a JWT signed RS256 by this
cluster's key (``iss`` the issuer URL, ``sub``
``system:serviceaccount:<namespace>:<name>``, ``aud`` the projection's
audience, ``iat``/``nbf``/``exp`` from its ``expirationSeconds``, and the
``kubernetes.io`` claim naming the pod), and the apiserver publishes the public
key at ``/openid/v1/jwks`` and the OpenID discovery document at
``/.well-known/openid-configuration`` (``devcluster.apiserver.app``), as an EKS
cluster's OIDC issuer does. Anyone can then verify a token, e.g. the STS
stand-in of ``devcluster.services.sts``.

The issuer URL is set when the cluster knows it (``Cluster`` takes it from the
EKS cluster recorded in moto, as EKS names its issuer); until then it is the
in-cluster default ``https://kubernetes.default.svc.cluster.local``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
"""The issuer of a cluster with no OIDC issuer of its own (kubeadm's default)."""
JWKS_PATH = "/openid/v1/jwks"
DISCOVERY_PATH = "/.well-known/openid-configuration"


class TokenIssuer:
    """Signs ServiceAccount tokens with one RSA key (made per cluster run)."""

    def __init__(self, issuer: str = DEFAULT_ISSUER) -> None:
        self.issuer = issuer
        self.key_id = secrets.token_hex(16)
        self._key = RSAKey.generate_key(
            2048,
            parameters={"kid": self.key_id, "use": "sig", "alg": "RS256"},
            private=True,
        )

    def token(
        self,
        subject: str,
        audiences: list[str],
        expiration_s: int,
        bound: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> str:
        """Return a signed JWT for ``subject``.

        Args:
            subject: ``system:serviceaccount:<namespace>:<name>``.
            audiences: the ``aud`` claim.
            expiration_s: seconds until ``exp``.
            bound: the ``kubernetes.io`` claim (namespace, pod, serviceaccount).
            now: the issue time (default: the clock).
        """
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": list(audiences),
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(expiration_s),
        }
        if bound:
            claims["kubernetes.io"] = dict(bound)
        header = {"alg": "RS256", "kid": self.key_id, "typ": "JWT"}
        return jwt.encode(header, claims, self._key)

    def jwks(self) -> dict[str, Any]:
        """Return the public keys (a JWK Set)."""
        return {"keys": [self._key.as_dict(private=False)]}

    def discovery(self, base_url: str) -> dict[str, Any]:
        """Return the OpenID discovery document, its JWKS at ``base_url``."""
        return {
            "issuer": self.issuer,
            "jwks_uri": base_url.rstrip("/") + JWKS_PATH,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
