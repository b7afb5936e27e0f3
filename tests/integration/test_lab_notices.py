"""The notices API of a real JupyterLab server with the wb-lab-notices extension."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import aiohttp
import pytest

from tests.lab_support import Lab, running_lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


async def test_a_notice_reaches_every_event_subscriber(lab: Lab) -> None:
    url = lab.url.replace("http", "ws") + f"/api/events/subscribe?token={lab.token}"
    notice = {
        "id": "reclaim-1",
        "kind": "reclaim",
        "message": "This server's spot node will be reclaimed in about 2 minutes.",
        "save": True,
        "deadline": "2026-12-07T15:12:00Z",
    }
    async with aiohttp.ClientSession(trust_env=False) as http:
        async with http.ws_connect(url) as first, http.ws_connect(url) as second:
            await asyncio.sleep(0.5)  # both listeners registered
            sent = await asyncio.to_thread(
                lab.api, "POST", "wbspawner/notices", json=notice
            )
            assert sent.status_code == 201, sent.text
            for socket in (first, second):
                event = json.loads(await socket.receive_str(timeout=10))
                assert event["schema_id"] == "urn:wbspawner:events:notice"
                assert {k: event[k] for k in notice} == notice


def test_a_notice_and_its_reports_are_kept(lab: Lab) -> None:
    sent = lab.api(
        "POST",
        "wbspawner/notices",
        json={"id": "cull-1", "kind": "cull", "message": "Idle: stops at 15:10."},
    )
    assert sent.status_code == 201
    assert sent.json()["save"] is False
    assert sent.json()["reports"] == []
    saved = lab.api(
        "POST",
        "wbspawner/notices/cull-1/saved",
        json={"documents": 2, "failed": ["a.ipynb"]},
    )
    assert saved.status_code == 204
    record = lab.api("GET", "wbspawner/notices/cull-1").json()
    assert record["kind"] == "cull"
    assert [(r["documents"], r["failed"]) for r in record["reports"]] == [
        (2, ["a.ipynb"])
    ]


def test_a_notice_without_an_id_gets_one(lab: Lab) -> None:
    sent = lab.api("POST", "wbspawner/notices", json={"kind": "info", "message": "hi"})
    assert sent.status_code == 201
    notice_id = sent.json()["id"]
    assert lab.api("GET", f"wbspawner/notices/{notice_id}").json()["message"] == "hi"


def test_bad_calls_are_refused_with_their_reasons(lab: Lab) -> None:
    bad = lab.api(
        "POST",
        "wbspawner/notices",
        json={"kind": "reboot", "message": " ", "save": "yes", "colour": "red"},
    )
    assert bad.status_code == 400
    assert bad.json()["message"] == (
        "unknown field 'colour'; kind: one of reclaim, cull, stop, info; "
        "message: a non-empty string; save: true or false"
    )
    missing = lab.api("GET", "wbspawner/notices/nope")
    assert (missing.status_code, missing.json()["message"]) == (
        404,
        "no notice 'nope' on this server",
    )
    assert (
        lab.api(
            "POST", "wbspawner/notices/nope/saved", json={"documents": 1}
        ).status_code
        == 404
    )
    lab.api(
        "POST", "wbspawner/notices", json={"id": "n1", "kind": "info", "message": "m"}
    )
    report = lab.api("POST", "wbspawner/notices/n1/saved", json={"documents": -1})
    assert (report.status_code, report.json()["message"]) == (
        400,
        "documents: a count of saved documents",
    )


def test_only_the_servers_own_users_may_send(lab: Lab) -> None:
    import requests

    with requests.Session() as http:
        http.trust_env = False
        answer = http.post(
            f"{lab.url}/wbspawner/notices",
            json={"kind": "info", "message": "forged"},
            timeout=10,
        )
    assert answer.status_code == 403


def test_keep_running_is_use_and_the_cullers_calls_are_not(lab: Lab) -> None:
    """The culler's own calls (no_track_activity) leave the server's last
    activity alone; the "Keep running" answer moves it, and is kept."""
    sent = lab.api(
        "POST",
        "wbspawner/notices?no_track_activity=1",
        json={"id": "cull-keep", "kind": "cull", "message": "Idle: stops at 15:10."},
    )
    assert sent.status_code == 201
    before = lab.api("GET", "api/status").json()["last_activity"]
    time.sleep(0.05)
    assert lab.api("GET", "api/kernels?no_track_activity=1").status_code == 200
    assert lab.api("GET", "api/status").json()["last_activity"] == before
    kept = lab.api("POST", "wbspawner/notices/cull-keep/answer", json={"keep": True})
    assert kept.status_code == 204
    assert lab.api("GET", "api/status").json()["last_activity"] > before
    assert len(lab.api("GET", "wbspawner/notices/cull-keep").json()["kept"]) == 1
    wrong = lab.api("POST", "wbspawner/notices/cull-keep/answer", json={"keep": 1})
    assert wrong.status_code == 400
