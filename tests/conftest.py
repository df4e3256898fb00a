"""Hypothesis profiles: ``ci`` when CI=true, else HYPOTHESIS_PROFILE, else ``dev``.

Every test runs with Hypothesis's pool of literals from our own modules
empty (:func:`ctxspec.checker.programs_from_the_profile_alone`): the
derandomized ``ci`` programs then do not depend on which tests ran first in
the same worker, nor on an unrelated literal in our code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from ctxspec.checker import programs_from_the_profile_alone, register_profiles

register_profiles()
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")
else:
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True, scope="session")
def _programs_from_the_profile_alone() -> Iterator[None]:
    with programs_from_the_profile_alone():
        yield
