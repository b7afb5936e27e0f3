"""How the CLI draws for a terminal and writes for a pipe: wbspawner.cli.terminal,
progress and tables."""

from __future__ import annotations

import io
import re

import pytest

from wbspawner.cli.progress import Steps
from wbspawner.cli.tables import table_lines
from wbspawner.cli.terminal import is_terminal, make_console, terminal_width

CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Closed(io.StringIO):
    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


@pytest.mark.parametrize(
    ("stream", "environ", "expected"),
    [
        pytest.param(Tty(), {"TERM": "xterm"}, True, id="tty"),
        pytest.param(io.StringIO(), {"TERM": "xterm"}, False, id="pipe"),
        pytest.param(io.StringIO(), {"FORCE_COLOR": "1"}, False, id="force-color"),
        pytest.param(Tty(), {"TERM": "dumb"}, False, id="dumb-terminal"),
        pytest.param(Closed(), {}, False, id="closed"),
    ],
)
def test_the_stream_decides_terminal_or_not(stream, environ, expected) -> None:
    assert is_terminal(stream, environ) is expected
    assert make_console(stream, environ).is_terminal is expected


def test_columns_gives_the_width_else_80() -> None:
    assert terminal_width(Tty(), {"COLUMNS": "100"}) == 100
    assert terminal_width(Tty(), {"COLUMNS": "wide"}) == 80
    assert terminal_width(io.StringIO(), {}) == 80


def _work(stream, environ, *, fail_last: bool = False) -> str:
    steps = Steps(stream, environ)
    with steps.phase("Finding the subnets"):
        pass
    with steps.bar("Applying 3 action(s)", 3) as bar:
        bar.done("done  create-asg a", now="create-asg b")
        bar.done("done  create-asg b", now="create-asg c")
        bar.done("failed  create-asg c: boom", failed=fail_last)
    return stream.getvalue()


def test_a_pipe_gets_numbered_plain_lines() -> None:
    text = _work(io.StringIO(), {"TERM": "xterm"}, fail_last=True)
    assert text.splitlines() == [
        "Finding the subnets …",
        "Applying 3 action(s)",
        "[1/3] done  create-asg a",
        "[2/3] done  create-asg b",
        "[3/3] failed  create-asg c: boom",
    ]


def test_a_pipe_gets_no_codes_even_with_force_color(monkeypatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    text = _work(io.StringIO(), {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert "\x1b" not in text and "[3/3]" in text


def test_unknown_totals_count_without_a_total() -> None:
    stream = io.StringIO()
    with Steps(stream, {}).bar("Deleting", None) as bar:
        bar.done("deleted  pv-1")
    assert stream.getvalue().splitlines()[-1] == "[1] deleted  pv-1"


def test_a_terminal_gets_ticks_a_bar_and_a_line_per_step() -> None:
    stream = Tty()
    raw = _work(stream, {"TERM": "xterm", "COLUMNS": "80"}, fail_last=True)
    assert CSI.search(raw), "a terminal gets control sequences"
    text = CSI.sub("", raw)
    assert "✓ Finding the subnets" in text
    for line in ("done  create-asg a", "done  create-asg b", "create-asg c: boom"):
        assert line in text
    assert "[1/3]" not in text
    assert "\x1b[31m" in raw, "the failed step is red"


def test_no_color_keeps_the_progress_but_not_the_colours() -> None:
    raw = _work(Tty(), {"TERM": "xterm", "NO_COLOR": "1"}, fail_last=True)
    assert "\x1b[31m" not in raw and "✓ Finding the subnets" in CSI.sub("", raw)


HEADERS = ("NAME", "SIZE", "DESCRIPTION")
ROWS = [
    ("alpha", "12 GiB", "a long description of the first row " * 3),
    ("beta", "1 GiB", "short"),
]


def test_a_pipe_gets_the_plain_table_at_any_width() -> None:
    lines = table_lines(make_console(io.StringIO(), {"COLUMNS": "40"}), HEADERS, ROWS)
    assert lines[0].split() == list(HEADERS)
    assert max(len(x) for x in lines) > 80, "not folded for a pipe"


def test_a_terminal_table_fits_and_wraps_long_cells_at_spaces() -> None:
    console = make_console(Tty(), {"COLUMNS": "60", "TERM": "xterm"})
    lines = table_lines(console, HEADERS, ROWS, right=(1,))
    assert not any(CSI.search(x) for x in lines)
    assert max(len(x) for x in lines) <= 60
    assert lines[0].split() == list(HEADERS)
    words = " ".join(lines).split()
    assert words.count("description") == 3, "every word whole"
    assert "…" not in " ".join(lines)
