"""Hypothesis profiles: ``ci`` when CI=true, else HYPOTHESIS_PROFILE, else ``dev``."""

from __future__ import annotations

import os

from hypothesis import settings

from ctxspec.checker import register_profiles

register_profiles()
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")
else:
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
