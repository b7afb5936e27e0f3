"""JupyterHub configuration of wbspawner: read the settings, apply them.

Everything is decided in ``wbspawner.hub.hubconfig.apply`` (tested); this file only
reads the environment (``WBSPAWNER_*``, see ``wbspawner.hub.settings``) and the
profiles. Invalid profiles stop the hub here, with every problem listed.
"""

import logging
import os

from wbspawner.catalog.instances import load_catalog
from wbspawner.hub import hubconfig
from wbspawner.hub.settings import Settings
from wbspawner.profiles.loader import ProfilesSource

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
