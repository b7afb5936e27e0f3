"""The demo's env file: sourced in bash it sets exactly the CLI's variables."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from devcluster.demo.cli_env import UNSET, cli_environment, write_env_file


def test_sourcing_the_file_sets_the_variables_and_unsets_profiles(
    tmp_path: Path,
) -> None:
    odd = tmp_path / "a dir with 'quotes' and $dollars"
    env = cli_environment(
        kubeconfig=odd / "kubeconfig",
        profiles_dir=odd / "profiles",
        cluster="wbspawner-dev",
        aws_endpoint="http://127.0.0.1:5000",
        region="us-east-1",
        cost_db_url=f"sqlite:///{odd / 'costs.sqlite'}",
    )
    path = write_env_file(tmp_path / "env", env)
    names = [*env, *UNSET]
    script = f"source {path} && " + " && ".join(
        f'printf "%s=%s\\n" {n} "${{{n}-<unset>}}"' for n in names
    )
    shell = {"PATH": os.environ["PATH"], "AWS_PROFILE": "production"}
    done = subprocess.run(
        ["bash", "-c", script], env=shell, capture_output=True, text=True, check=True
    )
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert {k: seen[k] for k in env} == env
    assert all(seen[k] == "<unset>" for k in UNSET)
    assert env["AWS_ACCESS_KEY_ID"] == "testing"  # dummy keys, never real ones
