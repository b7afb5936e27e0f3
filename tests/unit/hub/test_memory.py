"""Sampling a running server's memory: each new peak written, one more at the stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from wbspawner.adapters.jupyterserver import MemoryUse
from wbspawner.hub.memory import MemoryWatch


class Server:
    """Answers memory readings from a list; records the peaks written."""

    def __init__(self, *answers: int | None) -> None:
        self.answers = list(answers)
        self.reads = 0
        self.written: list[int] = []

    async def read(self) -> tuple[MemoryUse | None, str | None]:
        self.reads += 1
        used = self.answers.pop(0) if self.answers else None
        if used is None:
            return None, "server did not answer"
        return MemoryUse(used_mib=used, limit_mib=4096), None

    async def write(self, peak: int) -> None:
        self.written.append(peak)


def watch(server: Server, interval: float = 0.0) -> MemoryWatch:
    log = logging.getLogger("test-memory")
    return MemoryWatch(server.read, server.write, interval, log, "ada")


async def test_only_rising_peaks_are_written() -> None:
    server = Server(300, 250, 900, 900, 400)
    w = watch(server)
    for _ in range(5):
        await w.sample()
    assert server.written == [300, 900]
    assert w.peak_mib == 900


async def test_the_loop_samples_while_it_runs_and_finish_reads_once_more() -> None:
    server = Server(*range(100, 10_000, 100))
    w = watch(server, interval=0.01)
    w.start()
    w.start()  # idempotent: one loop
    await asyncio.sleep(0.1)
    before = server.reads
    assert before >= 3
    await w.finish()
    assert server.reads == before + 1
    await asyncio.sleep(0.05)
    assert server.reads == before + 1  # the loop is over
    assert server.written[-1] == w.peak_mib


async def test_no_interval_samples_at_the_stop_only() -> None:
    server = Server(1234)
    w = watch(server, interval=0)
    w.start()
    await asyncio.sleep(0.02)
    assert server.reads == 0
    await w.finish()
    assert server.written == [1234]


async def test_a_server_that_does_not_answer_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server(None, None, 500)
    w = watch(server)
    with caplog.at_level(logging.WARNING, "test-memory"):
        for _ in range(3):
            await w.sample()
    assert server.written == [500]
    assert [r.getMessage() for r in caplog.records] == [
        "ada: memory not known: server did not answer"
    ]


async def test_a_failing_reader_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> tuple[MemoryUse | None, str | None]:
        raise RuntimeError("bug")

    async def write(peak: int) -> None:
        raise AssertionError("nothing to write")

    w = MemoryWatch(broken, write, 0, logging.getLogger("test-memory"), "ada")
    with caplog.at_level(logging.ERROR, "test-memory"):
        await w.finish()
    assert "ada: reading its memory failed" in caplog.text
