"""Transient API answers retried a bounded number of times (``retry_transient``).

client-go retries ``429`` (API Priority and Fairness sheds load with
``Retry-After``) and ``5xx`` with ``Retry-After``; kubernetes_asyncio, which
KubeSpawner and wbspawner use, does not, so wbspawner adds it. A small aiohttp
app on loopback answers a queue of failures first, then ``200``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.unit.web_support import serve
from wbspawner.adapters.kube import RETRY_ATTEMPTS, Kube, retry_transient
from wbspawner.errors import KubeError


class Flaky:
    """Answers each status of ``failures`` in turn, then the namespace."""

    def __init__(self) -> None:
        self.failures: list[int] = []
        self.retry_after = ""
        self.hang = 0
        """How many of the next requests get no answer for a second."""
        self.seen = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.seen += 1
        if self.hang:
            self.hang -= 1
            await asyncio.sleep(1.0)
        if self.failures:
            code = self.failures.pop(0)
            body = {"kind": "Status", "code": code, "reason": "X", "message": "busy"}
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.json_response(body, status=code, headers=headers)
        return web.json_response(
            {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "jhub"}}
        )


@pytest.fixture
async def flaky_kube(tmp_path: Path) -> AsyncIterator[tuple[Flaky, Kube]]:
    flaky = Flaky()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", flaky.handle)
    async with serve(app) as url:
        config = tmp_path / "kubeconfig"
        config.write_text(
            "apiVersion: v1\nkind: Config\n"
            f'clusters: [{{name: f, cluster: {{server: "{url}"}}}}]\n'
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: f, context: {cluster: f, user: u}}]\n"
            "current-context: f\n",
            encoding="utf-8",
        )
        kube = await Kube.connect(str(config), timeout=0.5)
        try:
            yield flaky, kube
        finally:
            await kube.close()


async def test_shed_and_failed_answers_are_tried_again(
    flaky_kube: tuple[Flaky, Kube],
) -> None:
    flaky, kube = flaky_kube
    flaky.failures = [429, 503, 500]
    found = await kube.get("/api/v1/namespaces/jhub")
    assert found is not None and found["metadata"]["name"] == "jhub"
    assert flaky.seen == 4


async def test_the_last_failure_is_the_callers_after_bounded_tries(
    flaky_kube: tuple[Flaky, Kube],
) -> None:
    flaky, kube = flaky_kube
    flaky.failures = [500] * 10
    with pytest.raises(KubeError, match="500"):
        await kube.get("/api/v1/namespaces/jhub")
    assert flaky.seen == RETRY_ATTEMPTS


async def test_a_refusal_is_not_tried_again(flaky_kube: tuple[Flaky, Kube]) -> None:
    flaky, kube = flaky_kube
    flaky.failures = [403]
    with pytest.raises(KubeError, match="403"):
        await kube.get("/api/v1/namespaces/jhub")
    assert flaky.seen == 1


async def test_retry_after_is_honoured(flaky_kube: tuple[Flaky, Kube]) -> None:
    flaky, kube = flaky_kube
    flaky.failures, flaky.retry_after = [429], "1"
    started = time.monotonic()
    await kube.get("/api/v1/namespaces/jhub")
    assert time.monotonic() - started >= 1.0


async def test_kubespawners_typed_calls_retry_too_and_wrapping_twice_adds_nothing(
    flaky_kube: tuple[Flaky, Kube],
) -> None:
    """KubeSpawner's calls read the whole answer and raise ``ApiException``."""
    flaky, kube = flaky_kube
    retry_transient(kube.api_client)  # already wrapped by Kube.connect
    core = client.CoreV1Api(kube.api_client)
    flaky.failures = [429, 502]
    namespace = await core.read_namespace("jhub")
    assert namespace.metadata.name == "jhub" and flaky.seen == 3
    flaky.failures = [500] * 10
    with pytest.raises(ApiException) as caught:
        await core.read_namespace("jhub")
    assert caught.value.status == 500
    assert flaky.seen == 3 + RETRY_ATTEMPTS


async def test_a_read_without_answer_is_asked_again_a_write_is_not(
    flaky_kube: tuple[Flaky, Kube],
) -> None:
    """A GET changes nothing, so asking again is safe; a POST may have taken
    effect, so its timeout is the caller's at once."""
    flaky, kube = flaky_kube
    flaky.hang = 2
    found = await kube.get("/api/v1/namespaces/jhub")
    assert found is not None and flaky.seen == 3
    flaky.hang, flaky.seen = 1, 0
    with pytest.raises(KubeError, match="no answer .* within 0.5 s"):
        await kube.create("/api/v1/namespaces", {"metadata": {"name": "x"}})
    assert flaky.seen == 1


async def test_with_a_retry_budget_reads_are_tried_until_it_is_spent(
    flaky_kube: tuple[Flaky, Kube],
) -> None:
    """The spawner's reads follow KubeSpawner's ``k8s_api_request_retry_timeout``:
    more tries than the counted default while the budget lasts, then a message
    that says how many and for how long."""
    flaky, kube = flaky_kube
    budgeted = Kube.of(kube.api_client, timeout=0.5, retry_for=6.0)
    flaky.failures = [503] * RETRY_ATTEMPTS
    found = await budgeted.get("/api/v1/namespaces/jhub")
    assert found is not None and flaky.seen == RETRY_ATTEMPTS + 1
    flaky.seen, flaky.failures = 0, [500] * 100
    started = time.monotonic()
    with pytest.raises(KubeError, match=r"500.*gave up after \d+ tries in") as caught:
        await budgeted.get("/api/v1/namespaces/jhub")
    # the budget, one try's timeout past it at most, and slack for a loaded machine
    assert 3.0 <= time.monotonic() - started <= 6.0 + 0.5 + 1.5
    assert caught.value.status == 500 and flaky.seen > RETRY_ATTEMPTS
