"""Run the culler service: ``python -m wbspawner.culler --help``."""

from __future__ import annotations

from wbspawner.culler.app import CullerApp
from wbspawner.service import run


def main(argv: list[str] | None = None) -> None:
    """Run the culler from the command line (exit 1 when the profiles are invalid)."""
    run(CullerApp, argv)


if __name__ == "__main__":
    main()
