"""images/: one pinned place for versions, the same Dask stack everywhere, lint.

The checker below reads ``images/versions.env``, every ``images/*/Dockerfile``
and ``constraints.txt`` under a root directory, and returns its problems as
text; the tests run it on the repository and on modified copies in ``tmp_path``
(so that a changed pin is shown to fail it). hadolint cannot be installed from
the package registries here, so the Dockerfile rules are checked by hand.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGES = ("hub", "singleuser", "singleuser-gpu", "dask-worker")
DASK_STACK = ("DASK_VERSION", "DISTRIBUTED_VERSION", "DASK_GATEWAY_VERSION")
"""Keys that must be identical for client, scheduler and worker."""
NOT_PACKAGES = frozenset(
    {"PYTHON_VERSION", "DEBIAN_RELEASE", "CUDA_BASE_IMAGE", "UV_VERSION",
     "IMAGE_REGISTRY", "SINGLEUSER_IMAGE", "WBSPAWNER_VERSION"}
)  # fmt: skip
PACKAGE_NAMES = {
    "KUBESPAWNER_VERSION": "jupyterhub-kubespawner",
    "LDAPAUTHENTICATOR_VERSION": "jupyterhub-ldapauthenticator",
    "CUPY_VERSION": "cupy-cuda12x",
}
_PIN = re.compile(r"""["']?([A-Za-z0-9_.\-\[\]]+)==([^\s"'\\]+)""")
_ARG = re.compile(r"^ARG\s+([A-Z0-9_]+)(?:=(\S+))?\s*$")
_SUBST = re.compile(r"\$\{?([A-Z0-9_]+)\}?")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package_of(key: str) -> str | None:
    """Return the PyPI name a versions.env key pins, None for non-packages."""
    if key in NOT_PACKAGES or not key.endswith("_VERSION"):
        return None
    return PACKAGE_NAMES.get(key, _norm(key.removesuffix("_VERSION")))


def read_versions(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key.strip() == key and value.strip() == value, line
            out[key] = value
    return out


def read_constraints(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith("#"):
            out[_norm(name)] = version
    return out


def instructions(text: str) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) with continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        pending += (" " if pending else "") + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            word, _, rest = pending.partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def _substitute(text: str, args: dict[str, str]) -> str:
    return _SUBST.sub(lambda m: args.get(m.group(1), m.group(0)), text)


def check_versions(root: Path) -> list[str]:
    """Return every version inconsistency under ``root`` (empty: consistent)."""
    versions = read_versions(root / "images" / "versions.env")
    constraints = read_constraints(root / "constraints.txt")
    problems: list[str] = []
    for key, value in versions.items():
        name = package_of(key)
        if name in constraints and constraints[name] != value:
            problems.append(f"versions.env {key}={value} but constraints.txt has "
                            f"{name}=={constraints[name]}")  # fmt: skip
    for image in IMAGES:
        text = (root / "images" / image / "Dockerfile").read_text(encoding="utf-8")
        args: dict[str, str] = {}
        for word, rest in instructions(text):
            if word == "ARG":
                m = _ARG.match(f"ARG {rest}")
                assert m, rest
                key, default = m.group(1), m.group(2)
                if key not in versions:
                    problems.append(f"{image}: ARG {key} is not in versions.env")
                elif default != versions[key]:
                    problems.append(f"{image}: ARG {key}={default} but versions.env "
                                    f"has {versions[key]}")  # fmt: skip
                args[key] = default or ""
            for name, pin in _PIN.findall(rest) if word == "RUN" else ():
                if not pin.startswith("${"):
                    problems.append(f"{image}: {name}=={pin} is a literal pin; use an "
                                    "ARG from versions.env")  # fmt: skip
        problems += _dask_stack(image, text, versions)
    return problems


def _dask_stack(image: str, text: str, versions: dict[str, str]) -> list[str]:
    """The Python and Dask stack each image gets, compared with versions.env."""
    flat = " ".join(rest for _, rest in instructions(text))
    if image == "dask-worker":
        froms = [rest for word, rest in instructions(text) if word == "FROM"]
        if froms != ["${SINGLEUSER_IMAGE}:${WBSPAWNER_VERSION}"]:
            return [f"dask-worker: must be FROM the single-user image, got {froms}"]
        return []
    problems = []
    if "PYTHON_VERSION" not in flat:
        problems.append(f"{image}: Python does not come from PYTHON_VERSION")
    wanted = DASK_STACK if image != "hub" else ()
    for key in wanted:
        name = package_of(key)
        if f'"{name}==${{{key}}}"' not in flat:
            problems.append(f"{image}: does not install {name}==${{{key}}}")
    return problems


def lint_dockerfile(text: str, versions: dict[str, str]) -> list[str]:
    """Return the Dockerfile rule violations (hadolint-like, hand-written)."""
    problems: list[str] = []
    steps = instructions(text)
    args = {k: v for k, v in versions.items()}
    stages: set[str] = set()
    for word, rest in steps:
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args.setdefault(key, value)
        if word == "FROM":
            image, _, alias = _substitute(rest, args).partition(" AS ")
            image = image.strip()
            if image not in stages:
                tag = image.rpartition("/")[2].partition(":")[2]
                if "@sha256:" not in image and (not tag or tag == "latest"):
                    problems.append(f"FROM {rest}: base image is not pinned")
            if alias:
                stages.add(alias.strip())
        if word == "ADD" and re.search(r"\bhttps?://", rest):
            problems.append(f"ADD {rest}: do not ADD URLs (no checksum); use RUN")
        if word == "RUN" and "apt-get install" in rest:
            if "rm -rf /var/lib/apt/lists/*" not in rest:
                problems.append(
                    "RUN apt-get install without rm -rf /var/lib/apt/lists/*"
                )
            if "--no-install-recommends" not in rest:
                problems.append("RUN apt-get install without --no-install-recommends")
        if word == "RUN" and "pip install" in rest and "--no-cache-dir" not in rest:
            if "uv pip install" not in rest:
                problems.append("RUN pip install without --no-cache-dir")
    users = [rest for word, rest in steps if word == "USER"]
    if not users or users[-1].partition(":")[0] in ("root", "0"):
        problems.append(f"the last USER must be non-root, got {users[-1:] or 'none'}")
    if not any(word == "HEALTHCHECK" for word, _ in steps):
        if "No HEALTHCHECK:" not in text:
            problems.append("no HEALTHCHECK and no '# No HEALTHCHECK: why' comment")
    return problems


def _copy_tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "images", tmp_path / "images")
    shutil.copy(REPO / "constraints.txt", tmp_path / "constraints.txt")
    return tmp_path


def test_repository_versions_are_consistent():
    assert check_versions(REPO) == []


def test_versions_file_matches_the_test_environment():
    versions = read_versions(REPO / "images" / "versions.env")
    major_minor = ".".join(versions["PYTHON_VERSION"].split(".")[:2])
    # The patch release of the test venv's interpreter is the machine's; the
    # language version (and so every wheel's ABI) must be the images'.
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == major_minor
    for key in (*DASK_STACK, "JUPYTERHUB_VERSION", "KUBESPAWNER_VERSION",
                "LDAPAUTHENTICATOR_VERSION", "NUMPY_VERSION"):  # fmt: skip
        name = package_of(key)
        assert name is not None
        assert importlib.metadata.version(name) == versions[key], key


def test_every_package_key_names_a_distribution():
    versions = read_versions(REPO / "images" / "versions.env")
    constraints = read_constraints(REPO / "constraints.txt")
    in_both = {package_of(k) for k in versions} & set(constraints)
    assert {"dask", "distributed", "dask-gateway", "jupyterhub"} <= in_both


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("images/singleuser-gpu/Dockerfile", "ARG DASK_VERSION=2026.8.0",
         "ARG DASK_VERSION=2026.7.0", "singleuser-gpu: ARG DASK_VERSION=2026.7.0"),
        ("images/versions.env", "DISTRIBUTED_VERSION=2026.8.0",
         "DISTRIBUTED_VERSION=2026.9.0", "constraints.txt has distributed"),
        ("images/singleuser/Dockerfile", '"dask-gateway==${DASK_GATEWAY_VERSION}"',
         '"dask-gateway==2026.3.0"', "literal pin"),
        ("constraints.txt", "dask==2026.8.0", "dask==2026.1.0",
         "constraints.txt has dask==2026.1.0"),
        ("images/dask-worker/Dockerfile",
         "FROM ${SINGLEUSER_IMAGE}:${WBSPAWNER_VERSION}",
         "FROM python:3.12-slim", "must be FROM the single-user image"),
        ("images/singleuser-gpu/Dockerfile", '"distributed==${DISTRIBUTED_VERSION}"',
         '"distributed"', "does not install distributed"),
    ],
    ids=["image-arg", "versions-file", "literal-pin", "constraints",
         "worker-base", "unpinned"],
)  # fmt: skip
def test_changing_one_pin_fails_the_check(tmp_path, file, old, new, message):
    root = _copy_tree(tmp_path)
    path = root / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    problems = check_versions(root)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_lint(image):
    versions = read_versions(REPO / "images" / "versions.env")
    text = (REPO / "images" / image / "Dockerfile").read_text(encoding="utf-8")
    assert lint_dockerfile(text, versions) == []


