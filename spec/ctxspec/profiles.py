"""The Hypothesis profiles, as plain data (no Hypothesis import).

``ci`` is loaded when ``CI=true`` (Hypothesis's own convention): derandomized,
no example database.  ``dev`` is the local default; ``fuzz`` is the long run.
:func:`ctxspec.checker.register_profiles` registers them; the command line
reads the names from here so that it starts without importing Hypothesis.
"""

from __future__ import annotations

from typing import Final

PROFILES: Final[dict[str, dict[str, object]]] = {
    "ci": dict(max_examples=1000, stateful_step_count=40, derandomize=True, database=None, deadline=None, print_blob=True),
    "dev": dict(max_examples=200, stateful_step_count=40, deadline=None),
    "fuzz": dict(max_examples=10_000, stateful_step_count=60, deadline=None),
}
