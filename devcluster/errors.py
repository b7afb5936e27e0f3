"""ApiError: a failure that becomes a Kubernetes ``Status`` body on the wire."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An API failure with the code, reason and message a real apiserver sends.

    Attributes:
        code: HTTP status (404, 409, 410, 422, 400, ...).
        reason: ``NotFound``, ``AlreadyExists``, ``Conflict``, ``Expired``,
            ``Gone``, ``Invalid``, ``BadRequest``, ...
        message: human-readable text, worded like the apiserver's.
        details: optional ``Status.details`` (name, group, kind, causes).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict[str, Any]:
        """Return the ``meta/v1 Status`` body for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(plural: str, group: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return details


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, name: str, group: str = "") -> ApiError:
    """Return the apiserver's 404 for a missing object."""
    return ApiError(
        404,
        "NotFound",
        f'{_qualified(plural, group)} "{name}" not found',
        _details(plural, group, name),
    )


def already_exists(plural: str, name: str, group: str = "") -> ApiError:
    """Return the apiserver's 409 for a create of an existing name."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(plural, group)} "{name}" already exists',
        _details(plural, group, name),
    )


def conflict(plural: str, name: str, group: str = "") -> ApiError:
    """Return the apiserver's 409 for a stale resourceVersion."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": '
        "the object has been modified; please apply your changes to the latest "
        "version and try again",
        _details(plural, group, name),
    )


def expired(requested: int, oldest: int) -> ApiError:
    """Return the 410 a watch or list gets for a compacted resourceVersion."""
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def invalid(
    kind: str, name: str, causes: list[dict[str, str]], group: str = ""
) -> ApiError:
    """Return the apiserver's 422 with one cause per problem."""
    text = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    details = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return ApiError(
        422,
        "Invalid",
        f'{kind}{"." + group if group else ""} "{name}" is invalid: {text}',
        details,
    )


def bad_request(message: str) -> ApiError:
    """Return a 400 Bad Request."""
    return ApiError(400, "BadRequest", message)
