"""A real JupyterLab with the workbench's notices, for the tests that need one.

``running_lab(folder)`` starts ``jupyter lab`` from this environment (which
``make venv`` gave the ``wb-lab-notices`` package, server and JupyterLab halves)
on a free loopback port with a token, its notebooks in ``folder/work`` and its
Jupyter paths inside ``folder``; it yields a :class:`Lab` and stops the server by
its PID on the way out.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from devcluster.services.procs import Proc, free_port, started

NEWS = "@jupyterlab/apputils-extension:announcements"
EMPTY_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "source": "",
            "outputs": [],
            "execution_count": None,
        }
    ],
    "metadata": {
        "kernelspec": {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@dataclass
class Lab:
    """A running JupyterLab: its URL, token, notebook folder and process."""

    url: str
    token: str
    root: Path
    proc: Proc

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the server's API with the token (no proxies)."""
        with requests.Session() as http:
            http.trust_env = False
            return http.request(
                method,
                f"{self.url}/{path.lstrip('/')}",
                headers={"Authorization": f"token {self.token}"},
                timeout=10,
                **kwargs,
            )

    def new_notebook(self, name: str) -> Path:
        """Write an empty one-cell notebook into the server's folder."""
        path = self.root / name
        path.write_text(json.dumps(EMPTY_NOTEBOOK), encoding="utf-8")
        return path


@contextlib.contextmanager
def running_lab(folder: Path) -> Iterator[Lab]:
    """Run JupyterLab for a ``with`` block; stopped by PID at its end."""
    root = folder / "work"
    root.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    labconfig = folder / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    # No "get notified about official Jupyter news?" prompt over the page.
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {NEWS: True}}), encoding="utf-8"
    )
    env = {
        "HOME": str(folder),
        "JUPYTER_CONFIG_DIR": str(folder / "config"),
        "JUPYTER_DATA_DIR": str(folder / "data"),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        "IPYTHONDIR": str(folder / "ipython"),
    }
    with started(
        argv,
        folder / "lab.log",
        env=env,
        port=("127.0.0.1", port),
        ready_url=f"{url}/api/status?token={token}",
        timeout=60,
    ) as proc:
        yield Lab(url, token, root, proc)
