"""Provider acceptance (``ctxspec.providers``) and the reference renderers (``ctxref.render``).

* The reference projection of every log, rendered for every provider, is
  accepted by that provider's rules: over generated logs under drawn
  policies (Hypothesis, the profile in force) and over every session of at most
  :data:`EXHAUSTIVE_LENGTH` events (2 slots), with and without thinking mode.
* Every provider rule has a mutant renderer that breaks it.  The mutant is
  killed twice: by the exhaustive run (its shortest failing session must be
  the one kept in ``tests/provider_regressions/<mutant>.jsonl``), and by the
  Hypothesis property run with the mutant in place of the reference.
* Each kept counterexample replays: the reference's rendering is accepted,
  the mutant's is rejected by exactly the rule it breaks (others may join).

Thinking mode: the log model carries no reasoning, so the tests give each
assistant message a reasoning (as a runtime that kept it would) before
rendering with ``thinking=True``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ctxref.projector import project
from ctxref.render import MUTANTS, RENDERERS, MutantRenderer, Options, render
from ctxspec.events import Assistant, Event, StepBegin, ToolResult, dumps_log, load_log
from ctxspec.explore import concretize, sessions
from ctxspec.messages import AssistantMessage, Message, Reasoning
from ctxspec.providers import PROVIDERS, Rejection
from ctxspec.policy import Policy
from ctxspec.strategies import policies, session_logs

HERE = Path(__file__).parent
KEPT = HERE / "provider_regressions"
EXHAUSTIVE_LENGTH = 5


def with_reasoning(messages: Sequence[Message]) -> list[Message]:
    """Each assistant message with a reasoning of its own, as a thinking model returns one."""
    return [
        replace(m, reasoning=Reasoning(text=f"thinking before reply {n}", signature=f"sig{n}", id=f"rs_{n:04d}")) if isinstance(m, AssistantMessage) else m
        for n, m in enumerate(messages)
    ]


def judged(messages: Sequence[Message], provider: str, renderer: object, thinking: bool) -> list[Rejection]:
    sent = with_reasoning(messages) if thinking else list(messages)
    payload = renderer(sent, Options(thinking=thinking))  # type: ignore[operator]
    return PROVIDERS[provider].check(payload)


def kimi_ids(log: Sequence[Event]) -> tuple[Event, ...]:
    """The same log with Kimi-style call ids (``Name:k``, ``:`` and all), which some providers refuse as they
    are, and with text before every reply's calls (the enumeration's replies hold calls or text, never both)."""

    def kimi(call_id: str, name: str = "Ghost") -> str:
        return f"{name}:{call_id.rsplit('_', 1)[-1]}"

    names = {c.id: c.name for e in log if isinstance(e, Assistant) for c in e.calls}
    out: list[Event] = []
    for e in log:
        if isinstance(e, Assistant):
            e = replace(e, calls=tuple(replace(c, id=kimi(c.id, c.name)) for c in e.calls), text=e.text or ("Let me look." if e.calls else ""))
        elif isinstance(e, ToolResult):
            e = replace(e, call_id=kimi(e.call_id, names.get(e.call_id, "Ghost")))
        out.append(e)
    return tuple(out)


@lru_cache(maxsize=2)
def requests(length: int = EXHAUSTIVE_LENGTH) -> tuple[tuple[Event, ...], ...]:
    """Every session of at most ``length`` events that ends at a request: as concretized (OpenAI-style ids), and,
    if it has a call or a result, again through :func:`kimi_ids`."""
    out = []
    for s in sessions(length, 2):
        if s.trace and s.trace[-1].kind == StepBegin.type:
            log = tuple(concretize(s.trace, 2))
            out.append(log)
            if any(isinstance(e, (Assistant, ToolResult)) for e in log):
                out.append(kimi_ids(log))
    return tuple(out)


@lru_cache(maxsize=2)
def projections(length: int = EXHAUSTIVE_LENGTH) -> tuple[tuple[tuple[Event, ...], tuple[Message, ...]], ...]:
    return tuple((log, tuple(project(log))) for log in requests(length))


def test_every_provider_has_a_renderer_and_every_rule_a_mutant() -> None:
    assert set(RENDERERS) == set(PROVIDERS)
    broken = {(m.provider, m.rule) for m in MUTANTS.values()}
    missing = [f"{p.name} {r.code}" for p in PROVIDERS.values() for r in p.rules if (p.name, r.code) not in broken]
    assert not missing, f"rules with no mutant renderer: {missing}"


@pytest.mark.parametrize("thinking", [False, True], ids=["plain", "thinking"])
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_reference_rendering_is_accepted_on_every_short_session(provider: str, thinking: bool) -> None:
    assert len(projections()) > 500  # the enumeration ran: a bound that silently shrank would prove nothing
    for log, messages in projections():
        found = judged(messages, provider, RENDERERS[provider], thinking)
        assert not found, f"{provider} rejects the reference on\n{dumps_log(log)}{found[0]}"


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(log=session_logs(), policy=policies(), thinking=st.booleans())
def test_reference_rendering_is_accepted_on_generated_logs(log: tuple[Event, ...], policy: Policy, thinking: bool) -> None:
    """Every provider at once: each log is projected once (under a drawn preset or policy), then rendered for each."""
    messages = project(log, policy)
    for provider in PROVIDERS:
        found = judged(messages, provider, RENDERERS[provider], thinking)
        assert not found, f"{provider} rejects the reference under policy {policy.name}: {found[0]}"


def _kills(mutant: MutantRenderer, messages: Sequence[Message]) -> bool:
    return any(
        r.rule == mutant.rule for thinking in (False, True) for r in judged(messages, mutant.provider, mutant.render, thinking)
    )


def shortest_kill(mutant: MutantRenderer, length: int = EXHAUSTIVE_LENGTH) -> tuple[Event, ...] | None:
    """The shortest session of the enumeration whose rendering the mutant's rule rejects."""
    best: tuple[Event, ...] | None = None
    for log, messages in projections(length):
        if (best is None or len(log) < len(best)) and _kills(mutant, messages):
            best = log
    return best


