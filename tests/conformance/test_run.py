"""The conformance runner's deselection list: every entry a real test with a reason."""

from __future__ import annotations

import re

import pytest

from tests.conformance.run import DESELECTED, deselected, suite_dir


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


def test_every_deselected_test_exists_in_the_suite():
    """A deselection that names no test would hide nothing and rot unseen."""
    suite = suite_dir()
    for node_id, reason in deselected(DESELECTED.read_text()):
        path, _, name = node_id.partition("::")
        function = name.split("[", 1)[0]
        source = (suite / path).read_text()
        assert re.search(rf"^(async )?def {re.escape(function)}\(", source, re.M), (
            f"{node_id} ({reason}) is not a test of {path}"
        )
