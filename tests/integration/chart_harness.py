"""The stock z2jh chart installed with helm on devcluster, as on EKS.

:class:`ChartStack` starts what the chart needs around it and installs it:

- slapd with StartTLS (its own CA), as a production directory: the hub image's
  configuration refuses LDAP without TLS outside local mode;
- a private PostgreSQL (:class:`devcluster.services.postgres.PostgresServer`)
  with the hub's and the accounting databases, as RDS would hold them;
- ``python -m devcluster`` with moto, a static node ``core`` for the hub and
  the proxy, and the pieces that make a chart's pods run as in a cluster: each
  image in its local environment (``--image-environments``, built by
  ``make image-envs``), volumes at their container paths
  (``--container-paths``) and pods listening on their own IP (``--pod-binds``);
- what an EKS cluster and ``docs/deploy-eks.md`` put there first: a default
  StorageClass (EKS ships ``gp2``), the homes' StorageClass, priority classes
  and node groups (``wbspawner pools apply``, as the workbench does), the
  ``wbspawner-profiles`` ConfigMap and the ``wbspawner-ldap``,
  ``wbspawner-dask-gateway`` and ``wbspawner-db`` Secrets (the latter in both
  namespaces: the gateway records its clusters in the accounting database);
- the profiles' data section (:data:`DATA`, in ``80-data.yaml``, the file the
  gateway's values read it from): buckets ``team-a`` and ``team-b`` in moto,
  the IAM OIDC provider of the cluster's issuer and ``wbspawner data apply``
  into both namespaces, before any user starts (bob's pods name the
  ServiceAccount of his group's grants);
- ``helm install dask-gateway`` of ``../shared/charts/dask-gateway-2026.3.0.tgz``
  with ``helm-values/dask-gateway.yaml`` into namespace ``dask-gateway`` (the
  chart's CRDs first, as helm installs a chart's ``crds/``; its traefik runs
  as devcluster's stand-in, ``devcluster/standins/traefik.py``), with the
  Secret and ConfigMap that file's comments have an operator create, and the
  hub's extra permissions and the Dask dashboards front (``kubectl apply -f``
  ``helm-values/hub-rbac.yaml`` and ``dask-dashboards.yaml``);
- ``helm install jhub`` of ``../shared/charts/jupyterhub-4.4.0.tgz`` with
  ``helm-values/jupyterhub.yaml`` and only ``--set`` values for what cannot
  hold here, each with its reason in :data:`DEVCLUSTER_VALUES`.

Everything is stopped by PID (devcluster stops every pod).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devcluster.demo.cli_env import apply_node_groups, cli_environment
from devcluster.demo.workbench import Kube, prepare_cluster
from devcluster.services.ldap import LdapServer
from devcluster.services.postgres import PostgresServer
from devcluster.services.procs import Proc
from devcluster.services.tools import ensure_tool
from tests.integration.data_support import grant_data
from tests.integration.helm_support import REPO, chart
from wbspawner.catalog.instances import load_catalog
from wbspawner.profiles.loader import load_profiles

NAMESPACE = "jhub"
RELEASE = "jhub"
HUB_CHART = "jupyterhub-4.4.0.tgz"
GATEWAY_NAMESPACE = "dask-gateway"
GATEWAY_RELEASE = "dask-gateway"
"""The hub reaches the gateway as traefik-dask-gateway.dask-gateway."""
GATEWAY_CHART = "dask-gateway-2026.3.0.tgz"


def devcluster_values(ldap: LdapServer) -> dict[str, str]:
    """The ``--set`` values devcluster needs beyond helm-values/, with why."""
    return {
        # The test's slapd listens on a free loopback port, not LDAP's 389.
        "hub.extraEnv.WBSPAWNER_LDAP_PORT": str(ldap.port),
    }


DEVCLUSTER_VALUES = devcluster_values

DATA_FILE = "80-data.yaml"
DATA = """data:
  groups:
    jupyter-users:
      s3:
        - bucket: team-a
