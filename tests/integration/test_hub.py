"""The hub end to end: LDAP login, the size form, a whole-node spawn, refusals, reload.

One stack for the module (slapd, devcluster with moto node groups for the pools
used here, JupyterHub + configurable-http-proxy started through the repository's
``jupyterhub_config.py``); every test talks to it over HTTP like a browser, and
checks the cluster through the Kubernetes API.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devcluster.demo.workbench import Workbench
from devcluster.services.descendants import descendants, reap, still_alive
from tests.integration.hub_harness import (
    HubUser,
    edit_profiles,
    environ_of,
    error_on,
    hub_log,
    login_error_on,
    pod_of,
    pvc_of,
    sizes_on,
    start_hub_again,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("bob_left_stopped"),
]

BOB_SIZES = ["small", "medium", "large", "xlarge", "xxlarge"]


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {
        "pools": ["cpu16", "mem64"],
        "zones": ["us-east-1b"],
        "capacity_grace_s": 1.0,
    }


@pytest.fixture(scope="module")
def bench(workbench: Workbench) -> Iterator[Workbench]:
    yield workbench
    # The stack's own check, once every test of the module has used it and
    # before it stops: whatever the tests did (refusals, bad profile edits,
    # a spawn without capacity), the hub logged no traceback.
    log = workbench.state_dir / "hub.log"
    assert log.stat().st_size > 0, f"{log} is empty"
    assert "Traceback" not in hub_log(workbench), f"{log} holds a traceback"


def test_user_in_no_group_gets_403(bench: Workbench) -> None:
    response = HubUser(bench.url, "carol", "carol-pw").login()
    assert response.status_code == 403
    assert "User 'carol' not allowed" in hub_log(bench)


def test_wrong_password_gets_403(bench: Workbench) -> None:
    assert HubUser(bench.url, "bob", "wrong").login().status_code == 403


def test_user_in_no_group_is_told_so_not_that_the_password_is_wrong(
    bench: Workbench,
) -> None:
    carol = HubUser(bench.url, "carol", "carol-pw").login()
    assert carol.status_code == 403
    assert login_error_on(carol.text) == (
        "You are not in a group allowed to use this hub. Ask an admin to add you "
        "to one of: gpu-users, jupyter-admins, jupyter-users."
    )
    wrong = HubUser(bench.url, "carol", "not-carols-pw").login()
    assert wrong.status_code == 403
    assert login_error_on(wrong.text) == "Invalid username or password"


def test_hub_groups_and_admin_follow_ldap(alice: HubUser, bob: HubUser) -> None:
    me = alice.api("GET", "/user").json()
    assert me["admin"] is True
    assert sorted(me["groups"]) == ["jupyter-admins", "jupyter-users"]
    assert bob.api("GET", "/user").json()["groups"] == ["jupyter-users"]


def _uid(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else str(obj["metadata"]["uid"])


def test_form_lists_exactly_bobs_sizes_with_prices(bob: HubUser) -> None:
    form = bob.form()
    assert sizes_on(form) == BOB_SIZES
    assert "64 GiB memory · 8 CPUs" in form
    assert "$0.50/h on-demand" in form
    assert "wb-admin-warning" not in form


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"profile": "enormous"},
            "There is no server size 'enormous'",
            id="unknown-size",
        ),
        pytest.param(
            {"profile": "gpu-t4"},
            "is not available to your groups (jupyter-users). Ask an admin to add "
            "you to 'gpu-users'.",
            id="gpu-size-for-bob",
        ),
        pytest.param(
            {"profile": "large", "profile-option-large--image": "evil"},
            "There is no image 'evil' for '64 GiB'",
            id="forged-image",
        ),
        pytest.param(
            {
                "profile": "large",
                "profile-option-large--image--unlisted-choice": "evil/miner:1",
            },
            "does not accept custom values",
            id="unlisted-image",
        ),
    ],
)
def test_forged_posts_are_refused_with_a_message(
    bench: Workbench, bob: HubUser, data: dict[str, str], message: str
) -> None:
    home_before = _uid(pvc_of(bench.kube, "bob"))  # type: ignore[arg-type]
    bob.form()
    response = bob.spawn(data)
    assert response.status_code == 400
    assert message in error_on(response.text)
    assert sizes_on(response.text) == BOB_SIZES  # the form is shown again
    assert pod_of(bench.kube, "bob") is None  # type: ignore[arg-type]
    # No home made for the refused post (one a start of another test made stays).
    assert _uid(pvc_of(bench.kube, "bob")) == home_before  # type: ignore[arg-type]
    log = hub_log(bench)
    assert "Refused bob" in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"profile": ""}, "No server size was chosen", id="empty"),
        pytest.param(
            {"profile": ["large", "medium"]},
            "The option 'profile' must be text",
            id="repeated",
        ),
        pytest.param(
            {"profile": "large", "profile-option-large--image": ""},
            "No image was chosen",
            id="empty-image",
        ),
    ],
)
def test_a_form_without_one_size_is_refused_not_defaulted(
    bench: Workbench, bob: HubUser, data: dict[str, str | list[str]], message: str
) -> None:
    bob.form()
    response = bob.spawn(data)
    assert response.status_code == 400
    assert message in error_on(response.text)
    assert pod_of(bench.kube, "bob") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"profile": ""}, "No server size was chosen", id="empty"),
        pytest.param({"profile": None}, "No server size was chosen", id="null"),
        pytest.param({"profile": ["large"]}, "must be text", id="list"),
    ],
)
def test_an_api_start_without_one_size_is_refused_not_defaulted(
    bench: Workbench, bob: HubUser, options: dict[str, object], message: str
) -> None:
    response = bob.api("POST", "/users/bob/server", json=options)
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]
    assert pod_of(bench.kube, "bob") is None  # type: ignore[arg-type]


def saved_options(bob: HubUser) -> dict[str, object]:
    """bob's saved options, as a new start without options would reuse them."""
    bob.form()  # a failed spawner is replaced by one read from the database
    model = bob.api("GET", "/users/bob", params={"include_stopped_servers": "1"})
    model.raise_for_status()
    server = model.json()["servers"].get("", {})
    return dict(server.get("user_options") or {})


