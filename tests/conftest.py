"""Test-suite configuration.

Under CI (``CI`` set) hypothesis runs derandomized: the examples are a fixed function of each
test, so a CI run is reproducible and never fails on a draw a developer could not replay.
Locally the default (random, with the example database) keeps exploring new inputs.
"""

from __future__ import annotations

import os

import matplotlib
from hypothesis import settings

matplotlib.use("Agg")

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
