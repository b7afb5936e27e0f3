"""The JSON files the warmer and the hub keep: one typed reader and writer each.

This module owns the state files that pass between processes, or from one run
of a process to the next, on one disk (the warmer runs as a hub-managed service
in the hub's pod):

- the warm status, ``{"<pool>": {"<zone>": <ready nodes>}}``: written by the
  warmer after every pass, read by the hub for the spawn form and the zone of a
  first home (``WARM_STATUS_FILE``);
- the observed spot prices, ``{"<instance type>/<zone>": <USD per hour>}``:
  written by whatever observes them, read by the hub, the warmer and the CLI
  (``SPOT_PRICES_FILE``, ``--spot-prices``);
- the warmer's memory, ``{"spawns": [...], "shortages": [...], "waits":
  [...]}`` with ISO 8601 times: written by the warmer after every pass, read
  back when it starts, so that a restart keeps the recent spawns, shortages and
  cold starts no listing shows again.
- the wait times, ``{"<pool>": {"<zone>" or "*": {"boot_s", "start_s",
  "samples"}}}``: the medians of the last cold starts, written by the warmer
  after every pass, read by the hub for the spawn form's and the progress
  page's waits (``WAIT_TIMES_FILE``); the samples themselves are in the
  warmer's memory.

The rules are the same for every file:

- Writers are strict: data the reader would refuse or misread is a programming
  error (``ValueError``), and nothing is written. Writes are atomic (a temporary
  file in the same directory, renamed over the target), so a reader never sees
  half a file.
- ``load_*`` readers are strict too: a missing, unreadable, partial or malformed
  file raises :class:`StateFileError` with every problem (for the CLI, which
  reports them, and the warmer, which shows them on its page).
- ``read_*`` readers are tolerant: any such file gives ``None`` ("unknown") and
  one log line, never an exception, so the hub keeps serving. A file with one bad
  entry is unknown as a whole: its writer is not ours or is broken, and a partly
  trusted file would show some prices observed and others not without a reason.

The values are typed (:class:`~wbspawner.model.WarmStatus`, spot prices by
``(type, zone)``); the pure code never sees JSON.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from wbspawner.errors import Problem, WbError
from wbspawner.model import (
    CAPACITY_TYPES,
    Shortage,
    Spawn,
    WaitSample,
    WaitTime,
    WaitTimes,
    WarmerMemory,
    WarmStatus,
)

log = logging.getLogger(__name__)

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]
SpotPriceMap = Mapping[tuple[str, str], float]
"""Spot prices by ``(instance type, zone)``, USD per hour (``pricing.SpotPrices``)."""


class StateFileError(WbError):
    """A state file cannot be used: missing, unreadable, not JSON or malformed."""

    def __init__(self, problems: list[Problem], *, missing: bool = False) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.missing = missing
        """Whether the file does not exist (its writer has not run yet)."""
        super().__init__("; ".join(str(p) for p in self.problems))


# ------------------------------------------------------------------------ shapes


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_price(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _at(*keys: object) -> str:
    """Return the JSONPath of a nested key, e.g. ``$["mem64"]["us-east-1a"]``."""
    return "$" + "".join(f"[{json.dumps(k)}]" for k in keys)


def warm_status_problems(data: object) -> list[tuple[str, str]]:
    """Return what is wrong with a warm status in its JSON form.

    Args:
        data: parsed JSON.

    Returns:
        ``(JSONPath, message)`` per problem; empty when the shape is right.
    """
    if not isinstance(data, Mapping):
        return [("$", 'expected an object {"<pool>": {"<zone>": <ready nodes>}}')]
    problems: list[tuple[str, str]] = []
    for pool, zones in data.items():
        if not isinstance(pool, str) or not pool:
            problems.append((_at(pool), "expected a pool name"))
        if not isinstance(zones, Mapping):
            problems.append((_at(pool), 'expected an object {"<zone>": <ready nodes>}'))
            continue
        for zone, count in zones.items():
            if not isinstance(zone, str) or not zone:
                problems.append((_at(pool, zone), "expected a zone name"))
            if not _is_count(count):
                problems.append((_at(pool, zone), "expected a whole number ≥ 0"))
    return problems


def spot_prices_problems(data: object) -> list[tuple[str, str]]:
    """Return what is wrong with spot prices in their JSON form.

    Args:
        data: parsed JSON.

    Returns:
        ``(JSONPath, message)`` per problem; empty when the shape is right.
    """
    if not isinstance(data, Mapping):
        return [("$", 'expected an object {"<type>/<zone>": <USD per hour>}')]
    problems: list[tuple[str, str]] = []
    for key, value in data.items():
        name, sep, zone = str(key).partition("/")
        if not (sep and name and zone) or "/" in zone:
            problems.append((_at(key), 'expected "<type>/<zone>": <USD per hour>'))
        elif not _is_price(value):
            problems.append((_at(key), "expected a price in USD per hour ≥ 0"))
    return problems


def _is_time(value: object) -> bool:
    """Whether a value is an ISO 8601 time with its UTC offset."""
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _fields_problems(
    entry: object, at: str, names: Sequence[str], nullable: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """Return what is wrong with one remembered entry: names, time, capacity."""
    if not isinstance(entry, Mapping):
        return [(at, "expected an object")]
    problems: list[tuple[str, str]] = []
    for key in names:
        value = entry.get(key)
        if key in nullable and value is None:
            continue
        if not (isinstance(value, str) and value):
            what = "a name or null" if key in nullable else "a non-empty string"
            problems.append((f"{at}[{json.dumps(key)}]", f"expected {what}"))
    if not _is_time(entry.get("at")):
        problems.append((f'{at}["at"]', "expected an ISO 8601 time with its offset"))
    if "capacity_type" in entry and entry["capacity_type"] not in CAPACITY_TYPES:
        problems.append((f'{at}["capacity_type"]', "expected spot or on-demand"))
    return problems


def warmer_memory_problems(data: object) -> list[tuple[str, str]]:
    """Return what is wrong with the warmer's memory in its JSON form.

    Args:
        data: parsed JSON.

    Returns:
        ``(JSONPath, message)`` per problem; empty when the shape is right.
    """
    if not isinstance(data, Mapping):
        return [("$", 'expected an object {"spawns": [...], "shortages": [...]}')]
    problems: list[tuple[str, str]] = []
    lists: dict[str, list[object]] = {}
    for name in ("spawns", "shortages"):
        value = data.get(name)
        if isinstance(value, list):
            lists[name] = value
        else:
            problems.append((_at(name), "expected a list"))
    for i, entry in enumerate(lists.get("spawns", [])):
        names, nullable = ("uid", "user", "pool", "zone"), ("user", "zone")
        problems += _fields_problems(entry, f'$["spawns"][{i}]', names, nullable)
    for i, entry in enumerate(lists.get("shortages", [])):
        names = ("pool", "zone", "capacity_type", "message")
        problems += _fields_problems(entry, f'$["shortages"][{i}]', names)
    waits = data.get("waits", [])  # absent in files of earlier versions
    if not isinstance(waits, list):
        return [*problems, (_at("waits"), "expected a list")]
    for i, entry in enumerate(waits):
        problems += _sample_problems(entry, f'$["waits"][{i}]')
    return problems


def _is_seconds(value: object) -> bool:
    return _is_price(value)  # a finite number ≥ 0


def wait_times_problems(data: object) -> list[tuple[str, str]]:
    """Return what is wrong with wait times in their JSON form.

    Args:
        data: parsed JSON.

    Returns:
        ``(JSONPath, message)`` per problem; empty when the shape is right.
    """
    shape = '{"<pool>": {"<zone> or *": {"boot_s", "start_s", "samples"}}}'
    if not isinstance(data, Mapping):
        return [("$", f"expected an object {shape}")]
    problems: list[tuple[str, str]] = []
    for pool, zones in data.items():
        if not isinstance(pool, str) or not pool:
            problems.append((_at(pool), "expected a pool name"))
        if not isinstance(zones, Mapping):
            problems.append((_at(pool), f"expected an object {shape}"))
            continue
        for zone, cell in zones.items():
            problems += _cell_problems(pool, zone, cell)
    return problems


def _cell_problems(pool: object, zone: object, cell: object) -> list[tuple[str, str]]:
    """Return what is wrong with one pool and zone's wait times.

    A path is made only for a problem: the hub reads this file for every form.
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(zone, str) or not zone:
        problems.append((_at(pool, zone), "expected a zone name or *"))
    if not isinstance(cell, Mapping):
        what = 'expected {"boot_s", "start_s", "samples"}'
        return [*problems, (_at(pool, zone), what)]
    for key in ("boot_s", "start_s"):
        value = cell.get(key)
        if value is not None and not _is_seconds(value):
            problems.append((_at(pool, zone, key), "expected seconds ≥ 0 or null"))
    if not _is_count(cell.get("samples")):
        problems.append((_at(pool, zone, "samples"), "expected a whole number ≥ 0"))
    return problems