def test_refused_options_are_never_the_saved_ones(
    bench: Workbench, bob: HubUser, alice: HubUser
) -> None:
    kube = bench.kube
    assert kube is not None
    # Saved options this stack can start, whatever ran before (a test that
    # asks for 128 GiB, which has no node group here, saves that size too).
    bob.form()
    assert bob.spawn({"profile": "medium"}).status_code == 302
    try:
        bob.wait_ready(timeout=150)
    finally:
        bob.stop(kube)
    before = saved_options(bob)
    assert before.get("profile") == "medium", before
    refused = bob.spawn({"profile": "gpu-t4"})
    assert refused.status_code == 400
    assert saved_options(bob) == before
    form = bob.form()
    assert "no longer" not in form
    assert "Not pre-selecting saved user_options" not in hub_log(bench)

    # An admin starts bob's server from the admin page: the saved options.
    started = alice.api("POST", "/users/bob/server")
    assert started.status_code in (201, 202), started.text
    messages = [e.get("message", "") for e in bob.progress()]
    assert not [m for m in messages if "no longer" in m or "GPU" in m], messages
    bob.wait_ready(timeout=150)
    pod = pod_of(kube, "bob")
    assert pod is not None
    assert pod["metadata"]["labels"]["wbspawner.io/size"] == "medium"
    bob.stop(kube)


