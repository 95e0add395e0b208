"""Where each part of the `brender` distribution lives in this repository.

The repository keeps the parts at its top level (`common/` is the `brender` package itself, with
the code both sides share; `server/` is `brender.server`, `node/` is `brender.node`), so the
mapping is written once here and setuptools finds every package below each root: a new
subpackage is shipped without anyone listing it. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

ROOTS = {"brender": "common", "brender.server": "server", "brender.node": "node"}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(folder)]
    return found


setup(package_dir=ROOTS, packages=packages())
