"""STS web identities and IAM enforcement for pods, in front of the moto server.

moto's ``AssumeRoleWithWebIdentity`` checks nothing: any token, any role
(existing or not) gives credentials. And moto checks IAM policies only in a
process-wide mode (``INITIAL_NO_AUTH_ACTION_COUNT``) that would also refuse
devcluster's own controllers and tests, which sign with dummy keys. This WSGI
layer around moto's application (``MotoServer``) adds what IRSA needs:

* ``AssumeRoleWithWebIdentity`` is checked as STS does before moto answers it:
  the token's issuer must be an IAM OIDC provider of the account (its URL
  without ``https://``), the token must verify against that issuer's JWKS
  (found through the issuer's discovery document), not be expired, and name
  one of the provider's client IDs as audience; the role must exist and its
  trust policy allow the provider's identity (``devcluster.services.trust_policy``,
  with the ``<provider>:sub``/``:aud``/``:amr`` condition keys). Failures are
  STS's errors (``InvalidIdentityToken``, ``ExpiredTokenException``,
  ``AccessDenied``).
* An issuer's discovery document is fetched from where its cluster registered
  it (``POST /devcluster/oidc-issuers {"issuer", "discovery"}``, ``DELETE``
  with ``?issuer=``): an EKS issuer's host (``oidc.eks.<region>.amazonaws.com``)
  is not on loopback, so the cluster's apiserver stands in for it.
* Every request signed with temporary credentials (a session token, as the
  SDK sends with assumed-role credentials) runs with moto's IAM enforcement on:
  moto checks the signature and the role's inline and attached policies for
  the action and resource, and answers ``AccessDenied`` as AWS does. Such
  requests run one at a time while no other request is in moto (a
  readers-writer lock), so the enforcement never reaches the others.
"""

from __future__ import annotations

import base64
import http
import io
import json
import logging
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

from devcluster.services import trust_policy

log = logging.getLogger(__name__)

REGISTRY_PATH = "/devcluster/oidc-issuers"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_FETCH_TIMEOUT_S = 5.0

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
IamLookup = Callable[[str, str], Any]
"""``(operation, role ARN or "") -> result`` of the account's IAM (see ``StsLayer``)."""


class StsError(Exception):
    """An STS error answer: HTTP status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _ReadersWriter:
    """Many readers at once, or one writer alone; a waiting writer goes first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._writer and self._readers == 0)
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _fetch_json(url: str) -> Any:
    with _NO_PROXY.open(url, timeout=_FETCH_TIMEOUT_S) as response:
        return json.loads(response.read())


