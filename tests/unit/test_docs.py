"""The admin reference in docs/profiles.md is the schema's own text, kept current."""

from __future__ import annotations

import io
from pathlib import Path

from wbspawner import cli

ROOT = Path(__file__).resolve().parents[2]


def test_profiles_reference_matches_the_schema() -> None:
    """docs/profiles.md equals `wbspawner schema` (regenerate it after edits)."""
    out = io.StringIO()
    assert cli.main(["schema"], stdout=out, stderr=io.StringIO()) == 0
    committed = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    assert committed == out.getvalue(), (
        "docs/profiles.md is stale: run `wbspawner schema > docs/profiles.md`"
    )


def test_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
