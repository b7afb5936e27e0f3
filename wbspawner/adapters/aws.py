"""The one way wbspawner reaches AWS: clients, calls, pages, and errors as advice.

This module owns, for every AWS service wbspawner uses (EC2, Auto Scaling, SSM,
EKS, Budgets, STS, IAM, S3):

- :func:`make_client` and :func:`make_clients`: the only place boto3 clients
  are created: region, endpoint (a loopback one, such as a local moto server,
  is reached without the environment's proxies) and botocore's retries
  (:data:`RETRY_MODE`, :data:`MAX_ATTEMPTS`).
- :func:`call` and :func:`paginate`: one API call, or the items of every page
  of a paginated one through botocore's paginators, with each error turned
  into an :class:`~wbspawner.errors.AwsError`.
- :func:`map_error`: the only map from AWS error codes to messages an admin can
  act on: throttling, server failures, no capacity, a missing permission (with
  the KMS hint), an object that exists already or is missing, quotas, zones.

Nothing here retries: botocore retries throttling, 5xx answers and lost
connections, with exponential backoff and jitter, up to :data:`MAX_ATTEMPTS`
sends in all; the error after the last one says how many were made. The typed
wrappers that know what the calls mean (``pools.aws``, ``pools.aws_cluster``,
``homes.volumes``, ``costs.alarm``, ``costs.spot``, and
:mod:`~wbspawner.adapters.instance_types`) call through this module and import
neither boto3 nor botocore.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from wbspawner.errors import AwsError, PermanentAwsError, TemporaryAwsError

JsonDict = dict[str, Any]
"""An AWS response or request body, as boto3 takes and returns it."""

RETRY_MODE: Final = "standard"
"""botocore's retry mode, the one every AWS SDK shares. Not ``adaptive``: botocore
calls it experimental, and its client-side rate limiter holds back every later
call of a client once one call was throttled."""

MAX_ATTEMPTS: Final = 6
"""Sends of one call in all (the first and five retries), by botocore.

It is botocore's ``total_max_attempts``.

Standard mode waits a random time up to 1, 2, 4, 8 and 16 s before the retries
of a throttled call (about 15 s in all on average, 31 s at most): enough for a
burst of API throttling to pass, short enough for an admin at a prompt and for
the warmer's pass. Server errors and lost connections start from 50 ms.
"""

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "EC2ThrottledException",
        # A rate limit, but one botocore does not retry; the home move resumes.
        "SnapshotCreationPerVolumeRateExceeded",
    }
)
SERVER_CODES = frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"}
)
"""Failures on AWS's side (botocore retries them as it retries any 5xx)."""
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
    {
        "AlreadyExists",
        "InvalidLaunchTemplateName.AlreadyExistsException",
        "EntityAlreadyExists",
    }
)
NOT_FOUND_CODES = frozenset(
    {
        "ParameterNotFound",
        "InvalidLaunchTemplateName.NotFoundException",
        "InvalidLaunchTemplateId.NotFound",
        "ResourceNotFoundException",
        "NotFoundException",
        "InvalidVolume.NotFound",
        "InvalidSnapshot.NotFound",
        "NoSuchEntity",
        "NoSuchBucket",
    }
)
ZONE_CODES = frozenset({"InvalidZone.NotFound", "InvalidAvailabilityZone"})
EBS_QUOTA_CODES = frozenset({"VolumeLimitExceeded", "SnapshotLimitExceeded"})
KMS_HINT = (
    "the role also needs kms:CreateGrant, kms:Decrypt, kms:DescribeKey and "
    "kms:GenerateDataKeyWithoutPlaintext on the volumes' KMS key"
)
_RERUN = "wait a minute and run the command again (it is safe to re-run)"


class AlreadyExistsError(PermanentAwsError):
    """The object to create exists already (a previous run made it)."""


class NotFoundError(PermanentAwsError):
    """The object asked for does not exist."""


# ------------------------------------------------------------------ clients


