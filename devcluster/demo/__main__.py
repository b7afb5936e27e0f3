"""``python -m devcluster.demo``: the whole workbench on this machine, for people.

It starts the :class:`~devcluster.demo.workbench.Workbench` (slapd with the demo
users, devcluster with its moto server and node groups, Dask Gateway, JupyterHub
with configurable-http-proxy, the SSH service), prints the URL, the logins, how
to come in by SSH (with a key it puts in bob's directory entry) and the line
that points the ``wbspawner`` command at it, and runs until Ctrl-C or SIGTERM,
when it stops everything it started, by PID. Every demo starts afresh under ``.demo/``
(or ``--state-dir``). Port 8000 is used when free; when it is taken the demo says
by whom and which port it uses instead; a ``--port`` that is taken stops it.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path

from devcluster.demo.workbench import PUBLIC_PORT, Workbench
from devcluster.services.ldap import DEMO_USERS
from devcluster.services.ports import PortTakenError


def logins_table() -> str:
    """Return the demo logins as a small text table."""
    rows = [("user", "password", "groups")]
    rows += [(u.uid, u.password, ", ".join(u.groups) or "(none)") for u in DEMO_USERS]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)) for row in rows
    )


def shown_path(path: Path) -> str:
    """Return a path relative to the working directory if inside, shell-quoted."""
    try:
        shown = path.relative_to(Path.cwd())
    except ValueError:
        shown = path
    return shlex.quote(str(shown))


def source_line(env_file: Path) -> str:
    """Return ``source <env file>``, relative to the working directory if inside."""
    return f"source {shown_path(env_file)}"


def ready_text(bench: Workbench, state: Path) -> str:
    """Return what the demo prints once it runs: URL, logins, CLI, logs."""
    lines = [""]
    if bench.port_note:
        lines += [f"NOTE: {bench.port_note}.", ""]
    lines += [f"wbspawner is running at {bench.url}/", "", logins_table(), ""]
    if bench.ssh_port:
        key = shown_path(bench.state_dir / "ssh" / "bob_ed25519")
        lines += [
            "Come in by SSH or SFTP (bob's key is in the directory; his server",
            "starts with his default size when none runs):",
            f"  ssh -i {key} -p {bench.ssh_port} bob@127.0.0.1",
            f"  sftp -i {key} -P {bench.ssh_port} bob@127.0.0.1",
            "",
        ]
    lines += [
        "Point the wbspawner command at it (pools plan, home list, cost report …):",
        f"  {source_line(bench.env_file)}",
        "",
        f"Logs: {state}   Stop with Ctrl-C.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the demo until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m devcluster.demo")
    parser.add_argument("--state-dir", default=".demo", help="logs and state")
    parser.add_argument(
        "--port", type=int, help=f"proxy port (default {PUBLIC_PORT}, else any)"
    )
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
    bench = Workbench(state, args.time_factor, public_port=args.port, ssh=True)
    try:
        bench.start()
    except PortTakenError as err:
        print(f"error: {err} (--port N)", file=sys.stderr)
        return 1
    try:
        bench.seed_ssh_key("bob")
        print(ready_text(bench, state), flush=True)
        stopped.wait()
        print("Stopping…", flush=True)
    finally:
        bench.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
