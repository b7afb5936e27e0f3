"""Where the repository is, for tests that read its shipped files.

Every tier reads the repository's own files (profiles, charts' values, images,
docs); :data:`REPO` is its root, found once here rather than by counting
folders up from each test module.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
"""The repository's root folder."""
