"""The stateful checker: a Hypothesis state machine that runs any projector.

What this module owns: turning the tables (``state.py``) and the contract
(``contract.py``) into a Hypothesis ``RuleBasedStateMachine`` for a projector
handed in by the caller, the Hypothesis profiles, and the adapter for
projectors that speak JSON (event dicts in, OpenAI-chat message dicts out).

The machine has one rule, ``event``, whose argument is drawn from the machine
itself (``st.runner()``): the next event the phase table allows, with ids
taken from the calls the log already has.  A failing program therefore prints
as the session log itself, one ``state.event(event=...)`` per line, and
replays as written.  At every ``step.begin`` the projector runs and the whole
contract is checked; at the end the replay rule C11 is checked.  A failure
raises :class:`~ctxspec.errors.ContractViolation`, which carries the log.

    >>> from ctxspec.checker import contract_machine, run_machine
    >>> # run_machine(contract_machine(my_projector))  # raises on a violation
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, Protocol

from hypothesis import HealthCheck, Phase as HPhase, settings
from hypothesis import strategies as st
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, initialize, rule, run_state_machine_as_test

from .contract import EVERYTHING, REFERENCE, Incremental, Projector, Selection, SessionChecker, Violation, check_session
from .contract import json_projector as json_projector  # re-exported: it lived here first
from .profiles import PROFILES as PROFILES
from .errors import ContractViolation, RefinementError
from .events import Event
from .findings import Accepted, Collector, Finding
from .policy import Policy
from .shrink import minimize
from .strategies import LogBuilder, slow_tools, swarms



#: Hypothesis's health checks on generation speed and size.  A session is a
#: long program of dependent draws by design, so they fire on honest inputs.
SESSION_HEALTH_CHECKS: Final = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much)


def session_settings(**overrides: Any) -> settings:
    """Hypothesis settings fit for generating sessions in your own test suite.

    The generation-speed health checks are off and there is no deadline
    (a projector may be slow on its first call); pass any other setting::

        @session_settings(max_examples=50)
        @given(session_logs())
        def test_my_projector(log): ...
    """
    return settings(**{"suppress_health_check": SESSION_HEALTH_CHECKS, "deadline": None, **overrides})


@contextmanager
def programs_from_the_profile_alone() -> Iterator[None]:
    """While inside, the programs Hypothesis draws depend on the profile alone.

    Hypothesis (6.13x on) draws, one time in twenty, an integer or a string
    written as a literal in any module of the caller's own code that happens
    to be imported at the time.  A derandomized run then tries other programs
    when an unrelated literal changes, or when a test that imports one more
    module ran first in the same process: a finding or a generator measure
    comes and goes with the order of the tests.  Inside this context that
    pool is empty, so the ``ci`` profile tries the same programs in every
    process, for every projector.  The pool is a Hypothesis internal: when
    it is not there (an older or a newer Hypothesis), nothing is changed and
    :data:`PINNED` says so (a test of ours checks it on the pinned version).
    """
    global PINNED
    providers: Any
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - Hypothesis moved it
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if original is None or cache is None or getattr(providers, "Constants", None) is None:
        yield
        return
    empty = providers.Constants()
    was = PINNED
    providers._get_local_constants = lambda: empty
    cache.cache.clear()
    PINNED = True
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.cache.clear()
        PINNED = was


#: Whether :func:`programs_from_the_profile_alone` is in effect.
PINNED = False


def register_profiles() -> None:
    """Register the ``ci``, ``dev`` and ``fuzz`` profiles with Hypothesis."""
    for name, kw in PROFILES.items():
        settings.register_profile(name, session_settings(report_multiple_bugs=False, **kw))


class StepCheck(Protocol):
    """An extra check run after every event, e.g. a refinement check."""

    def feed(self, event: Event) -> Sequence[str]: ...


def contract_machine(
    projector: Projector,
    *,
    incremental: Callable[[], Incremental] | None = None,
    flags: bool = True,
    max_calls: int = 3,
    step_check: Callable[[], StepCheck] | None = None,
    on_program: Callable[[int], None] | None = None,
    policy: Policy = REFERENCE,
    select: Selection = EVERYTHING,
    on_violation: Callable[[list[Violation], list[Event]], None] | None = None,
    policies: st.SearchStrategy[Policy] | None = None,
    follows: Callable[[Policy], tuple[Projector, Callable[[], Incremental] | None]] | None = None,
    elsewhere: Projector | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine class that checks ``projector`` against the contract.

    ``policy`` is the runtime's declared policy; ``select`` says which
    findings fail a program (the others are not reported).

    ``step_check``, if given, makes an object whose ``feed(event)`` runs after
    every event and returns failures (a refinement check, for instance).
    ``on_program``, if given, is called at the end of every program with the
    number of events it ran (progress reports count programs with it).
    ``on_violation``, if given, receives each failing program's findings and
    log instead of an exception; the rest of the program is drawn as usual
    but not checked (a search that keeps going, :func:`search`).

    ``policies``, if given, draws each program's policy (``strategies.policies()``);
    ``follows(policy)`` then gives the projector that declares it and its
    incremental form (the reference projector follows any policy).
    ``elsewhere``, if given, is the same projector in another process: each
    program's last request is projected there too (C11).
    """

    class ContextContract(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.builder = LogBuilder(max_calls=max_calls)
            self.checker = SessionChecker(projector, incremental=incremental, flags=flags, policy=policy, select=select, elsewhere=elsewhere)
            self.policy = policy
            self.step_check = step_check() if step_check is not None else None
            self.failed = False

        def _take(self, event: Event) -> None:
            self.builder.append(event)
            if self.failed:  # handed on already: the program only draws on (the same draws, so a flaky projector stays a finding)
                return
            if self.step_check is not None:
                failures = self.step_check.feed(event)
                if failures:
                    self.failed = True
                    raise RefinementError(failures, self.builder.log)
            found = self.checker.feed(event)
            if found:
                self.failed = True
                if on_violation is None:
                    error = ContractViolation(found, self.builder.log)
                    error.add_note(f"under policy {self.policy}")
                    raise error
                on_violation(found, list(self.builder.log))

        @initialize(event=_machine_draws(lambda builder, draw: builder.draw_first(draw)), disabled=swarms(), slow=slow_tools(), drawn=policies if policies is not None else st.none())
        def meta(self, event: Event, disabled: frozenset[str], slow: bool, drawn: Policy | None) -> None:
            if drawn is not None:
                self.policy = drawn
                run, inc = follows(drawn) if follows is not None else (projector, incremental)
                self.checker = SessionChecker(run, incremental=inc, flags=flags, policy=drawn, select=select, elsewhere=elsewhere)
            self.builder.disabled = disabled
            self.builder.slow = slow
            self._take(event)

        @rule(event=_machine_draws(lambda builder, draw: builder.draw_next(draw)))
        def event(self, event: Event) -> None:
            self._take(event)

        def teardown(self) -> None:
            if on_program is not None:
                on_program(len(self.builder.log))
            if self.failed or not self.builder.log:
                return
            found = self.checker.finish()
            if found and on_violation is not None:
                on_violation(found, list(self.builder.log))
            elif found:
                raise ContractViolation(found, self.builder.log)

    return ContextContract


@st.composite
def _machine_draws(draw: st.DrawFn, how: Callable[[LogBuilder, st.DrawFn], Event]) -> Event:
    """An event drawn by the running machine's log builder (one strategy object for every draw)."""
    machine = draw(st.runner())
    return how(machine.builder, draw)


def run_machine(machine: type[RuleBasedStateMachine], profile: str | None = None, **overrides: Any) -> None:
    """Run a contract machine; raises :class:`ContractViolation` with a shrunk log on failure."""
    base = settings.get_profile(profile) if profile else settings()
    with programs_from_the_profile_alone():
        run_state_machine_as_test(machine, settings=settings(base, **overrides))


def find_counterexample(
    projector: Projector,
    *,
    incremental: Callable[[], Incremental] | None = None,
    flags: bool = True,
    profile: str = "ci",
    hypothesis_shrink: bool = False,
    on_program: Callable[[int], None] | None = None,
    policy: Policy = REFERENCE,
    select: Selection = EVERYTHING,
    **overrides: Any,
) -> ContractViolation | None:
    """The shrunk failing session for ``projector``, or ``None`` if none was found.

    Hypothesis finds a failing program; :func:`ctxspec.shrink.minimize` then
    shrinks the log itself.  Hypothesis's own shrinking is off by default:
    on these programs it costs seconds to minutes and ends longer than the
    log-level pass, which takes milliseconds (``benchmarks/``).
    """
    register_profiles()
    machine = contract_machine(projector, incremental=incremental, flags=flags, on_program=on_program, policy=policy, select=select)
    phases = [HPhase.generate, HPhase.shrink] if hypothesis_shrink else [HPhase.generate]
    try:
        run_machine(machine, profile, phases=phases, **overrides)
    except ContractViolation as exc:
        return shrink_violation(exc, projector, incremental=incremental, flags=flags, policy=policy, select=select)
    return None


def shrink_violation(
    exc: ContractViolation,
    projector: Projector,
    *,
    incremental: Callable[[], Incremental] | None = None,
    flags: bool = True,
    policy: Policy = REFERENCE,
    select: Selection = EVERYTHING,
) -> ContractViolation:
    """Shrink Hypothesis's failing log further, keeping one of the (rule, level) pairs it broke."""
    kinds = {(v.rule, v.level) for v in exc.violations}

    def check(log: Sequence[Event]) -> list[Violation]:
        return check_session(log, projector, incremental=incremental, flags=flags, policy=policy, select=select)

    log = minimize(exc.log, lambda log: bool(kinds & {(v.rule, v.level) for v in check(log)}))
    return ContractViolation(check(log), log)


class _Enough(KeyboardInterrupt):
    """Raised at the end of a program once the search has all the findings it wants.

    A ``KeyboardInterrupt`` is the one exception Hypothesis lets through at
    once, without replaying or reporting the program.
    """


def search(
    projector: Projector,
    *,
    limit: int = 1,
    accepted: Sequence[Accepted] = (),
    incremental: Callable[[], Incremental] | None = None,
    flags: bool = True,
    profile: str = "ci",
    seed: int | None = None,
    on_program: Callable[[int], None] | None = None,
    on_finding: Callable[[Finding], None] | None = None,
    policy: Policy = REFERENCE,
    select: Selection = EVERYTHING,
    elsewhere: Projector | None = None,
    **overrides: Any,
) -> Collector:
    """Run the machine and collect up to ``limit`` distinct findings, each shrunk on its own.

    Findings in ``accepted`` are shrunk and set aside (``Collector.judged``);
    the search goes on past them.  ``seed`` starts a fresh search: the
    profiles are derandomized, so without it a rerun tries the same programs.
    ``elsewhere``: the same projector in another process (:func:`contract_machine`).
    """
    register_profiles()
    collector = Collector(
        lambda log: check_session(log, projector, incremental=incremental, flags=flags, policy=policy, select=select, elsewhere=elsewhere),
        limit=limit,
        accepted=tuple(accepted),
        on_finding=on_finding,
    )

    def program_done(events: int) -> None:
        if on_program is not None:
            on_program(events)
        if collector.full:
            raise _Enough()

    machine = contract_machine(
        projector,
        incremental=incremental,
        flags=flags,
        on_program=program_done,
        policy=policy,
        select=select,
        on_violation=collector.add,
        elsewhere=elsewhere,
    )
    base = settings(settings.get_profile(profile), phases=[HPhase.generate], **overrides)
    test = get_state_machine_test(machine, settings=settings(base, derandomize=seed is None and base.derandomize))
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    try:
        with programs_from_the_profile_alone():
            test()
    except _Enough:
        pass
    return collector
