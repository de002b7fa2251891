"""The package list: every package under ``agi_server/`` is found (a new module
folder needs no line here), plus the two data folders SPEC.md keeps at the
top level of the repository (mapped into the package in setup.cfg)."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["agi_server", "agi_server.*"]),
        "agi_server.dialplan_templates",
        "agi_server.sounds",
    ]
)
