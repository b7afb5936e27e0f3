"""The workbench's notices in the user's JupyterLab (jupyter-server extension).

The extension registers the notice event (:data:`notices.SCHEMA`) and serves,
under the server's base URL:

- ``POST wbspawner/notices``: send a notice (``kind``, ``message``, ``save``,
  optional ``id`` and ``deadline``) to every JupyterLab tab of this server; 201
  with the notice's record, 400 with every problem of a malformed one;
- ``GET wbspawner/notices/<id>``: the record: the notice, when it was sent, and
  each tab's report (documents saved, paths that failed);
- ``POST wbspawner/notices/<id>/saved``: a tab's report after saving
  (``documents``, ``failed``), which the JupyterLab extension sends;
- ``POST wbspawner/notices/<id>/answer``: ``{"keep": true}``, the "Keep
  running" button of a cull warning (use of the server, which the culler sees).

Every call needs the server's own authentication (a JupyterHub token with
access to this server, or the browser's login). The JupyterLab half is
``src/index.js``, built into ``labextension/`` and installed as
``share/jupyter/labextensions/wb-lab-notices``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from wb_lab_notices.notices import (
    SCHEMA,
    SCHEMA_ID,
    NoticeError,
    Notices,
    parse_notice,
    parse_report,
)

__all__ = ["SCHEMA_ID"]
AUTH_RESOURCE = "wb_lab_notices"


class _Base(APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, notices: Notices) -> None:
        self.notices = notices

    def record_of(self, notice_id: str) -> Any:
        record = self.notices.get(notice_id)
        if record is None:
            raise web.HTTPError(404, f"no notice {notice_id!r} on this server")
        return record


class NoticesHandler(_Base):
    """``POST wbspawner/notices``: send a notice."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            notice = parse_notice(self.get_json_body())
        except NoticeError as err:
            raise web.HTTPError(400, str(err)) from None
        record = self.notices.add(notice)
        self.event_logger.emit(schema_id=SCHEMA_ID, data=notice.event())
        self.log.info("notice %s (%s) sent: %s", notice.id, notice.kind, notice.message)
        self.set_status(201)
        self.finish(json.dumps(record.model()))


class NoticeHandler(_Base):
    """``GET wbspawner/notices/<id>``: a notice and its reports."""

    @web.authenticated
    @authorized
    async def get(self, notice_id: str) -> None:
        self.finish(json.dumps(self.record_of(notice_id).model()))


class ReportHandler(_Base):
    """``POST wbspawner/notices/<id>/saved``: a tab saved what it had open."""

    @web.authenticated
    @authorized
    async def post(self, notice_id: str) -> None:
        record = self.record_of(notice_id)
        try:
            report = parse_report(self.get_json_body())
        except NoticeError as err:
            raise web.HTTPError(400, str(err)) from None
        record.reports.append(report)
        self.log.info(
            "notice %s: a tab saved %d documents, %d failed",
            notice_id,
            report.documents,
            len(report.failed),
        )
        self.set_status(204)
        self.finish()


class AnswerHandler(_Base):
    """``POST wbspawner/notices/<id>/answer``: the user clicked "Keep running".

    The request is the user's own API request, so jupyter_server counts it as
    activity: the culler, which reads the server's last activity, sees the
    server used after its warning and keeps it (its idle clock starts again).
    The click is also kept on the notice's record (``kept``).
    """

    @web.authenticated
    @authorized
    async def post(self, notice_id: str) -> None:
        record = self.record_of(notice_id)
        body = self.get_json_body()
        if not isinstance(body, dict) or body.get("keep") is not True:
            raise web.HTTPError(400, 'an answer is {"keep": true}')
        record.kept.append(time.time())
        self.log.info("notice %s: the user keeps the server running", notice_id)
        self.set_status(204)
        self.finish()


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "wb_lab_notices"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the notice event and serve the notices API."""
    serverapp.event_logger.register_event_schema(SCHEMA)
    notices = Notices()
    base = url_path_join(serverapp.web_app.settings["base_url"], "wbspawner", "notices")
    args = {"notices": notices}
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (base, NoticesHandler, args),
            (url_path_join(base, r"([^/]+)"), NoticeHandler, args),
            (url_path_join(base, r"([^/]+)", "saved"), ReportHandler, args),
            (url_path_join(base, r"([^/]+)", "answer"), AnswerHandler, args),
        ],
    )
