"""Fixtures of the hub tests.

- ``offline_kubeconfig``: KubeSpawner's default kubeconfig is one whose only
  cluster is a closed port on 127.0.0.1, so a spawner built in a test sets up
  its Kubernetes client without reaching anything (and without a kubeconfig of
  the machine's); KubeSpawner's cached client configuration is cleared before
  and after the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes_asyncio.config.kube_config as kube_config
import pytest
from kubespawner.clients import load_config

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: offline, user: {}}]
contexts: [{name: offline, context: {cluster: offline, user: offline}}]
current-context: offline
"""


@pytest.fixture
def offline_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG, encoding="utf-8")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    load_config.cache_clear()
    yield
    load_config.cache_clear()
