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

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, TypeVar

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

T = TypeVar("T")

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


# Drawing fast: every strategy drawn from here on is built once and reused, and a choice
# among options is one integer draw.  (A strategy built afresh for each draw,
# as flatmap does, is validated afresh each time: that was most of the time a
# session took to generate.)


@lru_cache(maxsize=None)
def _index(count: int) -> st.SearchStrategy[int]:
    return st.integers(0, count - 1)


def _one(draw: st.DrawFn, options: Sequence[T]) -> T:
    """One of ``options`` (shrinks to the first)."""
    return options[draw(_index(len(options)))]


def _output(draw: st.DrawFn, n: int) -> str:
    """A tool's output: text, empty, JSON, multi-line non-ASCII, or long (unique where it can be)."""
    which = _one(draw, ("text", "empty", "json", "lines", "maybe long"))
    if which == "empty":
        return ""
    if which == "json":
        return f'{{"output": {n}, "ok": true}}'
    text = _labelled(draw, f"<output {n}>")
    if which == "lines":
        return text + "\nligne 2: déjà vu 🙂\u00a0fin"
    if which == "maybe long" and _one(draw, (False,) * 9 + (True,)):
        return text + " " + "x" * 2100
    return text


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


def slow_tools() -> st.SearchStrategy[bool]:
    """Whether a log's tools are slow: one log in eight (shrinks to no).

    In such a log, once a step's calls are running, the turn ends and the user
    undoes or clears before any result comes (:meth:`LogBuilder._moving_on`).
    Weights alone reached undo or clear while calls run in none of 1,000
    programs (Hypothesis replays and mutates earlier choices, so a weight is
    only a hint), and leaning every log that way starved the sequences other
    bugs need.
    """
    return st.sampled_from((False,) * 7 + (True,))


def texts() -> st.SearchStrategy[str]:
    """Short arbitrary text (never empty once a unique suffix is added)."""
    return st.text(st.characters(codec="utf-8"), max_size=6)


_TEXTS: Final = texts()


def _labelled(draw: st.DrawFn, label: str) -> str:
    """``label`` (unique in the log) plus arbitrary text: ``<prompt 7>``, ``<steer 9> é``."""
    t = draw(_TEXTS)
    return f"{label} {t}" if t else label


