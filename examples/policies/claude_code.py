"""A projector for the ``claude-code`` policy: how Claude Code builds its API messages.

Run it with:

    ctxcontract verify --projector examples/policies/claude_code.py:project --policy claude-code

Its choices (docs/research-policies.md, section 2):

* unanswered = synthesize: a ``tool_use`` without a ``tool_result`` gets an error
  result, ``Interrupted by user`` or ``[Tool result missing due to internal error]``;
* block_order = arrival: results come in the order they completed, and the
  synthetic ones added at request time go before them;
* late_result = drop: once a call has its synthetic result, nothing more is sent for it;
* user_messages = merged: adjacent user messages are merged into one;
* compaction = summary-first: the summary message comes first, then the kept messages;
* cut_stream = drop: a reply whose stream broke is discarded with its calls (its text is kept);
* arguments = json: ``tool_use.input`` is a JSON object, re-serialised.
"""

from __future__ import annotations

import json

from _log import CANCELLED, LOST_AT_CRASH, NEVER_ANSWERED, STREAM_CUT, assistant, read, tool

SYNTHETIC = {
    CANCELLED: "Interrupted by user",
    LOST_AT_CRASH: "[Tool result missing due to internal error]",
    NEVER_ANSWERED: "[Tool result missing due to internal error]",
}
SUMMARY = (
    "This session is being continued from a previous conversation that ran out of context. "
    "The conversation is summarized below:\n{summary}"
)


def tool_input(args: str) -> str:
    """The arguments as the JSON value Claude Code holds; text that is not JSON is sent as it is."""
    try:
        return json.dumps(json.loads(args), separators=(",", ":"))
    except (ValueError, RecursionError):
        return args


def add_user(out: list[dict], text: str) -> None:
    """A user message, merged into the one before it if that is a user message too."""
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
        add_user(out, SUMMARY.format(summary=ctx.summary))
    for item in ctx.items:
        if item.kind in ("reply", "exchange"):
            calls = [c for c in item.calls if c.reason != STREAM_CUT]  # a cut stream's calls are discarded
            if not calls and not item.text:
                continue
            out.append(assistant(item.text, calls, tool_input))
            missing = [c for c in calls if c.status != "answered"]
            answered = sorted((c for c in calls if c.status == "answered"), key=lambda c: c.arrived)
            for call in missing:  # the pairing repair puts its results first
                out.append(tool(call, SYNTHETIC[call.reason], error=True, synthetic=True))
            for call in answered:  # then the results in the order they completed
                out.append(tool(call, call.output, error=call.is_error))
        elif item.kind == "note":
            continue  # a late result: its call was already closed
        else:  # prompt, steer, notification
            add_user(out, item.text)
    return out
