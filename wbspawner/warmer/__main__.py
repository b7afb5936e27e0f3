"""Run the warmer service: ``python -m wbspawner.warmer --help``."""

from __future__ import annotations

from wbspawner.service import run
from wbspawner.warmer.app import WarmerApp


def main(argv: list[str] | None = None) -> None:
    """Run the warmer from the command line (exit 1 when the profiles are invalid)."""
    run(WarmerApp, argv)


if __name__ == "__main__":
    main()
