"""Loading the admin's profiles: files → YAML → schema → merge → checks → model.

This module owns the one entry point every part of wbspawner uses to read the
profiles (the hub, the CLI, the warmer and the tests), :func:`load_profiles`,
and :class:`ProfilesSource`, which re-reads them cheaply when files change and
keeps the last good version when an edit is invalid.

For bad input it raises :class:`~wbspawner.errors.ProfileConfigError` listing
every problem as ``file: $.json.path: message`` and nothing else: no traceback
reaches an admin. YAML is read with a safe loader (no tags that build Python
objects), with YAML 1.2 numbers (``18:00`` stays a string) and with duplicate
keys reported instead of silently overwritten.

It also applies the ``sizing`` section's measured node capacities to the
catalogue, once: the checks, the built pools and :attr:`Profiles.catalog` all see
that effective catalogue.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from wbspawner.catalog.instances import load_catalog
from wbspawner.errors import Problem, ProfileConfigError
from wbspawner.model import Catalog, Profiles
from wbspawner.profiles.build import build_profiles
from wbspawner.profiles.checks import check_profiles
from wbspawner.profiles.merge import Document, merge_documents
from wbspawner.profiles.parsers import sizing_settings, with_measured
from wbspawner.profiles.safe_yaml import parse_yaml
from wbspawner.profiles.schema import schema_problems

YAML_SUFFIXES = (".yaml", ".yml")
"""Files of a profiles directory that are read."""


def _directory_files(path: Path) -> list[Path]:
    return sorted(
        (
            p
            for p in path.iterdir()
            if p.suffix in YAML_SUFFIXES and not p.name.startswith(".") and p.is_file()
        ),
        key=lambda p: p.name,
    )


def profile_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Expand profiles paths into files in merge order.

    A directory stands for its ``*.yaml``/``*.yml`` files (not hidden, not in
    subdirectories) sorted by name; a file stands for itself. A file named twice
    is read once.

    Args:
        paths: directories and files, in order.

    Returns:
        The files and the problems (missing paths, empty directories).
    """
    files: list[Path] = []
    seen: set[Path] = set()
    problems: list[Problem] = []
    if not paths:
        problems.append(Problem("<profiles>", "$", "no profiles path given"))
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            try:
                found = _directory_files(path)
            except OSError as err:
                problems.append(Problem(str(path), "$", f"cannot read: {err.strerror}"))
                continue
            if not found:
                problems.append(
                    Problem(str(path), "$", "no *.yaml or *.yml files in directory")
                )
        elif path.is_file():
            found = [path]
        else:
            problems.append(Problem(str(path), "$", "no such file or directory"))
            found = []
        for p in found:
            real = Path(os.path.realpath(p))
            if real not in seen:
                seen.add(real)
                files.append(p)
    return files, problems


@dataclass(frozen=True, slots=True)
class _Read:
    documents: list[tuple[str, object]]
    problems: list[Problem]
    digest: str
    parsed_all: bool


def _read(files: Sequence[Path]) -> _Read:
    digest = hashlib.sha256()
    documents: list[tuple[str, object]] = []
    problems: list[Problem] = []
    for path in files:
        name = str(path)
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
        except OSError as err:
            problems.append(Problem(name, "$", f"cannot read: {err.strerror}"))
            continue
        except UnicodeDecodeError:
            problems.append(Problem(name, "$", "not UTF-8 text"))
            continue
        digest.update(f"{path.name}\0{len(raw)}\0".encode())
        digest.update(raw)
        data, found = parse_yaml(name, text)
        problems.extend(found)
        if data is not None:
            documents.append((name, data))
    parsed_all = len(documents) == len(files)
    return _Read(documents, problems, digest.hexdigest(), parsed_all)


def profiles_from_documents(
    documents: Sequence[tuple[str, object]],
    catalog: Catalog,
    *,
    sources: tuple[str, ...] = (),
    digest: str = "",
    problems: Sequence[Problem] = (),
) -> Profiles:
    """Validate parsed profiles documents and build the profiles.

    The pure core of :func:`load_profiles`: schema per document, merge in order,
    semantic checks, then the frozen model.

    Args:
        documents: ``(file name, parsed YAML)`` in merge order.
        catalog: the instance catalogue.
        sources: the files, for :attr:`Profiles.sources`.
        digest: hash of the files, for :attr:`Profiles.digest`.
        problems: problems already found while reading, reported with these.

    Returns:
        The validated profiles.

    Raises:
        ProfileConfigError: listing every problem found, when any is found.
    """
    found = list(problems)
    docs: list[Document] = []
    for name, data in documents:
        found.extend(schema_problems(name, data))  # also: not a mapping
        if isinstance(data, dict):
            docs.append(Document(name, data))
    if len(docs) != len(documents):
        # A document that is not a mapping would make every reference into it
        # look broken; report what was found so far instead of a cascade.
        raise ProfileConfigError(found)
    merged, merge_problems = merge_documents(docs)
    found.extend(merge_problems)
    sizing = merged.section("sizing")
    settings = sizing_settings(sizing.value if sizing is not None else None)
    # The one place measured capacities meet the catalogue: the checks, the
    # pools' requests and every later reader see the same instance facts.
    effective = with_measured(catalog, settings.measured_capacity_mib)
    found.extend(check_profiles(merged, effective, settings))
    if found:
        raise ProfileConfigError(found)
    return build_profiles(merged, effective, settings, sources=sources, digest=digest)


