"""Build hook: the wheel carries the case tables and example profiles (``cases/``,
``examples/`` at the top of the checkout) as ``conformance/_shipped/``, where
:mod:`conformance.model.shipped` finds them outside a checkout.  Everything else is in
pyproject.toml."""

import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent
SHIPPED = ("cases", "examples")


class BuildWithShippedData(build_py):
    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "conformance" / "_shipped"
        for name in SHIPPED:
            shutil.copytree(ROOT / name, target / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.keytab", "*.pfx"))


setup(cmdclass={"build_py": BuildWithShippedData})
