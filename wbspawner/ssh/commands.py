"""One command (``ssh bob@hub id -u``) run in a terminal: how it is typed and read.

A Jupyter terminal is an interactive shell on a pseudo-terminal; it has no
"run this and tell me its exit status". This module owns the small protocol
that makes it one, pure and testable on its own:

- :func:`command_line`: the line typed into the terminal. It turns off the
  echo and CR/LF translation, prints a start marker, runs the command in a subshell
  (sent base64-encoded, so no quoting can break it; its ``exit`` ends only the
  subshell), prints an end marker with the
  exit status and ends the shell. The markers are printed from two parts, so
  the echo of the typed line itself never contains them;
- :class:`MarkedOutput`: reads the terminal's output and hands on only what
  lies between the markers, then the status.

A pseudo-terminal merges standard error into standard output, and the command
reads no standard input (use SFTP for files): both are said in the user guide.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field

PREFIX = "WBSSH"


def new_tag() -> str:
    """Return a random tag that makes this command's markers unique."""
    return secrets.token_hex(8)


def begin_marker(tag: str) -> str:
    """Return the line printed just before the command's output."""
    return f"{PREFIX}{tag}B\n"


def end_marker(tag: str) -> str:
    """Return what precedes the exit status after the command's output."""
    return f"{PREFIX}{tag}E"


def command_line(command: str, tag: str) -> str:
    r"""Return the line to type into a terminal to run ``command`` once.

    Args:
        command: the shell command the client asked for.
        tag: from :func:`new_tag`.

    Returns:
        A line ending in ``\\r`` (Enter).
    """
    encoded = base64.b64encode(command.encode()).decode()
    return (
        "stty -echo -onlcr 2>/dev/null; "
        f"printf '{PREFIX}%sB\\n' {tag}; "
        f'(eval "$(printf %s {encoded} | base64 -d)"); '
        f"printf '{PREFIX}%sE%d\\n' {tag} $?; exit\r"
    )


@dataclass
class MarkedOutput:
    """The output of a :func:`command_line`, read chunk by chunk.

    Args:
        tag: the tag the line was made with.
    """

    tag: str
    started: bool = False
    status: int | None = None
    """The command's exit status, once the end marker was read."""
    _held: str = field(default="", repr=False)

    @property
    def done(self) -> bool:
        """Whether the end marker and the status were read."""
        return self.status is not None

    def feed(self, text: str) -> str:
        """Return the command's output in ``text`` (and what was held before).

        Args:
            text: the next chunk of the terminal's output.

        Returns:
            Output to hand on; the prompt, the echo and the markers never are.
        """
        if self.done:
            return ""
        self._held += text
        if not self.started:
            begin = begin_marker(self.tag)
            at = self._held.find(begin)
            if at < 0:
                self._held = self._held[-len(begin) :]
                return ""
            self.started = True
            self._held = self._held[at + len(begin) :]
        end = end_marker(self.tag)
        at = self._held.find(end)
        if at >= 0:
            rest = self._held[at + len(end) :]
            digits = rest.split("\n", 1)
            if len(digits) < 2:  # the status is not complete yet
                return self._take(at)
            self.status = int(digits[0]) if digits[0].isdigit() else 255
            out, self._held = self._held[:at], ""
            return out
        # Hold back what could be the start of the end marker.
        return self._take(max(len(self._held) - len(end), 0))

    def _take(self, upto: int) -> str:
        out, self._held = self._held[:upto], self._held[upto:]
        return out
