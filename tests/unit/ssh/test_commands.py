"""One command in a terminal: the typed line and the reading of its output."""

from __future__ import annotations

import base64
import re
import subprocess

import pytest

from wbspawner.ssh.commands import MarkedOutput, command_line, new_tag


def test_the_line_never_contains_its_own_markers() -> None:
    tag = new_tag()
    line = command_line("echo hi", tag)
    assert f"WBSSH{tag}B" not in line and f"WBSSH{tag}E" not in line
    assert line.endswith("\r")


def test_the_command_travels_base64_encoded() -> None:
    line = command_line("echo 'a \"b\"' $HOME", "t")
    encoded = re.search(r"printf %s (\S+) \| base64 -d", line)
    assert encoded is not None
    assert base64.b64decode(encoded.group(1)).decode() == "echo 'a \"b\"' $HOME"


def test_a_real_shell_runs_the_line() -> None:
    """sh (no terminal, so stty fails quietly) prints markers around the output."""
    tag = new_tag()
    line = command_line("echo out; echo err >&2; exit 3", tag)
    done = subprocess.run(
        ["sh"],
        input=line.replace("\r", "\n"),
        capture_output=True,
        text=True,
        timeout=10,
    )
    reader = MarkedOutput(tag)
    assert reader.feed(done.stdout + done.stderr) == "out\n"
    assert reader.status == 3


def _read(chunks: list[str], tag: str) -> tuple[str, MarkedOutput]:
    reader = MarkedOutput(tag)
    return "".join(reader.feed(c) for c in chunks), reader


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_output_split_anywhere_reads_the_same(size: int) -> None:
    stream = "$ prompt echo\r\nWBSSHabcB\nline 1\nline 2\nWBSSHabcE0\n$ "
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    out, reader = _read(chunks, "abc")
    assert out == "line 1\nline 2\n"
    assert reader.done and reader.status == 0


def test_output_without_a_final_newline_keeps_its_text() -> None:
    out, reader = _read(["WBSSHxB\nno newlineWBSSHxE1\n"], "x")
    assert out == "no newline"
    assert reader.status == 1


def test_nothing_is_read_before_the_start_marker() -> None:
    reader = MarkedOutput("x")
    assert reader.feed("echo of the typed line WBSSH%sB x\r\n") == ""
    assert not reader.started and not reader.done


def test_nothing_more_after_the_end() -> None:
    reader = MarkedOutput("x")
    reader.feed("WBSSHxB\nhiWBSSHxE0\n")
    assert reader.feed("logout\r\n") == ""
