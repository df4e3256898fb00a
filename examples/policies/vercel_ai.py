"""A projector for the ``vercel-ai`` policy: how the Vercel AI SDK (npm ``ai``) converts UI messages for a model.

Run it with:

    ctxcontract verify --projector examples/policies/vercel_ai.py:project --policy vercel-ai

Its choices (docs/research-policies.md, section 5), as ``convertToModelMessages``
with ``ignoreIncompleteToolCalls: true`` and the OpenAI Chat provider:

* unanswered = drop: a tool part in state ``input-available`` (no output) is left
  out; an assistant message with no parts left is not sent;
* block_order = call: the tool results follow the order of the tool parts;
* late_result = drop: a result lives on its tool part, so a part already settled takes no other;
* user_messages = separate: each user message is its own model message;
* compaction = summary-first: the app's summary goes first (compaction is not part of the SDK);
* cut_stream = drop: parts still in ``input-streaming`` are never sent, and a
  cut response's tool parts never reach ``output-available``;
* arguments = json: calls carry a parsed ``input`` that the provider sends as ``JSON.stringify(input)``.
"""

from __future__ import annotations

import json

from _log import Call, assistant, read, tool


def stringify(args: str) -> str:
    """``JSON.stringify`` of the parsed input; text that is not JSON is sent as it is."""
    try:
        return json.dumps(json.loads(args), separators=(",", ":"))
    except (ValueError, RecursionError):
        return args


def output_available(call: Call) -> bool:
    return call.status == "answered"


def project(events: list[dict]) -> list[dict]:
    ctx = read(events)
    out: list[dict] = []
    if ctx.system:
        out.append({"role": "system", "content": ctx.system})
    if ctx.summary is not None:
        out.append({"role": "user", "content": f"Summary of the earlier conversation:\n{ctx.summary}"})
    for item in ctx.items:
        if item.kind in ("reply", "exchange"):
            parts = [c for c in item.calls if output_available(c)]  # incomplete tool calls are ignored
            if not parts and not item.text:
                continue
            out.append(assistant(item.text, parts, stringify))
            out += [tool(call, call.output, error=call.is_error) for call in parts]
        elif item.kind == "note":
            continue  # the tool part already settled; a second result has nowhere to go
        else:  # prompt, steer, notification
            out.append({"role": "user", "content": item.text})
    return out
