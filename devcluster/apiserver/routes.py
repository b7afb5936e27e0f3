"""Wire helpers of the API server: path routing, parameters, JSON, fault injection."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from devcluster.apiserver import protobuf
from devcluster.apiserver.resources import GROUPS, RESOURCES, SUBRESOURCES, Resource
from devcluster.errors import ApiError, bad_request

TRUE = ("true", "True", "1")
"""Spellings of a true boolean query parameter (the apiserver uses ParseBool)."""
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Route:
    """A parsed resource path."""

    res: Resource
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_prefix: bool = False


@dataclass
class Fault:
    """An injected failure: the next ``times`` matching requests get ``status``."""

    method: str
    plural: str
    status: int
    times: int = 1
    message: str = "injected failure"


class Faults:
    """Failure injection for tests (``fail_next``) and a request log."""

    def __init__(self) -> None:
        self.pending: list[Fault] = []

    def fail_next(
        self, method: str, plural: str, status: int, times: int = 1, message: str = ""
    ) -> None:
        """Make the next ``times`` ``method`` requests on ``plural`` fail."""
        self.pending.append(
            Fault(method.upper(), plural, status, times, message or "injected failure")
        )

    def take(self, method: str, plural: str) -> Fault | None:
        """Return and consume a matching fault, if any."""
        for fault in self.pending:
            if fault.method == method and fault.plural == plural and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.pending.remove(fault)
                return fault
        return None


def parse_route(path: str) -> Route:
    """Parse ``/api/v1/...`` or ``/apis/g/v/...`` into a Route (404 when unknown)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif (
        len(parts) >= 3 and parts[0] == "apis" and parts[2] in GROUPS.get(parts[1], ())
    ):
        group, rest = parts[1], parts[3:]
    else:
        raise not_found_path()
    watch = bool(rest) and rest[0] == "watch"
    if watch:
        rest = rest[1:]
    namespace = None
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and rest[2] not in ("status", "finalize")
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise not_found_path()
    res = RESOURCES.get(rest[0])
    if (
        res is None
        or res.group != group
        or (namespace is not None and not res.namespaced)
    ):
        raise not_found_path()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in SUBRESOURCES.get(res.plural, ()):
        raise not_found_path()
    return Route(res, namespace, name, sub, watch)


def not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def json_response(body: Any, status: int = 200) -> web.Response:
    """Return a compact JSON response."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type=JSON,
    )


async def read_body(request: web.Request) -> Any:
    """Return the request body as JSON data (protobuf bodies decoded)."""
    raw = await request.read()
    if not raw:
        return None
    if request.headers.get("Content-Type", "").startswith(protobuf.MEDIA_TYPE):
        return protobuf.decode(raw)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_request(
            f"the body of the request was in an unknown format: {exc}"
        ) from exc


def int_param(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"invalid value for {name}: {value!r}") from None


@dataclass(frozen=True, slots=True)
class WriteOptions:
    """The query parameters of a write (create, update, patch, apply)."""

    field_validation: str = ""
    dry_run: bool = False
    field_manager: str = ""
    force: bool = False


def write_options(query: Any, user_agent: str = "") -> WriteOptions:
    """Parse ``fieldValidation``, ``dryRun``, ``fieldManager`` and ``force``.

    Without ``fieldManager`` the writer is named after its user agent, as the
    apiserver does (``kubectl/v1.35.0 (...)`` → ``kubectl``).

    Raises:
        ApiError: 400 for a dryRun other than ``All``.
    """
    dry_run = query.get("dryRun", "")
    if dry_run not in ("", "All"):
        raise bad_request(f'Invalid dry run value "{dry_run}": must be "All"')
    manager = query.get("fieldManager") or user_agent.split("/", 1)[0].strip()
    return WriteOptions(
        field_validation=query.get("fieldValidation", ""),
        dry_run=dry_run == "All",
        field_manager=manager[:128],
        force=query.get("force") in TRUE,
    )


def parse_document(raw: bytes) -> Any:
    """Parse a JSON or YAML request body (apply patches may be either).

    Raises:
        ApiError: 400 when the body is neither.
    """
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise bad_request(
            f"the body of the request was in an unknown format: {exc}"
        ) from exc
