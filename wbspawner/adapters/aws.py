"""Calling AWS for the pools: retries with backoff, and error codes mapped to advice.

This module owns :func:`call_aws`, through which every pools adapter calls boto3:
throttling is retried with full-jitter exponential backoff (on top of botocore's
own retries), and AWS error codes become :class:`~wbspawner.errors.AwsError`
messages an admin can act on: no capacity, throttling, a missing permission, an
object that exists already or is missing. It also makes the boto3 clients
(:func:`make_clients`).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from wbspawner.errors import AwsError, PermanentAwsError, TemporaryAwsError

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
"""An AWS response or request body, as boto3 takes and returns it."""

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthFailure",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
    }
)
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "InsufficientFreeAddressesInSubnet",
        "MaxSpotInstanceCountExceeded",
        "SpotMaxPriceTooLow",
        "UnfulfillableCapacity",
        "VcpuLimitExceeded",
    }
)
ALREADY_EXISTS_CODES = frozenset(
    {"AlreadyExists", "InvalidLaunchTemplateName.AlreadyExistsException"}
)
NOT_FOUND_CODES = frozenset(
    {
        "ParameterNotFound",
        "InvalidLaunchTemplateName.NotFoundException",
        "InvalidLaunchTemplateId.NotFound",
        "ResourceNotFoundException",
    }
)


class AlreadyExistsError(PermanentAwsError):
    """The object to create exists already (a previous run made it)."""


class NotFoundError(PermanentAwsError):
    """The object asked for does not exist."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """How :func:`call_aws` retries throttled calls."""

    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    """Injected so tests do not wait."""

    def delay(self, attempt: int) -> float:
        """Return the full-jitter backoff before retry number ``attempt`` (1-based)."""
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(cap / 2, cap)  # noqa: S311 - jitter, not crypto


DEFAULT_RETRY = Retry()


def map_error(err: ClientError, operation: str, context: str = "") -> AwsError:
    """Turn a boto3 ``ClientError`` into an :class:`AwsError` with a clear message.

    Args:
        err: the error.
        operation: ``service:Operation``, e.g. ``autoscaling:CreateAutoScalingGroup``.
        context: what the call was about, e.g. a group name.

    Returns:
        A :class:`TemporaryAwsError` (throttling, capacity) or a
        :class:`PermanentAwsError` (everything else), with ``code`` and ``operation``.
    """
    info = err.response.get("Error", {})
    code = str(info.get("Code", "Unknown"))
    text = str(info.get("Message", "")).strip()
    about = f" for {context}" if context else ""
    kw = {"code": code, "operation": operation}
    if code in THROTTLING_CODES:
        return TemporaryAwsError(
            f"AWS is throttling {operation}{about} ({code}); wait a minute and run "
            "the command again (it is safe to re-run).",
            **kw,
        )
    if code in CAPACITY_CODES:
        return TemporaryAwsError(
            f"AWS has no capacity{about} right now ({code}: {text}). Spot groups "
            "fall back to on-demand through Cluster Autoscaler's priority expander; "
            "otherwise add same-size instance types to the pool or use another "
            "zone, and try again later.",
            **kw,
        )
    if code in ACCESS_CODES:
        return PermanentAwsError(
            f"AWS denied {operation}{about} ({code}): the credentials in use lack "
            f"the IAM permission {operation}. {text}".strip(),
            **kw,
        )
    if code in ALREADY_EXISTS_CODES:
        return AlreadyExistsError(f"{context or operation} exists already", **kw)
    if code in NOT_FOUND_CODES or (
        code == "ValidationError" and "not found" in text.lower()
    ):
        return NotFoundError(f"{context or operation} not found ({code})", **kw)
    return PermanentAwsError(f"AWS rejected {operation}{about} ({code}): {text}", **kw)


def call_aws(
    client: Any,
    method: str,
    *,
    context: str = "",
    retry: Retry = DEFAULT_RETRY,
    **params: Any,
) -> JsonDict:
    """Call a boto3 client method, retrying throttling, mapping errors.

    Args:
        client: a boto3 client.
        method: the client method, e.g. ``create_auto_scaling_group``.
        context: what the call is about, for messages.
        retry: the retry policy.
        **params: the call's parameters.

    Returns:
        The response.

    Raises:
        AwsError: mapped from the AWS error (throttling only after the retries).
    """
    api = client.meta.method_to_api_mapping.get(method, method)
    operation = f"{client.meta.service_model.signing_name}:{api}"
    for attempt in range(1, retry.attempts + 1):
        try:
            result: JsonDict = getattr(client, method)(**params)
            return result
        except ClientError as err:
            mapped = map_error(err, operation, context)
            throttled = mapped.code in THROTTLING_CODES
            if not throttled or attempt == retry.attempts:
                if throttled:
                    mapped.message += f" Gave up after {attempt} attempts."
                    mapped.args = (mapped.message,)
                raise mapped from err
            delay = retry.delay(attempt)
            log.info(
                "%s throttled (%s), retry %d in %.1fs",
                operation,
                mapped.code,
                attempt,
                delay,
            )
            retry.sleep(delay)
        except BotoCoreError as err:
            raise _botocore_error(err, operation) from err
    raise AssertionError("unreachable")  # pragma: no cover


def _botocore_error(err: BotoCoreError, operation: str) -> AwsError:
    if isinstance(err, NoCredentialsError):
        return PermanentAwsError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, or run on a role.",
            operation=operation,
        )
    if isinstance(err, EndpointConnectionError):
        return TemporaryAwsError(
            f"cannot reach AWS for {operation}: {err}", operation=operation
        )
    return PermanentAwsError(f"{operation} failed: {err}", operation=operation)


def pages(
    client: Any, method: str, key: str, retry: Retry, **params: Any
) -> Iterable[JsonDict]:
    """Yield the items under ``key`` of every page of a paginated call."""
    token: str | None = None
    while True:
        more = {"NextToken": token} if token else {}
        page = call_aws(client, method, retry=retry, **params, **more)
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


def tag_dict(items: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Return AWS ``[{"Key", "Value"}]`` tags as a dict."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in items}


SERVICES = ("ec2", "autoscaling", "ssm", "eks")


def make_clients(region: str, endpoint_url: str | None = None) -> dict[str, Any]:
    """Return boto3 clients for the pools' services.

    Args:
        region: AWS region.
        endpoint_url: another endpoint (a local moto server); a loopback one is
            reached without any proxy from the environment.

    Returns:
        Clients by service name (``ec2``, ``autoscaling``, ``ssm``, ``eks``).
    """
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 3}}
    if endpoint_url and _is_loopback(endpoint_url):
        options["proxies"] = {}
    session: Any = boto3.session.Session(region_name=region)
    return {
        name: session.client(name, endpoint_url=endpoint_url, config=Config(**options))
        for name in SERVICES
    }


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
