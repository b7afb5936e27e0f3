"""The demo stack as one object: slapd, devcluster + node groups, Dask Gateway, the hub.

:class:`Workbench` starts a private slapd with the demo users, devcluster (the
Kubernetes API emulator with its moto server, scheduler, autoscaler and kubelet)
as its own process, runs ``wbspawner pools apply`` against it for the node
groups (one Auto Scaling group per pool × zone × capacity type, as on EKS), and
starts Dask Gateway and JupyterHub with configurable-http-proxy configured
through the repository's ``jupyterhub_config.py``. It writes ``env`` in its
state directory: ``source`` it and every ``wbspawner`` command works against
the stack. ``stop()`` stops everything it started, by PID. ``python -m
devcluster.demo`` runs it for people; the hub integration tests and the browser
test run the same thing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import requests
import yaml

from devcluster.config import ClusterConfig
from devcluster.demo.cli_env import apply_node_groups, cli_environment, write_env_file
from devcluster.demo.gateway import LocalGateway, start_gateway
from devcluster.services.chp import chp_command, repo_root
from devcluster.services.ldap import LdapServer
from devcluster.services.moto_server import DUMMY_KEY_ID, DUMMY_SECRET
from devcluster.services.ports import choose_port
from devcluster.services.procs import (
    Proc,
    free_port,
    lifeline_argv,
    wait_for_http,
    wait_for_port,
)
from wbspawner.catalog.instances import load_catalog
from wbspawner.model import Profiles
from wbspawner.pools.autoscaler_values import expander_priorities
from wbspawner.profiles.loader import load_profiles

NAMESPACE = "jhub"
CLUSTER = ClusterConfig().cluster_name
REGION = ClusterConfig().region
PUBLIC_PORT = 8000
"""The proxy's port when it is free and none is asked for."""

PRIORITY_CLASSES = (("wbspawner-placeholder", -10), ("wbspawner-user", 0))


class Kube:
    """A few Kubernetes API calls over plain HTTP (the demo and tests need no more)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.trust_env = False

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path``; the decoded JSON, or ``None`` on 404."""
        response = self.http.get(self.url + path, params=params, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def create(self, path: str, obj: dict[str, Any]) -> Any:
        """POST ``obj`` to the collection ``path`` (an existing object is fine)."""
        response = self.http.post(self.url + path, json=obj, timeout=10)
        if response.status_code != 409:
            response.raise_for_status()
        return response.json()


def prepare_cluster(kube: Kube, profiles: Profiles) -> None:
    """Create the homes' StorageClass, the PriorityClasses and the expander config.

    Args:
        kube: the devcluster API.
        profiles: the profiles (StorageClass name, pools' capacity order).
    """
    kube.create(
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": profiles.homes.storage_class},
            "provisioner": "ebs.csi.aws.com",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Retain",
            "parameters": {"type": "gp3", "encrypted": "true"},
        },
    )
    for name, value in PRIORITY_CLASSES:
        kube.create(
            "/apis/scheduling.k8s.io/v1/priorityclasses",
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
            },
        )
    priorities = yaml.safe_dump(expander_priorities(profiles, CLUSTER))
    kube.create(
        "/api/v1/namespaces/kube-system/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cluster-autoscaler-priority-expander"},
            "data": {"priorities": priorities},
        },
    )


@dataclass
class Devcluster:
    """A running ``python -m devcluster`` and what it reported."""

    proc: Proc
    api: str
    moto: str
    kubeconfig: Path
    cluster: str = CLUSTER
    """The EKS cluster devcluster stands for (node groups, subnet tags)."""


