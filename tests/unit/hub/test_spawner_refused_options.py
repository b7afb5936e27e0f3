"""Refused options are never kept as the user's saved options.

JupyterHub writes a start request's options to its database before the spawner
checks them (``User.spawn``), and reuses them when a later start sends none (the
admin page). These tests play the hub's part on a ``WorkbenchSpawner`` built as
the hub builds it (with the saved options and its ``orm_spawner``);
``offline_kubeconfig`` (this folder's conftest) keeps KubeSpawner's client offline.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.objects import Hub, Server
from jupyterhub.spawner import SpawnException
from traitlets.config import Config

from wbspawner.hub.hubconfig import StaticProfiles
from wbspawner.hub.spawner import WorkbenchSpawner
from wbspawner.model import Profiles

pytestmark = pytest.mark.usefixtures("offline_kubeconfig")

SAVED = {"profile": "large", "image": "scipy"}


@pytest.fixture(scope="module")
def source(profiles: Profiles) -> StaticProfiles:
    return StaticProfiles(profiles)


class User:
    """bob as the spawner sees him: groups, auth state with his POSIX ids."""

    name = escaped_name = "bob"
    id = 7
    admin = False
    url = "/user/bob/"

    def __init__(self) -> None:
        self.groups = [SimpleNamespace(name="jupyter-users")]
        self.server = Server()

    async def get_auth_state(self) -> dict[str, Any]:
        return {"uidNumber": 10002, "gidNumber": 100}


class NoHome:
    """The cluster as the spawner reads it for a user without a home yet."""

    async def get_pvc(self, namespace: str, name: str) -> None:
        return None

    async def list_pvs(self, label_selector: str | None = None) -> list[Any]:
        return []


def saved(options: dict[str, Any] | None) -> SimpleNamespace:
    """The hub's database row of bob's default server, with its saved options."""
    return SimpleNamespace(name="", server=None, user_options=options)


def build(source: StaticProfiles, orm: SimpleNamespace) -> WorkbenchSpawner:
    """Build the spawner as ``User._new_spawner`` does: with the saved options."""
    c = Config()
    c.WorkbenchSpawner.profiles_source = lambda: source
    c.KubeSpawner.namespace = "jhub"
    spawner = WorkbenchSpawner(
        hub=Hub(),
        user=User(),
        config=c,
        orm_spawner=orm,
        user_options=dict(orm.user_options or {}),
        api_token="token",
        oauth_client_id="client",
    )
    spawner.kube = NoHome()  # type: ignore[assignment]
    return spawner


def start_request(spawner: WorkbenchSpawner, options: dict[str, Any] | None) -> None:
    """Do what ``User.spawn`` does before ``load_user_options``."""
    body = b"" if options is None else b"profile=..."
    spawner.handler = SimpleNamespace(request=SimpleNamespace(body=body, query=""))
    if options is not None:  # sent options are saved at once
        spawner.orm_spawner.user_options = options
    spawner.user_options = spawner.orm_spawner.user_options or {}


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"profile": "gpu-t4"}, id="forbidden-size"),
        pytest.param({"profile": ""}, id="empty-size"),
        pytest.param({"profile": "large", "image": "evil"}, id="forged-image"),
    ],
)
async def test_refused_options_give_back_the_saved_ones(
    source: StaticProfiles, options: dict[str, Any]
) -> None:
    orm = saved(dict(SAVED))
    spawner = build(source, orm)
    start_request(spawner, dict(options))
    with pytest.raises(SpawnException):
        await spawner.load_user_options()
    assert orm.user_options == SAVED
    assert spawner.user_options == SAVED


async def test_the_last_accepted_options_are_the_ones_kept(
    source: StaticProfiles,
) -> None:
    orm = saved(None)
    spawner = build(source, orm)
    start_request(spawner, {"profile": "medium"})
    await spawner.load_user_options()
    start_request(spawner, {"profile": "gpu-t4"})
    with pytest.raises(SpawnException, match="reason=forbidden"):
        await spawner.load_user_options()
    assert orm.user_options == {"profile": "medium"}


async def test_a_start_without_options_leaves_the_saved_ones(
    source: StaticProfiles,
) -> None:
    """A start that sent nothing changed nothing: a refusal keeps what was saved."""
    orm = saved({"profile": "medium"})
    spawner = build(source, orm)
    spawner._kept_options = {"profile": "small"}  # older than the saved ones
    spawner.user.get_auth_state = _no_auth_state
    start_request(spawner, None)
    with pytest.raises(SpawnException, match="reason=account"):
        await spawner.load_user_options()
    assert orm.user_options == {"profile": "medium"}


async def _no_auth_state() -> None:
    return None


async def test_form_after_a_refusal_preselects_the_saved_size(
    source: StaticProfiles, caplog: pytest.LogCaptureFixture
) -> None:
    orm = saved(dict(SAVED))
    spawner = build(source, orm)
    start_request(spawner, {"profile": "gpu-t4"})
    with pytest.raises(SpawnException):
        await spawner.load_user_options()
    caplog.set_level(logging.INFO)
    form = await build(source, orm).get_options_form()
    assert "no longer" not in form
    assert "Not pre-selecting" not in caplog.text


@pytest.mark.parametrize(
    ("formdata", "expected"),
    [
        pytest.param({"profile": [""]}, {"profile": ""}, id="empty"),
        pytest.param(
            {"profile": ["large", "medium"]},
            {"profile": ["large", "medium"]},
            id="repeated",
        ),
        pytest.param(
            {"profile": ["large"], "profile-option-large--image": ["scipy"]},
            {"profile": "large", "image": "scipy"},
            id="one-size",
        ),
    ],
)
async def test_form_options_keep_a_size_without_one_value(
    source: StaticProfiles, formdata: dict[str, list[str]], expected: dict[str, Any]
) -> None:
    spawner = build(source, saved(None))
    assert spawner.run_options_from_form(formdata) == expected
