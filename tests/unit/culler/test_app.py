"""The culler service's traits are documented like every other service's."""

from __future__ import annotations

from wbspawner.culler.app import CullerApp


def test_every_culler_trait_has_help() -> None:
    own = CullerApp.class_own_traits(config=True)
    assert own
    assert [n for n, t in own.items() if not (t.help or "").strip()] == []
