"""The namespace a kubeconfig context names (the admin CLI's default, as kubectl)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wbspawner.adapters.kube import kubeconfig_namespace

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts:
- {name: demo, context: {cluster: c, user: u, namespace: jhub}}
- {name: bare, context: {cluster: c, user: u}}
current-context: demo
"""


@pytest.mark.parametrize(
    ("text", "context", "namespace"),
    [
        pytest.param(KUBECONFIG, None, "jhub", id="current-context"),
        pytest.param(KUBECONFIG, "bare", None, id="context-without-namespace"),
        pytest.param(KUBECONFIG, "gone", None, id="unknown-context"),
        pytest.param("current-context: x\n", None, None, id="no-contexts"),
        pytest.param("[unclosed", None, None, id="not-yaml"),
        pytest.param("- a list\n", None, None, id="not-a-mapping"),
    ],
)
def test_kubeconfig_namespace(
    tmp_path: Path, text: str, context: str | None, namespace: str | None
) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    assert kubeconfig_namespace(str(path), context) == namespace


def test_a_missing_kubeconfig_names_no_namespace(tmp_path: Path) -> None:
    assert kubeconfig_namespace(str(tmp_path / "nope")) is None
