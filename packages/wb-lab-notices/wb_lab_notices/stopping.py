"""``python -m wb_lab_notices.stopping``: save the user's work before the server stops.

The single-user container runs this as its ``preStop`` hook: Kubernetes runs it
inside the container when the pod is being deleted, before the server gets
SIGTERM, within the pod's grace period. A pod is deleted with time to spare when
its node is drained: a spot interruption notice (aws-node-termination-handler,
Karpenter and EKS Auto Mode all drain), a node upgrade, a consolidation. The
hook sends this server's JupyterLab tabs a notice that asks them to save every
open document, and waits until one reports back (or ``--wait`` seconds pass);
then the server stops with nothing typed lost.

The server is reached at ``http://$WBSPAWNER_POD_IP:<port><base URL>`` (the
port and base URL of ``$JUPYTERHUB_SERVICE_URL``; the pod's IP from the downward
API, ``127.0.0.1`` without it) with the server's own ``$JUPYTERHUB_API_TOKEN``.
The notice's id is ``stop-$WBSPAWNER_POD_UID``: the hub sends its own notice of
the same stop, with the reason, under that id, and JupyterLab shows the two as
one notification and saves once.
It prints one line of what happened and always exits 0: a failing hook would
only add an event, and the server must stop either way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

MESSAGE = "This server is being stopped: its node is going away."
"""What the user reads; JupyterLab adds what it saved."""


def server_url(environ: Mapping[str, str]) -> str:
    """Return the server's base URL as seen from inside its pod.

    Raises:
        ValueError: ``JUPYTERHUB_SERVICE_URL`` is missing.
    """
    service = environ.get("JUPYTERHUB_SERVICE_URL", "")
    if not service:
        raise ValueError("JUPYTERHUB_SERVICE_URL is not set: not a JupyterHub server")
    parts = urlsplit(service)
    host = environ.get("WBSPAWNER_POD_IP") or "127.0.0.1"
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"http://{host}:{parts.port or 8888}{path}"


def _call(method: str, url: str, token: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {token}")
    request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return json.loads(response.read() or b"null")


def save_before_stop(
    environ: Mapping[str, str], message: str, wait_s: float, linger_s: float = 0.0
) -> str:
    """Send the notice and wait for a tab's report; a line saying what happened.

    With a report in, the hook still holds the server until ``linger_s`` after
    it started: the hub sends the reason for the stop under the same notice id
    when it sees the pod deleted, and the tabs should get it.
    """
    started = time.monotonic()
    base = server_url(environ) + "wbspawner/notices"
    token = environ.get("JUPYTERHUB_API_TOKEN", "")
    notice_id = f"stop-{environ.get('WBSPAWNER_POD_UID') or uuid.uuid4().hex[:12]}"
    notice = {"id": notice_id, "kind": "stop", "message": message, "save": True}
    _call("POST", base, token, notice)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        reports = _call("GET", f"{base}/{notice_id}", token)["reports"]
        if reports:
            saved = sum(r["documents"] for r in reports)
            failed = sorted({p for r in reports for p in r["failed"]})
            tail = f"; could not save {', '.join(failed)}" if failed else ""
            time.sleep(max(0.0, min(started + linger_s, deadline) - time.monotonic()))
            return f"saved {saved} open documents{tail}"
        time.sleep(0.25)
    return f"no JupyterLab tab reported within {wait_s:g} s"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the hook; always 0."""
    parser = argparse.ArgumentParser(prog="python -m wb_lab_notices.stopping")
    parser.add_argument("--message", default=MESSAGE, help="what the user reads")
    parser.add_argument(
        "--wait", type=float, default=20.0, help="seconds to wait for a report"
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=3.0,
        help="seconds the hook holds the server at least (for the hub's reason)",
    )
    args = parser.parse_args(argv)
    try:
        outcome = save_before_stop(os.environ, args.message, args.wait, args.linger)
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as err:
        outcome = f"could not ask JupyterLab to save: {err}"
    print(f"wb-lab-notices: {outcome}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
