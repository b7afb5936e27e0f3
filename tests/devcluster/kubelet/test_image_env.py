"""A container starts with its image's ENV under its own env, and its image's HOME.

Kubernetes behaviour followed: a container's ``env`` is added to the image's
environment and wins over it (tasks/inject-data-application/
define-environment-variable-container: "Environment variables that you define
in a Pod's configuration under .spec.containers[*].env[*] will override any
environment variables specified in the container image"). The image's own
files include its ``HOME`` directory, owned by its USER (jovyan's
``/home/jovyan`` in Jupyter's images), so a server that writes ``~/.local``
can. devcluster is told the ENV of images without a local environment
(``ClusterConfig.image_env``, ``--image-env``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.kubelet.containers import ImageHome, image_home
from devcluster.kubelet.identity import Identity
from devcluster.kubelet.images import image_env
from tests.devcluster.cluster_support import ended

NS = "jhub"
IMAGE = "example.org/notebook"
HOME = "/home/devcluster-test-jovyan"
"""Missing on this machine (the test checks): only the container has it."""
UID, GID = 4141, 100
IMAGE_ENV = (
    (IMAGE, f"HOME={HOME}"),
    (IMAGE, "FROM_IMAGE=image"),
    (IMAGE, "BOTH=image"),
    ("example.org/other", "OTHER=other"),
)
_REPORT = (
    "import json, os, pathlib\n"
    "home = pathlib.Path(os.environ['HOME'])\n"
    "made = home.is_dir() and os.access(home, os.W_OK)\n"
    "if made:\n"
    "    (home / '.local' / 'share').mkdir(parents=True)\n"
    "    owner = [home.stat().st_uid, home.stat().st_gid]\n"
    "else:\n"
    "    owner = None\n"
    "names = ('HOME', 'FROM_IMAGE', 'BOTH', 'OTHER')\n"
    "print(json.dumps({**{n: os.environ.get(n) for n in names}, 'owner': owner}))\n"
)


def test_image_env_looks_up_the_repository_without_tag() -> None:
    assert image_env(IMAGE_ENV, f"{IMAGE}:2026-12") == {
        "HOME": HOME,
        "FROM_IMAGE": "image",
        "BOTH": "image",
    }
    assert image_env(IMAGE_ENV, "example.org/other@sha256:ab") == {"OTHER": "other"}
    assert image_env(IMAGE_ENV, "example.org/unknown:1") == {}
    assert image_env([(IMAGE, "OPTS=a=b"), (IMAGE, "EMPTY=")], IMAGE) == {
        "OPTS": "a=b",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("env", "mounted", "user", "expected"),
    [
        pytest.param(
            {}, {}, "1000:100", ImageHome(HOME, Identity(1000, 100)), id="made"
        ),
        pytest.param({}, {}, "", ImageHome(HOME, Identity(0, 0)), id="root-image"),
        pytest.param(
            {"HOME": f"{HOME}/"},
            {},
            "5:6",
            ImageHome(HOME, Identity(5, 6)),
            id="same-home",
        ),
        pytest.param(
            {"HOME": "/srv/elsewhere"}, {}, "1000:100", None, id="pod-moves-home"
        ),
        pytest.param({}, {HOME: "/var/volume"}, "1000:100", None, id="volume-is-home"),
        pytest.param({}, {"/home": "/var/volume"}, "1000:100", None, id="volume-above"),
        pytest.param(
            {},
            {f"{HOME}/work": "/var/volume"},
            "1000:100",
            ImageHome(HOME, Identity(1000, 100)),
            id="volume-below",
        ),
    ],
)
def test_image_home_only_where_the_image_home_is_the_containers_and_no_volume(
    env: dict[str, str],
    mounted: dict[str, str],
    user: str,
    expected: ImageHome | None,
) -> None:
    assert image_home({"HOME": HOME}, env, mounted, user) == expected


def test_no_image_home_for_an_image_without_home() -> None:
    assert image_home({}, {}, {}, "1000:100") is None
    assert image_home({"HOME": "relative"}, {}, {}, "1000:100") is None


def _pod(name: str, **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": "core",
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": f"{IMAGE}:2026-12",
                    "command": [sys.executable, "-c", _REPORT],
                    **container,
                }
            ],
        },
    }


async def _report(cluster: Cluster, name: str, **container: Any) -> dict[str, Any]:
    assert cluster.store is not None
    cluster.store.create("pods", NS, _pod(name, **container))
    phase, out = await ended(cluster, NS, name)
    assert phase == "Succeeded", out
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture
async def image_cluster(fast_config: ClusterConfig) -> AsyncIterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("container paths need root (mount namespaces); run as root")
    assert not Path(HOME).exists(), f"{HOME} exists on this machine"
    config = dataclasses.replace(
        fast_config,
        container_paths=True,
        image_env=IMAGE_ENV,
        image_users=((IMAGE, f"{UID}:{GID}"),),
    )
    async with Cluster(config, controllers=False) as cluster:
        yield cluster


@pytest.mark.integration
async def test_container_gets_its_images_env_and_home(image_cluster: Cluster) -> None:
    """The image's variables are there, the pod's win, another image's are
    not; the image's HOME is a directory its USER owns and writes."""
    report = await _report(
        image_cluster, "imaged", env=[{"name": "BOTH", "value": "pod"}]
    )
    assert report == {
        "HOME": HOME,
        "FROM_IMAGE": "image",
        "BOTH": "pod",
        "OTHER": None,
        "owner": [UID, GID],
    }
    assert not Path(HOME).exists()  # only in the container's mount namespace


@pytest.mark.integration
async def test_pod_env_moves_home_away_from_the_images(image_cluster: Cluster) -> None:
    """A HOME of the pod's own wins, and no directory is made for it."""
    report = await _report(
        image_cluster, "moved", env=[{"name": "HOME", "value": "/nonexistent-home"}]
    )
    assert report["HOME"] == "/nonexistent-home"
    assert report["FROM_IMAGE"] == "image"
    assert report["owner"] is None


@pytest.mark.integration
async def test_image_env_without_container_paths(fast_config: ClusterConfig) -> None:
    """Without container paths the image's variables still come under the pod's
    (HOME is then devcluster's per-pod directory, as for any container)."""
    config = dataclasses.replace(fast_config, image_env=IMAGE_ENV)
    async with Cluster(config, controllers=False) as cluster:
        report = await _report(cluster, "plain", env=[{"name": "BOTH", "value": "pod"}])
    assert (report["FROM_IMAGE"], report["BOTH"], report["OTHER"]) == (
        "image",
        "pod",
        None,
    )
    assert report["HOME"] != HOME and report["owner"] is not None
