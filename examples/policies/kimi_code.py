"""A projector for the ``kimi-code`` policy: how Kimi Code (MoonshotAI/kimi-code) projects its context.

Run it with:

    ctxcontract verify --projector examples/policies/kimi_code.py:project --policy kimi-code

Its choices (docs/research-policies.md, section 3):

* unanswered = synthesize: a call without a result gets an error result that
  tells the model not to assume the tool ran (``... is not available ...``,
  ``... was interrupted ...``, ``Tool "X" was aborted``);
* block_order = arrival: each call's results are pulled up after the assistant
  message in the order they were stored, the synthetic ones after the real ones;
* late_result = drop: a result whose call is no longer pending is ignored;
* user_messages = merged: adjacent user messages are joined by a blank line;
* compaction = user-then-summary: the oldest and newest compacted user messages
  are kept, then the summary as a user message;
* cut_stream = send-closed: calls streamed in full before the cut are sent, not executed;
* arguments = json: arguments are rebuilt with ``JSON.stringify(args)``.
"""

from __future__ import annotations

import json

from _log import CANCELLED, LOST_AT_CRASH, NEVER_ANSWERED, STREAM_CUT, Call, assistant, read, tool

ERROR = "<system>ERROR: Tool execution failed.</system>\n"
DO_NOT_ASSUME = "Do not assume the tool completed successfully."
#: How many of the compacted user messages are kept from the start and from the end.
KEPT_HEAD, KEPT_TAIL = 2, 8


def synthetic(call: Call) -> str:
    if call.reason == CANCELLED:
        return f'{ERROR}Tool "{call.name}" was aborted.'
    if call.reason == LOST_AT_CRASH:
        return f"{ERROR}Tool execution was interrupted before its result was recorded. {DO_NOT_ASSUME}"
    if call.reason == STREAM_CUT:
        return f"{ERROR}Tool call was not executed: the response stream broke. {DO_NOT_ASSUME}"
    assert call.reason == NEVER_ANSWERED
    return f"Tool result is not available in the current context. {DO_NOT_ASSUME}"


def arguments(args: str) -> str:
    """``JSON.stringify`` of the parsed arguments; text that is not JSON is sent as it is."""
    try:
        return json.dumps(json.loads(args), separators=(",", ":"))
    except (ValueError, RecursionError):
        return args


def kept_user_messages(texts: list[str]) -> list[str]:
    if len(texts) <= KEPT_HEAD + KEPT_TAIL:
        return texts
    left_out = len(texts) - KEPT_HEAD - KEPT_TAIL
    return texts[:KEPT_HEAD] + [f"[{left_out} earlier user messages omitted]"] + texts[-KEPT_TAIL:]


def add_user(out: list[dict], text: str) -> None:
    """A user message, joined to the one before it by a blank line if that is a user message too."""
    if out and out[-1]["role"] == "user":
        out[-1]["content"] += "\n\n" + text
    else:
        out.append({"role": "user", "content": text})


def project(events: list[dict]) -> list[dict]:
    ctx = read(events)
    out: list[dict] = []
    if ctx.system:
        out.append({"role": "system", "content": ctx.system})
    if ctx.summary is not None:
        for text in kept_user_messages(ctx.summarized_input):
            add_user(out, text)
        add_user(out, f"Summary of the earlier conversation:\n{ctx.summary}")
    for item in ctx.items:
        if item.kind == "reply":
            out.append(assistant(item.text, []))
        elif item.kind == "exchange":
            out.append(assistant(item.text, item.calls, arguments))
            answered = sorted((c for c in item.calls if c.status == "answered"), key=lambda c: c.arrived)
            for call in answered:  # the stored results, in the order they were written
                out.append(tool(call, call.output, error=call.is_error))
            for call in item.calls:  # then a synthetic result for each call still missing one
                if call.status != "answered":
                    out.append(tool(call, synthetic(call), error=True, synthetic=True))
        elif item.kind == "note":
            continue  # the call is no longer pending: its result is ignored
        else:  # prompt, steer, notification
            add_user(out, item.text)
    return out
