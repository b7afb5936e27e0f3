"""Hot reload of the profiles (``ProfilesSource``): interval, changes, bad edits."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from wbspawner.errors import ProfileConfigError
from wbspawner.model import Catalog
from wbspawner.profiles.loader import ProfilesSource


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


@pytest.fixture
def source_dir(
    write_profiles: Callable[[Path, dict[str, str]], Path],
    minimal_yaml: str,
    tmp_path: Path,
) -> Path:
    return write_profiles(tmp_path / "profiles", {"p.yaml": minimal_yaml})


@pytest.fixture
def source(catalog: Catalog) -> Callable[[Path, Callable[[], float]], ProfilesSource]:
    """``source(directory, clock)``: profiles of ``directory``, re-read every 5 s."""

    def make(directory: Path, clock: Callable[[], float]) -> ProfilesSource:
        log = logging.getLogger("test.profiles")
        return ProfilesSource([directory], catalog, log, interval_s=5.0, clock=clock)

    return make


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watched(
    source: Callable[[Path, Callable[[], float]], ProfilesSource],
    source_dir: Path,
    clock: Clock,
) -> ProfilesSource:
    """The profiles of ``source_dir``, re-read on ``clock``."""
    return source(source_dir, clock)


def test_first_load_failure_raises(
    source: Callable[[Path, Callable[[], float]], ProfilesSource],
    write_profiles: Callable[[Path, dict[str, str]], Path],
    minimal_yaml: str,
    tmp_path: Path,
) -> None:
    directory = write_profiles(tmp_path, {"p.yaml": minimal_yaml + "bogus: 1\n"})
    with pytest.raises(ProfileConfigError, match=r"\$\.bogus: unknown key 'bogus'"):
        source(directory, Clock()).current()


def test_reload_waits_for_the_interval_then_picks_up_a_change(
    watched: ProfilesSource, clock: Clock, minimal_yaml: str, source_dir: Path
) -> None:
    first = watched.current()
    _touch(
        source_dir / "p.yaml",
        minimal_yaml.replace("display_name: Small", "display_name: Tiny"),
    )
    clock.now += 4.9
    assert watched.current() is first
    clock.now += 0.2
    second = watched.current()
    assert second.sizes[0].display_name == "Tiny" and second.digest != first.digest
    clock.now += 10
    assert watched.current() is second  # nothing changed: no re-read


def test_new_file_is_noticed(
    watched: ProfilesSource, clock: Clock, source_dir: Path
) -> None:
    assert watched.current().budgets == ()
    (source_dir / "z.yaml").write_text("budgets:\n  - {group: users, monthly: 10}\n")
    clock.now += 6
    assert watched.current().budgets[0].monthly == 10


def test_invalid_edit_keeps_last_good_and_logs_every_problem(
    watched: ProfilesSource,
    clock: Clock,
    minimal_yaml: str,
    source_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = watched.current()
    _touch(
        source_dir / "p.yaml",
        minimal_yaml.replace("pool: small", "pool: nowhere") + "x: 1\n",
    )
    clock.now += 6
    with caplog.at_level(logging.WARNING, logger="test.profiles"):
        assert watched.current() is good
    assert watched.last_error is not None
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("invalid (2 problems)" in m for m in messages)
    assert any("$.sizes[0].pool: unknown pool 'nowhere'" in m for m in messages)
    assert any("$.x: unknown key 'x'" in m for m in messages)
    assert "Traceback" not in caplog.text
    caplog.clear()
    clock.now += 6
    assert watched.current() is good and caplog.records == []  # logged once
    _touch(
        source_dir / "p.yaml",
        minimal_yaml.replace("display_name: Small", "display_name: Fixed"),
    )
    clock.now += 6
    assert watched.current().sizes[0].display_name == "Fixed"
    assert watched.last_error is None
