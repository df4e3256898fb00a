"""The exhaustive run along the enumeration tree: each request judged once.

What this module owns: walking the tree of abstract sessions depth first
(the same canonical sessions as :func:`ctxspec.explore.sessions`, in the
same order per length), turning each into its concrete logs as it goes, and
judging every request of the tree exactly once; and splitting the tree into
subtrees for other processes.

Why it finds what the per-session run finds.  :func:`~ctxspec.contract.check_session`
on a log judges the requests of the log in order and stops at the first
that fails; otherwise it ends with the replay check at the last request.
A session of the enumeration extends its parent by one event, and its
concrete logs extend the parent's concrete logs by one event (concretization
looks only backwards).  So the verdict on a session that ends at a request
is: the first failing request among its ancestors', if there is one, else
its own request judged after its ancestors' (which all passed), then the
replay check.  The walk carries, per concrete log, the messages the last
request got and the first failure on the way down; a checker is brought up
to a request by :meth:`~ctxspec.contract.SessionChecker.advance` (the ledger
and the incremental projector fed, nothing projected) and judges that one
request.  ``tests/test_exhaustive.py`` checks that both runs report the same
failing logs to length 6.

What it costs.  A request is projected once instead of once per session
below it, and concretization is incremental along the path (the states come
with the walk, not from running the trace again); what remains per request
is feeding the ledger and the incremental projector up to it (at most a few
events), the projections and the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from .abstract import AEvent, AState, Tables, initial_state, run
from .contract import EVERYTHING, Incremental, Projector, SessionChecker, Violation
from .events import Event, SessionMeta, StepBegin
from .explore import Perm, Variants, _children, _extensions, _Node, canonical_successors, follows, origin
from .ledger import ledger_of
from .messages import Message
from .policy import Policy

#: What :func:`ctxspec.explore.concretize` chooses, one log per session, no faithfulness check.
CONCRETIZE: Final = Variants(reuse_ids=False, cuts=False, undo_counts=False, faithful=False)


@dataclass(frozen=True, slots=True)
class _Log:
    """One concrete log of the current path and what its requests so far gave."""

    node: _Node
    sent: tuple[Message, ...] | None  # what the last request on the way got (C9 compares with it)
    failed: tuple[Violation, ...]  # the first failing request on the way (inherited below it)
    verdict: tuple[Violation, ...] = ()  # at a request: what check_session reports for this log


@dataclass
class Subtree:
    """What a walk found: counts, and the failing logs kept per length (in enumeration order)."""

    sessions: int = 0
    concretized: int = 0
    checked: int = 0
    failed: int = 0
    kept: dict[int, list[tuple[tuple[AEvent, ...], tuple[Event, ...], tuple[Violation, ...]]]] = field(default_factory=dict)

    def add(self, other: Subtree, keep: int) -> None:
        """Add a later part of the enumeration (its failures come after ours at each length)."""
        self.sessions += other.sessions
        self.concretized += other.concretized
        self.checked += other.checked
        self.failed += other.failed
        for length, found in other.kept.items():
            mine = self.kept.setdefault(length, [])
            mine += found[: keep - len(mine)]

    def first(self, keep: int) -> list[tuple[tuple[AEvent, ...], tuple[Event, ...], tuple[Violation, ...]]]:
        """The first ``keep`` failing logs, shortest first: the ones the per-session run keeps."""
        return [f for length in sorted(self.kept) for f in self.kept[length]][:keep]


class _Stop(Exception):
    """The first failure was found and only that was asked for."""


def judge_request(
    log: Sequence[Event],
    sent: Sequence[Message] | None,
    failed: Sequence[Violation],
    projector: Projector,
    *,
    incremental: Callable[[], Incremental] | None = None,
    policy: Policy,
) -> tuple[tuple[Message, ...] | None, tuple[Violation, ...], tuple[Violation, ...]]:
    """Judge the request that ends ``log``, given what the requests before it gave.

    ``sent``: the messages the last earlier request got; ``failed``: the
    findings of the first earlier request that failed (empty if none did).
    Returns what to hand down (the messages this request got, the first
    failure so far) and the verdict on ``log`` itself, which is what
    ``check_session(log, ...)`` returns.
    """
    if failed:  # check_session stops at the first failing request: an earlier one
        return None, tuple(failed), tuple(failed)
    checker = SessionChecker(projector, incremental=incremental, policy=policy, select=EVERYTHING)
    for event in log[:-1]:
        checker.advance(event, sent)
    found = checker.feed(log[-1])
    if found:
        return None, tuple(found), tuple(found)
    got = tuple(checker.previous) if checker.previous is not None else None
    return got, (), tuple(checker.finish())


@dataclass(frozen=True, slots=True)
class Job:
    """A subtree to walk: the path to its root (its events, and the renamings that fix them)."""

    trace: tuple[AEvent, ...]
    stabilizer: tuple[Perm, ...]


class Walker:
    """Walks the tree of sessions below a path, judging each request once.

    ``length`` bounds the sessions; the projector (and ``incremental``) is
    judged under ``policy``; with ``rules``, a log counts as failing only
    when its verdict breaks one of them.  ``variants`` says which concrete logs a session
    stands for (:data:`CONCRETIZE`: the one :func:`~ctxspec.explore.concretize` gives).
    """

    def __init__(
        self,
        length: int,
        slots: int,
        projector: Projector,
        *,
        incremental: Callable[[], Incremental] | None = None,
        variants: Variants = CONCRETIZE,
        tables: Tables,
        policy: Policy,
        keep: int = 10,
        stop_at_first: bool = False,
        tick: Callable[[int], None] | None = None,
        rules: frozenset[str] | None = None,
    ) -> None:
        self.length = length
        self.slots = slots
        self.projector = projector
        self.incremental = incremental
        self.variants = variants
        self.tables = tables
        self.policy = policy
        self.keep = keep
        self.stop_at_first = stop_at_first
        self.tick = tick
        self.rules = rules
        self.found = Subtree()
        self.events: list[AEvent] = []
        self.states: list[AState] = [initial_state(slots)]
        root = _Node((SessionMeta(),), (None,) * slots, (None,) * slots, (), 0, 0, (1,) * slots)
        self.logs: list[list[_Log]] = [[_Log(root, None, ())]]  # logs[d]: the logs of the path's first d events

    # -- the path and its concrete logs ---------------------------------------

    def _enter(self, depth: int, event: AEvent, state: AState) -> None:
        """The path is now its first ``depth`` events and ``event`` (leading to ``state``)."""
        del self.events[depth:], self.states[depth + 1 :], self.logs[depth + 1 :]
        self.events.append(event)
        self.states.append(state)

    def _logs_at(self, depth: int) -> list[_Log]:
        """The concrete logs of the path's first ``depth`` events, grown from the deepest known ones."""
        for d in range(len(self.logs), depth + 1):
            self.logs.append(self._grow(self.logs[d - 1], self.events[d - 1], self.states[d - 1], self.states[d]))
        return self.logs[depth]

    def _grow(self, parents: Sequence[_Log], event: AEvent, before: AState, after: AState) -> list[_Log]:
        out: list[_Log] = []
        request = event.kind == StepBegin.type
        for parent in parents:
            for child in _children(parent.node, event, before, after, self.variants):
                # faithful: keep the logs whose ledger follows the trace (built afresh: 8 x cheaper than a deep copy)
                if self.variants.faithful and not follows(ledger_of(child.log), after, child.slot_calls):
                    continue
                log = _Log(child, parent.sent, parent.failed)
                out.append(self._judge(log) if request else log)
        return out

    def _judge(self, log: _Log) -> _Log:
        """Judge the request that ends ``log``, once: what ``check_session(log)`` would say."""
        sent, failed, verdict = judge_request(log.node.log, log.sent, log.failed, self.projector, incremental=self.incremental, policy=self.policy)
        return _Log(log.node, sent, failed, verdict)

    # -- the walk ---------------------------------------------------------------

    def _visit(self, depth: int, counted: bool = False) -> None:
        """Count the session the path is (unless ``counted``), and judge it if it ends at a request."""
        found = self.found
        if not counted:
            found.sessions += 1
            if self.tick is not None:
                self.tick(found.sessions)
        if not depth or self.events[depth - 1].kind != StepBegin.type:
            return
        logs = self._logs_at(depth)
        found.concretized += bool(logs)
        found.checked += len(logs)
        for log in logs:
            if not log.verdict or (self.rules is not None and not any(v.rule in self.rules for v in log.verdict)):
                continue
            found.failed += 1
            kept = found.kept.setdefault(depth, [])
            if len(kept) < self.keep:
                kept.append((tuple(self.events[:depth]), log.node.log, log.verdict))
            if self.stop_at_first:
                raise _Stop

    def walk(self, job: Job | None = None, *, frontier: int | None = None, on_frontier: Callable[[Job], None] | None = None) -> Subtree:
        """Walk the subtree below ``job`` (counting its root too); by default, the whole tree.

        With ``frontier``, the sessions of that many events are handed to
        ``on_frontier`` (to walk elsewhere) instead of being walked here.
        """
        if job is None:
            trace, _, stabilizer = origin(self.slots)
            job = Job(trace, stabilizer)
        self.events, self.states = list(job.trace), run(job.trace, self.slots, self.tables)
        del self.logs[1:]
        try:
            self._walk(len(job.trace), self.states[-1], job.stabilizer, frontier, on_frontier)
        except _Stop:
            pass
        return self.found

    def _walk(
        self, depth: int, state: AState, stabilizer: tuple[Perm, ...], frontier: int | None, on_frontier: Callable[[Job], None] | None
    ) -> None:
        if frontier is not None and depth == frontier and on_frontier is not None:
            on_frontier(Job(tuple(self.events[:depth]), stabilizer))
            return
        self._visit(depth)
        if depth == self.length:
            return
        if depth == self.length - 1:  # the children are leaves: count them, and visit only those that are requests
            count, requests = _leaves(state, stabilizer, self.tables)
            self.found.sessions += count
            if self.tick is not None:
                self.tick(self.found.sessions)
            for event, nxt in requests:
                self._enter(depth, event, nxt)
                self._visit(depth + 1, counted=True)
            return
        for event, nxt, fixing in canonical_successors(state, stabilizer, self.tables):
            self._enter(depth, event, nxt)
            self._walk(depth + 1, nxt, fixing, frontier, on_frontier)


@lru_cache(maxsize=1 << 16)
def _leaves(state: AState, stabilizer: tuple[Perm, ...], tables: Tables) -> tuple[int, tuple[tuple[AEvent, AState], ...]]:
    """How many canonical extensions ``state`` has, and those that end at a request."""
    children = canonical_successors(state, stabilizer, tables)
    return len(children), tuple((event, nxt) for event, nxt, _ in children if event.kind == StepBegin.type)

def jobs(length: int, slots: int, at: int, tables: Tables) -> list[Job]:
    """The sessions of exactly ``min(at, length)`` events, as jobs, in enumeration order."""
    level = [origin(slots)]
    for _ in range(min(at, length)):
        level = [ext for trace, state, stab in level for ext in _extensions(trace, state, stab, tables)]
    return [Job(trace, stab) for trace, _, stab in level]