@dataclass
class LogBuilder:
    """Grows a valid log one event at a time; what it draws depends on the log so far.

    ``draw_first`` and ``draw_next`` take a Hypothesis ``draw`` function
    (from ``st.composite``, or the state machine's own draws).
    """

    log: list[Event] = field(default_factory=list)
    state: SessionState = field(default_factory=SessionState)
    ledger: Ledger = field(default_factory=Ledger)
    counter: int = 0
    max_calls: int = 3
    #: Swarm testing: kinds switched off for this whole log (see :func:`swarms`).
    disabled: frozenset[str] = frozenset()
    #: Slow tools (see :func:`slow_tools`).
    slow: bool = False

    def append(self, event: Event) -> None:
        self.state.feed(event)
        self.ledger.feed(event)
        self.log.append(event)

    @property
    def phase(self) -> Phase:
        return self.state.phase

    def draw_first(self, draw: st.DrawFn) -> Event:
        return SessionMeta(system=_one(draw, ("", "You are a coding agent.")))

    def draw_next(self, draw: st.DrawFn) -> Event:
        """An event the table allows now."""
        allowed = set(allowed_events(self.phase)) - self.disabled
        running = bool(self.ledger.open_calls())
        moving_on = [k for k in self._moving_on() if k in allowed] if self.slow and running else []
        if moving_on:  # slow tools: the user moves on before they answer
            return self.draw_kind(draw, _one(draw, moving_on))
        weights = dict(WEIGHTS)
        if running and not self.slow:  # tools are running: results and crashes are what happens next
            weights["tool.result"] *= 2
            weights["resume"] *= 2
        kinds = [k for k, w in weights.items() if k in allowed for _ in range(w)]
        return self.draw_kind(draw, _one(draw, kinds))

    def _moving_on(self) -> tuple[str, ...]:
        """With slow tools, what comes next while calls run: the turn that made them
        ends, and then the user undoes or clears.

        Once each: after that a new turn goes on as usual (else the log would
        loop between ending turns and undoing, and never build a request).
        """
        last = self.log[-1].type
        if last == "turn.end":
            return ("undo", "clear")
        prompt = max((i for i, e in enumerate(self.log) if e.type == "turn.prompt"), default=0)
        made_here = self.ledger.pending is not None and self.ledger.pending.line > prompt + 1
        return ("turn.end",) if made_here else ()

    def draw_kind(self, draw: st.DrawFn, kind: str) -> Event:
        n = self.counter + 1  # fresh numbers for this draw; append() does not reuse them
        self.counter += 8
        if kind == "turn.prompt":
            return TurnPrompt(text=_labelled(draw, f"<prompt {n}>"))
        if kind == "turn.steer":
            return TurnSteer(text=_labelled(draw, f"<steer {n}>"))
        if kind == "notification":
            return Notification(text=_labelled(draw, f"<notification {n}>"))
        if kind == "tool.result":
            return self._result(draw, n)
        if kind == "assistant":
            return self._assistant(draw, n)
        if kind == "step.error":
            return StepError(message="stream cut", retryable=_one(draw, (False, True)))
        if kind == "step.end":
            return StepEnd(finish_reason=_one(draw, ("tool_calls", "stop", "length")))
        if kind == "compaction":
            return Compaction(summary=f"<summary {n}>", upto=1 + draw(_index(len(self.log))))
        if kind == "undo":
            return Undo(count=1 + draw(_index(3)))
        simple: dict[str, Event] = {
            "turn.cancel": TurnCancel(),
            "turn.end": TurnEnd(),
            "step.begin": StepBegin(),
            "resume": Resume(),
            "clear": Clear(),
        }
        return simple[kind]

    def _result(self, draw: st.DrawFn, n: int) -> Event:
        open_ids = [c.id for c in self.ledger.open_calls()]
        known = sorted({c.id for c in self.ledger.all_calls})
        # answering a running call is the common case: three times as likely
        choices = [ids for ids in ([open_ids] * 3 + [known]) if ids] + [[f"ghost_{n}"]]
        call_id = _one(draw, _one(draw, choices))
        return ToolResult(call_id=call_id, output=_output(draw, n), is_error=_one(draw, (False, True)))

    def _assistant(self, draw: st.DrawFn, n: int) -> Event:
        known = sorted({c.id for c in self.ledger.all_calls})
        text = "" if _one(draw, (True, False)) else _labelled(draw, f"<reply {n}>")
        # parallel calls are where the bugs are: k calls with weight k (0 calls: weight 1)
        count = _one(draw, [0] + [k for k in range(1, self.max_calls + 1) for _ in range(k)])
        calls = []
        for i in range(count):
            name = _one(draw, TOOL_NAMES)
            reuse: bool = _one(draw, (False, True)) if known else False
            if reuse:  # an id the log already has
                call_id = _one(draw, known)
            else:
                call_id = _one(draw, ID_STYLES).format(n=n + i, name=name)
            calls.append(ToolCall(id=call_id, name=name, args=_one(draw, ARG_STYLES).format(n=n + i)))
        return Assistant(text=text, calls=tuple(calls), complete=_one(draw, (True, True, True, False)))


@st.composite
def session_logs(draw: st.DrawFn, max_events: int = 40, max_calls: int = 3) -> tuple[Event, ...]:
    """A log the session state machine accepts, with every fault in the model."""
    builder = LogBuilder(max_calls=max_calls, disabled=draw(swarms()), slow=draw(slow_tools()))
    builder.append(builder.draw_first(draw))
    for _ in range(draw(st.integers(0, max_events))):
        builder.append(builder.draw_next(draw))
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
