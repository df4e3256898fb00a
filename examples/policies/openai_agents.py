"""A projector for the ``openai-agents`` policy: how the OpenAI Agents SDK (openai-agents-python) prepares model input.

Run it with:

    ctxcontract verify --projector examples/policies/openai_agents.py:project --policy openai-agents

Its choices (docs/research-policies.md, section 4):

* unanswered = drop: ``drop_orphan_function_calls`` removes every function call
  that has no output; an assistant message left with nothing to say is not sent;
* block_order = call: results are stored by the index of their call;
* late_result = drop: an output that comes after its call was dropped answers nothing;
* user_messages = separate: input items pass through one by one;
* compaction = summary-first: the summary is the first input item;
* cut_stream = drop: calls come from a finished model response, so a cut one never runs;
* arguments = text: the raw ``function_call`` item is replayed with its ``arguments`` string.
"""

from __future__ import annotations

from _log import assistant, read, tool


def project(events: list[dict]) -> list[dict]:
    ctx = read(events)
    out: list[dict] = []
    if ctx.system:
        out.append({"role": "system", "content": ctx.system})
    if ctx.summary is not None:
        out.append({"role": "user", "content": f"Summary of the conversation so far:\n{ctx.summary}"})
    for item in ctx.items:
        if item.kind in ("reply", "exchange"):
            answered = [c for c in item.calls if c.status == "answered"]  # orphan calls are dropped
            if not answered and not item.text:
                continue
            out.append(assistant(item.text, answered))
            out += [tool(call, call.output, error=call.is_error) for call in answered]
        elif item.kind == "note":
            continue  # a late output: its call was dropped
        else:  # prompt, steer, notification
            out.append({"role": "user", "content": item.text})
    return out
