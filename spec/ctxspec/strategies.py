"""Public Hypothesis strategies for session logs.

Runtime developers can use these in their own tests::

    from hypothesis import given
    from ctxspec.strategies import session_logs

    @given(session_logs())
    def test_my_projector(log):
        assert check_session(log, my_projector) == []

Every log drawn is one the session state machine accepts: the next event is
drawn from the kinds ``state.PHASE_TABLE`` allows in the current phase, so
the tables are the only description of what may happen.  Faults are drawn
as often as normal events: results late, twice, for unknown ids or never;
resumes, compactions at bad positions, steers during parallel calls, cut
streams, reused call ids.

Texts are arbitrary Unicode with a unique suffix, so that every message can
be traced back to its log line unambiguously.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hypothesis import strategies as st

from .events import (
    Assistant,
    Clear,
    Compaction,
    Event,
    Notification,
    Resume,
    SessionMeta,
    StepBegin,
    StepEnd,
    StepError,
    ToolCall,
    ToolResult,
    TurnCancel,
    TurnEnd,
    TurnPrompt,
    TurnSteer,
    Undo,
)
from .ledger import Ledger
from .policy import KNOBS, PRESETS, Policy
from .state import Phase, SessionState, allowed_events

#: How often each kind is drawn, relative to the others, when the table allows it.
#: Order matters for shrinking: earlier kinds are "simpler".
WEIGHTS: Final[dict[str, int]] = {
    "turn.prompt": 3,
    "step.begin": 4,
    "assistant": 4,
    "tool.result": 5,
    "step.end": 3,
    "turn.end": 1,
    "turn.steer": 2,
    "notification": 1,
    "turn.cancel": 1,
    "step.error": 1,
    "resume": 2,
    "compaction": 1,
    "undo": 1,
    "clear": 1,
}

TOOL_NAMES: Final = ("TodoList", "Shell", "ReadFile", "Grep")

#: Call ids in each provider's style (``n`` is unique in the log): OpenAI, Anthropic, Kimi.
ID_STYLES: Final = ("call_{n}", "toolu_01{n:022d}", "{name}:{n}")

#: One JSON value, serialised as models and runtimes do (``{{``: a literal brace).
ARG_STYLES: Final = ('{{"n": {n}}}', '{{"n":{n}}}', '{{\n  "n": {n}\n}}')


def outputs(n: int) -> st.SearchStrategy[str]:
    """A tool's output: text, empty, JSON, multi-line non-ASCII, or long (unique where it can be)."""
    text = labelled(f"<output {n}>")
    return st.one_of(
        text,
        st.just(""),
        st.just(f'{{"output": {n}, "ok": true}}'),
        text.map(lambda t: t + "\nligne 2: déjà vu 🙂\u00a0fin"),
        st.sampled_from([False] * 9 + [True]).flatmap(lambda long: text.map(lambda t: t + " " + "x" * 2100) if long else text),
    )

#: Kinds a log can do without.  Switching a random few off for a whole log
#: ("swarm testing") lets the others pile up: many results and resumes with
#: no step.begin between them, say, which uniform draws rarely give.
OPTIONAL_KINDS: Final = (
    "turn.steer",
    "notification",
    "turn.cancel",
    "step.error",
    "step.begin",
    "step.end",
    "turn.end",
    "resume",
    "compaction",
    "undo",
    "clear",
)


def swarms() -> st.SearchStrategy[frozenset[str]]:
    """Which optional kinds a log leaves out; usually none (shrinks to none)."""
    return st.one_of(st.just(frozenset[str]()), st.frozensets(st.sampled_from(OPTIONAL_KINDS), max_size=6))


def texts() -> st.SearchStrategy[str]:
    """Short arbitrary text (never empty once a unique suffix is added)."""
    return st.text(st.characters(codec="utf-8"), max_size=6)


def labelled(label: str) -> st.SearchStrategy[str]:
    """``label`` (unique in the log) plus arbitrary text: ``<prompt 7>``, ``<steer 9> é``."""
    return texts().map(lambda t: f"{label} {t}" if t else label)


