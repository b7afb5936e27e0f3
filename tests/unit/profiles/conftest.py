"""Fixtures of the profiles tests.

- ``minimal_yaml``: the text of a small valid profiles file (one pool of two
  types in two zones, one default size with one image, one user group).
- ``write_profiles(directory, files)``: writes ``{file name: text}`` into
  ``directory`` (made when missing) and returns ``directory``.
- ``problems_of(paths)``: the problems, as ``file: $.path: message`` lines, of
  loading ``paths`` with the packaged catalogue (the load must fail).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from wbspawner.errors import ProfileConfigError
from wbspawner.model import Catalog
from wbspawner.profiles.loader import load_profiles

MINIMAL = """\
groups:
  user_groups: [users]
pools:
  small:
    instance_types: [r5.large, r6i.large]
    zones: [us-east-1a, us-east-1b]
sizes:
  - slug: small
    display_name: Small
    pool: small
    default: true
    images:
      - {slug: scipy, display_name: SciPy, image: "quay.io/jupyter/scipy-notebook:1"}
"""


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture(scope="session")
def minimal_yaml() -> str:
    return MINIMAL


@pytest.fixture(scope="session")
def write_profiles() -> Callable[[Path, dict[str, str]], Path]:
    return _write


@pytest.fixture(scope="session")
def problems_of(catalog: Catalog) -> Callable[[list[Path]], list[str]]:
    def problems(paths: list[Path]) -> list[str]:
        with pytest.raises(ProfileConfigError, match=r".") as info:
            load_profiles(paths, catalog)
        return [str(p) for p in info.value.problems]

    return problems
