"""Refuse to build without the JupyterLab extension (``make lab-notices`` builds it)."""

from pathlib import Path

from setuptools import setup

BUILT = Path(__file__).parent / "labextension" / "package.json"
if not BUILT.is_file():
    raise SystemExit(
        f"{BUILT} is missing: build the JupyterLab extension first "
        "(make lab-notices, or npm ci && jupyter-builder build . in this folder)"
    )
setup()