def make_client(
    service: str,
    region: str,
    endpoint_url: str | None = None,
    *,
    max_attempts: int = MAX_ATTEMPTS,
) -> Any:
    """Return a boto3 client for one AWS service, set up as wbspawner needs it.

    Credentials come from boto3's usual chain (IRSA or Pod Identity in the
    cluster, ``AWS_PROFILE`` or keys on an admin's machine); when there are
    none, the first call raises an error that says so (see :func:`call`).

    Args:
        service: boto3 service name, e.g. ``ec2``, ``autoscaling``, ``budgets``.
        region: AWS region.
        endpoint_url: another endpoint (a local moto server); a loopback one is
            reached without any proxy from the environment.
        max_attempts: sends per call in all; fewer than :data:`MAX_ATTEMPTS`
            only where giving up soon is better (optional look-ups).

    Returns:
        The client (typed ``Any``: each service has its own stub type).
    """
    clients = make_clients((service,), region, endpoint_url, max_attempts=max_attempts)
    return clients[service]


def make_clients(
    services: Iterable[str],
    region: str,
    endpoint_url: str | None = None,
    *,
    max_attempts: int = MAX_ATTEMPTS,
) -> dict[str, Any]:
    """Return clients for several services, as :func:`make_client` makes them.

    They share one boto3 session, so credentials are resolved once and service
    data is loaded once.

    Args:
        services: boto3 service names.
        region: AWS region.
        endpoint_url: another endpoint (a local moto server).
        max_attempts: sends per call in all.

    Returns:
        Clients by service name.
    """
    import boto3
    from botocore.config import Config

    # total_max_attempts counts every send; botocore's max_attempts key would
    # count retries only (one send more than its value).
    options: dict[str, Any] = {
        "retries": {"mode": RETRY_MODE, "total_max_attempts": max_attempts}
    }
    if endpoint_url and _is_loopback(endpoint_url):
        options["proxies"] = {}
    session: Any = boto3.session.Session(region_name=region)
    return {
        name: session.client(name, endpoint_url=endpoint_url, config=Config(**options))
        for name in services
    }


def _is_loopback(url: str) -> bool:
    """Return whether a URL's host is this machine (``127.0.0.0/8``, ``::1``)."""
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# -------------------------------------------------------------------- calls


def operation_name(client: Any, method: str) -> str:
    """Return the IAM action of a client method, e.g. ``ec2:CreateSnapshot``."""
    api = client.meta.method_to_api_mapping.get(method, method)
    return f"{client.meta.service_model.signing_name}:{api}"


def call(client: Any, method: str, *, about: str = "", **params: Any) -> JsonDict:
    """Call a boto3 client method once (botocore retries); map its errors.

    Args:
        client: a client from :func:`make_client` (or a wrapper with its methods).
        method: the client method, e.g. ``create_auto_scaling_group``.
        about: what the call is about (a group name, a volume id), for messages.
        **params: the call's parameters.

    Returns:
        The response.

    Raises:
        AwsError: mapped from the AWS error, after botocore's last attempt.
    """
    with _mapped(operation_name(client, method), about):
        result: JsonDict = getattr(client, method)(**params)
    return result


def paginate(
    client: Any, method: str, key: str, *, about: str = "", **params: Any
) -> Iterator[JsonDict]:
    """Yield the items under ``key`` of every page, through botocore's paginator.

    Args:
        client: a client from :func:`make_client`.
        method: a paginated client method, e.g. ``describe_volumes``.
        key: the list in each page, e.g. ``Volumes``.
        about: what the call is about, for messages.
        **params: the call's parameters (a page size such as ``MaxResults`` too).

    Yields:
        The items, page after page.

    Raises:
        AwsError: mapped from the AWS error of any page.
    """
    with _mapped(operation_name(client, method), about):
        for page in client.get_paginator(method).paginate(**params):
            yield from page.get(key) or []


