"""JupyterHub configuration of wbspawner: read the settings, apply them.

Everything is decided in ``wbspawner.hubconfig.apply`` (tested); this file only
reads the environment (``WBSPAWNER_*``, see ``wbspawner.settings``) and the
profiles. Invalid profiles stop the hub here, with every problem listed.
"""

import logging
import os

from wbspawner import hubconfig
from wbspawner.catalog import load_catalog
from wbspawner.loader import ProfilesSource
from wbspawner.settings import Settings

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

settings = Settings.from_env(os.environ)
source = ProfilesSource(
    settings.profiles_paths,
    load_catalog(settings.catalog_path),
    logging.getLogger("JupyterHub").getChild("profiles"),
    interval_s=settings.profiles_check_seconds,
)
hubconfig.apply(c, settings, source.current(), source=source)
hubconfig.quiet_expected_spawn_errors()