def test_profile_edit_shows_on_the_next_form(bench: Workbench, bob: HubUser) -> None:
    sizes = bench.profiles_dir / "20-sizes.yaml"
    original = sizes.read_text(encoding="utf-8")
    edited = original.replace("everyday analysis", "everyday analysis, edited live")
    assert edited != original
    try:
        edit_profiles(bench, "20-sizes.yaml", edited)
        wait_until(
            lambda: "edited live" in bob.form(), 15, "edited description on the form"
        )
    finally:
        edit_profiles(bench, "20-sizes.yaml", original)
        wait_until(lambda: "edited live" not in bob.form(), 15, "edit reverted")


def test_broken_edit_keeps_profiles_and_warns_admins(
    bench: Workbench, bob: HubUser, alice: HubUser
) -> None:
    path = bench.profiles_dir / "25-broken.yaml"
    try:
        edit_profiles(bench, path.name, "sizes:\n  - slug: oops\n    pool: nowhere\n")

        def warned() -> str | None:
            form = alice.form()
            return form if "wb-admin-warning" in form else None

        form = wait_until(warned, 15, "admin warning on the form")
        assert "25-broken.yaml" in form
        bob_form = bob.form()
        assert sizes_on(bob_form) == BOB_SIZES
        assert "wb-admin-warning" not in bob_form
        assert "Profiles problem" in hub_log(bench)
    finally:
        path.unlink(missing_ok=True)
    wait_until(lambda: "wb-admin-warning" not in alice.form(), 15, "warning gone")


def test_start_64_gib_gets_a_whole_node_of_the_pool(
    bench: Workbench, bob: HubUser
) -> None:
    kube = bench.kube
    assert kube is not None
    bob.form()
    response = bob.spawn({"profile": "large", "profile-option-large--image": "scipy"})
    assert response.status_code == 302
    assert "/hub/spawn-pending/bob" in response.headers["location"]
    messages = [e.get("message", "") for e in bob.progress()]
    # A cold pool says it starts a node; a node another test left booting or
    # warm (the warmer keeps recent spawns' sizes) is waited for instead.
    assert (
        "Starting a 64 GiB node in us-east-1b, usually about 3 minutes" in messages
        or "Waiting for a free 64 GiB node in us-east-1b" in messages
    ), messages
    assert any(m.startswith("Got a 64 GiB node (") for m in messages)
    status = bob.wait_ready(timeout=150)
    assert "started" in status.json()

    pod = pod_of(kube, "bob")
    assert pod is not None
    spec = pod["spec"]
    node = kube.get(f"/api/v1/nodes/{spec['nodeName']}")
    assert node["metadata"]["labels"]["wbspawner.io/pool"] == "mem64"
    assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == "us-east-1b"
    assert spec["nodeSelector"]["wbspawner.io/pool"] == "mem64"
    tolerations = {(t["key"], t.get("value")) for t in spec["tolerations"]}
    assert ("wbspawner.io/pool", "mem64") in tolerations
    resources = spec["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"]
    memory_mib = int(resources["limits"]["memory"]) // 2**20
    assert 60_000 < memory_mib < 64 * 1024
    assert spec["containers"][0]["securityContext"]["runAsUser"] == 10002
    assert spec["securityContext"]["fsGroup"] == 100
    assert pod["metadata"]["labels"]["wbspawner.io/size"] == "large"

    claim = pvc_of(kube, "bob")
    assert claim is not None
    assert claim["status"]["phase"] == "Bound"

    state = bob.api("GET", "/users/bob").json()
    assert state["servers"][""]["ready"] is True
    bob.stop(kube)
    assert pvc_of(kube, "bob") is not None  # the home stays
    assert "Traceback" not in hub_log(bench)