@dataclass
class LogBuilder:
    """Grows a valid log one event at a time; its strategies depend on the log so far."""

    log: list[Event] = field(default_factory=list)
    state: SessionState = field(default_factory=SessionState)
    ledger: Ledger = field(default_factory=Ledger)
    counter: int = 0
    max_calls: int = 3
    #: Swarm testing: kinds switched off for this whole log (see :func:`swarms`).
    disabled: frozenset[str] = frozenset()

    def append(self, event: Event) -> None:
        self.state.feed(event)
        self.ledger.feed(event)
        self.log.append(event)

    @property
    def phase(self) -> Phase:
        return self.state.phase

    def first_event(self) -> st.SearchStrategy[Event]:
        return st.builds(SessionMeta, system=st.sampled_from(["", "You are a coding agent."]))

    def next_event(self) -> st.SearchStrategy[Event]:
        """A strategy for an event the table allows now (drawn from current state)."""
        allowed = set(allowed_events(self.phase)) - self.disabled
        weights = dict(WEIGHTS)
        if self.ledger.open_calls():  # tools are running: results and crashes are what happens next
            weights["tool.result"] *= 2
            weights["resume"] *= 2
        kinds = [k for k, w in weights.items() if k in allowed for _ in range(w)]
        return st.sampled_from(kinds).flatmap(self.event_of)

    def event_of(self, kind: str) -> st.SearchStrategy[Event]:
        n = self.counter + 1  # fresh numbers for this draw; append() does not reuse them
        self.counter += 8
        if kind == "turn.prompt":
            return labelled(f"<prompt {n}>").map(lambda t: TurnPrompt(text=t))
        if kind == "turn.steer":
            return labelled(f"<steer {n}>").map(lambda t: TurnSteer(text=t))
        if kind == "notification":
            return labelled(f"<notification {n}>").map(lambda t: Notification(text=t))
        if kind == "tool.result":
            return self._result(n)
        if kind == "assistant":
            return self._assistant(n)
        if kind == "step.error":
            return st.builds(StepError, message=st.just("stream cut"), retryable=st.booleans())
        if kind == "step.end":
            return st.sampled_from(["tool_calls", "stop", "length"]).map(lambda r: StepEnd(finish_reason=r))
        if kind == "compaction":
            return st.integers(1, len(self.log)).map(lambda u: Compaction(summary=f"<summary {n}>", upto=u))
        if kind == "undo":
            return st.integers(1, 3).map(lambda c: Undo(count=c))
        simple: dict[str, Event] = {
            "turn.cancel": TurnCancel(),
            "turn.end": TurnEnd(),
            "step.begin": StepBegin(),
            "resume": Resume(),
            "clear": Clear(),
        }
        return st.just(simple[kind])

    def _result(self, n: int) -> st.SearchStrategy[Event]:
        open_ids = [c.id for c in self.ledger.open_calls()]
        known = sorted({c.id for c in self.ledger.all_calls})
        choices: list[st.SearchStrategy[str]] = []
        if open_ids:  # answering a running call is the common case: three times as likely
            choices.extend([st.sampled_from(open_ids)] * 3)
        if known:
            choices.append(st.sampled_from(known))
        choices.append(st.just(f"ghost_{n}"))
        return st.builds(
            ToolResult,
            call_id=st.one_of(*choices),
            output=outputs(n),
            is_error=st.booleans(),
        )

    def _assistant(self, n: int) -> st.SearchStrategy[Event]:
        known = sorted({c.id for c in self.ledger.all_calls})
        id_choice: st.SearchStrategy[str] = st.sampled_from(known) if known else st.nothing()

        def call(i: int) -> st.SearchStrategy[ToolCall]:
            def named(name: str) -> st.SearchStrategy[ToolCall]:
                fresh = st.sampled_from(ID_STYLES).map(lambda style: style.format(n=n + i, name=name))
                return st.builds(ToolCall, id=st.one_of(fresh, id_choice), name=st.just(name), args=st.sampled_from(ARG_STYLES).map(lambda a: a.format(n=n + i)))

            return st.sampled_from(TOOL_NAMES).flatmap(named)

        def calls(count: int) -> st.SearchStrategy[tuple[ToolCall, ...]]:
            return st.tuples(*(call(i) for i in range(count)))

        return st.builds(
            Assistant,
            text=st.one_of(st.just(""), labelled(f"<reply {n}>")),
            # parallel calls are where the bugs are: k calls with weight k (0 calls: weight 1)
            calls=st.sampled_from([0] + [k for k in range(1, self.max_calls + 1) for _ in range(k)]).flatmap(calls),
            complete=st.sampled_from([True, True, True, False]),
        )


@st.composite
def session_logs(draw: st.DrawFn, max_events: int = 40, max_calls: int = 3) -> tuple[Event, ...]:
    """A log the session state machine accepts, with every fault in the model."""
    builder = LogBuilder(max_calls=max_calls, disabled=draw(swarms()))
    builder.append(draw(builder.first_event()))
    for _ in range(draw(st.integers(0, max_events))):
        builder.append(draw(builder.next_event()))
    return tuple(builder.log)


def policies() -> st.SearchStrategy[Policy]:
    """Any policy a runtime may declare: a preset, or every knob drawn (shrinks to the reference).

    Words for ``synthetic_text = "own"`` are drawn from the presets' words.
    """
    word_sets = [dict(p.words) for p in PRESETS.values()]
    drawn = st.builds(
        Policy,
        **{k.name: st.sampled_from(list(k.values)) for k in KNOBS},
        words=st.sampled_from(word_sets),
        name=st.just("drawn"),
    )
    return st.one_of(st.sampled_from(list(PRESETS.values())), drawn)
