"""An in-process moto server on loopback, and boto3 clients that only talk to it.

This module owns the local AWS stand-in used by tests, benchmarks and the demo:
``moto.server.ThreadedMotoServer`` on 127.0.0.1 (a free port), its reset, and
boto3 clients with dummy credentials that ignore the environment and ``~/.aws``
(no profile, no config or credentials file, no proxy), so a developer's real
AWS setup can never be reached or changed. moto itself does read boto3's default
session when it loads a backend; :meth:`MotoServer.start` checks that this works.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REGION = "us-east-1"
DUMMY_KEY_ID = "testing"
DUMMY_SECRET = "testing"

_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MotoServer:
    """moto's threaded server on ``host`` (port 0: the OS picks a free one).

    moto keeps its resources in module-level backends, so every MotoServer (and
    ``mock_aws``) in one process sees the same state, and :meth:`reset` wipes it
    for all of them.

    Args:
        host: Loopback address to listen on.
        port: TCP port; 0 lets the OS pick one (no race with other processes).
        region: Region of the clients made by :meth:`client`.
        quiet: Drop werkzeug's line per request (it goes to stderr otherwise).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = REGION,
        *,
        quiet: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.quiet = quiet
        self._server: Any = None
        self.sts: Any = None
        """The STS/IAM layer in front of moto (``devcluster.services.sts``)."""

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("MotoServer is not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        """Start serving in a daemon thread; return self.

        Raises:
            OSError: ``port`` is in use.
        """
        if self._server is not None:
            raise RuntimeError(f"MotoServer already running at {self.endpoint_url}")
        if self.port:
            _check_bindable(self.host, self.port)
        _check_default_session()
        if self.quiet:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = _server_class()(ip_address=self.host, port=self.port, verbose=False)
        server.layer_factory = self._layer
        server.start()
        self.port = server.get_host_and_port()[1]
        self._server = server
        return self

    def _layer(self, app: Any) -> Any:
        """Wrap moto's WSGI application in the STS/IAM layer (``services.sts``)."""
        from devcluster.services.sts import StsLayer

        self.sts = StsLayer(app, self._iam, _enforced)
        return self.sts

    def _iam(self, what: str, role_arn: str) -> Any:
        """The account's OIDC providers, or a role's trust policy (None: no role)."""
        iam = self.client("iam")
        if what == "providers":
            found = {}
            listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
            for entry in listed:
                arn = entry["Arn"]
                provider = iam.get_open_id_connect_provider(
                    OpenIDConnectProviderArn=arn
                )
                found[arn] = (provider["Url"], list(provider.get("ClientIDList", [])))
            return found
        try:
            role = iam.get_role(RoleName=role_arn.rpartition("/")[2])["Role"]
        except iam.exceptions.NoSuchEntityException:
            return None
        return role["AssumeRolePolicyDocument"] if role["Arn"] == role_arn else None

    def stop(self) -> None:
        """Stop serving (no-op when not running)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Wipe every resource in every moto backend (``POST /moto-api/reset``)."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset", method="POST", data=b""
        )
        with _NO_PROXY_OPENER.open(request, timeout=10) as response:
            response.read()

    def client(self, service: str, region: str | None = None) -> Any:
        """Return a boto3 client for ``service`` that talks only to this server."""
        return make_client(service, self.endpoint_url, region or self.region)


def isolated_session(region: str = REGION) -> Any:
    """Return a ``boto3.Session`` that reads nothing from the environment or ~/.aws.

    Every botocore session variable keeps its default but loses its environment
    variable and config-file key; the config and credentials files are
    ``os.devnull``. Credentials are the dummy ones.
    """
    import boto3
    import botocore.session
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES

    session_vars: dict[str, tuple[Any, Any, Any, Any]] = {
        name: (None, None, default, convert)
        for name, (_cfg, _env, default, convert) in (
            BOTOCORE_DEFAUT_SESSION_VARIABLES.items()
        )
    }
    for name in ("config_file", "credentials_file"):
        session_vars[name] = (None, None, os.devnull, None)
    core = botocore.session.Session(session_vars=session_vars)
    core.set_credentials(DUMMY_KEY_ID, DUMMY_SECRET)
    return boto3.Session(botocore_session=core, region_name=region)


def make_client(service: str, endpoint_url: str, region: str = REGION) -> Any:
    """Return a boto3 client for ``service`` at ``endpoint_url`` (see isolated_session).

    Proxies from the environment are ignored (``proxies={}``), so loopback
    traffic never leaves the machine.
    """
    from botocore.config import Config

    session = isolated_session(region)
    return session.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET,
        config=Config(proxies={}, retries={"max_attempts": 2, "mode": "standard"}),
    )


def _server_class() -> Any:
    """moto's threaded server, serving its application through a layer of ours."""
    # Imported here: importing moto takes about two seconds.
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.server import DomainDispatcherApplication, ThreadedMotoServer
    from moto.server import create_backend_app as backend_app
    from werkzeug.serving import make_server

    class LayeredMotoServer(ThreadedMotoServer):  # type: ignore[misc]
        layer_factory: Any = None

        def _server_entry(self) -> None:
            app = self.layer_factory(DomainDispatcherApplication(backend_app))
            self._server = make_server(
                self._ip_address,
                self._port,
                app,
                True,
                request_handler=MotoRequestHandler,
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return LayeredMotoServer


@contextmanager
def _enforced() -> Iterator[None]:
    """moto checks signatures and IAM policies of the requests it serves meanwhile."""
    from moto import settings

    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    try:
        yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = before


def _check_bindable(host: str, port: int) -> None:
    # ThreadedMotoServer.start() waits forever when its thread cannot bind; fail first.
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))


def _check_default_session() -> None:
    # moto itself (not our clients) builds boto3's default session when it loads a
    # backend, inside the server thread; a bad AWS_PROFILE or config file would
    # then show up as HTTP 500s. Fail here with the reason instead.
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        boto3.Session().get_available_regions("ec2")
    except BotoCoreError as exc:
        raise RuntimeError(
            f"moto cannot start with this AWS environment ({exc}); unset AWS_PROFILE"
            " / AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE or fix the file"
        ) from exc
