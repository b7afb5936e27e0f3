"""The conformance runner's lists (deselected, isolated): every entry a real test
with a reason; the sessions it runs."""

from __future__ import annotations

import re

import pytest

from tests.conformance import run
from tests.conformance.run import DESELECTED, ISOLATED, deselected, sessions, suite_dir


def test_deselected_parses_node_ids_and_reasons():
    text = (
        "# header\n"
        "\n"
        "tests/test_a.py::test_one  # needs a GPU\n"
        "tests/test_a.py::test_two[p1]  # no network: pulls an image\n"
    )
    assert deselected(text) == [
        ("tests/test_a.py::test_one", "needs a GPU"),
        ("tests/test_a.py::test_two[p1]", "no network: pulls an image"),
    ]


@pytest.mark.parametrize(
    "line", ["tests/test_a.py::test_one", "tests/test_a.py::test_one  #  "]
)
def test_deselected_refuses_a_test_without_a_reason(line: str):
    with pytest.raises(ValueError, match="line 2"):
        deselected("# header\n" + line)


@pytest.mark.parametrize("listing", [DESELECTED, ISOLATED], ids=lambda p: p.name)
def test_every_listed_test_exists_in_the_suite(listing):
    """An entry that names no test would change nothing and rot unseen."""
    suite = suite_dir()
    for node_id, reason in deselected(listing.read_text()):
        path, _, name = node_id.partition("::")
        function = name.split("[", 1)[0]
        source = (suite / path).read_text()
        assert re.search(rf"^(async )?def {re.escape(function)}\(", source, re.M), (
            f"{node_id} ({reason}) is not a test of {path}"
        )


def test_isolated_tests_run_alone_after_the_rest(tmp_path, monkeypatch):
    """The whole suite less the deselected and isolated tests, then each
    isolated test in a session of its own (still less the deselected)."""
    listing = tmp_path / "isolated.txt"
    listing.write_text("tests/test_spawner.py::test_spawn  # alone, for the test\n")
    monkeypatch.setattr(run, "ISOLATED", listing)
    dropped = [n for n, _ in deselected(DESELECTED.read_text())]
    isolated = ["tests/test_spawner.py::test_spawn"]
    assert sessions([]) == [
        (["tests"], dropped + isolated),
        *[([node_id], dropped) for node_id in isolated],
    ]


def test_explicit_tests_run_in_one_session():
    """``CONFORMANCE_ARGS`` pick the tests: one session, isolated ones included."""
    extra = ["-x", "tests/test_spawner.py"]
    dropped = [n for n, _ in deselected(DESELECTED.read_text())]
    assert sessions(extra) == [(extra, dropped)]
