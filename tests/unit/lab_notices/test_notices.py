"""The notice's checks and the record of what became of it (wb_lab_notices.notices)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from jsonschema import ValidationError
from jupyter_events import EventLogger
from wb_lab_notices.notices import (
    MAX_KEPT,
    MAX_MESSAGE,
    SCHEMA,
    Notice,
    NoticeError,
    Notices,
    parse_notice,
    parse_report,
)


def test_a_full_notice_is_kept_as_sent() -> None:
    notice = parse_notice(
        {
            "id": "reclaim-7",
            "kind": "reclaim",
            "message": "  Your node goes in 2 minutes.  ",
            "save": True,
            "deadline": "2026-12-07T15:12:00Z",
        }
    )
    assert notice == Notice(
        "reclaim-7",
        "reclaim",
        "Your node goes in 2 minutes.",
        True,
        "2026-12-07T15:12:00Z",
    )


def test_a_notice_gets_an_id_and_does_not_save_by_default() -> None:
    first = parse_notice({"kind": "info", "message": "hello"})
    second = parse_notice({"kind": "info", "message": "hello"})
    assert first.save is False and first.deadline is None
    assert first.id != second.id and len(first.id) == 16


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        pytest.param([], "a notice is a JSON object", id="not-an-object"),
        pytest.param(
            {"id": "../x", "kind": "info", "message": "m"},
            "id: 1 to 64 letters, digits, '_', '.' or '-'",
            id="id-with-a-slash",
        ),
        pytest.param(
            {"id": "x" * 65, "kind": "info", "message": "m"},
            "id: 1 to 64 letters, digits, '_', '.' or '-'",
            id="id-too-long",
        ),
        pytest.param(
            {"kind": "info", "message": "m" * (MAX_MESSAGE + 1)},
            f"message: at most {MAX_MESSAGE} characters",
            id="message-too-long",
        ),
        pytest.param(
            {"kind": "info", "message": "m", "deadline": 1700000000},
            "deadline: an ISO 8601 time or null",
            id="deadline-a-number",
        ),
        pytest.param(
            {"message": 3, "save": 1, "html": "<b>"},
            "unknown field 'html'; kind: one of reclaim, cull, stop, info; "
            "message: a non-empty string; save: true or false",
            id="every-problem-at-once",
        ),
    ],
)
def test_a_malformed_notice_is_refused_with_every_problem(
    body: Any, problems: str
) -> None:
    with pytest.raises(NoticeError) as info:
        parse_notice(body)
    assert str(info.value) == problems


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(
            {"documents": True}, "documents: a count of saved documents", id="bool"
        ),
        pytest.param(
            {"documents": -1}, "documents: a count of saved documents", id="negative"
        ),
        pytest.param(
            {"documents": 1, "failed": "a"}, "failed: a list of paths", id="str"
        ),
        pytest.param("1", "a report is a JSON object", id="not-an-object"),
    ],
)
def test_a_malformed_report_is_refused(body: Any, problem: str) -> None:
    with pytest.raises(NoticeError, match=f"^{problem}$"):
        parse_report(body)


def test_the_oldest_notices_are_forgotten_first() -> None:
    notices = Notices()
    for number in range(MAX_KEPT + 2):
        notices.add(Notice(f"n{number}", "info", "m", False))
    assert notices.get("n0") is None and notices.get("n1") is None
    assert notices.get("n2") is not None and notices.get(f"n{MAX_KEPT + 1}") is not None


def test_a_notice_sent_again_takes_the_new_text_and_keeps_its_reports() -> None:
    notices = Notices()
    notices.add(Notice("stop-1", "stop", "Being stopped.", True)).reports.append(
        parse_report({"documents": 3})
    )
    again = notices.add(Notice("stop-1", "reclaim", "Spot node reclaimed.", False))
    assert again.notice == Notice("stop-1", "reclaim", "Spot node reclaimed.", True)
    assert [r.documents for r in again.reports] == [3]


def test_the_hooks_plain_stop_never_hides_the_reason() -> None:
    notices = Notices()
    notices.add(Notice("stop-1", "reclaim", "Spot node reclaimed.", True))
    later = notices.add(Notice("stop-1", "stop", "Being stopped.", True))
    assert later.notice == Notice("stop-1", "reclaim", "Spot node reclaimed.", True)


def test_the_event_schema_takes_every_notice_the_api_takes() -> None:
    logger = EventLogger()
    logger.register_event_schema(SCHEMA)
    logger.register_handler(logging.NullHandler())  # emit validates only when heard
    notice = parse_notice({"kind": "cull", "message": "m", "deadline": None})
    logger.emit(schema_id=SCHEMA["$id"], data=notice.event())
    with pytest.raises(ValidationError, match="is not one of"):
        logger.emit(schema_id=SCHEMA["$id"], data={**notice.event(), "kind": "x"})
