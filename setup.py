"""The build step that puts templates/, static/ and alembic/ into the wheel.

The checkout keeps them at the top level (the layout every contributor knows); an installed
package has no checkout around it, so the wheel carries copies under ``app/_resources/``.
``app.config.resource_path`` looks there first and falls back to the checkout, which is what
an editable install (``make install``) uses: nothing is copied for it.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESOURCES = ("templates", "static", "alembic")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildWithResources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "app" / "_resources"
        for name in RESOURCES:
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(Path(name), target / name, ignore=IGNORED)


setup(cmdclass={"build_py": BuildWithResources})
