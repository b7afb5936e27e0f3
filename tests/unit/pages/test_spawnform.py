"""The spawn form's HTML: one radio group of size cards, KubeSpawner's field names."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from html.parser import HTMLParser
from typing import Any

import pytest

from wbspawner.model import Profiles
from wbspawner.pages.spawnform import chosen_size, render
from wbspawner.spawn.budget import BudgetState
from wbspawner.spawn.form import CARD, banner, kubespawner_profiles

BOB = ["jupyter-users"]


class Fields(HTMLParser):
    """The form's inputs and selects, and which radio and options are chosen."""

    def __init__(self) -> None:
        super().__init__()
        self.radios: list[dict[str, str | None]] = []
        self.selects: dict[str, list[tuple[str, bool]]] = {}
        self.labels: dict[str, str] = {}
        self._select: str | None = None
        self._label: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("type") == "radio":
            self.radios.append(found)
        elif tag == "select":
            self._select = str(found["name"])
            self.selects[self._select] = []
        elif tag == "option" and self._select:
            self.selects[self._select].append(
                (str(found["value"]), "selected" in found)
            )
        elif tag == "label":
            self._label = str(found.get("for"))
            self.labels[self._label] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "label":
            self._label = None

    def handle_data(self, data: str) -> None:
        if self._label:
            self.labels[self._label] += data


def fields(html: str) -> Fields:
    parser = Fields()
    parser.feed(html)
    return parser


def checked(found: Fields) -> list[str | None]:
    return [r["value"] for r in found.radios if "checked" in r]


def test_one_radio_group_named_like_kubespawners(profiles: Profiles) -> None:
    html = render(kubespawner_profiles(profiles, BOB, False), {})
    found = fields(html)
    assert [r["value"] for r in found.radios] == [
        "small",
        "medium",
        "large",
        "xlarge",
        "xxlarge",
    ]
    assert {r["name"] for r in found.radios} == {"profile"}
    assert all(r["id"] == f"profile-item-{r['value']}" for r in found.radios)
    assert checked(found) == ["medium"]  # the default size
    assert "<fieldset" in html and "<legend>Server size</legend>" in html
    # the size's name names the radio; the rest of the card describes it
    assert found.labels["profile-item-large"] == "64 GiB"
    assert 'aria-describedby="wb-size-large-details"' in html
    assert "<script" not in html


def test_every_card_shows_hardware_prices_and_its_image(profiles: Profiles) -> None:
    html = render(kubespawner_profiles(profiles, BOB, False, {"mem64": 1}), {})
    large = html[html.index('id="wb-size-large"') : html.index('id="wb-size-xlarge"')]
    assert "64 GiB memory · 8 CPUs" in large
    assert "$0.50/h on-demand" in large
    assert "spot (estimated)" in large
    assert re.search(r'class="badge wb-ready">Ready now<', large)
    assert "Image: SciPy (Python, pandas, scikit-learn)" in large
    assert "Starts in about 3 minutes" in html  # the sizes with no warm node
    found = fields(html)
    assert found.selects["profile-option-large--image"] == [
        ("scipy", True),
        ("datascience", False),
    ]


def test_gpu_sizes_carry_a_gpu_badge(profiles: Profiles) -> None:
    html = render(kubespawner_profiles(profiles, ["gpu-users"], False), {})
    t4 = html[html.index('id="wb-size-gpu-t4"') : html.index('id="wb-size-gpu-a10g"')]
    assert 'class="badge wb-gpu">GPU<' in t4
    assert "1× NVIDIA T4 GPU" in t4
    medium = html[html.index('id="wb-size-medium"') : html.index('id="wb-size-gpu-t4"')]
    assert "wb-gpu" not in medium


@pytest.mark.parametrize(
    ("saved", "size", "image"),
    [
        pytest.param({}, "medium", None, id="nothing-saved"),
        pytest.param({"profile": "large"}, "large", "scipy", id="saved-size"),
        pytest.param(
            {"profile": "large", "image": "datascience"},
            "large",
            "datascience",
            id="saved-size-and-image",
        ),
        pytest.param({"profile": "retired"}, "medium", None, id="size-gone"),
    ],
)
def test_saved_options_preselect_size_and_image(
    profiles: Profiles, saved: dict[str, Any], size: str, image: str | None
) -> None:
    found = fields(render(kubespawner_profiles(profiles, BOB, False), saved))
    assert checked(found) == [size]
    if image is not None:
        chosen = [v for v, on in found.selects[f"profile-option-{size}--image"] if on]
        assert chosen == [image]


def test_notices_come_first_and_admin_text_is_escaped(profiles: Profiles) -> None:
    size = dataclasses.replace(
        profiles.sizes[0],
        display_name="<b>4 GiB</b>",
        description="<script>alert(1)</script>",
    )
    changed = dataclasses.replace(profiles, sizes=(size, *profiles.sizes[1:]))
    notice = banner("Your group's budget <is> nearly spent")
    html = render(kubespawner_profiles(changed, BOB, False), {}, [notice, ""])
    assert (
        html.index('id="wb-notices"')
        < html.index("&lt;is&gt;")
        < html.index("<fieldset")
    )
    # the admin's description is the card's note, escaped once
    assert "<script>alert" not in html
    assert (
        '<div class="wb-note wb-muted">&lt;script&gt;alert(1)&lt;/script&gt;</div>'
    ) in html
    assert fields(html).labels["profile-item-small"] == "<b>4 GiB</b>"
    assert "&lt;b&gt;4 GiB&lt;/b&gt;" in html
    assert "&amp;lt;" not in html  # a card is escaped once


def test_every_card_shows_its_note(profiles: Profiles) -> None:
    html = render(kubespawner_profiles(profiles, BOB, False), {})
    notes = re.findall(r'<div class="wb-note wb-muted">([^<]*)</div>', html)
    assert notes == [s.description for s in profiles.sizes[:5]]
    assert notes[2] == "8 CPUs, larger data sets"


def test_a_spent_budget_marks_its_sizes(profiles: Profiles) -> None:
    state = BudgetState(
        group="jupyter-users",
        level="over",
        spent=Fraction(5000),
        monthly=Fraction(4000),
        month="2026-05",
        free_sizes=frozenset({"small", "medium"}),
    )
    entries = kubespawner_profiles(profiles, BOB, False, budget=state)
    assert entries[2][CARD].unavailable
    html = render(entries, {})
    assert 'class="wb-size wb-size-unavailable" id="wb-size-large"' in html
    assert "budget of jupyter-users is spent" in html
    assert 'class="wb-size" id="wb-size-medium"' in html


def test_no_size_says_whom_to_ask() -> None:
    html = render([], {})
    assert "Ask the hub admins" in html
    assert "<fieldset" not in html
    assert chosen_size([], "large") == ""
