"""Map the design card's top-level folders onto the one `effcap` import namespace.

`capacity/` is imported as `effcap.capacity`, `service/` as `effcap.service`, and so on, so
nothing generic lands in a user's site-packages. `effcap` itself is a namespace package.
Everything else about the package lives in pyproject.toml.
"""

from setuptools import find_packages, setup

FOLDER_TO_PACKAGE = {
    "capacity": "effcap.capacity",
    "service": "effcap.service",
    "clients": "effcap.clients",
    "protos": "effcap.protos",
    "notebook": "effcap.notebook",
}

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder, package in FOLDER_TO_PACKAGE.items():
    package_dir[package] = folder
    packages.append(package)
    packages.extend(f"{package}.{sub}" for sub in find_packages(folder))

setup(packages=packages, package_dir=package_dir, package_data={"effcap.protos": ["effcap/v1/*.proto", "v1/*.pyi"]})
