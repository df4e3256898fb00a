"""Check a projector from your own test suite: one call, or the pytest fixture.

    from ctxcontract.testing import check_projector

    def test_our_projector_keeps_the_contract():
        check_projector(["node", "dist/ctx-adapter.mjs"], policy="kimi-code", fail_on="loss")

``check_projector`` runs the same search as ``ctxcontract verify`` and
raises :class:`ProjectorFindings` (an ``AssertionError``) that shows each
finding: the rules it breaks, what they cost, and the shrunk session, ready
to save and replay with ``ctxcontract check``.  With the package installed,
pytest also has the fixture ``ctxcontract_check`` and the marker
``@pytest.mark.ctxcontract(policy=..., fail_on=...)`` that sets its options
for one test (see :mod:`ctxcontract.pytest_plugin`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctxref.protocol import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from ctxref.elsewhere import ProjectorSpec
    from ctxspec.findings import Collector, Finding
    from ctxspec.policy import Policy

__all__ = ["ProjectorFindings", "check_projector"]



class ProjectorFindings(AssertionError):
    """The projector broke the contract; ``findings`` holds each distinct finding, shrunk."""

    def __init__(self, message: str, findings: Sequence[Finding]) -> None:
        super().__init__(message)
        self.findings = list(findings)


def check_projector(
    projector: ProjectorSpec,
    *,
    policy: str | Policy = "reference",
    fail_on: str = "policy",
    rules: Sequence[str] | None = None,
    keep_going: int = 1,
    accept: str | os.PathLike[str] | None = None,
    max_examples: int | None = None,
    profile: str = "ci",
    seed: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    other_process: bool = True,
    save_to: str | os.PathLike[str] | None = None,
) -> Collector:
    """Search generated sessions for a way ``projector`` breaks the contract; raise if one is found.

    ``projector``: a function of the canonical event dicts that returns
    OpenAI chat messages (as ``verify --projector`` takes), its
    ``"module:function"`` name, or a command as a list of strings (as
    ``verify --projector-cmd`` takes; ``timeout`` is per answer).
    ``policy`` is a preset name, a TOML file or a :class:`~ctxspec.policy.Policy`;
    ``fail_on`` and ``rules`` say which findings count; ``keep_going`` how
    many distinct findings to collect; ``accept`` a TOML file of judged
    findings to set aside.  ``other_process`` also projects each session's
    last request in another process (not possible for a bare function).
    ``save_to``: a folder to write each finding's session into.

    Returns the search's :class:`~ctxspec.findings.Collector` when nothing
    counted was found (its ``judged`` lists the accepted findings met).
    """
    from ctxref.elsewhere import under_test
    from ctxspec.checker import search
    from ctxspec.contract import RULES, Selection
    from ctxspec.findings import load_accepted
    from ctxspec.policy import Policy, load_policy
    from ctxspec.rules import Level

    declared = policy if isinstance(policy, Policy) else load_policy(str(policy))
    asked = frozenset(r.upper() for r in rules) if rules is not None else frozenset(RULES)
    if not asked or asked - set(RULES):
        raise ValueError(f"rules {sorted(asked)!r}: expected some of {', '.join(RULES)}")
    select = Selection(asked, Level(fail_on))
    judged = load_accepted(os.fspath(accept)) if accept is not None else ()
    overrides: dict[str, Any] = {"max_examples": max_examples} if max_examples else {}
    with under_test(projector, timeout=timeout, elsewhere=other_process) as (under, elsewhere, name):
        found = search(under, limit=keep_going, accepted=judged, profile=profile, seed=seed, policy=declared, select=select, elsewhere=elsewhere, **overrides)
    if found.findings:
        raise ProjectorFindings(_report(name, declared, found, save_to), found.findings)
    return found


def _report(name: str, policy: Policy, found: Collector, save_to: str | os.PathLike[str] | None) -> str:
    from ctxspec.contract import RULES
    from ctxspec.events import dumps_log

    lines = [f"{name} broke the context contract under policy {policy.name}: {len(found.findings)} distinct finding(s)"]
    for n, finding in enumerate(found.findings, 1):
        lines.append(f"\nfinding {n}: {finding.rule} {RULES[finding.rule].title} [{finding.level.value}], session shape {finding.signature!r}")
        lines.extend(f"  {v}" for v in finding.violations)
        text = dumps_log(finding.log)
        if save_to is not None:
            folder = Path(save_to)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"finding-{n}.jsonl"
            path.write_text(text, encoding="utf-8")
            lines.append(f"the session, written to {path} (replay: ctxcontract check {path} --projector ...):")
        else:
            lines.append("the session (save it as a .jsonl file and replay it with ctxcontract check FILE --projector ...):")
        lines.append(text.rstrip("\n"))
    return "\n".join(lines)
