"""Shrinking a failing session log to a short one that still fails.

What this module owns: deleting events from a log while it stays a log the
state machine accepts and still breaks the same rule.  Hypothesis shrinks the
*program* that built the log; its deletions are limited because each drawn
event depends on the ones before it.  This pass works on the log itself
(delta debugging: drop halves, then quarters, ..., then single events) and
keeps ``compaction.upto`` pointing at the same event when lines shift.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, cast

from .errors import InvalidLog
from .events import Assistant, Event, delete_lines
from .state import validate_log


def _valid(log: Sequence[Event]) -> bool:
    try:
        validate_log(log)
    except InvalidLog:
        return False
    return True


def minimize(log: Sequence[Event], fails: Callable[[Sequence[Event]], bool]) -> list[Event]:
    """A locally minimal sub-log of ``log`` on which ``fails`` still holds.

    No single event of the result can be removed without making the log
    invalid or making it pass.
    """
    current = list(log)
    chunk = max(1, (len(current) - 1) // 2)
    while True:
        changed = False
        start = 2  # line 1 is session.meta
        while start <= len(current):
            drop = set(range(start, min(start + chunk, len(current) + 1)))
            candidate = delete_lines(current, drop)
            if _valid(candidate) and fails(candidate):
                current, changed = candidate, True
            else:
                start += chunk
        if chunk == 1 and not changed:
            break
        chunk = max(1, chunk // 2) if not changed else chunk
    # Single deletions often break the phase sequence (a turn needs its end
    # before the next prompt); whole runs of events can still go.
    progress = True
    while progress:
        progress = False
        for width in range(1, 9):
            for start in range(2, len(current) - width + 2):
                candidate = delete_lines(current, set(range(start, start + width)))
                if _valid(candidate) and fails(candidate):
                    current, progress = candidate, True
                    break
            if progress:
                break
        if not progress:
            simpler = _simplify_calls(current, fails) or _simplify_texts(current, fails)
            if simpler is not None:
                current, progress = simpler, True
    return current


_TEXT_FIELDS = ("text", "output", "summary")


def _simplify_texts(log: list[Event], fails: Callable[[Sequence[Event]], bool]) -> list[Event] | None:
    """Try cutting a generated text down to its unique label (``<steer 9> ...`` -> ``<steer 9>``)."""
    for i, event in enumerate(log):
        if isinstance(event, Assistant) and event.text and event.calls:
            candidate = log[:i] + [Assistant(calls=event.calls, complete=event.complete)] + log[i + 1 :]
            if fails(candidate):
                return candidate
        for name in _TEXT_FIELDS:
            value = getattr(event, name, None)
            if isinstance(value, str) and value.startswith("<") and "> " in value:
                label = value[: value.index("> ") + 1]
                simpler: Event = dataclasses.replace(cast(Any, event), **{name: label})
                candidate = log[:i] + [simpler] + log[i + 1 :]
                if fails(candidate):
                    return candidate
    return None


def _simplify_calls(log: list[Event], fails: Callable[[Sequence[Event]], bool]) -> list[Event] | None:
    """Try removing one call from a parallel call list."""
    for i, event in enumerate(log):
        if isinstance(event, Assistant) and len(event.calls) > 1:
            for j in range(len(event.calls)):
                calls = event.calls[:j] + event.calls[j + 1 :]
                candidate = log[:i] + [Assistant(text=event.text, calls=calls, complete=event.complete)] + log[i + 1 :]
                if _valid(candidate) and fails(candidate):
                    return candidate
    return None
