"""A projector for the ``reference`` policy: the contract's own choices.

Run it with:

    ctxcontract verify --projector examples/policies/reference.py:project --policy reference

Its choices, knob by knob (spec/ctxspec/policy.py):

* unanswered = synthesize: a call with no result gets a synthetic error result
  that says why (cancelled, lost at crash, stream cut, never answered);
* block_order = call: the tool messages follow the order of the calls;
* late_result = note: a result for a closed or summarized call becomes a user note;
* user_messages = separate: each prompt, steer, notification and note is its own message;
* compaction = summary-first: the summary is the first message after the system prompt;
* cut_stream = send-closed: the fully streamed calls of a cut reply are sent and closed;
* arguments = text: a call's arguments are sent as the model wrote them.
"""

from __future__ import annotations

from _log import CANCELLED, LOST_AT_CRASH, NEVER_ANSWERED, STREAM_CUT, assistant, read, tool

WHY = {
    CANCELLED: "Tool call cancelled: the user cancelled the turn before it returned.",
    LOST_AT_CRASH: "Tool call lost at crash: the runtime restarted before it returned.",
    STREAM_CUT: "Tool call not run: the stream was cut before the reply was complete.",
    NEVER_ANSWERED: "Tool call never answered: there was no result when this request was built.",
}


def project(events: list[dict]) -> list[dict]:
    ctx = read(events)
    out: list[dict] = []
    if ctx.system:
        out.append({"role": "system", "content": ctx.system})
    if ctx.summary is not None:
        out.append({"role": "user", "content": f"[summary of the earlier conversation]\n{ctx.summary}"})
    for item in ctx.items:
        if item.kind == "reply":
            out.append(assistant(item.text, []))
        elif item.kind == "exchange":
            out.append(assistant(item.text, item.calls))
            for call in item.calls:  # call order
                if call.status == "answered":
                    out.append(tool(call, call.output, error=call.is_error))
                else:
                    out.append(tool(call, WHY[call.reason], error=True, synthetic=True))
        elif item.kind == "note":
            call = item.note_of
            out.append({"role": "user", "content": f"[late tool result] call {call.id} ({call.name}) returned after it was closed:\n{item.text}"})
        else:  # prompt, steer, notification
            out.append({"role": "user", "content": item.text})
    return out
