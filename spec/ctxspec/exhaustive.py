"""Bounded-exhaustive checking of a projector, and shortest counterexamples.

What this module owns: running the whole contract (:func:`~ctxspec.contract.check_session`)
on every abstract session up to a length (``explore.sessions``: breadth first,
one per class modulo renaming of call slots), each turned into concrete logs
(``explore.concretize`` / ``explore.concretizations``); and the iterative
deepening that finds the shortest session breaking a projector.

What it must not know: any projector.  The projector under test (batch
function, and optionally an incremental class) is a parameter.

What "shortest" means
---------------------
``length`` counts the events after ``session.meta`` (the abstract trace's
length).  :func:`shortest_counterexample` checks every concretized session of
length 0, 1, 2, ... in turn and stops at the first length with a failing one,
so the length it reports is minimal *over the logs the abstraction and the
concretization can produce* with the given slots and
:class:`~ctxspec.explore.Variants` -- not over every possible log (texts,
names, arguments, ``is_error`` flags and ``finish_reason`` are fixed, and a
reply declares at most ``slots`` calls).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeVar

from .abstract import TABLES, AEvent, Tables
from .contract import REFERENCE, Incremental, Projector, Violation, check_session
from .events import Event, StepBegin, dumps_log
from .policy import Policy
from .explore import ALL_VARIANTS, Variants, census, concretize, concretizations, sessions
from .treewise import CONCRETIZE, Job, Subtree, Walker

#: ``progress(done, total)``: sessions checked so far, sessions to check.
Progress = Callable[[int, int], None]

#: Length bound of :func:`shortest_counterexample` when none is given.
DEFAULT_MAX_LENGTH: Final = 6

_T = TypeVar("_T")
_R = TypeVar("_R")


class OrderedMap(Protocol):
    """``map(fn, items)`` run elsewhere, results in the order of ``items`` (like ``Pool.imap``).

    How :func:`explore_contract` hands its chunks of sessions to an engine it
    does not know (``ctxref.distributed`` gives one on Dask): ``fn`` and every
    item must pickle.
    """

    def __call__(self, fn: Callable[[_T], _R], items: Iterable[_T], /) -> Iterable[_R]: ...


@dataclass(frozen=True, slots=True)
class Failure:
    """One concrete log on which the projector broke the contract."""

    trace: tuple[AEvent, ...]
    log: tuple[Event, ...]
    violations: tuple[Violation, ...]

    @property
    def length(self) -> int:
        return len(self.trace)

    @property
    def rules(self) -> frozenset[str]:
        return frozenset(v.rule for v in self.violations)

    def jsonl(self) -> str:
        return dumps_log(self.log)


@dataclass
class ExploreReport:
    """What :func:`explore_contract` did.

    ``sessions``: abstract sessions enumerated (every length up to ``length``);
    ``concretized``: those that end at a request (a ``step.begin``) and gave
    at least one log, the only ones judged; ``checked``: logs run
    through :func:`check_session` (one per session unless ``variants`` is given);
    ``failures``: the logs that broke the contract (at most ``keep`` kept,
    ``failed`` counts them all).
    """

    length: int
    slots: int
    sessions: int = 0
    concretized: int = 0
    checked: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def rate(self) -> float:
        """Logs checked per second."""
        return self.checked / self.seconds if self.seconds else float("inf")

    def __str__(self) -> str:
        verdict = "no violation" if self.ok else f"{self.failed} failing logs"
        return (
            f"{self.sessions} sessions of <= {self.length} events ({self.slots} slots), "
            f"{self.concretized} ending at a request, {self.checked} logs checked: {verdict}; "
            f"{self.seconds:.2f}s, {self.rate:,.0f} logs/s"
        )


def _logs(trace: Sequence[AEvent], slots: int, tables: Tables, variants: Variants | None) -> Iterator[list[Event]]:
    """The concrete logs of ``trace``: none unless it ends at a ``step.begin``.

    Only requests are judged, and a log that does not end at one judges
    exactly what its prefix up to its last ``step.begin`` does: that prefix
    is a shorter session of the same enumeration.
    """
    if not trace or trace[-1].kind != StepBegin.type:
        return
    if variants is None:
        yield concretize(trace, slots, tables)
    else:
        yield from concretizations(trace, slots, tables, variants)


def explore_contract(
    length: int,
    projector: Projector,
    *,
    incremental: Callable[[], Incremental] | None = None,
    slots: int = 2,
    progress: Progress | None = None,
    variants: Variants | None = None,
    tables: Tables = TABLES,
    keep: int = 10,
    stop_at_first: bool = False,
    workers: int = 1,
    policy: Policy = REFERENCE,
    map_chunks: OrderedMap | None = None,
    chunk: int = 0,
    tree: bool = True,
) -> ExploreReport:
    """Check ``projector`` (and ``incremental``) on every session of at most ``length`` events.

    ``variants=None`` checks the one log :func:`~ctxspec.explore.concretize`
    gives per session; a :class:`~ctxspec.explore.Variants` checks every log
    :func:`~ctxspec.explore.concretizations` gives.  ``progress`` is called
    with (sessions done, sessions in all) about a hundred times, and at the end.
    ``workers > 1`` shares the sessions among that many processes (the
    projector, ``incremental`` and ``tables`` must pickle); ``stop_at_first``
    is then ignored.  ``policy`` is the policy the projector is judged under.
    ``map_chunks`` hands the work to another engine instead (``workers`` is
    then ignored; the same picklability applies).

    ``tree`` (the default) judges each request once, along the enumeration
    tree (:mod:`ctxspec.treewise`), and hands subtrees to the other
    processes; ``tree=False`` runs :func:`~ctxspec.contract.check_session`
    on each session's logs, as the definition says (the tests compare the two),
    in chunks of ``chunk`` sessions (0: :data:`CHUNK`) when it runs elsewhere.
    The counts and the failing logs kept are the same either way, except with
    ``stop_at_first``: the tree stops at the first failing log depth first,
    which need not be a shortest one (:func:`shortest_counterexample` finds
    that), and the per-session run at the first breadth first.
    """
    start = time.perf_counter()
    report = ExploreReport(length, slots)
    if tree:
        return _explore_tree(report, projector, incremental, progress, variants, tables, keep, stop_at_first, workers, start, policy, map_chunks)
    if map_chunks is not None or workers > 1:
        return _explore_parallel(report, projector, incremental, progress, variants, tables, keep, workers, start, policy, map_chunks, chunk or CHUNK)
    total = census(length, slots, tables).total if progress is not None else 0
    every = max(1, total // 100)
    for session in sessions(length, slots, tables):
        report.sessions += 1
        any_log = False
        for log in _logs(session.trace, slots, tables, variants):
            any_log = True
            report.checked += 1
            found = check_session(log, projector, incremental=incremental, policy=policy)
            if found:
                report.failed += 1
                if len(report.failures) < keep:
                    report.failures.append(Failure(session.trace, tuple(log), tuple(found)))
        report.concretized += any_log
        if progress is not None and report.sessions % every == 0:
            progress(report.sessions, total)
        if stop_at_first and report.failed:
            break
    if progress is not None:
        progress(report.sessions, total)
    report.seconds = time.perf_counter() - start
    return report


def _in_order(fn: Callable[[_T], _R], tasks: Iterable[_T], workers: int, map_chunks: OrderedMap | None) -> Iterator[_R]:
    """``fn`` over ``tasks`` on ``map_chunks``, else on a pool of ``workers`` processes; results
    in the order of ``tasks``, so the failures kept are the first ones."""
    if map_chunks is not None:
        yield from map_chunks(fn, tasks)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(fn, tasks)


#: Sessions of this many events are the roots of the subtrees handed to other processes.
SPLIT_AT: Final = 3


@dataclass(frozen=True, slots=True)
class _SubtreeTask:
    """A subtree for another process: the walker's settings and the path to its root."""

    job: Job
    length: int
    slots: int
    projector: Projector
    incremental: Callable[[], Incremental] | None
    variants: Variants
    tables: Tables
    policy: Policy
    keep: int
    rules: frozenset[str] | None = None


