"""A user's Dask pods get the ServiceAccount and volumes of their server.

The pods are made by dask-gateway's own Kubernetes controller from the options'
overrides (the ``dask_pod`` fixture) and validated against the Kubernetes schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
from dask_gateway_server.models import User

from tests.paths import REPO
from wbspawner.gateway.options import OptionsContext, cluster_options_for
from wbspawner.model import Catalog, Profiles
from wbspawner.profiles.data_access import access_for
from wbspawner.profiles.loader import load_profiles

K8S = "1.33"
BOB = User("bob", groups=["jupyter-users", "team-a"])


def _with_team_data(profiles: Profiles, catalog: Catalog) -> Profiles:
    data = load_profiles([REPO / "profiles/examples/team-data"], catalog).data
    return dataclasses.replace(profiles, data=data)


def _configure(profiles: Profiles, user: User) -> dict[str, Any]:
    options = cluster_options_for(profiles, user, OptionsContext(backend="kube"))
    request = {"worker_size": "m64-quarter", "max_workers": 2}
    return dict(options.get_configuration(options.parse_options(request), user))


@pytest.mark.parametrize("worker", [True, False], ids=["worker", "scheduler"])
def test_dask_pods_share_the_servers_identity_and_mounts(
    dask_pod: Callable[..., dict[str, Any]],
    profiles: Profiles,
    catalog: Catalog,
    worker: bool,
) -> None:
    with_data = _with_team_data(profiles, catalog)
    pod = dask_pod(_configure(with_data, BOB), worker=worker)
    kubernetes_validate.validate(pod, K8S, strict=True)
    spec = pod["spec"]
    access = access_for(with_data.data, BOB.groups)
    assert spec["serviceAccountName"] == access.service_account
    assert spec["automountServiceAccountToken"] is False
    # dask-gateway appends them to its own (the cluster's credentials)
    assert [v["name"] for v in spec["volumes"]] == [
        "dask-credentials",
        "data-shared-datasets",
    ]
    assert {v["name"]: v["persistentVolumeClaim"] for v in spec["volumes"][1:]} == {
        "data-shared-datasets": {
            "claimName": "wbspawner-data-shared-datasets",
            "readOnly": True,
        }
    }
    _, mount = spec["containers"][0]["volumeMounts"]
    assert mount == {
        "name": "data-shared-datasets",
        "mountPath": "/data/shared",
        "readOnly": True,
    }


def test_without_grants_the_dask_pods_are_unchanged(
    profiles: Profiles, catalog: Catalog
) -> None:
    plain = User("carol", groups=["jupyter-users"])
    assert _configure(_with_team_data(profiles, catalog), plain) == _configure(
        profiles, plain
    )
