"""``python -m devcluster.drill``: a spot notice for a devcluster node, from outside.

An operator's drill on the demo, and the tests and benchmarks that need one,
start here::

    python -m devcluster.drill spot-interruption --user bob
    python -m devcluster.drill rebalance-recommendation NODE

The command finds the node (named, or the one the user's server runs on), sets
the annotation ``devcluster.wbspawner.io/drill`` on it through the Kubernetes
API that ``KUBECONFIG`` (or ``--kubeconfig``) names, and waits up to
``--wait`` seconds for devcluster's termination handler to deliver the notice
(:mod:`devcluster.controllers.termination`). It prints one JSON line: the node,
the notice, the taint and when it was added; and exits 0. A problem (no
kubeconfig, no such node or server, an API that does not answer, a notice not
delivered in time) is one line on stderr and exit status 1.

On EKS the same drill is AWS Fault Injection Service's
``aws:ec2:send-spot-instance-interruptions`` action.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

from devcluster.controllers.loops import SPOT_ITN_TAINT
from devcluster.controllers.termination import (
    DRILL_ANNOTATION,
    DRILLS,
    REBALANCE_RECOMMENDATION,
    REBALANCE_TAINT,
    SPOT_INTERRUPTION,
)
from wbspawner.model import USER_LABEL

TAINTS = {SPOT_INTERRUPTION: SPOT_ITN_TAINT, REBALANCE_RECOMMENDATION: REBALANCE_TAINT}
"""The taint each notice puts on the node."""


class DrillError(Exception):
    """A drill could not be delivered; the message says why, in one line."""


def api_url(kubeconfig: str) -> str:
    """Return the API server URL of the kubeconfig's current context.

    Raises:
        DrillError: no kubeconfig, or one without a server for its context.
    """
    if not kubeconfig:
        raise DrillError("no kubeconfig: pass --kubeconfig or set KUBECONFIG")
    try:
        config = yaml.safe_load(Path(kubeconfig).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise DrillError(f"cannot read the kubeconfig {kubeconfig}: {err}") from None
    contexts = {
        c.get("name"): c.get("context") or {} for c in config.get("contexts") or []
    }
    clusters = {
        c.get("name"): c.get("cluster") or {} for c in config.get("clusters") or []
    }
    context = contexts.get(config.get("current-context"), {})
    server = clusters.get(context.get("cluster"), {}).get("server")
    if not server:
        raise DrillError(f"the kubeconfig {kubeconfig} names no server for its context")
    return str(server).rstrip("/")


class Api:
    """The few Kubernetes API calls a drill makes, over plain HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request; the decoded JSON body.

        Raises:
            DrillError: the API did not answer or refused the request.
        """
        try:
            response = self.http.request(method, self.url + path, timeout=10, **kwargs)
        except requests.RequestException as err:
            raise DrillError(
                f"the Kubernetes API at {self.url} did not answer: {err}"
            ) from None
        if response.status_code == 404:
            raise DrillError(f"not found: {path}")
        if not response.ok:
            raise DrillError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:200]}"
            )
        return response.json()


def node_of_user(api: Api, user: str, namespace: str) -> str:
    """Return the node the user's server pod runs on.

    Raises:
        DrillError: the user has no server pod on a node.
    """
    pods = api.call(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods",
        params={"labelSelector": f"component=singleuser-server,{USER_LABEL}={user}"},
    )["items"]
    nodes = sorted({(p.get("spec") or {}).get("nodeName") or "" for p in pods} - {""})
    if not nodes:
        raise DrillError(f"{user} has no server on a node in namespace {namespace}")
    return nodes[0]


def deliver(api: Api, node: str, drill: str, wait_s: float) -> dict[str, Any]:
    """Annotate the node and wait until the notice is delivered; what it shows.

    Raises:
        DrillError: the node does not exist or the notice was not delivered in time.
    """
    api.call(
        "PATCH",
        f"/api/v1/nodes/{node}",
        data=json.dumps({"metadata": {"annotations": {DRILL_ANNOTATION: drill}}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    key = TAINTS[drill]
    deadline = time.monotonic() + wait_s
    while True:
        found = api.call("GET", f"/api/v1/nodes/{node}")
        for taint in (found.get("spec") or {}).get("taints") or []:
            if taint.get("key") == key:
                return {
                    "node": node,
                    "notice": drill,
                    "taint": f"{key}={taint.get('value', '')}:{taint.get('effect')}",
                    "at": taint.get("timeAdded"),
                }
        if time.monotonic() >= deadline:
            raise DrillError(
                f"devcluster did not deliver {drill} to {node} in {wait_s:g} s"
            )
        time.sleep(0.1)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.drill",
        description="Deliver a spot interruption notice or a rebalance "
        "recommendation to a devcluster node, as aws-node-termination-handler "
        "shows them.",
    )
    parser.add_argument("notice", choices=DRILLS, help="what to deliver")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("node", nargs="?", help="the node's name")
    which.add_argument("--user", help="the node that user's server runs on")
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG", ""),
        help="devcluster's kubeconfig (default: $KUBECONFIG)",
    )
    parser.add_argument("--namespace", default="jhub", help="the servers' namespace")
    parser.add_argument(
        "--wait", type=float, default=10.0, help="seconds to wait for the notice"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the drill; 0 when the notice was delivered, 1 otherwise."""
    args = parse_args(argv)
    try:
        api = Api(api_url(args.kubeconfig))
        node = args.node or node_of_user(api, args.user, args.namespace)
        shown = deliver(api, node, args.notice, args.wait)
    except DrillError as err:
        print(f"drill: {err}", file=sys.stderr)
        return 1
    print(json.dumps(shown), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
