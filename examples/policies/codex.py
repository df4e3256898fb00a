"""A projector for the ``codex`` policy: how OpenAI Codex (codex-rs) builds its prompt.

Run it with:

    ctxcontract verify --projector examples/policies/codex.py:project --policy codex

Its choices (docs/research-policies.md, section 1):

* unanswered = synthesize: before a prompt is built, every call without an
  output gets one, ``aborted`` (``aborted by user`` when the user interrupted);
* block_order = call: outputs are recorded in the order the calls arrived;
* late_result = drop: the output of a call that was already closed is not sent;
* user_messages = separate: each user message is its own item;
* compaction = user-then-summary: a compacted history is the user messages it
  replaced, newest first within a budget and put back in order, then the
  summary as a user message;
* cut_stream = send-closed: calls streamed in full before the stream broke are
  kept, and closed like any call without an output;
* arguments = text: the arguments are the exact text the model produced.
"""

from __future__ import annotations

from _log import CANCELLED, assistant, read, tool

SUMMARY_PREFIX = (
    "Another language model started to solve this problem and produced a summary of its work. "
    "Use it to build on what has been done and avoid duplicating it. The summary:"
)
#: How much of the compacted user input is kept, in characters (about 20,000 tokens).
KEPT_USER_BUDGET = 80_000


def aborted(reason: str) -> str:
    return "aborted by user" if reason == CANCELLED else "aborted"


def kept_user_messages(texts: list[str]) -> list[str]:
    """The newest compacted user messages that fit the budget, oldest first."""
    kept, room = [], KEPT_USER_BUDGET
    for text in reversed(texts):
        if len(text) > room:
            break
        kept.append(text)
        room -= len(text)
    return kept[::-1]


def project(events: list[dict]) -> list[dict]:
    ctx = read(events)
    out: list[dict] = []
    if ctx.system:
        out.append({"role": "system", "content": ctx.system})
    if ctx.summary is not None:
        out += [{"role": "user", "content": text} for text in kept_user_messages(ctx.summarized_input)]
        out.append({"role": "user", "content": f"{SUMMARY_PREFIX}\n{ctx.summary}"})
    for item in ctx.items:
        if item.kind == "reply":
            out.append(assistant(item.text, []))
        elif item.kind == "exchange":
            out.append(assistant(item.text, item.calls))
            for call in item.calls:  # each output right after its own call, in call order
                if call.status == "answered":
                    out.append(tool(call, call.output, error=call.is_error))
                else:
                    out.append(tool(call, aborted(call.reason), error=True, synthetic=True))
        elif item.kind == "note":
            continue  # a late output: the call already has its "aborted" output
        else:  # prompt, steer, notification
            out.append({"role": "user", "content": item.text})
    return out
