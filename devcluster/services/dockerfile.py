"""What a Dockerfile of ``images/`` installs and runs, read without Docker. Pure.

devcluster runs each image of the charts as a local environment built from the
image's own pins (``devcluster.services.image_envs``), so it reads the
Dockerfile the way a build would use it:

* ``ARG`` defaults (the same values as ``images/versions.env``, which a test
  checks) substituted in ``${NAME}``/``$NAME``;
* ``COPY`` sources from the build context (the repository root) and where they
  land;
* every ``pip install`` of a ``RUN`` (its requirements, ``-c``/``-r`` files and
  local packages at their image paths, which a build stages from ``COPY``);
* the image config a runtime uses: ``ENV``, ``WORKDIR``, ``USER``,
  ``ENTRYPOINT`` and ``CMD`` (JSON form), and the files ``COPY`` puts outside
  ``/tmp`` (build-only files go there and are removed).

Only what ``images/`` uses is understood; anything else in a ``RUN`` (apt,
useradd) has no local counterpart and is ignored.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_PIP_FLAGS_WITH_VALUE = {"-c", "--constraint", "-r", "--requirement"}


@dataclass(frozen=True)
class Copy:
    """One ``COPY src... dest``: repository paths and the image path."""

    sources: tuple[str, ...]
    dest: str


@dataclass
class Dockerfile:
    """What one Dockerfile builds (the final stage)."""

    base: str = ""
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)
    pip: list[list[str]] = field(default_factory=list)
    """Each ``pip install``'s arguments (ARGs substituted, image paths kept)."""
    workdir: str = "/"
    user: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    def config(self) -> dict[str, object]:
        """Return the image config a runtime reads (OCI ``config`` fields)."""
        return {
            "Entrypoint": list(self.entrypoint),
            "Cmd": list(self.cmd),
            "WorkingDir": self.workdir,
            "User": self.user,
            "Env": [f"{k}={v}" for k, v in self.env.items()],
        }

    def files(self) -> dict[str, str]:
        """Return image path → repository path of files the image keeps.

        ``COPY`` into ``/tmp`` is build input (packages, constraints) and is
        left out; a ``COPY`` to a directory (``dest`` ending in ``/``) keeps
        the source's name.
        """
        kept: dict[str, str] = {}
        for copy in self.copies:
            if copy.dest.startswith("/tmp/"):
                continue
            for source in copy.sources:
                dest = copy.dest
                if dest.endswith("/"):
                    dest += source.rstrip("/").rsplit("/", 1)[-1]
                kept[dest] = source
        return kept

    def staged(self) -> list[tuple[str, str]]:
        """Return (repository path, image path) of every file ``COPY`` adds.

        A build stages these under a directory of its own and installs from
        there, so a ``pip install /tmp/pkg`` sees exactly what the image's
        build context gave it.
        """
        out = []
        for copy in self.copies:
            into_dir = copy.dest.endswith("/") or len(copy.sources) > 1
            for source in copy.sources:
                dest = copy.dest.rstrip("/")
                if into_dir:
                    dest = f"{dest}/{source.rstrip('/').rsplit('/', 1)[-1]}"
                out.append((source, dest))
        return out


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` and ``$NAME`` by ``values`` (unknown names stay)."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return values.get(name, m.group(0))

    return _VAR.sub(repl, text)


def _pairs(text: str) -> dict[str, str]:
    """``ENV``/``ARG`` arguments: ``K=V K2="V 2"`` (or the old ``K V`` form)."""
    words = shlex.split(text)
    if len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(w.split("=", 1) if "=" in w else (w, "") for w in words)


def _json_or_shell(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        return [str(w) for w in json.loads(text)]
    return ["/bin/sh", "-c", text]


def _commands(command: str) -> list[list[str]]:
    """Split a shell command line into simple commands (on ``&&``, ``;``, ``|``)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token and set(token) <= set("&;|()"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def _pip_installs(command: str, values: Mapping[str, str]) -> list[list[str]]:
    found = []
    for words in _commands(substitute(command, values)):
        if words[:2] == ["pip", "install"]:
            rest = words[2:]
        elif words[1:4] == ["-m", "pip", "install"]:
            rest = words[4:]
        else:
            continue
        argv: list[str] = []
        keep_next = False
        for word in rest:
            if keep_next:
                argv.append(word)
                keep_next = False
            elif word in _PIP_FLAGS_WITH_VALUE:
                argv.append(word)
                keep_next = True
            elif not word.startswith("-"):
                argv.append(word)
        found.append(argv)
    return found


def parse(text: str, build_args: Mapping[str, str] | None = None) -> Dockerfile:
    """Read a Dockerfile (its final stage) with optional ``--build-arg`` values."""
    image = Dockerfile()
    given = dict(build_args or {})
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        values = {**image.args, **image.env}
        if keyword == "ARG":
            for word in shlex.split(rest):
                name, has_default, default = word.partition("=")
                if name in given:
                    image.args[name] = given[name]
                elif has_default:
                    image.args[name] = substitute(default, values)
                else:  # a global ARG declared again after FROM keeps its value
                    image.args.setdefault(name, "")
        elif keyword == "FROM":
            image = Dockerfile(
                base=substitute(rest.split()[0], values), args=image.args
            )
        elif keyword == "ENV":
            for name, value in _pairs(rest).items():
                image.env[name] = substitute(value, values)
        elif keyword == "COPY":
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            image.copies.append(
                Copy(tuple(substitute(w, values) for w in words[:-1]), words[-1])
            )
        elif keyword == "RUN":
            image.pip += _pip_installs(rest, values)
        elif keyword == "WORKDIR":
            image.workdir = substitute(rest.strip(), values)
        elif keyword == "USER":
            image.user = substitute(rest.strip(), values)
        elif keyword == "ENTRYPOINT":
            image.entrypoint = _json_or_shell(rest)
        elif keyword == "CMD":
            image.cmd = _json_or_shell(rest)
    return image
