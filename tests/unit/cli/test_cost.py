"""``wbspawner cost``: estimate (table and JSON), report, argument checks."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.paths import REPO
from wbspawner.costs.accounting import open_db, record_start, record_stop

PROFILES = str(REPO / "profiles")
SCENARIOS = REPO / "costs" / "scenarios"


def estimate(scenario: str, *options: str) -> list[str]:
    """Return the arguments of ``wbspawner cost estimate`` for a shipped scenario."""
    path = str(SCENARIOS / scenario)
    return ["cost", "estimate", "--scenario", path, "--profiles", PROFILES, *options]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in SCENARIOS.glob("*.yaml")), ids=str
)
def test_estimate_prints_items_totals_and_dominance(
    run_cli: Callable[..., tuple[int, str, str]], name: str
) -> None:
    code, out, err = run_cli(*estimate(name))
    assert code == 0, err
    assert "PRICE SOURCE" in out
    assert "monthly total: $" in out and "yearly total:  $" in out
    assert "dominated by:" in out


def test_estimate_json_totals_add_up(
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, err = run_cli(*estimate("carlson-2017.yaml", "--json"))
    assert code == 0, err
    data = json.loads(out)
    assert data["monthly"] == pytest.approx(sum(i["monthly"] for i in data["items"]))
    assert data["yearly"] == pytest.approx(12 * data["monthly"])
    assert data["dominant"].startswith("Administration")


def test_estimate_uses_observed_spot_prices(
    run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    spot = tmp_path / "spot.json"
    spot.write_text(json.dumps({"r5.large/us-east-1a": 0.031}))
    code, out, err = run_cli(
        *estimate("carlson-today-eks.yaml", "--spot-prices", str(spot), "--json")
    )
    assert code == 0, err
    medium = next(i for i in json.loads(out)["items"] if "medium" in i["name"])
    assert (medium["source"], medium["unit_price"]) == ("observed", 0.031)


def test_estimate_reports_a_bad_scenario(
    run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("users: many\n")
    code, _, err = run_cli(
        "cost", "estimate", "--scenario", str(bad), "--profiles", PROFILES
    )
    assert code == 1
    assert "$.users: expected a whole number" in err


def test_report_by_user_and_size(
    run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    t0 = datetime(2026, 2, 3, 9, 0)
    with open_db(url)() as session:
        record_start(session, "ada", "large", "mem64", "spot", "a", "n1", 0.25, t0)
        record_stop(session, "ada", t0 + timedelta(hours=4))
        record_start(session, "bob", "small", "cpu4", "spot", "a", "n2", 0.5, t0)
        record_stop(session, "bob", t0 + timedelta(hours=1))
    code, out, err = run_cli("cost", "report", "--db", url, "--month", "2026-02")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["USER", "HOURS", "COST"]
    assert lines[1].split() == ["ada", "4.00", "$1.00"]
    assert lines[-1] == "total: $1.50"
    code, out, _ = run_cli(
        "cost", "report", "--db", url, "--month", "2026-02", "--by", "size", "--json"
    )
    assert json.loads(out) == [
        {"size": "large", "hours": 4.0, "cost": 1.0},
        {"size": "small", "hours": 1.0, "cost": 0.5},
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cost", "report", "--month", "March"], "--month must be YYYY-MM"),
        (["cost", "alarm", "--monthly", "0", "--email", "a@b"], "--monthly must be"),
        (["cost", "alarm", "--monthly", "10", "--email", "nobody"], "e-mail address"),
    ],
    ids=["month", "amount", "email"],
)
def test_bad_arguments_are_usage_errors(
    run_cli: Callable[..., tuple[int, str, str]], argv: list[str], message: str
) -> None:
    code, _, err = run_cli(*argv)
    assert code == 2
    assert message in err


def test_live_spot_prices_are_read_from_ec2(
    run_cli: Callable[..., tuple[int, str, str]], moto: None
) -> None:
    code, out, err = run_cli(*estimate("team-workbench.yaml", "--live-spot", "--json"))
    assert code == 0, err
    spot = [i for i in json.loads(out)["items"] if i["name"].endswith("(spot)")]
    assert spot and {i["source"] for i in spot} == {"observed"}


def test_unreachable_ec2_falls_back_to_the_discount(
    run_cli: Callable[..., tuple[int, str, str]], aws_env: None
) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, out, err = run_cli(
        *estimate(
            "carlson-today-eks.yaml", "--live-spot", "--endpoint-url", closed, "--json"
        )
    )
    assert code == 0, err
    assert "spot prices not read" in err
    spot = [i for i in json.loads(out)["items"] if i["name"].endswith("(spot)")]
    assert spot and {i["source"] for i in spot} == {"assumed discount"}
