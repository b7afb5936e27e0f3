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
        # Imported here: importing moto takes about two seconds.
        from moto.server import ThreadedMotoServer

        if self.quiet:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        self.port = server.get_host_and_port()[1]
        self._server = server
        return self

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
