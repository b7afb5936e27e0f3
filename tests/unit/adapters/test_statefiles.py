"""The warm status, spot prices and warmer memory files: round trips, tolerant
reads, strict writes."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from wbspawner.adapters import statefiles
from wbspawner.adapters.statefiles import (
    StateFileError,
    load_spot_prices,
    load_warm_status,
    load_warmer_memory,
    read_spot_prices,
    read_warm_status,
    read_warmer_memory,
    write_spot_prices,
    write_warm_status,
    write_warmer_memory,
)
from wbspawner.model import (
    ALL_ZONES,
    Shortage,
    Spawn,
    WaitSample,
    WaitTime,
    WaitTimes,
    WarmerMemory,
    WarmStatus,
)

A, B = "us-east-1a", "us-east-1b"
READY = {"mem64": {A: 1, B: 2}, "gpu-t4": {A: 0}}
PRICES = {("r5.2xlarge", A): 0.17, ("r5.2xlarge", "us-east-1-bos-1a"): 0.2}
AT = datetime(2025, 3, 4, 9, 30, 15, 250000, tzinfo=UTC)
MEMORY = WarmerMemory(
    spawns=(
        Spawn(uid="u-1", user="bob", pool="mem64", zone=B, at=AT),
        Spawn(uid="u-2", user=None, pool="cpu16", zone=None, at=AT),
    ),
    shortages=(
        Shortage(
            pool="mem64",
            zone=A,
            capacity_type="spot",
            at=AT.astimezone(timezone(timedelta(hours=-5))),
            message="InsufficientInstanceCapacity",
        ),
    ),
)


def memory_text(
    spawn: dict[str, object] | None = None, shortage: dict[str, object] | None = None
) -> str:
    """Return a memory file with one spawn and one shortage, fields overridden."""
    at = "2025-03-04T09:30:15+00:00"
    good_spawn = {"uid": "u", "user": "bob", "pool": "mem64", "zone": None, "at": at}
    good_shortage = {
        "pool": "mem64",
        "zone": A,
        "capacity_type": "spot",
        "at": at,
        "message": "x",
    }
    return json.dumps(
        {
            "spawns": [{**good_spawn, **(spawn or {})}],
            "shortages": [{**good_shortage, **(shortage or {})}],
        }
    )


def _one_line(caplog: pytest.LogCaptureFixture, level: int) -> logging.LogRecord:
    records = [r for r in caplog.records if r.name == statefiles.__name__]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].levelno == level
    assert records[0].exc_info is None and "Traceback" not in caplog.text
    return records[0]


# ---------------------------------------------------------------- round trips


def test_warm_status_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "state" / "warm.json"
    write_warm_status(target, WarmStatus.of(READY))
    assert json.loads(target.read_text(encoding="utf-8")) == READY
    assert [p.name for p in target.parent.iterdir()] == ["warm.json"]
    assert load_warm_status(target) == WarmStatus.of(READY)
    assert read_warm_status(target) == WarmStatus.of(READY)


def test_spot_prices_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "spot.json"
    write_spot_prices(target, PRICES)
    assert json.loads(target.read_text(encoding="utf-8")) == {
        "r5.2xlarge/us-east-1a": 0.17,
        "r5.2xlarge/us-east-1-bos-1a": 0.2,
    }
    assert load_spot_prices(target) == PRICES
    assert read_spot_prices(target) == PRICES


def test_warmer_memory_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "hub" / "warmer-memory.json"
    write_warmer_memory(target, MEMORY)
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["spawns"][0] == {
        "uid": "u-1",
        "user": "bob",
        "pool": "mem64",
        "zone": B,
        "at": "2025-03-04T09:30:15.250000+00:00",
    }
    assert data["shortages"][0]["at"] == "2025-03-04T04:30:15.250000-05:00"
    assert load_warmer_memory(target) == MEMORY
    assert read_warmer_memory(target) == MEMORY
    write_warmer_memory(target, WarmerMemory())
    assert load_warmer_memory(target) == WarmerMemory()
    target.write_text(memory_text(), encoding="utf-8")  # the malformed ones' base
    assert load_warmer_memory(target).spawns[0].zone is None


def test_a_rewrite_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "warm.json"
    write_warm_status(target, WarmStatus.of(READY))
    write_warm_status(target, WarmStatus.of({"mem64": {A: 0}}))
    assert load_warm_status(target).ready == {"mem64": {A: 0}}


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        pytest.param(None, {"mem64": 3, "gpu-t4": 0}, id="all-zones"),
        pytest.param(B, {"mem64": 2, "gpu-t4": 0}, id="home-zone"),
    ],
)
def test_ready_nodes_per_pool(zone: str | None, expected: dict[str, int]) -> None:
    status = WarmStatus.of(READY)
    assert status.by_pool(zone) == expected
    assert status.in_pool("mem64", zone) == expected["mem64"]
    assert status.in_pool("mem512") == 0


# --------------------------------------------------------- tolerant reading


def _unknown_with_one_log_line(
    path: Path,
    text: str,
    caplog: pytest.LogCaptureFixture,
    read: Callable[[Path], object],
    load: Callable[[Path], object],
    what: str,
) -> None:
    """A malformed file reads as unknown with one warning; loading it raises."""
    path.write_text(text, encoding="utf-8")
    caplog.set_level(logging.INFO)
    assert read(path) is None
    line = _one_line(caplog, logging.WARNING).getMessage()
    assert line.startswith(f"{what} unknown: ") and str(path) in line
    with pytest.raises(StateFileError, match=r"\$"):
        load(path)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"mem64": {"us-east-1a": 1', id="partial"),
        pytest.param("not json", id="not-json"),
        pytest.param("", id="empty"),
        pytest.param('["mem64"]', id="not-an-object"),
        pytest.param('{"mem64": 1}', id="pool-not-an-object"),
        pytest.param('{"mem64": {"us-east-1a": "1"}}', id="count-a-string"),
        pytest.param('{"mem64": {"us-east-1a": true}}', id="count-a-boolean"),
        pytest.param('{"mem64": {"us-east-1a": -1}}', id="negative-count"),
        pytest.param('{"mem64": {"us-east-1a": 1.5}}', id="fractional-count"),
        pytest.param('{"mem64": {"": 1}}', id="empty-zone"),
        pytest.param('{"": {"us-east-1a": 1}}', id="empty-pool"),
        pytest.param(
            '{"mem64": {"us-east-1a": 1}, "cpu16": {"us-east-1a": "x"}}',
            id="one-bad-entry-of-two",
        ),
    ],
)
def test_malformed_warm_status_is_unknown_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    _unknown_with_one_log_line(
        tmp_path / "warm.json",
        text,
        caplog,
        read_warm_status,
        load_warm_status,
        "Warm status",
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"r5.large/us-east-1a": 0.', id="partial"),
        pytest.param("[0.1]", id="not-an-object"),
        pytest.param('{"r5.large": 0.1}', id="no-zone"),
        pytest.param('{"r5.large/": 0.1}', id="empty-zone"),
        pytest.param('{"/us-east-1a": 0.1}', id="empty-type"),
        pytest.param('{"r5.large/us-east-1a/x": 0.1}', id="two-slashes"),
        pytest.param('{"r5.large/us-east-1a": "0.1"}', id="price-a-string"),
        pytest.param('{"r5.large/us-east-1a": false}', id="price-a-boolean"),
        pytest.param('{"r5.large/us-east-1a": -0.1}', id="negative-price"),
        pytest.param('{"r5.large/us-east-1a": NaN}', id="not-a-number"),
        pytest.param('{"r5.large/us-east-1a": Infinity}', id="infinite"),
        pytest.param(
            '{"r5.large/us-east-1a": 0.05, "broken": 1.0}', id="one-bad-entry-of-two"
        ),
    ],
)
def test_malformed_spot_prices_are_unknown_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    _unknown_with_one_log_line(
        tmp_path / "spot.json",
        text,
        caplog,
        read_spot_prices,
        load_spot_prices,
        "Spot prices",
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"spawns": [], "shortages": [', id="partial"),
        pytest.param("[]", id="not-an-object"),
        pytest.param('{"spawns": []}', id="no-shortages"),
        pytest.param('{"spawns": {}, "shortages": []}', id="spawns-not-a-list"),
        pytest.param('{"spawns": [1], "shortages": []}', id="spawn-not-an-object"),
        pytest.param(memory_text(spawn={"at": "2025-03-04T09:30:15"}), id="naive"),
        pytest.param(memory_text(spawn={"at": "yesterday"}), id="not-a-time"),
        pytest.param(memory_text(spawn={"uid": ""}), id="empty-uid"),
        pytest.param(memory_text(spawn={"pool": None}), id="no-pool"),
        pytest.param(
            memory_text(shortage={"capacity_type": "reserved"}),
            id="unknown-capacity-type",
        ),
        pytest.param(memory_text(shortage={"zone": None}), id="shortage-no-zone"),
        pytest.param(memory_text(shortage={"message": 1}), id="message-a-number"),
    ],
)
def test_malformed_warmer_memory_is_unknown_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    _unknown_with_one_log_line(
        tmp_path / "memory.json",
        text,
        caplog,
        read_warmer_memory,
        load_warmer_memory,
        "Warmer memory",
    )


def test_every_problem_is_listed_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "spot.json"
    path.write_text('{"a": 1, "b/c": "x", "d/e": 0.1}', encoding="utf-8")
    with pytest.raises(StateFileError) as caught:
        load_spot_prices(path)
    assert [(p.file, p.path) for p in caught.value.problems] == [
        (str(path), '$["a"]'),
        (str(path), '$["b/c"]'),
    ]


def test_a_missing_file_is_unknown_with_one_info_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert read_warm_status(tmp_path / "none.json") is None
    assert "no such file" in _one_line(caplog, logging.INFO).getMessage()
    with pytest.raises(StateFileError, match="no such file") as caught:
        load_spot_prices(tmp_path / "none.json")
    assert caught.value.missing


def test_an_unreadable_file_is_unknown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert read_spot_prices(tmp_path) is None  # a directory cannot be read
    assert "cannot read" in _one_line(caplog, logging.WARNING).getMessage()


def test_an_unset_file_is_unknown_without_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert read_warm_status(None) is None
    assert read_spot_prices(None) is None
    assert read_spot_prices("") is None
    assert caplog.records == []


def test_the_line_goes_to_the_callers_logger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    mine = logging.getLogger("test.hub")
    assert read_warm_status(tmp_path / "none.json", mine) is None
    assert [r.name for r in caplog.records] == ["test.hub"]


# ------------------------------------------------------------ strict writing


@pytest.mark.parametrize(
    "ready",
    [
        pytest.param({"mem64": {A: -1}}, id="negative-count"),
        pytest.param({"mem64": {A: True}}, id="boolean-count"),
        pytest.param({"mem64": {A: 1.0}}, id="float-count"),
        pytest.param({"": {A: 1}}, id="empty-pool"),
        pytest.param({"mem64": {"": 1}}, id="empty-zone"),
    ],
)
def test_the_warm_status_writer_refuses_bad_data(
    tmp_path: Path, ready: dict[str, dict[str, int]]
) -> None:
    target = tmp_path / "warm.json"
    with pytest.raises(ValueError, match="refusing to write malformed warm status"):
        write_warm_status(target, WarmStatus.of(ready))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "prices",
    [
        pytest.param({("r5.large", A): -0.1}, id="negative"),
        pytest.param({("r5.large", A): math.nan}, id="not-a-number"),
        pytest.param({("r5.large", A): math.inf}, id="infinite"),
        pytest.param({("r5.large", A): True}, id="boolean"),
        pytest.param({("r5/large", A): 0.1}, id="slash-in-type"),
        pytest.param({("r5.large", "a/b"): 0.1}, id="slash-in-zone"),
        pytest.param({("", A): 0.1}, id="empty-type"),
        pytest.param({("r5.large", ""): 0.1}, id="empty-zone"),
    ],
)
def test_the_spot_prices_writer_refuses_bad_data(
    tmp_path: Path, prices: dict[tuple[str, str], float]
) -> None:
    target = tmp_path / "spot.json"
    with pytest.raises(ValueError, match="refusing to write malformed spot prices"):
        write_spot_prices(target, prices)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "memory",
    [
        pytest.param(
            WarmerMemory(
                spawns=(
                    Spawn(
                        uid="u",
                        user="bob",
                        pool="mem64",
                        zone=A,
                        at=datetime(2025, 1, 1),
                    ),
                )
            ),
            id="naive-time",
        ),
        pytest.param(
            WarmerMemory(
                spawns=(Spawn(uid="u", user="bob", pool="", zone=A, at=AT),),
            ),
            id="empty-pool",
        ),
        pytest.param(
            WarmerMemory(
                shortages=(
                    Shortage(
                        pool="mem64",
                        zone=A,
                        capacity_type="reserved",  # type: ignore[arg-type]
                        at=AT,
                        message="x",
                    ),
                )
            ),
            id="unknown-capacity-type",
        ),
    ],
)
def test_the_warmer_memory_writer_refuses_bad_data(
    tmp_path: Path, memory: WarmerMemory
) -> None:
    target = tmp_path / "memory.json"
    with pytest.raises(ValueError, match="refusing to write malformed warmer memory"):
        write_warmer_memory(target, memory)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "warm.json"
    write_warm_status(target, WarmStatus.of(READY))

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_warm_status(target, WarmStatus.of({"mem64": {A: 0}}))
    assert [p.name for p in tmp_path.iterdir()] == ["warm.json"]
    assert load_warm_status(target) == WarmStatus.of(READY)


WAITS = (
    WaitSample(
        uid="u-1",
        pool="mem64",
        zone=B,
        at=datetime(2025, 3, 4, 9, 30, 15, tzinfo=UTC),
        boot_s=19.0,
        start_s=6.0,
    ),
    WaitSample(
        uid="p-1",
        pool="mem64",
        zone=B,
        at=datetime(2025, 3, 4, 9, 31, tzinfo=UTC),
        boot_s=21.0,
    ),
)
TIMES = WaitTimes.of(
    {
        "mem64": {
            B: WaitTime(boot_s=20.0, start_s=6.0, samples=2),
            ALL_ZONES: WaitTime(boot_s=20.0, start_s=None, samples=2),
        }
    }
)


def test_wait_times_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "hub" / "wait-times.json"
    statefiles.write_wait_times(target, TIMES)
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["mem64"]["*"] == {"boot_s": 20.0, "start_s": None, "samples": 2}
    assert statefiles.load_wait_times(target) == TIMES
    assert statefiles.read_wait_times(target) == TIMES


def test_the_memory_keeps_the_cold_starts(tmp_path: Path) -> None:
    target = tmp_path / "memory.json"
    write_warmer_memory(target, WarmerMemory(waits=WAITS))
    assert load_warmer_memory(target).waits == WAITS
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["waits"][1]["start_s"] is None
    del data["waits"]  # a file of an earlier version
    target.write_text(json.dumps(data), encoding="utf-8")
    assert load_warmer_memory(target) == WarmerMemory()


@pytest.mark.parametrize(
    ("cell", "where"),
    [
        pytest.param({"boot_s": -1}, '["boot_s"]', id="negative-boot"),
        pytest.param({"boot_s": "19"}, '["boot_s"]', id="boot-a-string"),
        pytest.param({"start_s": math.inf}, '["start_s"]', id="infinite-start"),
        pytest.param({"samples": 1.5}, '["samples"]', id="samples-not-whole"),
    ],
)
def test_malformed_wait_times_are_unknown_with_one_log_line(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    cell: dict[str, object],
    where: str,
) -> None:
    good = {"boot_s": 19, "start_s": 6, "samples": 3}
    text = json.dumps({"mem64": {B: good, "*": good | cell}}, allow_nan=True)
    target = tmp_path / "waits.json"
    target.write_text(text, encoding="utf-8")
    with pytest.raises(statefiles.StateFileError, match=r'\["mem64"\]\["\*"\]'):
        statefiles.load_wait_times(target)
    with caplog.at_level(logging.INFO):
        assert statefiles.read_wait_times(target) is None
    lines = [r for r in caplog.records if "Wait times unknown" in r.getMessage()]
    assert len(lines) == 1 and where in lines[0].getMessage()


@pytest.mark.parametrize(
    "sample",
    [
        pytest.param({"boot_s": -1.0}, id="negative-boot"),
        pytest.param({"at": datetime(2025, 1, 1)}, id="naive-time"),
        pytest.param({"zone": ""}, id="empty-zone"),
    ],
)
def test_a_malformed_cold_start_makes_the_memory_unknown(
    tmp_path: Path, sample: dict[str, object]
) -> None:
    bad = dataclasses.replace(WAITS[0], **sample)  # type: ignore[arg-type]
    target = tmp_path / "memory.json"
    with pytest.raises(ValueError, match="warmer memory"):
        write_warmer_memory(target, WarmerMemory(waits=(bad,)))
    assert not target.exists()


def test_the_wait_times_writer_refuses_bad_data(tmp_path: Path) -> None:
    target = tmp_path / "waits.json"
    bad = WaitTimes.of({"mem64": {"": WaitTime(boot_s=1.0, samples=1)}})
    with pytest.raises(ValueError, match="wait times"):
        statefiles.write_wait_times(target, bad)
    assert not target.exists()