def _search(mutant: MutantRenderer, *, shrink: bool, examples: int = 300) -> tuple[Event, ...] | None:
    """A generated log whose rendering the mutant's rule rejects (shrunk when ``shrink``), or ``None``."""
    caught: list[tuple[Event, ...]] = []
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]

    @settings(phases=phases, suppress_health_check=list(HealthCheck), max_examples=examples, database=None, derandomize=True)
    @given(log=session_logs())
    def accepted(log: tuple[Event, ...]) -> None:
        if _kills(mutant, project(log)):
            caught[:] = [log]
            raise AssertionError(mutant.rule)

    try:
        accepted()
    except AssertionError:
        return caught[-1]
    return None


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_each_mutant_renderer_dies_on_its_kept_session(name: str) -> None:
    """The kept session is the shortest the enumeration finds; past its bound, the one Hypothesis shrank to."""
    mutant = MUTANTS[name]
    found = shortest_kill(mutant)
    path = KEPT / f"{name}.jsonl"
    if os.environ.get("CTXCONTRACT_KEEP_PROVIDER_REGRESSIONS") and not path.exists():
        keep = found or shortest_kill(mutant, EXHAUSTIVE_LENGTH + 1) or _search(mutant, shrink=True, examples=2000)
        assert keep is not None, f"{name}: nothing breaks {mutant.provider} {mutant.rule}"
        path.write_text(dumps_log(keep))
    kept = load_log(str(path))
    if found is not None:
        assert len(kept) == len(found), f"{name}: the shortest session has {len(found) - 1} events, the kept one {len(kept) - 1}"
    else:
        assert len(kept) - 1 > EXHAUSTIVE_LENGTH, f"{name}: the enumeration misses the kept session of {len(kept) - 1} events"
    assert _kills(mutant, project(kept)), f"{name}: the kept session no longer breaks {mutant.rule}"
    for thinking in (False, True):
        assert not judged(project(kept), mutant.provider, RENDERERS[mutant.provider], thinking), f"{name}: the reference is rejected on the kept session"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_each_mutant_renderer_fails_the_property(name: str) -> None:
    mutant = MUTANTS[name]
    assert _search(mutant, shrink=False) is not None, f"{name}: 300 generated logs and none breaks {mutant.provider} {mutant.rule}"
