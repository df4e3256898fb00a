"""How often the generator reaches each situation, measured, so that a rare one is seen.

The stateful checker runs the reference projector for :data:`PROGRAMS`
programs (the ci profile, derandomized) and every log it projects is
classified.  Each situation must be reached by at least :data:`AT_LEAST` of
the programs.  Clear or undo while calls run, and a turn ending with calls
running, were reached by 0, 0 and 1 of 1,000 logs until the generator gave
one log in eight slow tools (``strategies.slow_tools``); weighting every log
that way had starved the sequences other bugs need.  The measured shares
print with ``pytest -s``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ctxref.projector import project
from ctxspec.checker import search
from ctxspec.events import Assistant, Event, ToolResult, load_log
from ctxspec.ledger import Ledger
from ctxspec.messages import Message

#: Programs generated: the ci profile's 1,000 (the rare situations come in its later, larger programs).
PROGRAMS = 1000

#: The least share of programs that must reach each situation: undo and clear while calls run
#: are the rarest (0.7% and 1.2% of 1,000 programs when measured; 0 of 1,000 before slow tools).
AT_LEAST = 0.002


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def situations(log: Sequence[Event]) -> set[str]:
    """The situations ``log`` reaches, by name."""
    out: set[str] = set()
    ledger = Ledger()
    for event in log:
        running = bool(ledger.open_calls())
        if running and event.type in ("undo", "clear"):
            out.add(f"{event.type} while calls run")
        if running and event.type == "turn.end":
            out.add("turn ends with calls running")
        if running and event.type == "resume":
            out.add("resume with calls running")
        if running and event.type in ("turn.steer", "notification"):
            out.add("input while calls run")
        if isinstance(event, Assistant):
            if not event.complete and event.calls:
                out.add("stream cut with calls")
            if len(event.calls) > 1:
                out.add("parallel calls")
            for call in event.calls:
                out.add("id " + ("toolu_" if call.id.startswith("toolu_") else "call_" if call.id.startswith("call_") else "Name:N"))
                out.add("args " + ("newlines" if "\n" in call.args else "spaced" if '": ' in call.args else "compact"))
        if isinstance(event, ToolResult):
            out.add("error result" if event.is_error else "result")
            if not event.output:
                out.add("empty output")
            elif _is_json(event.output):
                out.add("JSON output")
            elif len(event.output) > 2000:
                out.add("long output")
            elif not event.output.isascii():
                out.add("non-ASCII output")
            if not running or event.call_id not in {c.id for c in ledger.open_calls()}:
                out.add("late, duplicate or unknown result")
        ledger.feed(event)
    return out


def test_every_situation_is_reached() -> None:
    seen: Counter[str] = Counter()
    current: set[str] = set()

    def recording(log: Sequence[Event]) -> list[Message]:
        current.update(situations(log))
        return project(log)

    def program_done(_events: int) -> None:
        seen.update(current)
        current.clear()

    programs: list[int] = []

    def ended(events: int) -> None:
        programs.append(events)
        program_done(events)

    found = search(recording, profile="ci", max_examples=PROGRAMS, on_program=ended)
    assert not found.findings
    total = len(programs)
    shares = {name: seen[name] / total for name in sorted(WANTED)}
    print("\n".join(f"{name:<36} {share:6.1%}" for name, share in shares.items()))
    rare = {name: share for name, share in shares.items() if share < AT_LEAST}
    assert not rare, f"reached by fewer than {AT_LEAST:.1%} of {total} programs: {rare}"

WANTED = {
    "undo while calls run",
    "clear while calls run",
    "turn ends with calls running",
    "resume with calls running",
    "input while calls run",
    "stream cut with calls",
    "parallel calls",
    "id call_",
    "id toolu_",
    "id Name:N",
    "args spaced",
    "args compact",
    "args newlines",
    "result",
    "error result",
    "empty output",
    "JSON output",
    "long output",
    "non-ASCII output",
    "late, duplicate or unknown result",
}


def test_the_classifier_names_what_a_log_reaches() -> None:
    log = load_log(str(Path(__file__).parent.parent / "examples" / "crash-mid-parallel.jsonl"))
    assert situations(log) == {"parallel calls", "id call_", "args compact", "result", "resume with calls running", "late, duplicate or unknown result"}


def test_programs_do_not_depend_on_the_literals_of_loaded_modules() -> None:
    """The pool of our modules' literals is empty while the suite runs (conftest).

    Fails when Hypothesis renames the internal it lives in: then the ci
    programs would again move with the order of the tests, and the pin in
    ``ctxspec.checker.programs_from_the_profile_alone`` must follow it.
    """
    from hypothesis.internal.conjecture import providers

    from ctxspec import checker

    assert checker.PINNED
    pool = providers._get_local_constants()
    assert not any(pool.set_for_type(kind) for kind in ("integer", "string", "float", "bytes"))
