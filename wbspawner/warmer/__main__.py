"""Run the warmer service: ``python -m wbspawner.warmer --help``."""

from __future__ import annotations

from wbspawner.errors import ProfileConfigError
from wbspawner.warmer.app import WarmerApp


def main(argv: list[str] | None = None) -> None:
    """Run the warmer from the command line (exit 1 when the profiles are invalid)."""
    app = WarmerApp()
    app.initialize(argv)
    try:
        app.start()
    except ProfileConfigError as err:
        for problem in err.problems:
            app.log.error("Profiles problem: %s", problem)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
