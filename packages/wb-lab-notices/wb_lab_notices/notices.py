"""A notice from the workbench to the user's JupyterLab, and what became of it.

A notice says something the user must know now (their spot node is being
reclaimed, their server will be culled) and may ask JupyterLab to save every
open document. The server extension emits it as a jupyter_server event
(:data:`SCHEMA`), which every JupyterLab tab of the user receives on its event
stream; the JupyterLab extension shows it and, when asked, saves and reports
back how many documents it saved. This module is the pure part: the notice's
fields and checks (:func:`parse_notice`), the event schema, and the record of
reports (:class:`Notices`).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

SCHEMA_ID = "urn:wbspawner:events:notice"
"""The event's schema id; the JupyterLab extension listens for it."""
KINDS = ("reclaim", "cull", "stop", "info")
"""What a notice is about: a spot reclaim, an idle cull, the pod being deleted
(its ``preStop`` hook), anything else."""
MAX_MESSAGE = 500
"""The longest message, in characters (a notification, not a page)."""
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_KEPT = 100
"""How many notices the server remembers (the oldest go first)."""

SCHEMA: dict[str, Any] = {
    "$id": SCHEMA_ID,
    "version": "1",
    "title": "A notice from the workbench",
    "description": "Shown in the user's JupyterLab; with save, every open "
    "document is saved and the count reported back.",
    "type": "object",
    "required": ["id", "kind", "message", "save"],
    "properties": {
        "id": {"type": "string", "description": "the notice's id"},
        "kind": {"enum": list(KINDS), "description": "what it is about"},
        "message": {"type": "string", "description": "what the user reads"},
        "save": {"type": "boolean", "description": "save every open document"},
        "deadline": {
            "type": ["string", "null"],
            "description": "when the server stops (ISO 8601, UTC), if it does",
        },
    },
}


class NoticeError(ValueError):
    """A notice or report was refused; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice, as the event carries it."""

    id: str
    kind: str
    message: str
    save: bool
    deadline: str | None = None

    def event(self) -> dict[str, Any]:
        """Return the event's data."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Report:
    """What one JupyterLab tab did with a notice that asked it to save."""

    documents: int
    """Documents it saved."""
    failed: tuple[str, ...]
    """Paths it could not save."""
    at: float
    """When it reported (seconds since the epoch)."""


@dataclass
class Record:
    """A notice that was sent, and the reports it got."""

    notice: Notice
    sent: float
    reports: list[Report] = field(default_factory=list)
    kept: list[float] = field(default_factory=list)
    """When a user clicked "Keep running" (seconds since the epoch)."""

    def model(self) -> dict[str, Any]:
        """Return the JSON model the API answers with."""
        return {
            **self.notice.event(),
            "sent": self.sent,
            "reports": [
                {"documents": r.documents, "failed": list(r.failed), "at": r.at}
                for r in self.reports
            ],
            "kept": list(self.kept),
        }


def parse_notice(body: Any) -> Notice:
    """Check a notice as an API request sends it.

    Args:
        body: the decoded JSON body: ``kind``, ``message``, optional ``id``
            (one is made when missing), ``save`` (default false) and
            ``deadline``.

    Returns:
        The notice.

    Raises:
        NoticeError: every field that is wrong, in one message.
    """
    if not isinstance(body, dict):
        raise NoticeError("a notice is a JSON object")
    problems = [
        f"unknown field {k!r}" for k in sorted(set(body) - set(SCHEMA["properties"]))
    ]
    notice_id = body.get("id", uuid.uuid4().hex[:16])
    if not isinstance(notice_id, str) or not _ID.fullmatch(notice_id):
        problems.append("id: 1 to 64 letters, digits, '_', '.' or '-'")
    kind = body.get("kind")
    if kind not in KINDS:
        problems.append(f"kind: one of {', '.join(KINDS)}")
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        problems.append("message: a non-empty string")
    elif len(message) > MAX_MESSAGE:
        problems.append(f"message: at most {MAX_MESSAGE} characters")
    save = body.get("save", False)
    if not isinstance(save, bool):
        problems.append("save: true or false")
    deadline = body.get("deadline")
    if deadline is not None and not isinstance(deadline, str):
        problems.append("deadline: an ISO 8601 time or null")
    if problems:
        raise NoticeError("; ".join(problems))
    return Notice(notice_id, str(kind), str(message).strip(), bool(save), deadline)


def parse_report(body: Any) -> Report:
    """Check a report a JupyterLab tab sends after saving.

    Raises:
        NoticeError: the report is malformed.
    """
    if not isinstance(body, dict):
        raise NoticeError("a report is a JSON object")
    documents = body.get("documents")
    failed = body.get("failed", [])
    if not isinstance(documents, int) or isinstance(documents, bool) or documents < 0:
        raise NoticeError("documents: a count of saved documents")
    if not isinstance(failed, list) or not all(isinstance(p, str) for p in failed):
        raise NoticeError("failed: a list of paths")
    return Report(documents, tuple(failed), time.time())


class Notices:
    """The notices this server sent, newest last, at most :data:`MAX_KEPT`."""

    def __init__(self) -> None:
        self._records: dict[str, Record] = {}

    def add(self, notice: Notice) -> Record:
        """Remember a notice being sent.

        A notice sent again with the same id (the hub's reason for a stop
        whose ``preStop`` hook sent one too, in either order) keeps its
        reports and asks for saving if either did; it takes the new text unless
        that is the hook's plain ``stop`` and the first said why.
        """
        record = self._records.pop(notice.id, None)
        if record is None:
            record = Record(notice, time.time())
        else:
            kept = record.notice
            said_why = notice.kind == "stop" and kept.kind != "stop"
            record.notice = replace(
                kept if said_why else notice, save=notice.save or kept.save
            )
        self._records[notice.id] = record
        while len(self._records) > MAX_KEPT:
            del self._records[next(iter(self._records))]
        return record

    def get(self, notice_id: str) -> Record | None:
        """Return a notice's record, if it is remembered."""
        return self._records.get(notice_id)