GOOD = """\
ARG PYTHON_VERSION=3.11.7
FROM python:${PYTHON_VERSION}-slim
RUN apt-get update && apt-get install -y --no-install-recommends tini \\
    && rm -rf /var/lib/apt/lists/*
USER 1000
HEALTHCHECK CMD ["true"]
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("FROM python:${PYTHON_VERSION}-slim", "FROM python:latest", "not pinned"),
        ("FROM python:${PYTHON_VERSION}-slim", "FROM python", "not pinned"),
        ("USER 1000", "USER 1000\nUSER root", "non-root"),
        ("USER 1000\n", "", "non-root"),
        ("USER 1000", "USER 1000\nADD https://example.org/x.tgz /x", "ADD URLs"),
        (" \\\n    && rm -rf /var/lib/apt/lists/*", "", "apt/lists"),
        ('HEALTHCHECK CMD ["true"]', "", "HEALTHCHECK"),
    ],
    ids=["latest", "untagged", "root-last", "no-user", "add-url", "apt-lists",
         "healthcheck"],
)  # fmt: skip
def test_lint_catches(old, new, message):
    assert lint_dockerfile(GOOD, {}) == []
    bad = GOOD.replace(old, new)
    assert bad != GOOD
    assert any(message in p for p in lint_dockerfile(bad, {})), bad
