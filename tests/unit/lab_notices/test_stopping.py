"""The preStop hook's reach of its own server (wb_lab_notices.stopping)."""

from __future__ import annotations

import pytest
from wb_lab_notices.stopping import main, server_url


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        pytest.param(
            {
                "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/bob/",
                "WBSPAWNER_POD_IP": "10.0.3.7",
            },
            "http://10.0.3.7:8888/user/bob/",
            id="pod-ip",
        ),
        pytest.param(
            {"JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:9000/user/ann"},
            "http://127.0.0.1:9000/user/ann/",
            id="no-pod-ip",
        ),
        pytest.param(
            {
                "JUPYTERHUB_SERVICE_URL": "http://:8888/user/a%40b/",
                "WBSPAWNER_POD_IP": "",
            },
            "http://127.0.0.1:8888/user/a%40b/",
            id="escaped-name",
        ),
    ],
)
def test_the_hook_reaches_its_server_at_the_pod_ip(
    environ: dict[str, str], url: str
) -> None:
    assert server_url(environ) == url


def test_outside_a_hub_server_the_hook_says_so_and_lets_the_stop_go_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_URL", raising=False)
    assert main(["--wait", "1"]) == 0
    assert capsys.readouterr().out == (
        "wb-lab-notices: could not ask JupyterLab to save: "
        "JUPYTERHUB_SERVICE_URL is not set: not a JupyterHub server\n"
    )


def test_a_server_that_does_not_answer_does_not_hold_the_stop(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    silent_server: str,
) -> None:
    port = silent_server.rsplit(":", 1)[1]
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", f"http://0.0.0.0:{port}/user/bob/")
    monkeypatch.setenv("WBSPAWNER_POD_IP", "127.0.0.1")
    assert main(["--wait", "1"]) == 0
    assert "could not ask JupyterLab to save: " in capsys.readouterr().out
