"""AWS errors answered at botocore's ``before-send``, so botocore's own retries run.

botocore's Stubber answers in the ``before-call`` event, before the endpoint and
so before its retry handler: a stubbed throttling error is raised at the first
attempt. :class:`SendErrors` answers in ``before-send`` instead: the request is
built, validated and signed, the answer goes through the service's own parser,
and botocore's retry handler decides whether to send again, as it would with
AWS. Attempts it does not answer go on to whatever else answers ``before-send``
(moto's ``mock_aws``) or to the client's endpoint (a moto server).

- :class:`SendErrors`: answers the first attempts of one operation with errors,
  and counts every attempt.
- :func:`error_response`: an error answer in the client's protocol.
- :func:`record_backoff`: makes botocore's backoff instant and records it.
- :func:`gives_up`: checks that a call whose every attempt fails is sent
  exactly ``MAX_ATTEMPTS`` times and ends in the advice of a temporary error.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse

from wbspawner.adapters.aws import MAX_ATTEMPTS
from wbspawner.errors import TemporaryAwsError


class _Raw(io.BytesIO):
    """A response body as urllib3 hands it to botocore."""

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self.getvalue()


def error_response(client: Any, status: int, code: str, message: str) -> AWSResponse:
    """Return an AWS error answer in the protocol of ``client``'s service.

    Args:
        client: the client whose service answers.
        status: the HTTP status (400 for throttling, 5xx for server errors).
        code: the AWS error code, e.g. ``Throttling``.
        message: the AWS error message.

    Returns:
        The answer, as botocore's HTTP layer would return it.
    """
    protocol = client.meta.service_model.protocol
    headers: dict[str, str] = {}
    if protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}"
            "</Message></Error></Errors><RequestID>r-1</RequestID></Response>"
        ).encode()
    elif protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>r-1</RequestId>"
            "</ErrorResponse>"
        ).encode()
    elif protocol in ("json", "rest-json"):
        headers["x-amzn-errortype"] = code
        body = json.dumps({"__type": code, "message": message}).encode()
    else:  # pragma: no cover - a service this project does not call
        raise ValueError(f"no error body for protocol {protocol}")
    return AWSResponse("https://aws.invalid/", status, headers, _Raw(body))


class SendErrors:
    """A ``before-send`` hook: the first attempts of one operation get errors.

    Args:
        client: the client to hook.
        operation: the API name, e.g. ``CreateSnapshot``.
        errors: ``(status, code)`` of each answered attempt, in order.
        message: the AWS error message of every answer.
    """

    def __init__(
        self,
        client: Any,
        operation: str,
        *errors: tuple[int, str],
        message: str = "injected",
    ) -> None:
        self.client = client
        self.errors = list(errors)
        self.message = message
        self.attempts = 0
        """Requests of ``operation`` that reached the send step."""
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-send.{service}.{operation}", self)

    def __call__(self, **_kwargs: Any) -> AWSResponse | None:
        self.attempts += 1
        if self.attempts > len(self.errors):
            return None
        status, code = self.errors[self.attempts - 1]
        return error_response(self.client, status, code, self.message)


def record_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make botocore's retry backoff instant; return the list its delays go to.

    botocore's endpoint sleeps the delay its retry handler computed with
    ``time.sleep``; only that module's view of ``time`` is replaced. The check
    first makes a botocore that sleeps another way fail loudly here rather than
    make the tests slow.
    """
    import time

    assert botocore.endpoint.time is time, "botocore no longer sleeps via time"
    delays: list[float] = []

    class _Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            delays.append(seconds)

    monkeypatch.setattr(botocore.endpoint, "time", _Time)
    return delays


def gives_up(
    client: Any, operation: str, error: tuple[int, str], call: Callable[[], object]
) -> TemporaryAwsError:
    """Answer every attempt of ``operation`` with ``error``; check the call gives up.

    Args:
        client: the client ``call`` uses.
        operation: the API name whose attempts all fail, e.g. ``DescribeVolumes``.
        error: ``(status, code)`` of every answer.
        call: makes the call through the code under test.

    Returns:
        The error the call raised, for its message and code to be checked; it
        has already been checked to end in "Gave up after MAX_ATTEMPTS
        attempts." after exactly ``MAX_ATTEMPTS`` attempts.
    """
    hook = SendErrors(client, operation, *[error] * (MAX_ATTEMPTS + 1))
    with pytest.raises(TemporaryAwsError) as info:
        call()
    assert hook.attempts == MAX_ATTEMPTS
    assert re.search(rf"Gave up after {MAX_ATTEMPTS} attempts\.$", str(info.value))
    return info.value