def _walk_subtree(task: _SubtreeTask) -> Subtree:
    walker = Walker(
        task.length, task.slots, task.projector, incremental=task.incremental, variants=task.variants,
        tables=task.tables, policy=task.policy, keep=task.keep, rules=task.rules,
    )
    return walker.walk(task.job)


def _explore_tree(
    report: ExploreReport,
    projector: Projector,
    incremental: Callable[[], Incremental] | None,
    progress: Progress | None,
    variants: Variants | None,
    tables: Tables,
    keep: int,
    stop_at_first: bool,
    workers: int,
    start: float,
    policy: Policy,
    map_chunks: OrderedMap | None,
    rules: frozenset[str] | None = None,
) -> ExploreReport:
    total = census(report.length, report.slots, tables).total if progress is not None else 0
    every = max(1, total // 100)

    reported = [0]

    def tick(done: int) -> None:
        if progress is not None and done - reported[0] >= every:
            reported[0] = done
            progress(done, total)

    chosen = variants if variants is not None else CONCRETIZE
    # below SPLIT_AT + 3 events a run takes well under a second: handing it out would cost more
    elsewhere = (map_chunks is not None or workers > 1) and report.length >= SPLIT_AT + 3
    walker = Walker(
        report.length, report.slots, projector, incremental=incremental, variants=chosen, tables=tables,
        policy=policy, keep=keep, stop_at_first=stop_at_first and not elsewhere, tick=tick, rules=rules,
    )
    roots: list[Job] = []
    found = walker.walk(frontier=SPLIT_AT if elsewhere else None, on_frontier=roots.append)
    if roots:
        tasks = (_SubtreeTask(job, report.length, report.slots, projector, incremental, chosen, tables, policy, keep, rules) for job in roots)

        def add(part: Subtree) -> None:
            found.add(part, keep)
            if progress is not None:
                progress(found.sessions, total)

        for part in _in_order(_walk_subtree, tasks, workers, map_chunks):
            add(part)
    report.sessions, report.concretized, report.checked, report.failed = found.sessions, found.concretized, found.checked, found.failed
    report.failures = [Failure(trace, log, violations) for trace, log, violations in found.first(keep)]
    if progress is not None:
        progress(report.sessions, total)
    report.seconds = time.perf_counter() - start
    return report


@dataclass(frozen=True, slots=True)
class _Task:
    """A chunk of sessions for a worker process."""

    projector: Projector
    incremental: Callable[[], Incremental] | None
    traces: tuple[tuple[AEvent, ...], ...]
    slots: int
    variants: Variants | None
    tables: Tables
    rules: frozenset[str] | None = None  # a failure must break one of these (None: any rule)
    stop: bool = False  # shortest search: stop at the first failure
    keep: int = 10
    policy: Policy = REFERENCE


@dataclass
class _Done:
    sessions: int = 0
    concretized: int = 0
    checked: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)


