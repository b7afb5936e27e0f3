"""Run the SSH service: ``python -m wbspawner.ssh --help``."""

from __future__ import annotations

from wbspawner.service import run
from wbspawner.ssh.app import SSHApp


def main(argv: list[str] | None = None) -> None:
    """Run the SSH service (exit 1 when the profiles are invalid)."""
    run(SSHApp, argv)


if __name__ == "__main__":
    main()
