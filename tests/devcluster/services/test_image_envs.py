"""Images mapped to local environments: names, lookups and builds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devcluster.services import image_envs
from devcluster.services.image_envs import Environments, ImageEnvError, repository


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param("traefik:3.3.5", "docker.io/library/traefik", id="docker-hub"),
        pytest.param("docker.io/traefik", "docker.io/library/traefik", id="short"),
        pytest.param("jupyterhub/k8s-hub:4", "docker.io/jupyterhub/k8s-hub", id="org"),
        pytest.param(
            "quay.io/jupyterhub/configurable-http-proxy:5.3.0@sha256:ab",
            "quay.io/jupyterhub/configurable-http-proxy",
            id="digest",
        ),
        pytest.param("localhost:5000/x:1", "localhost:5000/x", id="registry-port"),
    ],
)
def test_repository_names(image: str, expected: str) -> None:
    assert repository(image) == expected


def test_the_repository_mapping_names_every_image_the_values_use() -> None:
    envs = Environments()
    for image in (
        "ghcr.io/wbspawner/hub:0.1.0",
        "ghcr.io/wbspawner/singleuser:0.1.0",
        "ghcr.io/wbspawner/dask-worker:0.1.0",
        "quay.io/jupyterhub/configurable-http-proxy:5.3.0",
    ):
        assert envs.lookup(image) is not None, image
    assert envs.lookup("docker.io/library/nginx:1") is None


def _mapping(tmp_path: Path, dockerfile_text: str) -> Environments:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "versions.env").write_text("V=1\n")
    (tmp_path / "images" / "tool.Dockerfile").write_text(dockerfile_text)
    (tmp_path / "images" / "environments.yaml").write_text(
        "environments:\n"
        "  tool:\n"
        "    dockerfile: images/tool.Dockerfile\n"
        "images:\n"
        "  example.org/tool: tool\n"
    )
    return Environments(tmp_path / "images" / "environments.yaml", tmp_path / "cache")


def test_an_image_for_another_python_is_refused(tmp_path: Path) -> None:
    envs = _mapping(tmp_path, "FROM python:2.7-slim\nRUN pip install x\n")
    with pytest.raises(ImageEnvError, match="needs Python 2.7"):
        image_envs.build_one(envs, "tool")


def test_a_build_installs_the_staged_package_and_records_the_config(
    tmp_path: Path,
) -> None:
    """The venv gets what the Dockerfile installs (a local package), nothing else."""
    major, minor = sys.version_info[:2]
    pkg = tmp_path / "pkg"
    (pkg / "toolpkg").mkdir(parents=True)
    (pkg / "toolpkg" / "__init__.py").write_text("VALUE = 42\n")
    (pkg / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='toolpkg', version='1.0',"
        " packages=['toolpkg'])\n"
    )
    (tmp_path / "conf.txt").write_text("hello\n")
    envs = _mapping(
        tmp_path,
        f"FROM python:{major}.{minor}-slim\n"
        "COPY pkg /tmp/pkg\n"
        "COPY conf.txt /etc/tool/conf.txt\n"
        "RUN pip install --no-build-isolation /tmp/pkg\n"
        "USER 1000:100\n"
        'CMD ["python", "-c", "import toolpkg"]\n',
    )
    assert image_envs.build_one(envs, "tool") is True
    env = envs.lookup("example.org/tool:1")
    assert env is not None and env.built
    assert env.config["Cmd"] == ["python", "-c", "import toolpkg"]
    assert env.config["User"] == "1000:100"
    assert env.files["/etc/tool/conf.txt"].read_text() == "hello\n"
    site = list((env.root / "lib").glob("python*/site-packages"))[0]
    assert (site / "toolpkg" / "__init__.py").is_file()
    assert not (site / "yaml").exists()  # not the test venv's packages
    assert image_envs.build_one(envs, "tool") is False  # inputs unchanged