def _error_body(error: StsError) -> bytes:
    kind = "Receiver" if error.status >= 500 else "Sender"
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>{kind}</Type><Code>{error.code}</Code>"
        f"<Message>{_escape(error.message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class StsLayer:
    """The WSGI layer around moto's application (see the module docstring).

    Args:
        app: moto's WSGI application.
        iam: reads the account's IAM: ``iam("providers", "")`` returns
            ``{provider ARN: (url, client IDs)}``, ``iam("role", arn)`` the
            role's trust policy document or None when there is no such role.
        enforce: a context in which moto checks IAM policies.
    """

    def __init__(
        self,
        app: WsgiApp,
        iam: IamLookup,
        enforce: Callable[[], Any],
    ) -> None:
        self.app = app
        self.iam = iam
        self.enforce = enforce
        self.issuers: dict[str, list[str]] = {}
        """Issuer URL → base URLs of its discovery document (one per cluster
        run: two devclusters of one EKS cluster name share the issuer)."""
        self._lock = _ReadersWriter()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == REGISTRY_PATH:
            return self._registry(environ, start_response)
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        form = query
        if environ.get("REQUEST_METHOD") == "POST" and "form-urlencoded" in str(
            environ.get("CONTENT_TYPE", "")
        ):
            body = _read_body(environ)
            form = {**query, **urllib.parse.parse_qs(body.decode(errors="replace"))}
        if form.get("Action") == ["AssumeRoleWithWebIdentity"]:
            try:
                self.check_web_identity(
                    form.get("WebIdentityToken", [""])[0], form.get("RoleArn", [""])[0]
                )
            except StsError as error:
                log.info("sts: AssumeRoleWithWebIdentity refused: %s", error.message)
                phrase = http.HTTPStatus(error.status).phrase
                start_response(
                    f"{error.status} {phrase}", [("Content-Type", "text/xml")]
                )
                return [_error_body(error)]
        temporary = (
            "HTTP_X_AMZ_SECURITY_TOKEN" in environ or "X-Amz-Security-Token" in query
        )
        if not temporary:
            with self._lock.shared():
                return _drain(self.app(environ, start_response))
        with self._lock.exclusive(), self.enforce():
            return _drain(self.app(environ, start_response))

    def _registry(self, environ: Environ, start_response: StartResponse) -> Any:
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            doc = json.loads(_read_body(environ) or b"{}")
            bases = self.issuers.setdefault(str(doc["issuer"]), [])
            if str(doc["discovery"]) not in bases:
                bases.append(str(doc["discovery"]))
        elif method == "DELETE":
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            for issuer in query.get("issuer", []):
                bases = self.issuers.get(issuer, [])
                for base in query.get("discovery", []):
                    if base in bases:
                        bases.remove(base)
                if not bases:
                    self.issuers.pop(issuer, None)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(sorted(self.issuers)).encode()]

    def _provider(self, issuer: str) -> tuple[str, str, list[str]]:
        """Return (ARN, URL, client IDs) of the IAM OIDC provider of ``issuer``."""
        bare = issuer.removeprefix("https://").rstrip("/")
        providers: dict[str, tuple[str, list[str]]] = self.iam("providers", "")
        for arn, (url, clients) in providers.items():
            if url.removeprefix("https://").rstrip("/") == bare:
                return arn, bare, clients
        raise StsError(
            400,
            "InvalidIdentityToken",
            f"No OpenIDConnect provider found in your account for {issuer}",
        )

    def _keys(self, issuer: str) -> KeySet:
        """The issuer's keys, from the discovery documents of its clusters."""
        keys: list[dict[str, Any]] = []
        problem = f"{issuer} is not served on this machine"
        for base in list(self.issuers.get(issuer, [])):
            try:
                discovery = _fetch_json(base + "/.well-known/openid-configuration")
                if discovery.get("issuer") != issuer:
                    raise ValueError(f"{base} is the issuer {discovery.get('issuer')}")
                keys += _fetch_json(discovery["jwks_uri"])["keys"]
            except (OSError, ValueError, KeyError) as exc:
                problem = str(exc)  # a stopped cluster's registration, say
        if not keys:
            raise StsError(
                400,
                "IDPCommunicationError",
                "Couldn't retrieve verification key from your identity provider "
                f"({problem})",
            )
        return KeySet.import_key_set({"keys": keys})

    def check_web_identity(self, token: str, role_arn: str) -> None:
        """Check a web identity token and the role's trust, as STS does.

        Raises:
            StsError: the token is invalid or expired, or the role may not be
                assumed with it.
        """
        try:
            unverified = json.loads(_claims_part(token))
            issuer = str(unverified["iss"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StsError(
                400, "InvalidIdentityToken", "The web identity token is not a JWT"
            ) from exc
        provider_arn, provider_url, clients = self._provider(issuer)
        try:
            claims = jwt.decode(token, self._keys(issuer), algorithms=["RS256"]).claims
            jwt.JWTClaimsRegistry(
                exp={"essential": True}, iss={"essential": True, "value": issuer}
            ).validate(claims)
        except ExpiredTokenError as exc:
            raise StsError(400, "ExpiredTokenException", "Token expired") from exc
        except (JoseError, ValueError) as exc:
            raise StsError(
                400, "InvalidIdentityToken", f"The token is not valid ({exc})"
            ) from exc
        audiences = _values(claims.get("aud"))
        audience = next((a for a in audiences if a in clients), None)
        if audience is None:
            raise StsError(400, "InvalidIdentityToken", "Incorrect token audience")
        context = {
            f"{provider_url}:sub": str(claims.get("sub", "")),
            f"{provider_url}:aud": audience,
            f"{provider_url}:amr": str(claims.get("amr", "")),
        }
        document = self.iam("role", role_arn)
        if document is None or not trust_policy.allows(document, provider_arn, context):
            raise StsError(
                403,
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            )


def _drain(result: Iterable[bytes]) -> list[bytes]:
    """Read a WSGI response whole (inside the lock) and close it."""
    try:
        return list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def _values(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def _claims_part(token: str) -> bytes:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _read_body(environ: Environ) -> bytes:
    """Read the request body and put it back for the application behind."""
    cached = environ.get("devcluster.body")
    if cached is not None:
        return bytes(cached)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["devcluster.body"] = body
    return bytes(body)


def register_issuer(endpoint: str, issuer: str, discovery: str) -> None:
    """Tell the STS layer at ``endpoint`` where ``issuer``'s documents are served."""
    request = urllib.request.Request(
        endpoint.rstrip("/") + REGISTRY_PATH,
        data=json.dumps({"issuer": issuer, "discovery": discovery}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with _NO_PROXY.open(request, timeout=_FETCH_TIMEOUT_S) as response:
        response.read()


def unregister_issuer(endpoint: str, issuer: str, discovery: str) -> None:
    """Forget where ``discovery`` served ``issuer`` (its cluster stops)."""
    query = urllib.parse.urlencode({"issuer": issuer, "discovery": discovery})
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}{REGISTRY_PATH}?{query}", method="DELETE"
    )
    with _NO_PROXY.open(request, timeout=_FETCH_TIMEOUT_S) as response:
        response.read()
