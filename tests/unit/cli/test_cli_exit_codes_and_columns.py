"""`validate` of a missing path is a usage error (2); `catalog` says what its
capacity column is in words; AWS commands take `$AWS_ENDPOINT_URL`."""

from __future__ import annotations

import io
import re

import pytest

from tests.paths import REPO
from wbspawner.cli.main import build_parser, main
from wbspawner.cli.util import CliContext, endpoint_url

PROFILES = REPO / "profiles"


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "environ", "named"),
    [
        pytest.param(["validate", "/nonexistent"], {}, "/nonexistent", id="argument"),
        pytest.param(
            ["validate", str(PROFILES), "/nope/a", "/nope/b"],
            {},
            "/nope/a, /nope/b",
            id="two-of-three",
        ),
        pytest.param(
            ["validate"],
            {"WBSPAWNER_PROFILES": "/nonexistent"},
            "/nonexistent",
            id="environment",
        ),
    ],
)
def test_validate_of_a_missing_path_is_a_usage_error(
    argv: list[str], environ: dict[str, str], named: str
) -> None:
    code, out, err = run(*argv, environ=environ)
    assert (code, out) == (2, "")
    assert err.startswith("usage: wbspawner validate")
    assert f"wbspawner validate: error: no such file or directory: {named}" in err


def test_catalog_says_measured_or_estimated_in_a_column() -> None:
    code, out, _ = run("catalog", "--profiles", str(PROFILES))
    assert code == 0
    lines = out.splitlines()
    header = next(x for x in lines if x.startswith("TYPE "))
    start = header.index("CAPACITY IS")
    rows = {x.split()[0]: x for x in lines if x.startswith(("r5.", "t3."))}
    column = {name: row[start:].split()[0] for name, row in rows.items()}
    assert column["r5.16xlarge"] == "measured"
    assert column["t3.medium"] == "estimated"
    assert set(column.values()) == {"measured", "estimated"}
    assert not any(re.search(r"GiB [em]\b", x) for x in lines), "bare e/m suffix"
    legend = " ".join(lines[-2:])
    assert "measured on a node of the type or estimated" in legend


@pytest.mark.parametrize(
    ("argv", "environ", "endpoint"),
    [
        pytest.param([], {}, None, id="aws-itself"),
        pytest.param(
            [],
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:5"},
            "http://127.0.0.1:5",
            id="environment",
        ),
        pytest.param(
            ["--endpoint-url", "http://a:1"],
            {"AWS_ENDPOINT_URL": "http://b:2"},
            "http://a:1",
            id="option-wins",
        ),
    ],
)
def test_aws_commands_take_the_endpoint_from_the_environment(
    argv: list[str], environ: dict[str, str], endpoint: str | None
) -> None:
    for command in (
        ["pools", "plan"],
        ["home", "list"],
        ["cost", "estimate", "--scenario", "s"],
    ):
        args = build_parser().parse_args([*command, *argv])
        ctx = CliContext(environ=environ, out=io.StringIO(), err=io.StringIO())
        assert endpoint_url(args, ctx) == endpoint, command
