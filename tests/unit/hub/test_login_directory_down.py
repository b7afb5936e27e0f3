"""A login while the directory does not answer: a 503 that says so, no traceback."""

from __future__ import annotations

import logging

import pytest
from ldap3.core.exceptions import (
    LDAPResponseTimeoutError,
    LDAPSessionTerminatedByServerError,
    LDAPSocketOpenError,
)
from ldapauthenticator import LDAPAuthenticator
from tornado import web
from traitlets.config import Config

from wbspawner.hub.ldap import DIRECTORY_DOWN_MESSAGE
from wbspawner.hub.login import WorkbenchLDAPAuthenticator


def authenticator() -> WorkbenchLDAPAuthenticator:
    c = Config()
    c.LDAPAuthenticator.server_address = "ldap.example.org"
    c.LDAPAuthenticator.bind_dn_template = ["uid={username},ou=people,dc=example"]
    return WorkbenchLDAPAuthenticator(config=c)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(LDAPSocketOpenError("connection refused"), id="refused"),
        pytest.param(LDAPSessionTerminatedByServerError("reset"), id="reset"),
        pytest.param(LDAPResponseTimeoutError("no answer"), id="silent"),
    ],
)
async def test_an_unreachable_directory_is_a_503_that_says_so(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    def unreachable(self: object, userdn: str, password: str) -> None:
        raise error

    monkeypatch.setattr(LDAPAuthenticator, "get_connection", unreachable)
    caplog.set_level(logging.INFO)
    with pytest.raises(web.HTTPError) as info:
        await authenticator().authenticate(None, {"username": "bob", "password": "x"})
    assert info.value.status_code == 503
    assert info.value.get_message() == DIRECTORY_DOWN_MESSAGE
    assert "try again in a minute" in DIRECTORY_DOWN_MESSAGE
    assert "Login of 'bob' refused: the directory at ldap.example.org" in caplog.text
    assert type(error).__name__ in caplog.text
    assert "Traceback" not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)


async def test_a_wrong_password_is_still_a_refused_login(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bind the directory refuses is not an outage: ``None``, as before."""

    def refused(self: object, userdn: str, password: str) -> None:
        return None

    monkeypatch.setattr(LDAPAuthenticator, "get_connection", refused)
    data = {"username": "bob", "password": "wrong"}
    assert await authenticator().authenticate(None, data) is None
