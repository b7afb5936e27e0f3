"""Run the culler service: ``python -m wbspawner.culler --help``."""

from __future__ import annotations

from wbspawner.culler.app import CullerApp
from wbspawner.errors import ProfileConfigError


def main(argv: list[str] | None = None) -> None:
    """Run the culler from the command line (exit 1 when the profiles are invalid)."""
    app = CullerApp()
    app.initialize(argv)
    try:
        app.start()
    except ProfileConfigError as err:
        for problem in err.problems:
            app.log.error("Profiles problem: %s", problem)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
