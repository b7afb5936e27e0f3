"""``python -m devcluster``: run a moto server and a devcluster until SIGTERM/SIGINT.

The moto server holds the account an EKS cluster lives in (its VPC, tagged node
subnets, security group, the EKS cluster and the EKS AMI parameters; see
:mod:`devcluster.services.eks_world`), so ``wbspawner pools`` works against it.
Prints one JSON line with what it started (API URL, moto URL, cluster name,
kubeconfig path, state directory, PID), then a few human-readable lines. On
SIGTERM or SIGINT it stops the controllers, stops every pod (its processes and
their cgroups) and exits 0. ``--static-node NAME`` nodes carry the labels EKS
workers get (zone, region, instance type).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig

if TYPE_CHECKING:
    from devcluster.services.moto_server import MotoServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on"
    )
    parser.add_argument(
        "--api-port", type=int, default=0, help="API port (0: any free)"
    )
    parser.add_argument(
        "--moto-port", type=int, default=0, help="moto port (0: any free)"
    )
    parser.add_argument(
        "--no-moto", action="store_true", help="do not start a moto server"
    )
    parser.add_argument(
        "--time-factor",
        type=float,
        default=1.0,
        help="real seconds per simulated second (0.01: 100x faster)",
    )
    parser.add_argument(
        "--state-dir", default="", help="logs and volumes (default: temp dir)"
    )
    parser.add_argument(
        "--kubeconfig", default="", help="where to write the kubeconfig"
    )
    parser.add_argument(
        "--namespace", default="jhub", help="kubeconfig default namespace"
    )
    parser.add_argument(
        "--kubelet",
        choices=("run", "sim"),
        default="run",
        help="run pod commands as processes, or only simulate them",
    )
    parser.add_argument(
        "--static-node",
        action="append",
        default=[],
        metavar="NAME",
        help="add a static Ready node (repeatable)",
    )
    parser.add_argument(
        "--image-user",
        action="append",
        default=[],
        metavar="IMAGE=UID[:GID]",
        help="the USER of an image (repository without tag; repeatable): its "
        "containers that set no runAsUser run as that user",
    )
    parser.add_argument(
        "--image-env",
        action="append",
        default=[],
        metavar="IMAGE=NAME=VALUE",
        help="a variable of an image's ENV (repository without tag; repeatable): "
        "its containers start with it under their own env",
    )
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="skip schema validation of written objects",
    )
    parser.add_argument(
        "--image-environments",
        default="",
        metavar="MAPPING",
        help="run containers in their images' local environments "
        "(images/environments.yaml; make image-envs builds them)",
    )
    parser.add_argument(
        "--container-paths",
        action="store_true",
        help="bind volumes and image files at their container paths (root only)",
    )
    parser.add_argument(
        "--pod-binds",
        action="store_true",
        help="pods listening on every address listen on their pod IP (needs cc)",
    )
    parser.add_argument(
        "--field-validation",
        choices=("", "Ignore", "Warn", "Strict"),
        default="",
        help="fieldValidation of writes that send none (Warn: the apiserver's "
        "default; default: unknown fields are 422 errors)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> ClusterConfig:
    """Build the ClusterConfig of a command line."""
    nodes: tuple[dict[str, object], ...] = tuple(
        {"metadata": {"name": name}} for name in args.static_node
    )
    users = []
    for item in args.image_user:
        image, _, user = item.partition("=")
        if not image or not user.replace(":", "", 1).isdigit():
            raise SystemExit(f"--image-user {item!r}: expected IMAGE=UID[:GID]")
        users.append((image, user))
    env = []
    for item in args.image_env:
        image, _, variable = item.partition("=")
        if not image or not variable.partition("=")[0] or "=" not in variable:
            raise SystemExit(f"--image-env {item!r}: expected IMAGE=NAME=VALUE")
        env.append((image, variable))
    return ClusterConfig(
        host=args.host,
        api_port=args.api_port,
        moto_port=args.moto_port,
        time_factor=args.time_factor,
        state_dir=args.state_dir,
        kubelet_mode=args.kubelet,
        static_nodes=nodes,
        image_users=tuple(users),
        image_env=tuple(env),
        validate=not args.no_validate,
        image_environments=args.image_environments,
        container_paths=args.container_paths,
        pod_binds=args.pod_binds,
        field_validation=args.field_validation,
    )


def _make_eks_world(moto: MotoServer, config: ClusterConfig) -> None:
    """Make the EKS cluster's account in moto (this process runs its backends)."""
    from devcluster.services.eks_world import create_eks_world, eks_amis, seed_eks_amis

    seed_eks_amis(config.region, eks_amis())
    create_eks_world(
        moto.client("ec2"), moto.client("eks"), config.cluster_name, config.zones
    )


async def run(args: argparse.Namespace) -> int:
    """Start everything, report, wait for a signal, stop everything."""
    config = config_from(args)
    moto = None
    if not args.no_moto:
        from devcluster.services.moto_server import MotoServer

        moto = await asyncio.to_thread(
            MotoServer(config.host, config.moto_port, config.region).start
        )
        await asyncio.to_thread(_make_eks_world, moto, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    cluster = Cluster(config, aws_endpoint=moto.endpoint_url if moto else None)
    try:
        await cluster.start()
        kubeconfig = Path(args.kubeconfig or Path(cluster.state_dir) / "kubeconfig")
        cluster.write_kubeconfig(kubeconfig, args.namespace)
        info = {
            "api": cluster.url,
            "moto": moto.endpoint_url if moto else None,
            "cluster": config.cluster_name,
            "kubeconfig": str(kubeconfig),
            "state_dir": str(cluster.state_dir),
            "pid": os.getpid(),
            "controllers": cluster.controllers is not None,
        }
        print(json.dumps(info), flush=True)
        print(f"Kubernetes API: {info['api']}", flush=True)
        print(f"moto (AWS):     {info['moto']}", flush=True)
        print(
            f"kubeconfig:     {kubeconfig}  (export KUBECONFIG={kubeconfig})",
            flush=True,
        )
        await stop.wait()
    finally:
        await cluster.stop()
        if moto is not None:
            await asyncio.to_thread(moto.stop)
    print("devcluster stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m devcluster``."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
