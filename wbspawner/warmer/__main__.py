"""Run the warmer service: ``python -m wbspawner.warmer --help``."""

from __future__ import annotations

from wbspawner.warmer.app import main

if __name__ == "__main__":
    main()
