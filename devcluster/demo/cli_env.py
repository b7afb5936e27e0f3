"""The ``wbspawner`` command line pointed at the local workbench.

This module owns the environment that makes every ``wbspawner`` command work
against a running workbench with no flags (``pools plan``, ``home list``,
``cost report``, ``catalog`` …): the kubeconfig (whose context names the
namespace), the profiles, the cluster name, the AWS endpoint (devcluster's moto
server) with dummy credentials and the region, and the hub's accounting
database. :func:`write_env_file` writes it as a shell file to ``source``
(``.demo/env`` for ``make demo``); :func:`apply_node_groups` runs
``wbspawner pools apply`` with it, which is how the workbench gets its node
groups: the same path an operator takes on EKS.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from devcluster.services.moto_server import DUMMY_KEY_ID, DUMMY_SECRET

UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
"""Variables of the caller's shell that would send the CLI to a real account."""


def cli_environment(
    *,
    kubeconfig: Path,
    profiles_dir: Path,
    cluster: str,
    aws_endpoint: str,
    region: str,
    cost_db_url: str,
) -> dict[str, str]:
    """Return the variables that point ``wbspawner`` at the workbench.

    Args:
        kubeconfig: devcluster's kubeconfig (its context names the namespace).
        profiles_dir: the profiles the hub reads.
        cluster: the cluster name (node groups, subnet tags, EKS).
        aws_endpoint: devcluster's moto server.
        region: the AWS region.
        cost_db_url: the hub's accounting database.

    Returns:
        Variable → value.
    """
    return {
        "KUBECONFIG": str(kubeconfig),
        "WBSPAWNER_PROFILES": str(profiles_dir),
        "WBSPAWNER_CLUSTER": cluster,
        "WBSPAWNER_COST_DB_URL": cost_db_url,
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # No profile, config or credentials file of the caller's takes part.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def env_file_text(env: Mapping[str, str]) -> str:
    """Return a shell file that exports ``env`` and unsets :data:`UNSET`.

    Args:
        env: the variables (from :func:`cli_environment`).

    Returns:
        The file's text.
    """
    lines = [
        "# Points the wbspawner command line at the local workbench (make demo):",
        "#   source .demo/env && wbspawner pools plan",
        f"unset {' '.join(UNSET)}",
    ]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def write_env_file(path: Path, env: Mapping[str, str]) -> Path:
    """Write :func:`env_file_text` to ``path`` and return it."""
    path.write_text(env_file_text(env), encoding="utf-8")
    return path


def apply_node_groups(
    env: Mapping[str, str],
    log: Path,
    *,
    pools: Sequence[str] | None = None,
    zones: Sequence[str] | None = None,
    extra: Sequence[str] = (),
    timeout: float = 300.0,
) -> None:
    """Run ``wbspawner pools apply`` against the workbench, as an operator would.

    Args:
        env: the variables of :func:`cli_environment`.
        log: where the command's output goes.
        pools: only these pools' groups (default: all).
        zones: only the groups in these zones (default: each pool's).
        extra: more arguments (e.g. the VPC CNI's settings for the subnet check).
        timeout: seconds the command may take.

    Raises:
        RuntimeError: the command failed; the message ends with its output.
    """
    argv = [sys.executable, "-m", "wbspawner.cli.main", "pools", "apply"]
    argv += [f"--pool={p}" for p in pools or ()]
    argv += [f"--zone={z}" for z in zones or ()]
    argv += list(extra)
    full = {k: v for k, v in os.environ.items() if k not in UNSET}
    full.update(env)
    with log.open("ab") as out:
        done = subprocess.run(
            argv,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(
            f"wbspawner pools apply failed (exit {done.returncode}); {log}:\n{tail}"
        )
