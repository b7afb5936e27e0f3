"""Every table the CLI prints fits an 80-column terminal without breaking a word.

Each table is printed twice: to a pipe (the plain layout, unchanged) and to a
terminal 80 columns wide. On the terminal no line may be wider than 80, nothing
may be cut (``…``), and every word of the plain table must appear whole.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.paths import REPO
from wbspawner.cli.main import main
from wbspawner.cli.tables import table_lines
from wbspawner.cli.terminal import make_console
from wbspawner.costs.accounting import open_db, record_start, record_stop
from wbspawner.pools.observed import Change
from wbspawner.pools.plan import Action, Plan
from wbspawner.pools.report import plan_table

PROFILES = str(REPO / "profiles")
SCENARIOS = sorted((REPO / "costs" / "scenarios").glob("*.yaml"))
TERMINAL = {"COLUMNS": "80", "TERM": "xterm-256color"}


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _both(*argv: str) -> tuple[str, str]:
    """Return stdout of a command on a pipe and on an 80-column terminal."""
    outputs = []
    for out in (io.StringIO(), Tty()):
        code = main(list(argv), environ=TERMINAL, stdout=out, stderr=io.StringIO())
        assert code == 0, argv
        outputs.append(out.getvalue())
    return outputs[0], outputs[1]


def _assert_fits(plain: str, screen: str) -> None:
    lines = screen.splitlines()
    too_wide = [x for x in lines if len(x) > 80]
    assert not too_wide, "\n".join(too_wide)
    assert "…" not in screen
    missing = set(plain.split()) - set(screen.split())
    assert not missing, f"words broken or lost: {sorted(missing)[:10]}"


def _report_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    t0 = datetime(2026, 2, 3, 9, 0)
    with open_db(url)() as session:
        record_start(session, "ada", "large", "mem64", "spot", "a", "n1", 0.25, t0)
        record_stop(session, "ada", t0 + timedelta(hours=4))
    return url


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("catalog", "--profiles", PROFILES), id="catalog"),
        pytest.param(
            ("render", "--user", "bob", "--groups", "jupyter-users"), id="render"
        ),
        pytest.param(("render", "--user", "root", "--admin"), id="render-admin"),
        *(
            pytest.param(
                ("cost", "estimate", "--scenario", str(s), "--profiles", PROFILES),
                id=f"estimate-{s.stem}",
            )
            for s in SCENARIOS
        ),
    ],
)
def test_command_tables_fit_80_columns(argv: tuple[str, ...]) -> None:
    if argv[0] == "render":
        argv = (*argv, "--profiles", PROFILES)
    plain, screen = _both(*argv)
    assert plain.count("\n") > 3
    _assert_fits(plain, screen)


def test_a_table_that_fits_is_the_same_on_a_terminal(tmp_path: Path) -> None:
    argv = ("cost", "report", "--db", _report_db(tmp_path), "--month", "2026-02")
    plain, screen = _both(*argv)
    assert plain == screen and "ada" in plain


def test_the_catalogue_comes_in_bands_led_by_the_type() -> None:
    _, screen = _both("catalog", "--profiles", PROFILES)
    headers = [x for x in screen.splitlines() if x.startswith("TYPE ")]
    assert len(headers) >= 2, "the columns are split into bands"
    assert "ON-DEMAND" in headers[-1]


def _plan() -> Plan:
    name = "wbspawner-prod-gpu-large-us-east-1a-spot"
    return Plan(
        cluster="prod",
        actions=(
            Action(
                kind="update-asg",
                target=name,
                params={},
                changes=(
                    Change("MaxSize", "4", "8"),
                    Change(
                        "instance types",
                        "g5.xlarge, g5.2xlarge",
                        "g5.xlarge, g5.2xlarge, g6.xlarge, g6.2xlarge",
                    ),
                ),
            ),
            Action(
                kind="delete-asg",
                target=name.replace("gpu", "old"),
                params={},
                blocked="the group has 2 nodes; pass --allow-delete to delete it",
            ),
        ),
    )


def test_plan_table_fits_80_columns() -> None:
    plan = _plan()
    plain = plan_table(plan)
    console = make_console(Tty(), TERMINAL)
    screen = plan_table(plan, lambda h, r: table_lines(console, h, r))
    assert max(len(x) for x in plain.splitlines()) > 80
    _assert_fits(plain, screen)


@pytest.mark.parametrize(
    ("headers", "rows"),
    [
        pytest.param(
            ("USER", "PVC", "PV", "VOLUME", "ZONE", "SIZE", "STATUS", "LAST MOVE"),
            [
                (
                    "alice",
                    "home-alice",
                    "pvc-0f8e1c2a-6b5d-4e1f-9a7b-3c2d1e0f9a8b",
                    "vol-0123456789abcdef0",
                    "us-east-1b",
                    "10Gi",
                    "Bound",
                    "2026-12-01T08:00:00Z from us-east-1a",
                )
            ],
            id="home-list",
        ),
        pytest.param(
            ("OLD PV", "VOLUME", "SNAPSHOT", "CLAIM", "RETAIN UNTIL", "ACTION"),
            [
                (
                    "pvc-0f8e1c2a-6b5d-4e1f-9a7b-3c2d1e0f9a8b",
                    "vol-0123456789abcdef0",
                    "snap-0123456789abcdef0",
                    "jhub/home-alice",
                    "2026-12-15T08:00:00Z",
                    "kept: retained until 2026-12-15T08:00:00Z",
                )
            ],
            id="home-gc",
        ),
    ],
)
def test_home_tables_fit_80_columns(
    headers: tuple[str, ...], rows: list[tuple[str, ...]]
) -> None:
    plain = "\n".join(table_lines(make_console(io.StringIO(), TERMINAL), headers, rows))
    screen = "\n".join(table_lines(make_console(Tty(), TERMINAL), headers, rows))
    assert max(len(x) for x in plain.splitlines()) > 80
    _assert_fits(plain, screen)


def test_bands_keep_the_default_mark_and_the_size_name() -> None:
    _, screen = _both(
        "render", "--user", "bob", "--groups", "jupyter-users", "--profiles", PROFILES
    )
    bands = [x for x in screen.splitlines() if x.split()[:1] == ["SIZE"]]
    assert len(bands) >= 2
    marked = [x for x in screen.splitlines() if x.startswith("*")]
    assert len(marked) == len(bands) and all("medium" in x for x in marked)
