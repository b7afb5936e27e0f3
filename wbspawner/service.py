"""What every wbspawner service that reads the profiles shares: one process shell.

The warmer (:mod:`wbspawner.warmer.app`) and the culler
(:mod:`wbspawner.culler.app`) are JupyterHub services built like
jupyterhub-idle-culler: a traitlets application whose traits carry help and
command-line aliases. This module owns what they have in common, so a setting
means the same in both and has one default:

- :class:`ProfilesService`: the hub API URL and token, the profiles
  directories, the accounting database, the managing hub's PID, and the log
  layout of the hub's own lines (a service's lines sit in the hub's log);
- :func:`run`: ``python -m wbspawner.<service>``: start it, and turn invalid
  profiles into one log line per problem and exit status 1, not a traceback.
"""

from __future__ import annotations

import logging
import os

from traitlets import Int, List, Unicode, default
from traitlets.config import Application

from wbspawner.adapters.parent import PARENT_PID_HELP
from wbspawner.costs.accounting import DEFAULT_DB_URL
from wbspawner.errors import ProfileConfigError

HUB_LOG_FORMAT = "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s] %(message)s"
"""JupyterHub's own log layout."""

HUB_LOG_DATEFMT = "%Y-%m-%d %H:%M:%S"
"""JupyterHub's own time stamps."""


class ProfilesService(Application):
    """A JupyterHub service of wbspawner that reads the profiles."""

    profiles_dir = List(
        Unicode(), config=True, help="Profiles directories or files, merged in order."
    )
    api_url = Unicode(config=True, help="The hub API URL ($JUPYTERHUB_API_URL).")
    api_token = Unicode(
        config=True, help="The service's API token ($JUPYTERHUB_API_TOKEN)."
    )
    cost_db_url = Unicode(config=True, help="Accounting DB ($WBSPAWNER_COST_DB_URL).")
    parent_pid = Int(0, config=True, help=PARENT_PID_HELP)

    @default("log_level")
    def _default_log_level(self) -> int:
        return logging.INFO

    @default("log_format")
    def _default_log_format(self) -> str:
        return HUB_LOG_FORMAT

    @default("log_datefmt")
    def _default_log_datefmt(self) -> str:
        return HUB_LOG_DATEFMT

    @default("api_url")
    def _default_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    @default("api_token")
    def _default_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("profiles_dir")
    def _default_profiles_dir(self) -> list[str]:
        raw = os.environ.get("WBSPAWNER_PROFILES", "/etc/wbspawner/profiles")
        return [p for p in raw.split(os.pathsep) if p]

    @default("cost_db_url")
    def _default_cost_db_url(self) -> str:
        return os.environ.get("WBSPAWNER_COST_DB_URL") or DEFAULT_DB_URL


def run(app_class: type[ProfilesService], argv: list[str] | None = None) -> None:
    """Run a service from the command line; exit 1 when the profiles are invalid.

    Args:
        app_class: the service's application class.
        argv: the command line (``sys.argv[1:]`` when ``None``).
    """
    app = app_class()
    app.initialize(argv)
    try:
        app.start()
    except ProfileConfigError as err:
        for problem in err.problems:
            app.log.error("Profiles problem: %s", problem)
        raise SystemExit(1) from None