def test_server_runs_as_the_ldap_uid_and_owns_what_it_writes(
    bench: Workbench, bob: HubUser
) -> None:
    """The singleuser server runs as the user's LDAP uidNumber with the home
    mounted (devcluster's kubelet honours runAsUser and fsGroup, as a kubelet
    does); a file it writes through the Jupyter API belongs to that uid, and to
    fsGroup through the home's setgid directory."""
    kube = bench.kube
    assert kube is not None
    bob.form()
    assert bob.spawn({"profile": "medium"}).status_code == 302
    bob.wait_ready(timeout=150)
    pod = pod_of(kube, "bob")
    assert pod is not None
    assert pod["spec"]["securityContext"]["runAsUser"] == 10002  # bob's uidNumber
    fs_group = pod["spec"]["securityContext"]["fsGroup"]
    put = requests.put(
        f"{bench.url}/user/bob/api/contents/owned-by-bob.txt",
        json={"type": "file", "format": "text", "content": "mine"},
        headers={"Authorization": f"token {bob.token()}"},
        timeout=30,
    )
    assert put.status_code == 201, put.text
    claim = pvc_of(kube, "bob")
    assert claim is not None
    home = bench.state_dir / "cluster" / "volumes" / claim["spec"]["volumeName"]
    written = list(home.rglob("owned-by-bob.txt"))
    assert len(written) == 1, sorted(str(p) for p in home.rglob("*"))[:20]
    st = written[0].stat()
    assert (st.st_uid, st.st_gid) == (10002, fs_group)
    assert written[0].read_text() == "mine"
    bob.stop(kube)


def test_next_start_is_pinned_to_the_homes_zone(bench: Workbench, bob: HubUser) -> None:
    """Once bob's home exists (made by a first start, here or in another test),
    his servers start in its zone."""
    kube = bench.kube
    assert kube is not None
    for start in ("makes the home", "is pinned"):
        bob.form()
        response = bob.spawn({"profile": "medium"})
        assert response.status_code == 302, start
        try:
            bob.wait_ready(timeout=150)
            pod = pod_of(kube, "bob")
            assert pod is not None
        finally:
            bob.stop(kube)  # whatever failed, the next test finds bob stopped
    assert pod["spec"]["nodeSelector"] == {
        "wbspawner.io/pool": "cpu16",
        "topology.kubernetes.io/zone": "us-east-1b",
    }


def test_size_without_capacity_fails_with_advice(
    bench: Workbench, bob: HubUser
) -> None:
    """128 GiB has no node group here: the spawn fails early and says why."""
    bob.form()
    response = bob.spawn({"profile": "xlarge"})
    assert response.status_code == 302
    events = bob.progress(timeout=60)
    assert events[-1].get("failed") is True
    assert "No node group can start a 128 GiB node" in events[-1]["message"]
    assert "tell an admin" in events[-1]["message"]
    wait_until(lambda: pod_of(bench.kube, "bob") is None, 30, "pod removed")  # type: ignore[arg-type]


def test_the_workbench_serves_dask_gateway_through_the_hub(bench: Workbench) -> None:
    """The demo stack wires Dask Gateway in: reachable at the hub's service path."""
    import requests

    assert bench.gateway is not None and bench.gateway.proc.running
    response = requests.get(bench.url + "/services/dask-gateway/api/health", timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["status"] == "pass"


def test_a_killed_hub_leaves_no_proxy_or_warmer_behind(bench: Workbench) -> None:
    """kill -9 of the hub: the proxy, the warmer and the dashboards front it
    started (each in a session of its own) end with it, so the next hub gets the
    ports; then it starts again."""
    hub = bench.hub
    assert hub is not None and hub.running
    environ = environ_of(hub.pid)
    children = {p.pid: p.command for p in descendants(hub.pid)}
    commands = " | ".join(children.values())
    assert "configurable-http-proxy" in commands and "wbspawner.warmer" in commands
    assert "wbspawner.gateway.front" in commands
    os.kill(hub.pid, signal.SIGKILL)  # no cleanup runs
    hub.stop(timeout=5)  # reaps it
    wait_until(
        lambda: not still_alive(children), 10, f"the dead hub's children {children}"
    )
    # The test run adopted them (it is their subreaper, as init is on a node):
    # collect their exit so the next hub finds the proxy's PID free.
    reap(children)
    start_hub_again(bench, hub, environ)
    assert bench.hub is not None and bench.hub.running
