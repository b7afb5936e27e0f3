"""The hub's authenticator: ldapauthenticator's, telling people why they cannot log in.

ldapauthenticator refuses a directory account that is in none of the allowed
groups as it refuses a wrong password, so JupyterHub shows "Invalid username or
password" to someone whose password is right; and when the directory cannot be
reached, its connection error escapes as an HTTP 500 with a traceback in the
hub's log. This module owns the two differences:
:class:`WorkbenchLDAPAuthenticator` refuses an account in no group with an HTTP
403 whose message says the groups are the reason, and a login while the
directory is unreachable with an HTTP 503 that says so (one warning line in the
log, no traceback); JupyterHub's login page shows the message. Binds, searches,
groups and auth state stay ldapauthenticator's; the texts are
:func:`wbspawner.hub.ldap.not_in_group_message` and
:data:`wbspawner.hub.ldap.DIRECTORY_DOWN_MESSAGE`.
"""

from __future__ import annotations

from typing import Any

from ldap3.core.exceptions import LDAPCommunicationError, LDAPResponseTimeoutError
from ldapauthenticator import LDAPAuthenticator
from tornado import web
from traitlets import Unicode

from wbspawner.hub.ldap import DIRECTORY_DOWN_MESSAGE, not_in_group_message

UNREACHABLE = (LDAPCommunicationError, LDAPResponseTimeoutError)
"""What ldap3 raises when the directory does not answer (refused, reset, silent)."""


class WorkbenchLDAPAuthenticator(LDAPAuthenticator):
    """LDAP login that says when a person is in none of the allowed groups."""

    not_allowed_message = Unicode(
        not_in_group_message(()),
        config=True,
        help="""
        Shown on the login page to a person whose directory password is right
        but who is in none of the groups allowed to use the hub.

        ``hubconfig.apply`` sets it from the profiles' groups, naming them.
        """,
    )

    async def authenticate(self, handler: Any, data: dict[str, str]) -> Any:
        """Log in through ldapauthenticator; a directory that is down is a 503.

        Args:
            handler: the login handler.
            data: the login form's fields.

        Returns:
            What ldapauthenticator returns (``None`` for a refused login).

        Raises:
            tornado.web.HTTPError: 503 with :data:`DIRECTORY_DOWN_MESSAGE` when
                the directory cannot be reached (right or wrong password alike:
                nobody can be checked).
        """
        try:
            return await super().authenticate(handler, data)
        except UNREACHABLE as err:
            self.log.warning(
                "Login of %r refused: the directory at %s:%s cannot be reached"
                " (%s: %s)",
                data.get("username"),
                self.server_address,
                self.server_port,
                type(err).__name__,
                err,
            )
            raise web.HTTPError(503, "%s", DIRECTORY_DOWN_MESSAGE) from None

    async def check_allowed(self, username: str, auth_model: Any = None) -> bool:
        """Return ``True`` for members of an allowed group, else refuse with why.

        JupyterHub asks only after :meth:`authenticate` bound to the directory
        with the person's own password, so a refusal here is never about the
        password.

        Args:
            username: the hub user name.
            auth_model: what :meth:`authenticate` returned (groups in
                ``auth_state``).

        Returns:
            ``True`` when the account may log in.

        Raises:
            tornado.web.HTTPError: 403 with :attr:`not_allowed_message`.
        """
        if await super().check_allowed(username, auth_model):
            return True
        self.log.warning("User %r not allowed: in none of the allowed groups", username)
        # The message is an argument, not the format: group names may hold '%'.
        raise web.HTTPError(403, "%s", self.not_allowed_message)
