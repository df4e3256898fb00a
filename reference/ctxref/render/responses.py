"""OpenAI Responses: canonical messages as ``input`` items.

A leading system message becomes ``instructions``; a later one a
``developer`` message item.  A user message is a ``message`` item; an
assistant message is, in this order, its ``reasoning`` item (thinking mode
only, when it carries reasoning), an assistant ``message`` item for its text
(left out when it has calls and no text), and one ``function_call`` item per
call; a tool message is a ``function_call_output``.

Adaptations:

* a call id longer than 64 characters is sent as :func:`~.base.safe_id` of
  it, call and output alike (the Responses API checks only the length);
* item ids are sent only with the reasoning item: ``rs_...`` (the
  reasoning's own id when it has that prefix, else a hash of the reasoning,
  the message and its calls), and then the items after it get theirs,
  ``msg_...`` from the reasoning id and ``fc_...`` from the call id as sent.
  The provider ties an item sent with an id to the reasoning that came with
  it, so an item is never sent with an id without that reasoning before it;
  without reasoning no item has an id, and nothing is tied;
* thinking mode sets ``reasoning`` (summaries on) and asks for the
  reasoning's ``encrypted_content``, which is where a reasoning's signature
  goes back.

Lost: a tool message's error flag.  ``function_call_output`` has no field
for it (Codex never sends its ``success``), so the output's text must say
it, as on OpenAI Chat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ctxspec.messages import AssistantMessage, Message, Reasoning, SystemMessage, ToolMessage, UserMessage

from .base import MutantRenderer, Options, digest62, first_call_forgotten, id_mapper, last_results_dropped, safe_id, with_bug

JSON = dict[str, object]

IDS = id_mapper(lambda i: len(i) <= 64, lambda i: safe_id(i, 64))

#: The ``reasoning`` parameter thinking mode sends.
REASONING = {"effort": "medium", "summary": "auto"}


def derived_reasoning_id(m: AssistantMessage, reasoning: Reasoning, n: int) -> str:
    """An ``rs_`` id made from what the reply holds (``n``: how many earlier replies made the same one)."""
    seed = "\x00".join([reasoning.text, reasoning.signature, m.text, *(c.id for c in m.calls), str(n)])
    return "rs_" + digest62(seed, 24)


def reasoning_item(r: Reasoning, rid: str) -> JSON:
    item: JSON = {"type": "reasoning", "id": rid, "summary": [{"type": "summary_text", "text": r.text}] if r.text else []}
    if r.signature:
        item["encrypted_content"] = r.signature
    return item


def _message(role: str, text: str) -> JSON:
    return {"type": "message", "role": role, "content": text}


def responses(
    messages: Sequence[Message],
    o: Options,
    *,
    ids: Callable[[str], str] = IDS,
    reasoning_ids: Callable[[str], bool] = lambda i: i.startswith("rs"),
    send_reasoning: bool = True,
    reasoning_last: bool = False,
    item_ids: bool = True,
    flags: bool = False,
    separate: bool = False,
) -> JSON:
    """The payload for ``messages``.

    The keywords make the exporter and the mutants: ``reasoning_ids`` says
    which reasoning ids are sent as they are (others are derived);
    ``send_reasoning=False`` leaves the reasoning item out but keeps the ids
    of the items after it; ``reasoning_last`` puts it after them;
    ``item_ids=False`` sends them without ids; ``flags`` writes a tool
    message's ``x_is_error``/``x_synthetic`` (ours, for a file that must
    round-trip; a provider may refuse them); ``separate`` opens an assistant
    message with a message item even without text when the one before it
    would otherwise take its calls.
    """
    doc: JSON = {} if o.model is None else {"model": o.model}
    rest = list(messages)
    first = rest[0] if rest else None
    if isinstance(first, SystemMessage):
        doc["instructions"] = first.text
        rest.pop(0)
    if o.thinking:
        doc["reasoning"] = dict(REASONING)
        doc["include"] = ["reasoning.encrypted_content"]
    out: list[JSON] = []
    derived: dict[str, int] = {}
    for m in rest:
        if isinstance(m, SystemMessage):
            out.append(_message("developer", m.text))
        elif isinstance(m, UserMessage):
            out.append(_message("user", m.text))
        elif isinstance(m, ToolMessage):
            item: JSON = {"type": "function_call_output", "call_id": ids(m.call_id), "output": m.content}
            if flags and m.is_error:
                item["x_is_error"] = True
            if flags and m.synthetic:
                item["x_synthetic"] = True
            out.append(item)
        else:
            reply: list[JSON] = []
            rid = ""
            if o.thinking and m.reasoning is not None:
                rid = m.reasoning.id if reasoning_ids(m.reasoning.id) else ""
                if not rid:
                    base = derived_reasoning_id(m, m.reasoning, 0)
                    rid = derived_reasoning_id(m, m.reasoning, derived.get(base, 0))
                    derived[base] = derived.get(base, 0) + 1
            merges = bool(out) and (out[-1]["type"] == "function_call" or out[-1]["type"] == "message" and out[-1]["role"] == "assistant")
            if m.text or not m.calls or (separate and merges and not rid):
                text: JSON = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": m.text}]}
                if rid and item_ids:
                    text = {"id": "msg_" + digest62(rid, 24), **text, "status": "completed"}
                reply.append(text)
            for c in m.calls:
                call: JSON = {"type": "function_call", "call_id": ids(c.id), "name": c.name, "arguments": c.args}
                if rid and item_ids:
                    call = {"id": "fc_" + digest62(ids(c.id), 24), **call}
                reply.append(call)
            if rid and send_reasoning:
                assert m.reasoning is not None
                r = reasoning_item(m.reasoning, rid)
                reply = [*reply, r] if reasoning_last else [r, *reply]
            out.extend(reply)
    doc["input"] = out
    return doc


def render(messages: Sequence[Message], o: Options) -> JSON:
    return responses(messages, o)


# -- mutants: one per rule --------------------------------------------------------------


def _reasoning_dropped(messages: Sequence[Message], o: Options) -> JSON:
    return responses(messages, o, send_reasoning=False)


def _reasoning_last(messages: Sequence[Message], o: Options) -> JSON:
    return responses(messages, o, reasoning_last=True)


def _ids_stripped(messages: Sequence[Message], o: Options) -> JSON:
    return responses(messages, o, item_ids=False)


def _call_twice(messages: Sequence[Message], o: Options) -> JSON:
    doc = responses(messages, o)
    items = doc["input"]
    assert isinstance(items, list)
    doc["input"] = [x for i in items for x in ((i, i) if i["type"] == "function_call" else (i,))]
    return doc


def _namespaced(call_id: str) -> str:
    return f"session-7f3c9a2e-41d8-4b6e-9c55-0242ac120002/agent-3f1c2b7d-9e4a-4c1b/{call_id}"


def _namespaced_ids(messages: Sequence[Message], o: Options) -> JSON:
    return responses(messages, o, ids=_namespaced)


def _reasoning_prefix(messages: Sequence[Message], o: Options) -> JSON:
    """The reasoning's id is sent whatever it holds, here the runtime's own ``reasoning-<n>``."""
    named = [
        replace(m, reasoning=replace(m.reasoning, id=f"reasoning-{n}")) if isinstance(m, AssistantMessage) and m.reasoning is not None else m
        for n, m in enumerate(messages)
    ]
    return responses(named, o, reasoning_ids=lambda i: bool(i))


MUTANTS: tuple[MutantRenderer, ...] = (
    MutantRenderer("openai_responses_last_output_dropped", "openai-responses", "OR1", "the last function_call_output of each block is not sent", with_bug(last_results_dropped, render)),
    MutantRenderer("openai_responses_first_call_forgotten", "openai-responses", "OR2", "an assistant message with several calls loses its first function_call", with_bug(first_call_forgotten, render)),
    MutantRenderer("openai_responses_reasoning_dropped", "openai-responses", "OR3", "in thinking mode the reasoning items are not sent, and the items after them keep their ids", _reasoning_dropped),
    MutantRenderer("openai_responses_reasoning_last", "openai-responses", "OR4", "in thinking mode a reply's reasoning item is sent after its message and calls", _reasoning_last),
    MutantRenderer("openai_responses_ids_stripped", "openai-responses", "OR5", "in thinking mode the items after a reasoning item are sent without their ids", _ids_stripped),
    MutantRenderer("openai_responses_call_twice", "openai-responses", "OR6", "each function_call item is sent twice", _call_twice),
    MutantRenderer("openai_responses_namespaced_ids", "openai-responses", "OR7", "call ids get the session and agent in front, past 64 characters", _namespaced_ids),
    MutantRenderer("openai_responses_reasoning_prefix", "openai-responses", "OR8", "reasoning items are sent with the runtime's own ids, not rs_ ones", _reasoning_prefix),
)
