"""The pytest plugin (entry point ``pytest11``): a fixture and a marker for checking a projector.

    import pytest

    @pytest.mark.ctxcontract(policy="codex", fail_on="loss")
    def test_projector(ctxcontract_check):
        ctxcontract_check(["node", "adapter.mjs"])

``ctxcontract_check(projector, **options)`` is
:func:`ctxcontract.testing.check_projector` with the options of the
closest ``ctxcontract`` marker as defaults.  Loading the plugin imports
nothing else: Hypothesis and the checker load when a test calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ctxcontract(**options): options for the ctxcontract_check fixture in this test "
        "(policy, fail_on, rules, keep_going, accept, max_examples, profile, seed, timeout, other_process, save_to)",
    )


@pytest.fixture
def ctxcontract_check(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Check a projector against the context contract; fails the test with each shrunk finding."""
    from .testing import check_projector

    marker = request.node.get_closest_marker("ctxcontract")
    defaults: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        raise pytest.UsageError("@pytest.mark.ctxcontract takes keyword options only, e.g. policy='codex'")

    def check(projector: Any, **options: Any) -> Any:
        __tracebackhide__ = True
        return check_projector(projector, **{**defaults, **options})

    return check
