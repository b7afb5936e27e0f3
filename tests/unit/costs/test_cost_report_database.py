"""``wbspawner cost report`` finds the hub's database or says what to pass.

It never creates a database (a report on a new empty file read "total: $0.00"),
and an unusable URL is one line on stderr with exit code 1, not a traceback.
"""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wbspawner.cli.main import main
from wbspawner.costs.accounting import open_db, record_start, record_stop


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["cost", "report", *argv], environ=environ or {}, stdout=out, stderr=err
    )
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: where the old default created its file."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def hub_state(tmp_path: Path) -> Path:
    """A hub state directory whose database holds one hour of bob at $0.50."""
    state = tmp_path / "state"
    state.mkdir()
    start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0)
    with open_db(f"sqlite:///{state / 'wbspawner-costs.sqlite'}")() as session:
        record_start(session, "bob", "small", "cpu4", "spot", "a", "n1", 0.5, start)
        record_stop(session, "bob", start + timedelta(hours=1))
    return state


def test_an_unreadable_url_file_is_one_line_naming_it(elsewhere: Path) -> None:
    code, out, err = run(environ={"WBSPAWNER_COST_DB_URL_FILE": "/no/such/url"})
    assert (code, out) == (1, "")
    assert err.count("\n") == 1, err
    assert "WBSPAWNER_COST_DB_URL_FILE '/no/such/url' cannot be read" in err


def test_nothing_configured_says_what_to_pass_and_creates_nothing(
    elsewhere: Path,
) -> None:
    code, out, err = run()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert "--db" in err and "WBSPAWNER_COST_DB_URL" in err
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"WBSPAWNER_STATE_DIR": "{state}"}, id="hub-state-dir"),
        pytest.param(
            {"WBSPAWNER_COST_DB_URL": "sqlite:///{state}/wbspawner-costs.sqlite"},
            id="hub-db-url",
        ),
        pytest.param(
            {"WBSPAWNER_COST_DB_URL_FILE": "{state}/cost-url"},
            id="hub-db-url-file",
        ),
    ],
)
def test_the_hubs_database_is_found_as_the_hub_finds_it(
    tmp_path: Path, elsewhere: Path, environ: dict[str, str]
) -> None:
    state = hub_state(tmp_path)
    # as the hub's Secret mounts it: the URL in a file, with a newline
    (state / "cost-url").write_text(f"sqlite:///{state}/wbspawner-costs.sqlite\n")
    filled = {k: v.format(state=state) for k, v in environ.items()}
    code, out, err = run(environ=filled)
    assert (code, err) == (0, "")
    assert out.splitlines()[1].split() == ["bob", "1.00", "$0.50"]
    assert out.splitlines()[-1] == "total: $0.50"


def test_the_option_wins_over_the_environment(tmp_path: Path) -> None:
    state = hub_state(tmp_path)
    url = f"sqlite:///{state / 'wbspawner-costs.sqlite'}"
    code, out, _ = run("--db", url, environ={"WBSPAWNER_STATE_DIR": "/nowhere"})
    assert code == 0 and "total: $0.50" in out


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are not the records you are looking for\n" * 50)
    return f"sqlite:///{path}"


def _other_database(tmp_path: Path) -> str:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("create table users (name text)")
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("make_url", "says"),
    [
        pytest.param(lambda t: "costs.sqlite", "is not a database URL", id="a-path"),
        pytest.param(
            lambda t: f"sqlite:///{t / 'missing.sqlite'}",
            "no accounting database at",
            id="missing-file",
        ),
        pytest.param(
            lambda t: "nosuchdb://user@127.0.0.1/db", "cannot read", id="no-dialect"
        ),
        pytest.param(
            lambda t: "postgresql://admin:s3cret@127.0.0.1:9/costs",
            "cannot read postgresql://admin:***@127.0.0.1:9/costs",
            id="no-server",
        ),
        pytest.param(_not_a_database, "cannot read", id="not-sqlite"),
        pytest.param(_other_database, "holds no accounting records", id="other-db"),
    ],
)
def test_an_unusable_database_is_one_line_and_exit_1(
    tmp_path: Path, elsewhere: Path, make_url, says: str
) -> None:
    url = make_url(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, out, err = run("--db", url)
    assert (code, out) == (1, "")
    assert err.startswith("error: ") and says in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "s3cret" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "created a file"
