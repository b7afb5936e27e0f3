"""The ``culling`` section: defaults, per-size timeouts, and every problem listed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from wbspawner.model import Catalog, CullSettings
from wbspawner.profiles.loader import load_profiles

REPO = Path(__file__).resolve().parents[3]


def test_defaults_without_a_section(
    tmp_path: Path,
    minimal_yaml: str,
    write_profiles: Callable[..., Path],
    catalog: Catalog,
) -> None:
    d = write_profiles(tmp_path / "p", {"a.yaml": minimal_yaml})
    assert load_profiles([d], catalog).culling == CullSettings()


def test_per_size_timeouts_are_read(
    tmp_path: Path,
    minimal_yaml: str,
    write_profiles: Callable[..., Path],
    catalog: Catalog,
) -> None:
    culling = (
        "culling:\n  idle_timeout_s: 900\n  sizes:\n    small: {idle_timeout_s: 700}\n"
    )
    d = write_profiles(tmp_path / "p", {"a.yaml": minimal_yaml, "b.yaml": culling})
    settings = load_profiles([d], catalog).culling
    assert settings.idle_timeout_of("small") == 700
    assert settings.idle_timeout_of("other") == 900


def test_every_problem_is_listed(
    tmp_path: Path,
    minimal_yaml: str,
    write_profiles: Callable[..., Path],
    problems_of: Callable[[list[Path]], list[str]],
) -> None:
    culling = (
        "culling:\n  warn_before_s: 600\n  idle_timeout_s: 600\n  colour: red\n"
        "  sizes:\n    nope: {idle_timeout_s: 1200}\n    small: {idle_timeout_s: 300}\n"
        "    tiny: {}\n"
    )
    d = write_profiles(tmp_path / "p", {"a.yaml": minimal_yaml, "b.yaml": culling})
    problems = "\n".join(problems_of([d]))
    assert "colour" in problems  # unknown key (schema)
    assert "$.culling.sizes.tiny" in problems  # no timeout (schema)
    assert "warn_before_s (600) must be less than idle_timeout_s (600)" in problems
    assert "$.culling.sizes.nope: unknown size 'nope'" in problems
    assert "$.culling.sizes.small.idle_timeout_s: idle_timeout_s (300)" in problems


def test_shipped_big_sizes_are_culled_sooner_than_small_ones(catalog: Catalog) -> None:
    profiles = load_profiles([REPO / "profiles"], catalog)
    timeout = profiles.culling.idle_timeout_of
    assert timeout("huge") < timeout("small")
