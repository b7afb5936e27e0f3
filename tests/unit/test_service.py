"""The services' shared shell (:mod:`wbspawner.service`), run as operators run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO
from wbspawner.culler.app import CullerApp
from wbspawner.service import HUB_LOG_FORMAT
from wbspawner.ssh.app import SSHApp
from wbspawner.warmer.app import WarmerApp


@pytest.mark.parametrize("service", ["warmer", "culler", "ssh"])
def test_invalid_profiles_are_listed_and_the_service_exits_1(
    service: str, tmp_path: Path
) -> None:
    """Every problem on its own line, exit status 1, no traceback."""
    (tmp_path / "10-bad.yaml").write_text(
        "pools:\n  - name: Bad Pool\n    instance_types: []\n", encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", f"wbspawner.{service}", "--profiles", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "JUPYTERHUB_API_TOKEN": "x"},
    )
    assert done.returncode == 1, done.stderr
    problems = [
        line for line in done.stderr.splitlines() if "Profiles problem:" in line
    ]
    assert len(problems) >= 2, done.stderr
    assert "Traceback" not in done.stderr


def test_the_services_read_the_same_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WBSPAWNER_PROFILES", "/a:/b")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("WBSPAWNER_COST_DB_URL", "sqlite:///costs.sqlite")
    for app in (WarmerApp(), CullerApp(), SSHApp()):
        assert app.profiles_dir == ["/a", "/b"]
        assert app.api_url == "http://127.0.0.1:9/hub/api"
        assert app.cost_db_url == "sqlite:///costs.sqlite"
        assert app.log_format == HUB_LOG_FORMAT
