"""A share of API requests fails, as on a loaded apiserver (devcluster.apiserver.chaos).

Kubernetes' API Priority and Fairness answers a shed request with ``429
TooManyRequests`` and ``Retry-After``; a request the apiserver cannot finish in
time ends in ``504`` with reason ``Timeout``; other failures are ``500
InternalError``. All three are ``Status`` bodies.
"""

from __future__ import annotations

import time

import pytest

from devcluster.apiserver import chaos
from devcluster.errors import ApiError
from tests.devcluster.cluster_support import Api

NS = "/api/v1/namespaces/jhub"


async def _set(api: Api, **settings: object) -> dict:
    status, doc = await api.call("PUT", chaos.PATH, settings)
    assert status == 200, doc
    return doc


async def test_off_by_default_and_every_request_served(api: Api) -> None:
    status, doc = await api.call("GET", chaos.PATH)
    assert status == 200 and doc["rate"] == 0.0
    for _ in range(20):
        status, _ = await api.call("GET", f"{NS}/configmaps")
        assert status == 200


async def test_a_share_of_requests_fails_with_status_bodies(api: Api) -> None:
    await _set(api, rate=0.5, seed=3, kinds=["throttle", "error"])
    statuses = []
    for _ in range(60):
        status, doc = await api.call("GET", f"{NS}/configmaps")
        statuses.append(status)
        if status == 429:
            assert doc["reason"] == "TooManyRequests"
            assert doc["details"]["retryAfterSeconds"] == 1
        elif status == 500:
            assert doc["kind"] == "Status" and doc["reason"] == "InternalError"
    failed = sum(1 for s in statuses if s != 200)
    assert 15 <= failed <= 45, statuses  # about half of 60
    assert {429, 500} <= set(statuses)
    status, doc = await api.call("GET", chaos.PATH)
    assert doc["seen"] == 60
    assert sum(doc["injected"].values()) == failed


async def test_methods_limit_the_failures_to_some_requests(api: Api) -> None:
    await _set(api, rate=1.0, kinds=["error"], methods=["post"])
    status, _ = await api.call("GET", f"{NS}/configmaps")
    assert status == 200
    made = {"metadata": {"name": "c1"}, "data": {}}
    status, doc = await api.call("POST", f"{NS}/configmaps", made)
    assert status == 500 and doc["reason"] == "InternalError"
    status, doc = await api.call("GET", chaos.PATH)
    assert doc["methods"] == ["POST"] and doc["seen"] == 1


async def test_methods_must_be_a_list(api: Api) -> None:
    status, doc = await api.call("PUT", chaos.PATH, {"rate": 0.1, "methods": "POST"})
    assert status == 400 and "methods must be a list" in doc["message"]


async def test_a_throttled_request_says_when_to_retry(api: Api) -> None:
    await _set(api, rate=1.0, kinds=["throttle"])
    async with api.session.get(f"{api.url}{NS}/configmaps") as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"


async def test_a_timeout_waits_then_answers_504(api: Api) -> None:
    await _set(api, rate=1.0, kinds=["timeout"], timeout_s=0.5)
    started = time.monotonic()
    status, doc = await api.call("GET", f"{NS}/configmaps")
    assert status == 504 and doc["reason"] == "Timeout"
    assert time.monotonic() - started >= 0.5


async def test_exempt_requests_and_the_settings_path_always_work(api: Api) -> None:
    await _set(api, rate=1.0, kinds=["error"])
    headers = {chaos.EXEMPT_HEADER: "1"}
    for _ in range(5):
        status, _ = await api.call("GET", f"{NS}/configmaps", headers=headers)
        assert status == 200
    doc = await _set(api, rate=0.0)
    assert doc["injected"] == {} and doc["seen"] == 0
    status, _ = await api.call("GET", f"{NS}/configmaps")
    assert status == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"rate": 2}, "rate must be a number from 0 to 1"),
        ({"rate": 0.1, "kinds": ["meteor"]}, "unknown kinds ['meteor']"),
        ({"rate": 0.1, "timeout_s": 600}, "timeout_s must be from 0 to 60"),
        ([0.1], "must be a JSON object"),
    ],
)
def test_bad_settings_are_refused_with_what_is_wrong(body: object, words: str) -> None:
    with pytest.raises(ApiError) as caught:
        chaos.Chaos().configure(body)
    assert caught.value.code == 400 and words in caught.value.message