def start_devcluster(
    state_dir: Path, time_factor: float, kubelet: str = "run"
) -> Devcluster:
    """Start devcluster (with moto) and wait for its one-line JSON report.

    ``kubelet`` is its kubelet's mode: ``run`` runs pods' commands, ``sim``
    only pretends (no process per pod; the scale benchmark's thousand users).
    """
    kubeconfig = state_dir / "kubeconfig"
    log = state_dir / "devcluster.log"
    argv = [
        sys.executable,
        "-m",
        "devcluster",
        "--api-port",
        "0",
        "--moto-port",
        "0",
        "--time-factor",
        str(time_factor),
        "--kubeconfig",
        str(kubeconfig),
        "--state-dir",
        str(state_dir / "cluster"),
        "--namespace",
        NAMESPACE,
        "--kubelet",
        kubelet,
    ]
    proc = Proc.start(argv, log, cwd=repo_root())
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            proc.check_running()
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    info = json.loads(line)
                    return Devcluster(
                        proc, info["api"], info["moto"], kubeconfig, info["cluster"]
                    )
            time.sleep(0.1)
        raise TimeoutError(f"devcluster did not report in 60 s:\n{proc.tail()}")
    except BaseException:
        proc.stop()
        raise


def hub_env(
    *,
    state_dir: Path,
    profiles_dir: Path,
    ldap: LdapServer,
    cluster: Devcluster,
    public_port: int,
    capacity_grace_s: float = 30.0,
    hub_db_url: str | None = None,
    cost_db_url: str | None = None,
) -> dict[str, str]:
    """Return the environment ``jupyterhub_config.py`` reads in local mode.

    The hub's database is SQLite in ``state_dir`` unless ``hub_db_url`` names
    one; the accounting database likewise (``cost_db_url``).
    """
    hub_port, api_port = free_port(), free_port()
    database = {"WBSPAWNER_HUB_DB_URL": hub_db_url} if hub_db_url else {}
    return {
        **database,
        "WBSPAWNER_MODE": "local",
        "WBSPAWNER_PROFILES": str(profiles_dir),
        "WBSPAWNER_STATE_DIR": str(state_dir),
        "WBSPAWNER_PUBLIC_URL": f"http://127.0.0.1:{public_port}",
        "WBSPAWNER_HUB_BIND_URL": f"http://127.0.0.1:{hub_port}",
        "WBSPAWNER_PROXY_API_URL": f"http://127.0.0.1:{api_port}",
        # JupyterHub starts the proxy in a session of its own: a hub that dies
        # without stopping it would leave it holding the public port.
        "WBSPAWNER_PROXY_COMMAND": os.pathsep.join(
            lifeline_argv(chp_command(repo_root()))
        ),
        "WBSPAWNER_NAMESPACE": NAMESPACE,
        "WBSPAWNER_START_TIMEOUT": "180",
        "WBSPAWNER_PROFILES_CHECK_SECONDS": "0.5",
        "WBSPAWNER_CAPACITY_GRACE_SECONDS": str(capacity_grace_s),
        # the hub, the warmer's costs page and the gateway share one database
        "WBSPAWNER_COST_DB_URL": cost_db_url
        or f"sqlite:///{state_dir / 'wbspawner-costs.sqlite'}",
        "WBSPAWNER_LDAP_SERVER": ldap.host,
        "WBSPAWNER_LDAP_PORT": str(ldap.port),
        "WBSPAWNER_LDAP_TLS": "insecure",
        "WBSPAWNER_LDAP_BIND_DN_TEMPLATE": ldap.user_dn("{username}"),
        "WBSPAWNER_LDAP_GROUP_DN_TEMPLATE": ldap.group_dn("{group}"),
        "KUBECONFIG": str(cluster.kubeconfig),
        # The hub's own AWS calls (a home's automatic move) go to devcluster's moto.
        "WBSPAWNER_AWS_ENDPOINT_URL": cluster.moto,
        "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
        "PYTHONUNBUFFERED": "1",
    }


GATEWAY_HEALTH = "/services/dask-gateway/api/health"
"""The gateway's health check through the hub's proxy and the dashboards front."""