def _run_chunk(task: _Task) -> _Done:
    done = _Done()
    for trace in task.traces:
        done.sessions += 1
        any_log = False
        for log in _logs(trace, task.slots, task.tables, task.variants):
            any_log = True
            done.checked += 1
            found = check_session(log, task.projector, incremental=task.incremental, policy=task.policy)
            if not found or (task.rules is not None and not any(v.rule in task.rules for v in found)):
                continue
            done.failed += 1
            if len(done.failures) < task.keep:
                done.failures.append(Failure(trace, tuple(log), tuple(found)))
            if task.stop:
                return done
        done.concretized += any_log
    return done


def _chunks(traces: Iterator[tuple[AEvent, ...]], size: int) -> Iterator[tuple[tuple[AEvent, ...], ...]]:
    chunk: list[tuple[AEvent, ...]] = []
    for trace in traces:
        chunk.append(trace)
        if len(chunk) == size:
            yield tuple(chunk)
            chunk = []
    if chunk:
        yield tuple(chunk)


#: Sessions per chunk handed to a worker process.
CHUNK: Final = 256


def _explore_parallel(
    report: ExploreReport,
    projector: Projector,
    incremental: Callable[[], Incremental] | None,
    progress: Progress | None,
    variants: Variants | None,
    tables: Tables,
    keep: int,
    workers: int,
    start: float,
    policy: Policy,
    map_chunks: OrderedMap | None = None,
    chunk: int = 0,
) -> ExploreReport:
    total = census(report.length, report.slots, tables).total if progress is not None else 0
    traces = (s.trace for s in sessions(report.length, report.slots, tables))
    tasks = (
        _Task(projector, incremental, part, report.slots, variants, tables, keep=keep, policy=policy)
        for part in _chunks(traces, chunk or CHUNK)
    )

    def add(done: _Done) -> None:
        report.sessions += done.sessions
        report.concretized += done.concretized
        report.checked += done.checked
        report.failed += done.failed
        report.failures += done.failures[: keep - len(report.failures)]
        if progress is not None:
            progress(report.sessions, total)

    for done in _in_order(_run_chunk, tasks, workers, map_chunks):
        add(done)
    report.seconds = time.perf_counter() - start
    return report


