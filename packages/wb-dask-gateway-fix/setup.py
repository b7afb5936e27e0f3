"""Build hook: ship ``wb_dask_gateway_fix.pth`` at the top of site-packages.

Python runs a ``.pth`` file's ``import`` lines at start-up; that is how the fix
is in force in every interpreter of the environment without anyone importing
it. setuptools has no declarative way to place a file at the root of a wheel,
so ``build_py`` copies it next to the packages.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "wb_dask_gateway_fix.pth"


class BuildWithPth(build_py):
    """``build_py`` that also puts the ``.pth`` file into the build."""

    def run(self) -> None:
        """Build the packages, then copy the ``.pth`` file beside them."""
        super().run()
        source = Path(__file__).resolve().parent / PTH
        self.copy_file(str(source), str(Path(self.build_lib) / PTH))


setup(cmdclass={"build_py": BuildWithPth})