@dataclass
class Workbench:
    """The demo stack: slapd, devcluster + node groups, Dask Gateway, the hub.

    Args:
        state_dir: where logs, the hub database and volumes go.
        time_factor: devcluster's real seconds per simulated second.
        pools: pools to create node groups for (default: all).
        zones: zones to create node groups in (default: each pool's).
        ldap: an already running LdapServer to use instead of starting one.
        public_port: the proxy's port; it must be free (default: 8000 if free,
            else any free port, and ``port_note`` says so).
        capacity_grace_s: how long the autoscaler must refuse a node before a
            spawn fails (tests shorten it).
        warmer: whether the hub runs the warmer service (its page at
            ``/services/warmer/``; the spawn form reads its status file).
        culler_interval: seconds between the passes of the hub's idle culler
            service (the profiles' ``culling`` rules); ``None``: no culler.
        hub_db_url: the hub's database (default: SQLite in its state folder).
        cost_db_url: the accounting database of the hub, the warmer and the
            gateway (default: SQLite in the hub's state folder).
        kubelet: devcluster's kubelet mode: ``run`` (pods' commands run) or
            ``sim`` (nothing runs in a pod; nothing answers on its address).
        pools_apply_args: more arguments of ``wbspawner pools apply`` (the
            VPC CNI's settings, which the subnet check counts with).
        ssh: whether the hub runs the SSH service (on ``ssh_port``, a free
            port); :meth:`seed_ssh_key` gives a user a key in the directory.
        singleuser_cmd: the users' server command (default: the hub's
            ``jupyterhub-singleuser``, beside its Python); e.g. the single-user
            image's environment (``make image-envs``) to run what the image
            holds.
    """

    state_dir: Path
    time_factor: float = 0.1
    pools: Sequence[str] | None = None
    zones: Sequence[str] | None = None
    ldap: LdapServer | None = None
    public_port: int | None = None
    capacity_grace_s: float = 30.0
    warmer: bool = True
    culler_interval: float | None = 60.0
    hub_db_url: str | None = None
    cost_db_url: str | None = None
    kubelet: str = "run"
    pools_apply_args: Sequence[str] = ()
    ssh: bool = False
    ssh_port: int = field(init=False, default=0)
    """Where the SSH service listens (0: no SSH service)."""
    singleuser_cmd: Sequence[str] = ()
    profiles_dir: Path = field(init=False)
    url: str = field(init=False, default="")
    port_note: str = field(init=False, default="")
    """Why the proxy is not on the port asked for (empty when it is)."""
    env_file: Path = field(init=False)
    """``source`` it to point the ``wbspawner`` CLI at this stack."""
    cli_env: dict[str, str] = field(init=False, default_factory=dict)
    """The variables ``env_file`` exports."""
    cost_db: str = field(init=False, default="")
    """The accounting database's URL in force (``cost_db_url`` or the default)."""
    hub: Proc | None = field(init=False, default=None)
    gateway: LocalGateway | None = field(init=False, default=None)
    cluster: Devcluster | None = field(init=False, default=None)
    kube: Kube | None = field(init=False, default=None)
    _own_ldap: LdapServer | None = field(init=False, default=None)

    def start(self) -> Workbench:
        """Start everything (stopping what started if a step fails)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.profiles_dir = self.state_dir / "profiles"
        self.env_file = self.state_dir / "env"
        if not self.profiles_dir.exists():
            shutil.copytree(repo_root() / "profiles", self.profiles_dir)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        port, self.port_note = choose_port(self.public_port, PUBLIC_PORT)
        if self.ldap is None:
            self._own_ldap = self.ldap = LdapServer(self.state_dir / "slapd").start()
        self.cluster = start_devcluster(self.state_dir, self.time_factor, self.kubelet)
        self.kube = Kube(self.cluster.api)
        catalog = load_catalog()
        profiles = load_profiles([self.profiles_dir], catalog)
        prepare_cluster(self.kube, profiles)
        env = hub_env(
            state_dir=self.state_dir / "hub",
            profiles_dir=self.profiles_dir,
            ldap=self.ldap,
            cluster=self.cluster,
            public_port=port,
            capacity_grace_s=self.capacity_grace_s,
            hub_db_url=self.hub_db_url,
            cost_db_url=self.cost_db_url,
        )
        self.cost_db = env["WBSPAWNER_COST_DB_URL"]
        self.cli_env = cli_environment(
            kubeconfig=self.cluster.kubeconfig,
            profiles_dir=self.profiles_dir,
            cluster=self.cluster.cluster,
            aws_endpoint=self.cluster.moto,
            region=REGION,
            cost_db_url=env["WBSPAWNER_COST_DB_URL"],
        )
        write_env_file(self.env_file, self.cli_env)
        apply_node_groups(
            self.cli_env,
            self.state_dir / "pools-apply.log",
            pools=self.pools,
            zones=self.zones,
            extra=self.pools_apply_args,
        )
        (self.state_dir / "hub").mkdir(exist_ok=True)
        if self.ssh:
            self.ssh_port = free_port()
            env["WBSPAWNER_SSH_PORT"] = str(self.ssh_port)
        if self.singleuser_cmd:
            env["WBSPAWNER_SINGLEUSER_CMD"] = os.pathsep.join(self.singleuser_cmd)
        if self.culler_interval is not None:
            env["WBSPAWNER_CULLER_INTERVAL"] = f"{self.culler_interval:g}"
        if self.warmer:
            env["WBSPAWNER_WARMER_URL"] = f"http://127.0.0.1:{free_port()}"
            env["WBSPAWNER_WARM_STATUS_FILE"] = str(
                self.state_dir / "hub" / "warm-status.json"
            )
        self.gateway = start_gateway(
            self.state_dir,
            self.profiles_dir,
            env["WBSPAWNER_HUB_BIND_URL"] + "/hub/api",
            cost_db_url=env["WBSPAWNER_COST_DB_URL"],
        )
        env.update(self.gateway.hub_env)
        config = repo_root() / "jupyterhub_config.py"
        self.hub = Proc.start(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            self.state_dir / "hub.log",
            env=env,
            cwd=self.state_dir / "hub",
        )
        self.url = f"http://127.0.0.1:{port}"
        wait_for_hub(env["WBSPAWNER_HUB_BIND_URL"], self.url, self.hub, timeout=90)
        if self.ssh_port:
            # the hub does not wait for a service without a URL
            wait_for_port("127.0.0.1", self.ssh_port, timeout=30, proc=self.hub)

    def seed_ssh_key(self, uid: str) -> Path:
        """Give ``uid`` a new Ed25519 key in the directory; return its private file.

        The public half becomes the user's ``sshPublicKey`` (replacing any), as
        an admin would put it there; the private half is written, readable by
        its owner only, to ``ssh/<uid>_ed25519`` in the state directory.
        """
        assert self.ldap is not None
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"{uid}@demo")
        path = self.state_dir / "ssh" / f"{uid}_ed25519"
        path.parent.mkdir(parents=True, exist_ok=True)
        key.write_private_key(str(path))
        path.chmod(0o600)
        public = key.export_public_key("openssh").decode().strip()
        self.ldap.set_ssh_keys(uid, [public])
        return path

    def stop(self) -> None:
        """Stop the hub (and its proxy), devcluster (and its pods), slapd; by PID."""
        if self.hub is not None:
            self.hub.stop(timeout=10)
        if self.gateway is not None:
            self.gateway.stop()
        if self.cluster is not None:
            self.cluster.proc.stop(timeout=15)
        if self._own_ldap is not None:
            self._own_ldap.stop()

    def __enter__(self) -> Workbench:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_hub(
    hub_url: str,
    public_url: str,
    hub: Proc,
    timeout: float,
    services: Sequence[str] = (GATEWAY_HEALTH,),
) -> None:
    """Wait until the hub answers, then until it and its services do through the proxy.

    The hub starts its proxy before it listens; asking the proxy first would
    make it forward to a hub not yet there, an error in the proxy's log. It
    answers before its managed services run (it starts them one after the
    other, each within its ``timeout``); until then their paths are the hub's
    404s.

    Args:
        hub_url: where the hub itself listens.
        public_url: the proxy's public URL.
        hub: the hub process (a hub that exits fails the wait at once).
        timeout: seconds for all the waits together.
        services: paths below ``public_url`` that must answer 200 too.
    """
    deadline = time.monotonic() + timeout
    wait_for_http(hub_url.rstrip("/") + "/hub/api/", timeout=timeout, proc=hub)
    for path in ("/hub/api/", *services):
        left = max(deadline - time.monotonic(), 1.0)
        wait_for_http(public_url.rstrip("/") + path, timeout=left, proc=hub)
