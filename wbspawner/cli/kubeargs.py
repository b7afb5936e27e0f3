"""How a command reaches the cluster and AWS: its options and their defaults.

``wbspawner home`` and ``wbspawner data`` talk to the same Kubernetes API and
AWS region, and find them the same way:

- the kubeconfig: ``--kubeconfig``, else the first file of ``$KUBECONFIG``,
  else ``~/.kube/config``; inside a pod with neither, the pod's service account;
- the namespace: ``--namespace``, else ``$WBSPAWNER_NAMESPACE``, else the one
  the kubeconfig's context names (as kubectl does), else ``jupyterhub``;
- the region: ``--region``, else ``$AWS_REGION``/``$AWS_DEFAULT_REGION``, else
  the profiles' ``cost.region``.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from wbspawner.adapters.kube import Kube, kubeconfig_namespace
from wbspawner.cli.util import CliContext
from wbspawner.model import Profiles

NAMESPACE_ENV = "WBSPAWNER_NAMESPACE"
DEFAULT_NAMESPACE = "jupyterhub"
"""The namespace when neither option, environment nor kubeconfig names one."""
DEFAULT_REGION = "us-east-1"
"""The region when neither option, environment nor profiles name one."""


def add_kube_options(parser: argparse.ArgumentParser, namespace_of: str) -> None:
    """Add ``--namespace``, ``--kubeconfig``, ``--context`` and ``--region``.

    Args:
        parser: a subcommand's parser.
        namespace_of: what the namespace holds, for its help (``homes``).
    """
    parser.add_argument(
        "--namespace",
        help=f"namespace of {namespace_of} (default: ${NAMESPACE_ENV}, else the "
        f"kubeconfig context's, else {DEFAULT_NAMESPACE})",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument(
        "--region", help="AWS region (default $AWS_REGION or the profiles' cost.region)"
    )


def kubeconfig(args: argparse.Namespace, ctx: CliContext) -> str | None:
    """Return the kubeconfig file to use; ``None``: the pod's service account."""
    path = args.kubeconfig or ctx.environ.get("KUBECONFIG", "").split(":")[0]
    if not path and ctx.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    return str(path or Path("~/.kube/config").expanduser())


def namespace(args: argparse.Namespace, ctx: CliContext) -> str:
    """Return the namespace the command works in."""
    if args.namespace or ctx.environ.get(NAMESPACE_ENV):
        return str(args.namespace or ctx.environ[NAMESPACE_ENV])
    path = kubeconfig(args, ctx)
    from_config = kubeconfig_namespace(path, args.context) if path else None
    return from_config or DEFAULT_NAMESPACE


def region(args: argparse.Namespace, ctx: CliContext, profiles: Profiles | None) -> str:
    """Return the AWS region the command works in."""
    return str(
        args.region
        or ctx.environ.get("AWS_REGION")
        or ctx.environ.get("AWS_DEFAULT_REGION")
        or (profiles.cost.region if profiles else DEFAULT_REGION)
    )


@asynccontextmanager
async def connect(
    args: argparse.Namespace, ctx: CliContext, rbac_hint: str
) -> AsyncIterator[Kube]:
    """Connect to the API for one command; close the connection after it.

    Args:
        args: the parsed options.
        ctx: the command's environment.
        rbac_hint: added to the message when the API refuses (401/403): what
            the account in use needs.
    """
    path = kubeconfig(args, ctx)
    if path is None:
        kube = await Kube.connect(in_cluster=True, forbidden_hint=rbac_hint)
    else:
        kube = await Kube.connect(path, context=args.context, forbidden_hint=rbac_hint)
    try:
        yield kube
    finally:
        await kube.close()
