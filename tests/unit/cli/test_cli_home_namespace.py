"""``wbspawner home``: the namespace is the option's, the environment's, then the
kubeconfig context's (as kubectl), then ``jupyterhub``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from wbspawner.cli import kubeargs
from wbspawner.cli.main import build_parser
from wbspawner.cli.util import CliContext

KUBECONFIG = """
contexts:
- {name: demo, context: {cluster: c, user: u, namespace: jhub}}
- {name: other, context: {cluster: c, user: u, namespace: staging}}
current-context: demo
"""


@pytest.mark.parametrize(
    ("argv", "environ", "namespace"),
    [
        pytest.param(
            ["--namespace", "ns1"], {"WBSPAWNER_NAMESPACE": "x"}, "ns1", id="option"
        ),
        pytest.param([], {"WBSPAWNER_NAMESPACE": "ns2"}, "ns2", id="environment"),
        pytest.param([], {}, "jhub", id="kubeconfig-current-context"),
        pytest.param(["--context", "other"], {}, "staging", id="kubeconfig-context"),
        pytest.param(["--kubeconfig", "/nonexistent"], {}, "jupyterhub", id="default"),
    ],
)
def test_home_namespace(
    tmp_path: Path, argv: list[str], environ: dict[str, str], namespace: str
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    args = build_parser().parse_args(["home", "list", *argv])
    environ = {"KUBECONFIG": str(config), **environ}
    ctx = CliContext(environ=environ, out=io.StringIO(), err=io.StringIO())
    assert kubeargs.namespace(args, ctx) == namespace