def tag_dict(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """Return AWS ``[{"Key", "Value"}]`` tags as a dict."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in items or ()}


@contextmanager
def _mapped(operation: str, about: str) -> Iterator[None]:
    try:
        yield
    except ClientError as err:
        raise map_error(err, operation, about) from err
    except BotoCoreError as err:
        raise _botocore_error(err, operation) from err


def _botocore_error(err: BotoCoreError, operation: str) -> AwsError:
    if isinstance(err, NoCredentialsError):
        return PermanentAwsError(
            "no AWS credentials found: run the hub and the warmer with their IAM "
            "role (IRSA or Pod Identity), and set AWS_PROFILE or AWS_ACCESS_KEY_ID "
            "/ AWS_SECRET_ACCESS_KEY for the command line.",
            operation=operation,
        )
    if isinstance(err, BotoConnectionError):
        return TemporaryAwsError(
            f"cannot reach AWS for {operation}: {err}", operation=operation
        )
    return PermanentAwsError(f"{operation} failed: {err}", operation=operation)


# ------------------------------------------------------------------- errors


def map_error(err: ClientError, operation: str, about: str = "") -> AwsError:
    """Turn a botocore ``ClientError`` into an :class:`AwsError` an admin can act on.

    Args:
        err: the error, as botocore raised it after its last attempt.
        operation: the IAM action, e.g. ``autoscaling:CreateAutoScalingGroup``.
        about: what the call was about (a group name, a volume id, a zone).

    Returns:
        A :class:`TemporaryAwsError` (throttling, server failures, no capacity),
        :class:`AlreadyExistsError`, :class:`NotFoundError` or another
        :class:`PermanentAwsError`, with ``code`` and ``operation`` set.
    """
    info = err.response.get("Error", {})
    code = str(info.get("Code", "Unknown"))
    text = str(info.get("Message") or "").strip()
    meta = err.response.get("ResponseMetadata", {})
    status = int(meta.get("HTTPStatusCode") or 0)
    attempts = int(meta.get("RetryAttempts") or 0) + 1
    tried = f" Gave up after {attempts} attempts." if attempts > 1 else ""
    on = f" for {about}" if about else ""
    kw = {"code": code, "operation": operation}
    if code in THROTTLING_CODES:
        return TemporaryAwsError(
            f"AWS is throttling {operation}{on} ({code}); {_RERUN}.{tried}", **kw
        )
    if code in SERVER_CODES or status >= 500:
        return TemporaryAwsError(
            f"AWS failed {operation}{on} ({code}: {text}); {_RERUN}.{tried}", **kw
        )
    if code in CAPACITY_CODES:
        return TemporaryAwsError(
            f"AWS has no capacity{on} right now ({code}: {text}). Spot groups "
            "fall back to on-demand through Cluster Autoscaler's priority expander; "
            "otherwise add same-size instance types to the pool or use another "
            "zone, and try again later.",
            **kw,
        )
    if code in ACCESS_CODES:
        kms = f"; {KMS_HINT}" if "kms" in text.lower() else ""
        return PermanentAwsError(
            f"AWS denied {operation}{on} ({code}): the credentials in use lack "
            f"the IAM permission {operation}{kms}. {text}".strip(),
            **kw,
        )
    if code in ALREADY_EXISTS_CODES:
        return AlreadyExistsError(f"{about or operation} exists already", **kw)
    if code in NOT_FOUND_CODES or (
        code == "ValidationError" and "not found" in text.lower()
    ):
        return NotFoundError(_not_found_message(code, operation, about), **kw)
    return PermanentAwsError(_refusal_message(code, operation, about, text), **kw)


def _not_found_message(code: str, operation: str, about: str) -> str:
    if code == "InvalidVolume.NotFound":
        return (
            f"EBS volume {about or '?'} does not exist ({code}): it was deleted, "
            "or it is in another region or account"
        )
    if code == "InvalidSnapshot.NotFound":
        return f"EBS snapshot {about or '?'} does not exist ({code})"
    return f"{about or operation} not found ({code})"


def _refusal_message(code: str, operation: str, about: str, text: str) -> str:
    """Return the message for an error that retrying will not fix."""
    if "KMS" in code:
        return (
            f"{operation} cannot use the volume's KMS key ({code}): {KMS_HINT}. {text}"
        )
    if code in ZONE_CODES:
        return (
            f"availability zone {about or '?'} does not exist in this region "
            f"({code}); use one of the pools' zones"
        )
    if code in EBS_QUOTA_CODES:
        return (
            f"the account's EBS quota is reached ({code}): {text}. Raise it in "
            "Service Quotas, or delete unused volumes and snapshots"
        )
    on = f" for {about}" if about else ""
    return f"AWS rejected {operation}{on} ({code}): {text}"