"""
"""The profiles' data section: bob's group reads team-a (nothing of team-b)."""

SINGLEUSER_IMAGE = "ghcr.io/wbspawner/singleuser:0.1.0"
DOCKER_STACKS = "quay.io/jupyter/"


def own_images(profiles_dir: Path) -> None:
    """Make the sizes' CPU images the project's own singleuser image.

    The repository's profiles offer Jupyter docker-stacks images, which
    ``images/`` does not build (so devcluster has no environment for them);
    an operator may offer the project's own image instead, and the chart test
    does, so that what runs is built from ``images/singleuser``. GPU images
    stay as they are (no test starts one).
    """
    for path in profiles_dir.glob("*.yaml"):
        lines = path.read_text().splitlines(keepends=True)
        changed = [
            line.split(DOCKER_STACKS)[0] + SINGLEUSER_IMAGE + "\n"
            if DOCKER_STACKS in line and "cuda" not in line
            else line
            for line in lines
        ]
        path.write_text("".join(changed))


"""Every value the install sets beyond ``helm-values/jupyterhub.yaml``."""


@dataclass
class ChartStack:
    """slapd, devcluster and the z2jh chart installed on it."""

    state_dir: Path
    time_factor: float = 0.2
    """Probe periods and delays scale too: the hub takes real seconds to start,
    and its liveness probe (300 s initial delay, 30 failures 10 s apart) must
    not kill it first."""
    ldap: LdapServer | None = None
    postgres: PostgresServer | None = None
    cost_url: str = ""
    """The accounting database's URL, as the Secrets wbspawner-db hold it."""
    devcluster: Proc | None = None
    info: dict[str, Any] = field(default_factory=dict)
    cli_env: dict[str, str] = field(default_factory=dict)
    """The variables that point ``wbspawner`` (and boto3) at the stack."""
    kubeconfig: Path = field(init=False)
    kubectl: Path = field(init=False)
    helm: Path = field(init=False)

    def start(self) -> ChartStack:
        """Start everything and install the chart (stopping it all on failure)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.state_dir / "kubeconfig"
        tools = REPO / ".cache" / "tools"
        self.kubectl = ensure_tool("kubectl", tools)
        self.helm = ensure_tool("helm", tools)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.ldap = LdapServer(self.state_dir / "slapd", tls=True).start()
        self.postgres = PostgresServer(self.state_dir / "postgres").start()
        self._start_devcluster()
        profiles_dir = self.state_dir / "profiles"
        shutil.copytree(REPO / "profiles", profiles_dir, dirs_exist_ok=True)
        own_images(profiles_dir)
        (profiles_dir / DATA_FILE).write_text(DATA)
        profiles = load_profiles([profiles_dir], load_catalog())
        self.kubectl_run(
            "apply",
            "-f",
            "-",
            stdin=yaml.safe_dump(
                {
                    # EKS clusters come with this default StorageClass (claims
                    # without a class, as the chart's sqlite one, ask for it).
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {
                        "name": "gp2",
                        "annotations": {
                            "storageclass.kubernetes.io/is-default-class": "true"
                        },
                    },
                    "provisioner": "ebs.csi.aws.com",
                    "volumeBindingMode": "WaitForFirstConsumer",
                }
            ),
        )
        prepare_cluster(Kube(self.info["api"]), profiles)
        self.cli_env = cli_env = cli_environment(
            kubeconfig=self.kubeconfig,
            profiles_dir=profiles_dir,
            cluster=self.info["cluster"],
            aws_endpoint=self.info["moto"],
            region="us-east-1",
            cost_db_url=f"sqlite:///{self.state_dir / 'costs.sqlite'}",
        )
        apply_node_groups(cli_env, self.state_dir / "pools-apply.log")
        self._prerequisites(profiles_dir)
        # Before any user starts: the roles and ServiceAccounts of the data
        # section in both namespaces (a pod naming a missing one is refused).
        grant_data(
            cli_env,
            self.info["cluster"],
            *("--namespace", NAMESPACE, "--dask-namespace", GATEWAY_NAMESPACE),
        )
        self._helm_install(
            GATEWAY_RELEASE, GATEWAY_CHART, GATEWAY_NAMESPACE, "dask-gateway.yaml"
        )
        for applied in ("hub-rbac.yaml", "dask-dashboards.yaml"):
            self.kubectl_run("apply", "-f", str(REPO / "helm-values" / applied))
        values = ",".join(f"{k}={v}" for k, v in devcluster_values(self.ldap).items())
        self._helm_install(
            RELEASE, HUB_CHART, NAMESPACE, "jupyterhub.yaml", "--set-string", values
        )

    def _helm_install(
        self, release: str, archive: str, namespace: str, values: str, *extra: str
    ) -> None:
        done = subprocess.run(
            [
                str(self.helm),
                "install",
                release,
                str(chart(archive)),
                "--namespace",
                namespace,
                "-f",
                str(REPO / "helm-values" / values),
                *extra,
            ],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"helm install {release} failed:\n{done.stderr}"

    def _start_devcluster(self) -> None:
        log = self.state_dir / "devcluster.log"
        argv = [
            sys.executable,
            "-m",
            "devcluster",
            "--time-factor",
            str(self.time_factor),
            "--static-node",
            "core",
            "--state-dir",
            str(self.state_dir / "cluster"),
            "--kubeconfig",
            str(self.kubeconfig),
            "--namespace",
            NAMESPACE,
            "--image-environments",
            str(REPO / "images" / "environments.yaml"),
            "--container-paths",
            "--pod-binds",
            # The apiserver's default: dask-gateway's controller (2026.3.0)
            # writes Services with `target_port` (snake case) in their ports,
            # which an apiserver drops; devcluster's own default refuses it.
            "--field-validation",
            "Warn",
        ]
        self.devcluster = Proc.start(argv, log, cwd=REPO)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self.devcluster.check_running()
            lines = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if line.startswith("{")
            ]
            if lines:
                self.info = json.loads(lines[0])
                return
            time.sleep(0.2)
        raise TimeoutError(f"devcluster did not start:\n{self.devcluster.tail()}")

    def _prerequisites(self, profiles_dir: Path) -> None:
        """The ConfigMap and Secrets docs/deploy-eks.md has an operator create."""
        assert self.ldap is not None and self.ldap.tls_cert is not None
        token = secrets.token_hex(32)
        self.kubectl_run("create", "namespace", GATEWAY_NAMESPACE)
        for namespace in (NAMESPACE, GATEWAY_NAMESPACE):
            self.kubectl_run(
                "create",
                "configmap",
                "wbspawner-profiles",
                f"--from-file={profiles_dir}",
                namespace=namespace,
            )
            self.kubectl_run(
                "create",
                "secret",
                "generic",
                "wbspawner-dask-gateway",
                f"--from-literal=token={token}",
                namespace=namespace,
            )
        self.kubectl_run(
            "create",
            "secret",
            "generic",
            "wbspawner-ldap",
            f"--from-literal=server={self.ldap.host}",
            f"--from-literal=bind-dn-template={self.ldap.user_dn('{username}')}",
            f"--from-literal=group-dn-template={self.ldap.group_dn('{group}')}",
            "--from-literal=bind-password=",
            f"--from-file=ca.crt={self.ldap.tls_cert.ca_file}",
        )
        assert self.postgres is not None
        self.cost_url = self.postgres.create_database("costs")
        self.kubectl_run(
            "create",
            "secret",
            "generic",
            "wbspawner-db",
            f"--from-literal=hub-url={self.postgres.create_database('jupyterhub')}",
            f"--from-literal=cost-url={self.cost_url}",
        )
        # The gateway records its clusters in the same accounting database.
        self.kubectl_run(
            "create",
            "secret",
            "generic",
            "wbspawner-db",
            f"--from-literal=cost-url={self.cost_url}",
            namespace=GATEWAY_NAMESPACE,
        )

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl_run(
        self,
        *args: str,
        stdin: str = "",
        check: bool = True,
        timeout: float = 120,
        namespace: str = NAMESPACE,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl in a namespace (the hub chart's unless told)."""
        done = subprocess.run(
            [str(self.kubectl), "--namespace", namespace, *args],
            env=self._env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}:\n{done.stderr}"
        return done

    def service_ip(self, name: str) -> str:
        """Return a Service's cluster IP."""
        out = self.kubectl_run("get", "service", name, "-o", "json").stdout
        return str(json.loads(out)["spec"]["clusterIP"])

    def diagnostics(self) -> str:
        """What to look at when something did not come up."""
        parts = [
            self.kubectl_run("get", "all,pvc,events", check=False).stdout,
            self.kubectl_run("logs", "deploy/hub", "--tail=80", check=False).stdout,
            self.kubectl_run("logs", "deploy/proxy", "--tail=20", check=False).stdout,
            self.kubectl_run(
                "logs", "deploy/dask-dashboards", "--tail=20", check=False
            ).stdout,
        ]
        parts.append(
            self.kubectl_run(
                "get",
                "all,events,daskclusters,ingressroutes,ingressroutetcps",
                check=False,
                namespace=GATEWAY_NAMESPACE,
            ).stdout
        )
        for deployment in ("api", "controller", "traefik"):
            parts.append(
                self.kubectl_run(
                    "logs",
                    f"deploy/{deployment}-dask-gateway",
                    "--tail=40",
                    check=False,
                    namespace=GATEWAY_NAMESPACE,
                ).stdout
            )
        if self.devcluster is not None:
            parts.append(self.devcluster.tail())
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop devcluster (and so every pod), slapd and PostgreSQL, by PID."""
        if self.devcluster is not None:
            self.devcluster.stop()
            self.devcluster = None
        if self.ldap is not None:
            self.ldap.stop()
            self.ldap = None
        if self.postgres is not None:
            self.postgres.close()
            self.postgres = None
