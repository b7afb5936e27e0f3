"""Fixtures of the API server tests.

- ``store``: a bare Store with validation and namespace ``jhub`` (no HTTP).
- ``kubectl``: the kubectl binary, extracted once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devcluster.apiserver import validation
from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.services.tools import ensure_tool


@pytest.fixture
def store() -> Store:
    s = Store(
        ClusterConfig(time_factor=0.01), validator=validation.validate, history=50
    )
    s.create("namespaces", None, {"metadata": {"name": "jhub"}})
    return s


@pytest.fixture(scope="session")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tool("kubectl", tmp_path_factory.mktemp("tools"))