@dataclass(frozen=True, slots=True)
class Shortest:
    """The shortest failing session :func:`shortest_counterexample` found."""

    failure: Failure
    checked: int  # logs checked before and including it
    seconds: float

    @property
    def log(self) -> tuple[Event, ...]:
        return self.failure.log

    @property
    def length(self) -> int:
        return self.failure.length

    def __iter__(self) -> Iterator[object]:  # ``log, length = shortest_counterexample(...)``
        return iter((self.log, self.length))


def shortest_counterexample(
    projector: Projector,
    *,
    incremental: Callable[[], Incremental] | None = None,
    rules: frozenset[str] | set[str] | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    slots: int = 2,
    variants: Variants | None = ALL_VARIANTS,
    tables: Tables = TABLES,
    workers: int = 1,
    policy: Policy = REFERENCE,
    tree: bool = True,
) -> Shortest | None:
    """The first failing log in order of length (iterative deepening), or ``None`` up to ``max_length``.

    A log counts when ``check_session`` reports a violation of one of
    ``rules`` (any rule when ``rules`` is ``None``).  Sessions come shortest
    first and each length is exhausted before the next, so the length found
    is minimal over the enumerated space (see the module docstring).

    ``workers > 1`` checks each length in that many processes and returns the
    same log as one process would (the first in enumeration order); ``checked``
    is then every log the workers checked.

    ``tree`` (the default) searches along the enumeration tree
    (:mod:`ctxspec.treewise`): each bound in turn is walked in full, each
    request judged once, and the first failing log of the shortest length is
    the one the per-session search returns; ``checked`` then counts every
    log the walks judged.
    """
    start = time.perf_counter()
    checked = 0
    if tree:
        wanted = frozenset(rules) if rules is not None else None
        for bound in range(max_length + 1):
            report = _explore_tree(
                ExploreReport(bound, slots), projector, incremental, None, variants, tables, 1, False, workers,
                start, policy, None, rules=wanted,
            )
            checked += report.checked
            if report.failures:
                return Shortest(report.failures[0], checked, time.perf_counter() - start)
        return None
    if workers > 1:
        wanted = frozenset(rules) if rules is not None else None
        traces = (s.trace for s in sessions(max_length, slots, tables))
        tasks = (
            _Task(projector, incremental, chunk, slots, variants, tables, rules=wanted, stop=True, keep=1, policy=policy)
            for chunk in _chunks(traces, CHUNK // 4)
        )
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            # In order: the first chunk with a failure holds the first failing log.
            for done in pool.imap(_run_chunk, tasks):
                checked += done.checked
                if done.failures:
                    pool.terminate()
                    return Shortest(done.failures[0], checked, time.perf_counter() - start)
        return None
    for session in sessions(max_length, slots, tables):
        for log in _logs(session.trace, slots, tables, variants):
            checked += 1
            found = check_session(log, projector, incremental=incremental, policy=policy)
            if found and (rules is None or any(v.rule in rules for v in found)):
                failure = Failure(session.trace, tuple(log), tuple(found))
                return Shortest(failure, checked, time.perf_counter() - start)
    return None
