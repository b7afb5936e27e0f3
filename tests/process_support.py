"""Reading what a started process prints, within a bounded wait."""

from __future__ import annotations

import selectors
import subprocess


def read_line(proc: subprocess.Popen[str], timeout: float, what: str) -> str:
    """Return the next line ``proc`` prints on its stdout (a pipe).

    Raises ``RuntimeError`` naming ``what`` when it prints nothing within
    ``timeout`` seconds, or ends first (with the end of its stderr when that is
    a pipe too).
    """
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise RuntimeError(f"{what} printed nothing in {timeout:g} s")
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read()[-2000:] if proc.stderr else ""
        raise RuntimeError(f"{what} exited with status {proc.wait(10)}. {err}")
    return line