def _sample_problems(entry: object, at: str) -> list[tuple[str, str]]:
    """Return what is wrong with one remembered cold start."""
    problems = _fields_problems(entry, at, ("uid", "pool", "zone"))
    if not isinstance(entry, Mapping):
        return problems
    if not _is_seconds(entry.get("boot_s")):
        problems.append((f'{at}["boot_s"]', "expected seconds ≥ 0"))
    start = entry.get("start_s")
    if start is not None and not _is_seconds(start):
        problems.append((f'{at}["start_s"]', "expected seconds ≥ 0 or null"))
    return problems


def _seconds(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def _waits_from_json(data: Mapping[str, Mapping[str, Any]]) -> WaitTimes:
    return WaitTimes.of(
        {
            pool: {
                zone: WaitTime(
                    boot_s=_seconds(cell.get("boot_s")),
                    start_s=_seconds(cell.get("start_s")),
                    samples=int(cell["samples"]),
                )
                for zone, cell in zones.items()
            }
            for pool, zones in data.items()
        }
    )


def _waits_to_json(times: WaitTimes) -> dict[str, object]:
    return {
        pool: {
            zone: {"boot_s": x.boot_s, "start_s": x.start_s, "samples": x.samples}
            for zone, x in zones.items()
        }
        for pool, zones in times.by_pool.items()
    }


def _samples_from_json(entries: Sequence[Mapping[str, Any]]) -> tuple[WaitSample, ...]:
    return tuple(
        WaitSample(
            uid=e["uid"],
            pool=e["pool"],
            zone=e["zone"],
            at=datetime.fromisoformat(e["at"]),
            boot_s=float(e["boot_s"]),
            start_s=_seconds(e.get("start_s")),
        )
        for e in entries
    )


def _samples_to_json(samples: Sequence[WaitSample]) -> list[dict[str, object]]:
    def entry(x: WaitSample) -> dict[str, object]:
        when = x.at.isoformat() if x.at.tzinfo is not None else None
        return {"uid": x.uid, "pool": x.pool, "zone": x.zone, "at": when} | {
            "boot_s": x.boot_s,
            "start_s": x.start_s,
        }

    return [entry(x) for x in samples]


def _memory_from_json(data: Mapping[str, Sequence[Mapping[str, Any]]]) -> WarmerMemory:
    spawns = tuple(
        Spawn(
            uid=e["uid"],
            user=e["user"],
            pool=e["pool"],
            zone=e["zone"],
            at=datetime.fromisoformat(e["at"]),
        )
        for e in data["spawns"]
    )
    shortages = tuple(
        Shortage(
            pool=e["pool"],
            zone=e["zone"],
            capacity_type=e["capacity_type"],
            at=datetime.fromisoformat(e["at"]),
            message=e["message"],
        )
        for e in data["shortages"]
    )
    waits = _samples_from_json(data.get("waits", ()))
    return WarmerMemory(spawns=spawns, shortages=shortages, waits=waits)


def _memory_to_json(memory: WarmerMemory) -> dict[str, object]:
    def when(at: datetime) -> object:  # naive: refused by the shape check
        return at.isoformat() if at.tzinfo is not None else None

    return {
        "spawns": [
            {"uid": x.uid, "user": x.user, "pool": x.pool, "zone": x.zone}
            | {"at": when(x.at)}
            for x in memory.spawns
        ],
        "shortages": [
            {"pool": x.pool, "zone": x.zone, "capacity_type": x.capacity_type}
            | {"at": when(x.at), "message": x.message}
            for x in memory.shortages
        ],
        "waits": _samples_to_json(memory.waits),
    }


def _spot_from_json(data: Mapping[str, float]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for key, price in data.items():
        name, _, zone = key.partition("/")
        out[(name, zone)] = float(price)
    return out


def _spot_to_json(prices: SpotPriceMap) -> dict[str, object]:
    return {f"{name}/{zone}": price for (name, zone), price in prices.items()}


# ----------------------------------------------------------------------- reading


def _load_json(path: str | Path) -> object:
    """Return a file's JSON, or raise :class:`StateFileError` saying why not."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateFileError(
            [Problem(name, "$", "no such file")], missing=True
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        problem = Problem(name, "$", f"cannot read: {err}")
        raise StateFileError([problem]) from None
    try:
        return json.loads(text)
    except ValueError as err:  # also a file cut short by a writer that died
        raise StateFileError([Problem(name, "$", f"not JSON: {err}")]) from None


def _checked(path: str | Path, problems: list[tuple[str, str]]) -> None:
    if problems:
        raise StateFileError([Problem(str(path), at, what) for at, what in problems])


def load_warm_status(path: str | Path) -> WarmStatus:
    """Return the warm status in a file.

    Args:
        path: the ``WARM_STATUS_FILE``.

    Returns:
        The status.

    Raises:
        StateFileError: the file is missing, unreadable, not JSON or malformed.
    """
    data = _load_json(path)
    _checked(path, warm_status_problems(data))
    return WarmStatus.of(cast(Mapping[str, Mapping[str, int]], data))


def load_spot_prices(path: str | Path) -> dict[tuple[str, str], float]:
    """Return the spot prices in a file.

    Args:
        path: the spot prices file.

    Returns:
        USD per hour by ``(instance type, zone)``.

    Raises:
        StateFileError: the file is missing, unreadable, not JSON or malformed.
    """
    data = _load_json(path)
    _checked(path, spot_prices_problems(data))
    return _spot_from_json(cast(Mapping[str, float], data))


def load_warmer_memory(path: str | Path) -> WarmerMemory:
    """Return the warmer's memory in a file.

    Args:
        path: the warmer's memory file.

    Returns:
        The remembered spawns and shortages (times aware).

    Raises:
        StateFileError: the file is missing, unreadable, not JSON or malformed.
    """
    data = _load_json(path)
    _checked(path, warmer_memory_problems(data))
    return _memory_from_json(cast(Mapping[str, Sequence[Mapping[str, Any]]], data))


def load_wait_times(path: str | Path) -> WaitTimes:
    """Return the wait times in a file.

    Args:
        path: the ``WAIT_TIMES_FILE``.

    Returns:
        The medians per pool and zone.

    Raises:
        StateFileError: the file is missing, unreadable, not JSON or malformed.
    """
    data = _load_json(path)
    _checked(path, wait_times_problems(data))
    return _waits_from_json(cast(Mapping[str, Mapping[str, Any]], data))


def _unknown(err: StateFileError, what: str, logger: Log) -> None:
    """Log, in one line, why a state file is taken as unknown."""
    level = logging.INFO if err.missing else logging.WARNING
    logger.log(level, "%s unknown: %s", what, err)


def read_warm_status(path: str | Path | None, logger: Log = log) -> WarmStatus | None:
    """Return the warm status, or ``None`` (unknown) when it cannot be used.

    Never raises: a missing file is logged at info level (the warmer has not
    written it yet), anything else wrong at warning level, in one line.

    Args:
        path: the ``WARM_STATUS_FILE``; ``None`` when not configured (no log).
        logger: where the line goes.

    Returns:
        The status, or ``None``.
    """
    if not path:
        return None
    try:
        return load_warm_status(path)
    except StateFileError as err:
        _unknown(err, "Warm status", logger)
        return None


def read_spot_prices(
    path: str | Path | None, logger: Log = log
) -> dict[tuple[str, str], float] | None:
    """Return observed spot prices, or ``None`` (unknown) when they cannot be used.

    Never raises; logs one line like :func:`read_warm_status`.

    Args:
        path: the spot prices file; ``None`` when not configured (no log).
        logger: where the line goes.

    Returns:
        USD per hour by ``(instance type, zone)``, or ``None``.
    """
    if not path:
        return None
    try:
        return load_spot_prices(path)
    except StateFileError as err:
        _unknown(err, "Spot prices", logger)
        return None


def read_warmer_memory(
    path: str | Path | None, logger: Log = log
) -> WarmerMemory | None:
    """Return the warmer's memory, or ``None`` (unknown) when it cannot be used.

    Never raises; logs one line like :func:`read_warm_status` (a missing file
    at info level: the warmer's first run).

    Args:
        path: the warmer's memory file; ``None`` when not configured (no log).
        logger: where the line goes.

    Returns:
        The memory, or ``None``.
    """
    if not path:
        return None
    try:
        return load_warmer_memory(path)
    except StateFileError as err:
        _unknown(err, "Warmer memory", logger)
        return None


def read_wait_times(path: str | Path | None, logger: Log = log) -> WaitTimes | None:
    """Return the wait times, or ``None`` (unknown) when they cannot be used.

    Never raises; logs one line like :func:`read_warm_status`.

    Args:
        path: the ``WAIT_TIMES_FILE``; ``None`` when not configured (no log).
        logger: where the line goes.

    Returns:
        The medians, or ``None``.
    """
    if not path:
        return None
    try:
        return load_wait_times(path)
    except StateFileError as err:
        _unknown(err, "Wait times", logger)
        return None


# ----------------------------------------------------------------------- writing


def _refuse(what: str, problems: list[tuple[str, str]]) -> None:
    if problems:
        found = "; ".join(f"{at}: {message}" for at, message in problems)
        raise ValueError(f"refusing to write malformed {what}: {found}")


def write_warm_status(path: str | Path, status: WarmStatus) -> None:
    """Write the warm status atomically.

    Args:
        path: the ``WARM_STATUS_FILE`` (its directory is made if missing).
        status: ready nodes per pool and zone.

    Raises:
        ValueError: the status holds an empty name or a count that is not a
            whole number ≥ 0 (nothing is written).
        OSError: the directory or file cannot be written.
    """
    data = {pool: dict(zones) for pool, zones in status.ready.items()}
    _refuse("warm status", warm_status_problems(data))
    _write_json_atomic(path, data)


def write_spot_prices(path: str | Path, prices: SpotPriceMap) -> None:
    """Write observed spot prices atomically.

    Args:
        path: the spot prices file (its directory is made if missing).
        prices: USD per hour by ``(instance type, zone)``.

    Raises:
        ValueError: a key has an empty part or a ``/`` (it would not read back),
            or a price is not a finite number ≥ 0 (nothing is written).
        OSError: the directory or file cannot be written.
    """
    problems = [
        (f"{name}/{zone}", "instance type and zone must be non-empty, without '/'")
        for name, zone in prices
        if not (isinstance(name, str) and isinstance(zone, str))
        or not (name and zone)
        or "/" in name + zone
    ]
    _refuse("spot prices", problems)
    data = _spot_to_json(prices)
    _refuse("spot prices", spot_prices_problems(data))
    _write_json_atomic(path, data)


def write_warmer_memory(path: str | Path, memory: WarmerMemory) -> None:
    """Write the warmer's memory atomically.

    Args:
        path: the warmer's memory file (its directory is made if missing).
        memory: the remembered spawns and shortages.

    Raises:
        ValueError: an entry has an empty name, a naive time or an unknown
            capacity type (nothing is written).
        OSError: the directory or file cannot be written.
    """
    data = _memory_to_json(memory)
    _refuse("warmer memory", warmer_memory_problems(data))
    _write_json_atomic(path, data)


def write_wait_times(path: str | Path, times: WaitTimes) -> None:
    """Write the wait times atomically.

    Args:
        path: the ``WAIT_TIMES_FILE`` (its directory is made if missing).
        times: the medians per pool and zone.

    Raises:
        ValueError: an empty name, or a duration that is negative or not
            finite (nothing is written).
        OSError: the directory or file cannot be written.
    """
    data = _waits_to_json(times)
    _refuse("wait times", wait_times_problems(data))
    _write_json_atomic(path, data)


def _write_json_atomic(path: str | Path, data: Mapping[str, object]) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it over it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=target.parent, delete=False, suffix=".tmp", encoding="utf-8"
    ) as tmp:
        try:
            json.dump(data, tmp, sort_keys=True)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    try:
        os.replace(tmp.name, target)
    except BaseException:
        os.unlink(tmp.name)
        raise
