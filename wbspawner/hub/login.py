"""The hub's authenticator: ldapauthenticator's, telling people in no group why.

ldapauthenticator refuses a directory account that is in none of the allowed
groups as it refuses a wrong password, so JupyterHub shows "Invalid username or
password" to someone whose password is right. This module owns the one
difference: :class:`WorkbenchLDAPAuthenticator` refuses such an account with an
HTTP 403 whose message says the groups are the reason, and JupyterHub's login
page shows that message instead. Binds, searches, groups and auth state stay
ldapauthenticator's; the text is :func:`wbspawner.hub.ldap.not_in_group_message`.
"""

from __future__ import annotations

from typing import Any

from ldapauthenticator import LDAPAuthenticator
from tornado import web
from traitlets import Unicode

from wbspawner.hub.ldap import not_in_group_message


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
