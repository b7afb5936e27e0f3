"""Error types of wbspawner, and the shim that hands user errors to JupyterHub.

This module owns the error vocabulary shared by every layer:

- :class:`Problem` / :class:`ProfileConfigError`: the admin's profiles are invalid.
  Raised at load time (hub start, reload, CLI), never during a spawn.
- :class:`UserFacingError`: something a user did or asked for cannot be done. Its
  ``message`` is written for that user; ``log_message`` is for the operator.
- :class:`AwsError` and its subclasses: adapter errors, mapped from AWS error codes.
- :class:`KubeError`: the Kubernetes API refused or failed a request (raised by
  :mod:`wbspawner.adapters.kube`, the one Kubernetes client).

It must not import JupyterHub at module level: pure code raises these errors and the
unit tests run without a hub.
"""

from __future__ import annotations

from dataclasses import dataclass


class WbError(Exception):
    """Base class of every error wbspawner raises on purpose."""


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One problem found in the admin's configuration.

    Rendered as ``file: $.json.path: message`` so that an admin can jump to it.
    """

    file: str
    """The file the problem is in (as given to the loader), or ``<profiles>``."""
    path: str
    """A JSONPath into that file's document, e.g. ``$.sizes[2].pool``."""
    message: str
    """What is wrong, in words an admin understands."""

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


class ProfileConfigError(WbError):
    """The profiles are invalid; ``problems`` lists every problem found, sorted."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(set(problems)))
        super().__init__(self.render())

    def render(self) -> str:
        """Return every problem, one per line."""
        return "\n".join(str(p) for p in self.problems)


class UserFacingError(WbError):
    """An expected failure whose ``message`` may be shown to the user as it is.

    The fields mirror JupyterHub's ``SpawnException`` so the hub can show the
    message and log the details without a traceback.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "invalid",
        log_message: str | None = None,
        status_code: int = 400,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.log_message = log_message or message
        self.status_code = status_code


class AwsError(WbError):
    """An AWS call failed; ``message`` is written for an admin."""

    def __init__(self, message: str, *, code: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.operation = operation


class TemporaryAwsError(AwsError):
    """Throttling or a transient AWS failure: retrying later may succeed."""


class PermanentAwsError(AwsError):
    """A permission, validation or not-found error: retrying will not help."""


class KubeError(WbError):
    """The Kubernetes API refused or failed a request; ``message`` is for an admin.

    Attributes:
        status: HTTP status (0 when the API could not be reached in time).
        reason: the API's ``Status.reason`` (``NotFound``, ``AlreadyExists`` …).
        message: what went wrong, with the API's own words when it answered.
    """

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


def to_hub_error(err: UserFacingError) -> Exception:
    """Translate a :class:`UserFacingError` into what JupyterHub shows to users.

    JupyterHub 6 passes ``SpawnException`` messages through to the spawn pending page
    and the REST API; older hubs pass ``tornado.web.HTTPError`` messages through.

    Args:
        err: the error to translate.

    Returns:
        An exception to raise from spawner code.
    """
    try:
        from jupyterhub.spawner import SpawnException  # type: ignore[import-untyped,attr-defined,unused-ignore]
    except ImportError:  # JupyterHub < 6
        from tornado.web import HTTPError

        return HTTPError(err.status_code, err.message)
    exc: Exception = SpawnException(
        err.message, reason=err.reason, log_message=err.log_message
    )
    if hasattr(exc, "status_code"):
        exc.status_code = err.status_code
    # JupyterHub 6.1 shows ``jupyterhub_message`` on the spawn form, else str(exc),
    # which for a SpawnException is the log message, not the user's.
    exc.jupyterhub_message = err.message  # type: ignore[attr-defined]
    return exc
