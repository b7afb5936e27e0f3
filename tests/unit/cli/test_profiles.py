"""The `wbspawner` command: validate (and the broken corpus), render, catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.paths import REPO
from wbspawner.cli import main as cli

PROFILES = REPO / "profiles"
BROKEN = REPO / "tests" / "broken_profiles"
CASES = sorted(p for p in BROKEN.iterdir() if p.is_dir())
RENDER_BOB = ("render", "--user", "bob", "--groups", "jupyter-users")
"""``wbspawner render`` for bob of jupyter-users (add ``--profiles``)."""
EXAMPLES = sorted(p for p in (PROFILES / "examples").iterdir() if p.is_dir())


def expected_problems(case: Path) -> list[tuple[str, str]]:
    """Return (line prefix, message part) pairs from a case's expected.txt."""
    wanted = []
    for line in (case / "expected.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        file, path, message = line.split(": ", 2)
        if file.startswith("<"):
            full = file
        else:
            full = str(case) if file == "." else f"{case}/{file}"
        wanted.append((f"{full}: {path}: ", message.replace("{dir}", str(case))))
    return wanted


def assert_reports_every_expected_problem(case: Path, code: int, err: str) -> None:
    assert code == 1, err
    assert "Traceback" not in err
    lines = err.splitlines()
    for prefix, message in expected_problems(case):
        assert any(
            line.startswith(prefix) and message in line[len(prefix) :] for line in lines
        ), f"missing {prefix}{message}\nin:\n{err}"
    assert lines[-1].endswith("found")


def test_corpus_has_at_least_30_cases_each_with_expectations() -> None:
    assert len(CASES) >= 30
    for case in CASES:
        assert expected_problems(case), case.name


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_broken_profiles_are_rejected_with_every_problem(
    run_cli: Callable[..., tuple[int, str, str]], case: Path
) -> None:
    code, out, err = run_cli("validate", str(case))
    assert out == ""
    assert_reports_every_expected_problem(case, code, err)


@pytest.mark.parametrize("name", ["python-object-tag", "key-in-two-files"])
def test_broken_profiles_through_a_real_process(name: str, tmp_path: Path) -> None:
    """Run `python -m wbspawner.cli.main` as the shell would, from another directory."""
    case = BROKEN / name
    proc = subprocess.run(
        [sys.executable, "-m", "wbspawner.cli.main", "validate", str(case)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert_reports_every_expected_problem(case, proc.returncode, proc.stderr)
    assert list(tmp_path.iterdir()) == []  # the os.system tag ran nothing here


def test_console_script_validates_the_shipped_profiles() -> None:
    script = Path(sys.executable).parent / "wbspawner"
    proc = subprocess.run(
        [str(script), "validate", "profiles"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "OK: 9 pools, 9 sizes from 8 files\n"


def test_validate_shipped_profiles_exits_0(
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    assert run_cli("validate", str(PROFILES)) == (
        0,
        "OK: 9 pools, 9 sizes from 8 files\n",
        "",
    )


@pytest.mark.parametrize("example", [pytest.param(p, id=p.name) for p in EXAMPLES])
def test_every_example_set_validates(
    run_cli: Callable[..., tuple[int, str, str]], example: Path
) -> None:
    code, out, err = run_cli("validate", str(example))
    assert (code, err) == (0, "")
    assert out.startswith("OK: ")


def test_validate_defaults_to_the_environment_then_to_profiles_dir(
    run_cli: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = str(PROFILES / "examples" / "open-lab")
    code, out, _ = run_cli("validate", environ={"WBSPAWNER_PROFILES": example})
    assert (code, out) == (0, "OK: 2 pools, 2 sizes from 1 file\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("validate")
    assert code == 1
    assert "profiles: $: no such file or directory" in err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="no-command"),
        pytest.param(["frobnicate"], id="unknown-command"),
        pytest.param(["render"], id="render-without-user"),
        pytest.param(["catalog", "--bogus"], id="unknown-option"),
    ],
)
def test_usage_errors_exit_2(
    run_cli: Callable[..., tuple[int, str, str]], argv: list[str]
) -> None:
    code, out, err = run_cli(*argv)
    assert code == 2 and out == ""
    assert "usage: wbspawner" in err


@pytest.mark.parametrize(
    ("group", "actions"),
    [
        ("pools", "plan, apply or render"),
        ("home", "list, show, move or gc"),
        ("cost", "estimate, alarm or report"),
    ],
)
def test_a_command_group_without_action_names_its_actions(
    run_cli: Callable[..., tuple[int, str, str]], group: str, actions: str
) -> None:
    code, out, err = run_cli(group)
    assert (code, out) == (2, "")
    assert f"usage: wbspawner {group} [-h] ACTION" in err
    assert f"wbspawner {group}: error: choose {actions}" in err


def test_help_exits_0(run_cli: Callable[..., tuple[int, str, str]]) -> None:
    code, text, _ = run_cli("--help")
    assert code == 0
    for command in ("validate", "render", "catalog"):
        assert command in text


def test_command_modules_are_registered_from_a_fixed_list() -> None:
    assert cli.COMMAND_MODULES[0] == "wbspawner.cli.profiles"
    parser = cli.build_parser()
    assert parser.parse_args(["catalog"]).run.__name__ == "run_catalog"


# ------------------------------------------------------------------------ render


def test_render_bob_sees_only_jupyter_users_sizes_with_prices(
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, err = run_cli(
        *RENDER_BOB,
        "--profiles",
        str(PROFILES),
    )
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.splitlines()]
    slugs = [r[1] if r[0] == "*" else r[0] for r in rows[3:8]]
    assert slugs == ["small", "medium", "large", "xlarge", "xxlarge"]
    for forbidden in ("huge", "gpu-t4", "gpu-a10g", "A10G", "T4", "nvidia.com/gpu"):
        assert forbidden not in out
    assert "$0.50/h" in out  # 64 GiB on-demand (r5.2xlarge, r6i.2xlarge)
    assert "~$0.18/h" in out  # its spot estimate at the assumed 65 % discount
    assert "*  medium" in out
    assert "wbspawner.io/pool=mem64:NoSchedule" in out
    assert "wbspawner.io/capacity=spot:NoSchedule" in out


def test_render_json_placement_is_the_full_node(
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, _ = run_cli(
        "render",
        "--user",
        "ann",
        "--groups",
        "gpu-users",
        "--profiles",
        str(PROFILES),
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert (data["user"], data["may_log_in"], data["is_admin"]) == ("ann", True, False)
    assert data["default_size"] == "medium"
    sizes = {s["slug"]: s for s in data["sizes"]}
    assert list(sizes) == ["small", "medium", "gpu-t4", "gpu-a10g", "gpu-a10g-x4"]
    x4 = sizes["gpu-a10g-x4"]
    assert x4["placement"]["node_selector"] == {"wbspawner.io/pool": "gpu-a10g-x4"}
    keys = {t["key"] for t in x4["placement"]["tolerations"]}
    assert keys == {"wbspawner.io/pool", "wbspawner.io/capacity", "nvidia.com/gpu"}
    assert x4["placement"]["requests"] == x4["placement"]["limits"]
    assert x4["placement"]["requests"]["nvidia.com/gpu"] == "4"
    assert x4["placement"]["requests"]["memory"] == f"{x4['memory_mib']}Mi"
    assert x4["price_per_hour"]["on_demand"] == 5.672
    assert x4["price_per_hour"]["spot_source"] == "assumed discount"
    assert [i["slug"] for i in x4["images"] if i["default"]] == ["pytorch"]


def test_render_admin_and_outsider(
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    _, out, _ = run_cli(
        "render", "--user", "root", "--admin", "--profiles", str(PROFILES)
    )
    assert "huge" in out and "gpu-a10g-x4" in out and "admin)" in out
    code, out, _ = run_cli(
        "render", "--user", "eve", "--groups", "staff", "--profiles", str(PROFILES)
    )
    assert code == 0 and "may not log in" in out


def test_render_uses_observed_spot_prices(
    run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    prices = tmp_path / "spot.json"
    prices.write_text(json.dumps({"r5.2xlarge/us-east-1a": 0.1234, "x/y": 9}))
    code, out, err = run_cli(
        *RENDER_BOB,
        "--profiles",
        str(PROFILES),
        "--spot-prices",
        str(prices),
        "--json",
    )
    assert (code, err) == (0, "")
    large = next(s for s in json.loads(out)["sizes"] if s["slug"] == "large")
    assert large["price_per_hour"]["spot"] == 0.1234
    assert large["price_per_hour"]["spot_source"] == "observed"


def test_render_refuses_a_malformed_spot_prices_file(
    run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    prices = tmp_path / "spot.json"
    prices.write_text(json.dumps({"r5.2xlarge": 0.1, "r5.large/us-east-1a": "x"}))
    args = ["--user", "bob", "--profiles", str(PROFILES), "--spot-prices", str(prices)]
    code, out, err = run_cli("render", *args)
    assert (code, out) == (1, "")
    assert f'{prices}: $["r5.2xlarge"]: expected "<type>/<zone>"' in err
    assert f'{prices}: $["r5.large/us-east-1a"]: expected a price' in err
    assert "Traceback" not in err


def test_render_invalid_profiles_exit_1_without_traceback(
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    case = BROKEN / "unknown-pool"
    code, out, err = run_cli("render", "--user", "bob", "--profiles", str(case))
    assert code == 1 and out == ""
    assert "$.sizes[0].pool: unknown pool 'smal'" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------- catalog


def test_catalog_table_lists_types_with_request_and_price(
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, err = run_cli("catalog", "--profiles", str(PROFILES))
    assert (code, err) == (0, "")
    line = next(x for x in out.splitlines() if x.startswith("r5.2xlarge "))
    assert "61.04 GiB" in line and "60.80 GiB" in line and "$0.50/h" in line
    assert "sizing from" in out.splitlines()[0]


def test_catalog_json_matches_the_sizing_of_the_profiles(
    run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    code, out, _ = run_cli("catalog", "--json", "--profiles", str(PROFILES))
    assert code == 0
    data = json.loads(out)
    rows = {r["name"]: r for r in data["types"]}
    assert rows["r5.16xlarge"]["capacity_source"] == "measured"
    assert rows["g5.12xlarge"]["gpus"] == 4
    assert data["region"] == "us-east-1"
    lab = PROFILES / "examples" / "open-lab"  # caps maxPods at 30, measures t3.large
    _, out, _ = run_cli("catalog", "--json", "--profiles", str(lab))
    rows = {r["name"]: r for r in json.loads(out)["types"]}
    assert rows["r5.16xlarge"]["max_pods"] == 30
    assert rows["t3.large"]["capacity_mib"] == 7700


def test_catalog_without_profiles_uses_default_sizing(
    run_cli: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli("catalog")
    assert code == 0 and "sizing defaults (no profiles found)" in out


def test_catalog_bad_catalog_file_exits_1(
    run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    bad = tmp_path / "catalog.json"
    bad.write_text("{")
    code, _, err = run_cli("catalog", "--catalog", str(bad))
    assert code == 1 and "invalid JSON" in err and "Traceback" not in err


# ------------------------------------------------------------------------ schema


def test_schema_reference_documents_every_key(
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, _ = run_cli("schema")
    assert code == 0
    schema = json.loads(run_cli("schema", "--json")[1])
    keys: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(schema)
    rows = {line.split("`")[1] for line in out.splitlines() if line.startswith("| `")}
    assert keys <= rows, keys - rows
    assert "### `warm.schedules[].windows[]`" in out
    assert "| `max_nodes` | integer | 10 |" in out
