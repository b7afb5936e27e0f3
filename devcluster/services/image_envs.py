"""Local environments that stand in for container images, and how they are built.

devcluster has no container runtime: a pod's container runs as a local process.
Which program and libraries that process gets is decided here, per image, by a
mapping file (``images/environments.yaml``): each image repository names a
local environment, and each environment is

* built from an image's Dockerfile (``dockerfile:``): a virtual environment
  under ``.cache/images/<name>`` holding exactly what the Dockerfile's
  ``pip install`` lines install, with the ARG values of ``images/versions.env``
  (as ``images/build.sh`` passes them) and the build inputs ``COPY`` gives them
  (staged as the image would have them), never the test venv's packages; an
  environment with ``base:`` shares its base's files and takes its own image
  config (``FROM`` the base image);
* or an existing prefix (``prefix:``, its programs in ``bin:``), e.g.
  ``.cache/node`` where ``scripts/setup-system.sh`` installs
  configurable-http-proxy, with the image config written in the mapping.

Each built environment records its image config (``Entrypoint``, ``Cmd``,
``WorkingDir``, ``User``, ``Env``), the files the image keeps outside ``/tmp``
and a digest of its inputs in ``.devcluster-image.json``; ``build`` skips an
environment whose inputs did not change. ``python -m devcluster.services.image_envs``
builds them (``make image-envs``). The kubelet looks images up with
``Environments.lookup`` (``devcluster.kubelet.images``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devcluster.services import dockerfile

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "images" / "environments.yaml"
CACHE = REPO / ".cache" / "images"
RECORD = ".devcluster-image.json"
_SKIP = ("__pycache__", ".egg-info", "/build/", ".pyc", ".mypy_cache", "/node_modules/")
"""Build input an image build leaves out (.dockerignore: npm's folders)."""


class ImageEnvError(RuntimeError):
    """An environment cannot be built (wrong Python, pip failed, bad mapping)."""


@dataclass(frozen=True)
class ImageEnvironment:
    """One built (or buildable) local environment standing in for an image."""

    name: str
    root: Path
    """The venv or prefix: its ``bin`` goes first on the container's PATH."""
    config: dict[str, Any] = field(default_factory=dict)
    """The image config: ``Entrypoint``, ``Cmd``, ``WorkingDir``, ``User``, ``Env``."""
    files: dict[str, Path] = field(default_factory=dict)
    """Files the image holds: image path → file on this machine."""
    bin: str = "bin"
    """The directory of its programs, under ``root``."""

    @property
    def bin_dir(self) -> Path:
        """The directory of the environment's programs."""
        return self.root / self.bin

    @property
    def built(self) -> bool:
        """The environment exists (built, or its prefix installed)."""
        return self.bin_dir.is_dir()

    def env(self) -> dict[str, str]:
        """The image's ``ENV`` as a mapping."""
        return dict(
            str(item).split("=", 1)
            for item in self.config.get("Env") or []
            if "=" in item
        )


def repository(image: str) -> str:
    """Return an image reference without tag or digest, Docker Hub names in full.

    ``traefik:3.3`` and ``docker.io/library/traefik`` are both
    ``docker.io/library/traefik``; ``quay.io/x/y:1@sha256:…`` is ``quay.io/x/y``.
    """
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if name.startswith("docker.io/") and name.count("/") == 1:
        name = "docker.io/library/" + name.split("/", 1)[1]
    return name


def _load_mapping(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data.get("environments"), dict) or not isinstance(
        data.get("images"), dict
    ):
        raise ImageEnvError(f"{path}: needs the mappings 'environments' and 'images'")
    for image, env in data["images"].items():
        if env not in data["environments"]:
            raise ImageEnvError(f"{path}: image {image} names no environment {env!r}")
    return data


class Environments:
    """The mapping of images to local environments.

    Args:
        mapping: the mapping file (``images/environments.yaml``).
        cache: where built environments live (``.cache/images``).
    """

    def __init__(self, mapping: Path = MAPPING, cache: Path = CACHE) -> None:
        self.mapping_file = mapping
        self.cache = cache
        self.data = _load_mapping(mapping)
        self.repo = mapping.resolve().parents[1]
        self.images = {repository(k): str(v) for k, v in self.data["images"].items()}

    def spec(self, name: str) -> dict[str, Any]:
        """Return an environment's entry of the mapping."""
        return dict(self.data["environments"][name])

    def environment(self, name: str) -> ImageEnvironment:
        """Return an environment as built now (its config from its record)."""
        spec = self.spec(name)
        if "prefix" in spec:
            return ImageEnvironment(
                name,
                self.repo / spec["prefix"],
                dict(spec.get("config") or {}),
                bin=str(spec.get("bin") or "bin"),
            )
        root = self.cache / (spec.get("base") or name)
        record = self.cache / name / RECORD if not spec.get("base") else None
        own = self.cache / f"{name}.json" if spec.get("base") else None
        path = record if record is not None else own
        if path is None or not path.is_file():
            return ImageEnvironment(name, root)
        data = json.loads(path.read_text())
        files = {k: Path(v) for k, v in (data.get("files") or {}).items()}
        return ImageEnvironment(name, root, data.get("config") or {}, files)

    def lookup(self, image: str) -> ImageEnvironment | None:
        """Return the environment standing in for ``image`` (None: unmapped)."""
        name = self.images.get(repository(image))
        return None if name is None else self.environment(name)


# ------------------------------------------------------------------ building
def _versions(repo: Path) -> dict[str, str]:
    values = {}
    for line in (repo / "images" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def _walk(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for item in sorted(path.rglob("*")):
        text = str(item)
        if item.is_file() and not any(s in text for s in _SKIP):
            yield item


def _digest(repo: Path, text: str, parsed: dockerfile.Dockerfile) -> str:
    sha = hashlib.sha256(text.encode())
    sha.update((repo / "images" / "versions.env").read_bytes())
    sha.update(f"{sys.version_info[:3]}".encode())
    for source, dest in parsed.staged():
        for item in _walk(repo / source):
            sha.update(f"{dest}:{item.relative_to(repo)}".encode())
            sha.update(item.read_bytes())
    return sha.hexdigest()


def _check_python(parsed: dockerfile.Dockerfile, name: str) -> None:
    match = re.match(r"python:(\d+)\.(\d+)", parsed.base)
    if match is None:
        return
    wanted = (int(match.group(1)), int(match.group(2)))
    if sys.version_info[:2] != wanted:
        raise ImageEnvError(
            f"image {name} is built FROM {parsed.base}: its environment needs "
            f"Python {wanted[0]}.{wanted[1]}, this is {sys.version.split()[0]}"
        )


def _stage(repo: Path, parsed: dockerfile.Dockerfile, stage: Path) -> None:
    for source, dest in parsed.staged():
        target = stage / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if (repo / source).is_dir():
            shutil.copytree(
                repo / source,
                target,
                ignore=shutil.ignore_patterns(
                    "__pycache__", "*.egg-info", "build", "node_modules"
                ),
                dirs_exist_ok=True,
            )
        else:
            shutil.copy2(repo / source, target)


def _pip(root: Path, argv: list[str], stage: Path) -> None:
    local = [str(stage / a.lstrip("/")) if a.startswith("/") else a for a in argv]
    cmd = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", *local]
    log.info("image env %s: pip install %s", root.name, " ".join(argv))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImageEnvError(
            f"pip install {' '.join(argv)} failed for {root.name}:\n"
            + "\n".join(done.stderr.splitlines()[-20:])
        )


def build_one(envs: Environments, name: str, force: bool = False) -> bool:
    """Build one environment from its Dockerfile; False when it was up to date.

    Raises:
        ImageEnvError: wrong Python, an install failed, or a bad mapping.
    """
    spec = envs.spec(name)
    if "prefix" in spec:
        env = envs.environment(name)
        if not env.built:
            raise ImageEnvError(
                f"environment {name}: {env.root} is missing (it comes from "
                f"{spec.get('installed_by', 'its installer')})"
            )
        return False
    repo = envs.repo
    text = (repo / spec["dockerfile"]).read_text()
    parsed = dockerfile.parse(text, _versions(repo))
    if spec.get("base"):
        built = build_one(envs, spec["base"], force)
        base = json.loads((envs.cache / spec["base"] / RECORD).read_text())
        config = {**base["config"], **_own_config(parsed)}
        record = {"config": config, "files": base.get("files") or {}}
        (envs.cache / f"{name}.json").write_text(json.dumps(record, indent=1))
        return built
    _check_python(parsed, name)
    root = envs.cache / name
    digest = _digest(repo, text, parsed)
    record_path = root / RECORD
    if not force and record_path.is_file():
        if json.loads(record_path.read_text()).get("digest") == digest:
            return False
    shutil.rmtree(root, ignore_errors=True)
    envs.cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    with tempfile.TemporaryDirectory(prefix=f"image-{name}-") as tmp:
        stage = Path(tmp)
        _stage(repo, parsed, stage)
        for argv in parsed.pip:
            _pip(root, argv, stage)
        files = {}
        for image_path, source in parsed.files().items():
            target = root / "image-files" / image_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / source, target)
            files[image_path] = str(target)
    record = {
        "digest": digest,
        "dockerfile": spec["dockerfile"],
        "config": parsed.config(),
        "files": files,
    }
    record_path.write_text(json.dumps(record, indent=1))
    # other users (pods run as their own uids) run these programs
    for directory in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        directory.chmod(directory.stat().st_mode | 0o055)
    return True


def _own_config(parsed: dockerfile.Dockerfile) -> dict[str, Any]:
    """The config keys a Dockerfile ``FROM`` another image sets itself."""
    config = parsed.config()
    own: dict[str, Any] = {}
    if parsed.cmd:
        own["Cmd"] = config["Cmd"]
    if parsed.entrypoint:
        own["Entrypoint"] = config["Entrypoint"]
    if parsed.user:
        own["User"] = config["User"]
    if parsed.workdir != "/":
        own["WorkingDir"] = config["WorkingDir"]
    return own


def build(envs: Environments, names: list[str] | None = None) -> list[str]:
    """Build environments (all by default); return the names that were rebuilt."""
    rebuilt = []
    for name in names or list(envs.data["environments"]):
        if build_one(envs, name):
            rebuilt.append(name)
    return rebuilt


def main(argv: list[str] | None = None) -> int:
    """``python -m devcluster.services.image_envs [NAME...]``: build environments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="environments (default: all)")
    parser.add_argument("--mapping", default=str(MAPPING), help="the mapping file")
    parser.add_argument("--cache", default=str(CACHE), help="where they are built")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        envs = Environments(Path(args.mapping), Path(args.cache))
        rebuilt = build(envs, args.names or None)
    except (ImageEnvError, OSError, subprocess.CalledProcessError) as exc:
        print(f"image environments: {exc}", file=sys.stderr)
        return 1
    for name in args.names or list(envs.data["environments"]):
        env = envs.environment(name)
        state = "rebuilt" if name in rebuilt else "up to date"
        print(f"{name}: {env.root} ({state if env.built else 'not built'})")
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
