"""``python -m devcluster.demo``: the whole workbench on this machine, for people.

It starts the :class:`~devcluster.demo.workbench.Workbench` (slapd with the demo
users, devcluster with its moto server and node groups, Dask Gateway, JupyterHub
with configurable-http-proxy), prints the URL and the logins, and runs until
Ctrl-C or SIGTERM, when it stops everything it started, by PID. Every demo starts
afresh under ``.demo/`` (or ``--state-dir``).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path

from devcluster.demo.workbench import Workbench
from devcluster.services.ldap import DEMO_USERS


def logins_table() -> str:
    """Return the demo logins as a small text table."""
    rows = [("user", "password", "groups")]
    rows += [(u.uid, u.password, ", ".join(u.groups) or "(none)") for u in DEMO_USERS]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)) for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m devcluster.demo")
    parser.add_argument("--state-dir", default=".demo", help="logs and state")
    parser.add_argument("--port", type=int, default=0, help="proxy port (8000)")
    parser.add_argument(
        "--time-factor", type=float, default=0.1, help="0.1: nodes boot in 18 s"
    )
    args = parser.parse_args(argv)
    state = Path(args.state_dir).resolve()
    shutil.rmtree(state, ignore_errors=True)  # every demo starts afresh
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    print("Starting slapd, devcluster, node groups, Dask Gateway, hub…", flush=True)
    with Workbench(state, args.time_factor, public_port=args.port or None) as bench:
        print(f"\nwbspawner is running at {bench.url}/\n", flush=True)
        print(logins_table(), flush=True)
        print(f"\nLogs: {state}   Stop with Ctrl-C.", flush=True)
        stopped.wait()
        print("Stopping…", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
