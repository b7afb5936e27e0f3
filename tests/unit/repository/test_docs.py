"""The admin reference in docs/profiles.md is the schema's own text, kept current."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.paths import REPO


def test_profiles_reference_matches_the_schema(
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    """docs/profiles.md equals `wbspawner schema` (regenerate it after edits)."""
    code, out, _ = run_cli("schema")
    assert code == 0
    committed = (REPO / "docs" / "profiles.md").read_text(encoding="utf-8")
    assert committed == out, (
        "docs/profiles.md is stale: run `wbspawner schema > docs/profiles.md`"
    )


def test_readme_shows_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def _readme_yaml_blocks() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return [part.split("```", 1)[0] for part in readme.split("```yaml\n")[1:]]


def test_readme_profiles_examples_validate(tmp_path: Path) -> None:
    """Each YAML example of the README is valid profiles in its place.

    A complete example (with pools) stands alone; a section replaces the same
    section of the shipped profiles.
    """
    import yaml

    from wbspawner.catalog.instances import load_catalog
    from wbspawner.profiles.loader import load_profiles

    blocks = _readme_yaml_blocks()
    assert len(blocks) >= 3
    for i, block in enumerate(blocks):
        into = tmp_path / str(i)
        into.mkdir()
        example = yaml.safe_load(block)
        if "pools" not in example:
            for path in sorted((REPO / "profiles").glob("*.yaml")):
                shipped = yaml.safe_load(path.read_text(encoding="utf-8"))
                kept = {k: v for k, v in shipped.items() if k not in example}
                if kept:
                    (into / path.name).write_text(yaml.safe_dump(kept), "utf-8")
        (into / "99-readme.yaml").write_text(block, encoding="utf-8")
        profiles = load_profiles([into], load_catalog())
        if "budgets" in example:
            groups = [b["group"] for b in example["budgets"]]
            assert [b.group for b in profiles.budgets] == groups
        if "warm" in example:
            assert len(profiles.warm.schedules) == len(example["warm"]["schedules"])
        assert profiles.pools and profiles.sizes
