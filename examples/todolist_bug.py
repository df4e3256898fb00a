"""A projector with the TodoList:3 bug, for ``ctxcontract verify``.

``project`` has the shape ``ctxcontract verify --projector`` expects: a list of
canonical event dicts (one per log line) in, a list of OpenAI-chat message
dicts out.  It is correct except for one bug, the one Kimi Code 0.20.1
shipped: a tool result written to the log *after its step ended* never
reaches the next request, so the provider answers 400 ("an assistant message
with 'tool_calls' must be followed by tool messages responding to each
'tool_call_id'. The following tool_call_ids did not have response messages:
TodoList:3") -- and again on every retry.

    ctxcontract verify --projector examples/todolist_bug.py:project
"""

from __future__ import annotations

from ctxref.projector import project as reference_project
from ctxspec.events import events_from_dicts
from ctxspec.messages import messages_to_openai


def project(events: list[dict[str, object]]) -> list[dict[str, object]]:
    messages = messages_to_openai(reference_project(events_from_dicts(events)))
    # The bug: results are collected per step; one that arrives after the
    # step's step.end is not attached to anything and is lost.
    step_over, lost = False, set()
    for event in events:
        if event["type"] == "step.end":
            step_over = True
        elif event["type"] == "step.begin":
            step_over = False
        elif event["type"] == "tool.result" and step_over:
            lost.add(event["call_id"])
    return [m for m in messages if not (m["role"] == "tool" and m["tool_call_id"] in lost and not m.get("x_synthetic"))]