def load_profiles(
    paths: Sequence[str | Path], catalog: Catalog | None = None
) -> Profiles:
    """Read, validate and merge profiles files into the frozen model.

    Args:
        paths: profiles directories and files, merged in order (a directory's
            files in name order).
        catalog: the instance catalogue; ``None`` reads the packaged one.

    Returns:
        The validated profiles.

    Raises:
        ProfileConfigError: listing every problem found, when any is found.
    """
    files, problems = profile_files(paths)
    read = _read(files)
    problems.extend(read.problems)
    if not read.parsed_all or not files:
        # A file that does not parse would make every reference into it look
        # broken; report the reading problems only.
        for name, data in read.documents:
            problems.extend(schema_problems(name, data))
        raise ProfileConfigError(problems)
    return profiles_from_documents(
        read.documents,
        load_catalog() if catalog is None else catalog,
        sources=tuple(str(f) for f in files),
        digest=read.digest,
        problems=problems,
    )


Fingerprint = tuple[tuple[str, int, int, int], ...]
"""What ``ProfilesSource`` compares: (file, inode, mtime_ns, size) per file."""


def fingerprint(paths: Sequence[str | Path]) -> Fingerprint:
    """Return a cheap fingerprint of the profiles files (names and ``stat``).

    ``stat`` follows symlinks, so a ConfigMap update (which swaps the ``..data``
    link) changes the fingerprint.

    Args:
        paths: profiles directories and files.

    Returns:
        One entry per file; missing paths contribute nothing.
    """
    files, _ = profile_files(paths)
    out: list[tuple[str, int, int, int]] = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


class ProfilesSource:
    """The current profiles, re-read when the files change; for the hot reload.

    The first :meth:`current` loads the profiles and raises when they are invalid
    (the hub must not start with bad profiles). Later calls check the files'
    names and ``stat`` at most every ``interval_s`` seconds and reload when they
    changed. An invalid edit is logged, problem by problem, at warning level and
    kept in :attr:`last_error`; the last good profiles stay in force.

    Args:
        paths: profiles directories and files.
        catalog: the instance catalogue (``None``: the packaged one, read once).
        log: where reloads and problems are logged.
        interval_s: minimum seconds between two checks of the files.
        clock: monotonic clock in seconds (tests pass a fake).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        catalog: Catalog | None,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
        *,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths = tuple(paths)
        self.catalog = catalog
        self.log = log
        self.interval_s = interval_s
        self.clock = clock
        self.last_error: ProfileConfigError | None = None
        """The problems of the newest edit when it is invalid, else ``None``."""
        self._profiles: Profiles | None = None
        self._fingerprint: Fingerprint | None = None
        self._checked_at = 0.0

    def current(self) -> Profiles:
        """Return the profiles in force, re-reading them if the files changed.

        Returns:
            The newest valid profiles.

        Raises:
            ProfileConfigError: only on the first load, when it fails.
        """
        now = self.clock()
        if self._profiles is not None and now - self._checked_at < self.interval_s:
            return self._profiles
        self._checked_at = now
        stamp = fingerprint(self.paths)
        if self._profiles is not None and stamp == self._fingerprint:
            return self._profiles
        if self.catalog is None:
            self.catalog = load_catalog()
        try:
            profiles = load_profiles(self.paths, self.catalog)
        except ProfileConfigError as err:
            if self._profiles is None:
                raise
            self._fingerprint = stamp
            self.last_error = err
            self.log.warning(
                "Profiles edit is invalid (%d problems); keeping version %s",
                len(err.problems),
                self._profiles.digest[:12],
            )
            for problem in err.problems:
                self.log.warning("Profiles problem: %s", problem)
            return self._profiles
        if self._profiles is not None and profiles.digest != self._profiles.digest:
            self.log.info(
                "Profiles reloaded: version %s (%d pools, %d sizes)",
                profiles.digest[:12],
                len(profiles.pools),
                len(profiles.sizes),
            )
        self._profiles, self._fingerprint, self.last_error = profiles, stamp, None
        return profiles
