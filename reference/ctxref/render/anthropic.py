"""Anthropic Messages.

A leading system message becomes ``system``; the tool messages after an
assistant message become ``tool_result`` blocks of one user message, and the
user message after them, if any, becomes a text block *after* the results in
that same message.  Adaptations: an id outside ``[a-zA-Z0-9_-]`` is sent as
:func:`~.base.safe_id` of it; in thinking mode an assistant message starts
with its ``thinking`` block.  Arguments are sent as the JSON object they hold
(arguments that hold none are sent as they are, and Anthropic refuses them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage

from .base import MutantRenderer, Options, anthropic_id, first_call_forgotten, id_mapper, json_object, last_call_twice, last_results_dropped, safe_id, with_bug

JSON = dict[str, object]

IDS = id_mapper(anthropic_id, safe_id)

#: ``budget_tokens`` of the thinking mode the renderer turns on (Anthropic's documented minimum is 1,024).
THINKING_BUDGET = 1024


def _assistant(m: AssistantMessage, o: Options, ids: Callable[[str], str], args: Callable[[str], object]) -> JSON:
    if not m.calls and not (o.thinking and m.reasoning is not None):
        return {"role": "assistant", "content": m.text}
    blocks: list[JSON] = []
    if o.thinking and m.reasoning is not None:
        blocks.append({"type": "thinking", "thinking": m.reasoning.text, "signature": m.reasoning.signature})
    if m.text:
        blocks.append({"type": "text", "text": m.text})
    blocks.extend({"type": "tool_use", "id": ids(c.id), "name": c.name, "input": args(c.args)} for c in m.calls)
    return {"role": "assistant", "content": blocks}


def anthropic(
    messages: Sequence[Message],
    o: Options,
    *,
    ids: Callable[[str], str] = IDS,
    args: Callable[[str], object] = json_object,
    text_first: bool = False,
    reasoning: bool = True,
) -> JSON:
    doc: JSON = {} if o.model is None else {"model": o.model}
    if o.thinking:
        doc["thinking"] = {"type": "enabled", "budget_tokens": THINKING_BUDGET}
    rest = list(messages)
    first = rest[0] if rest else None
    if isinstance(first, SystemMessage):
        doc["system"] = first.text
        rest.pop(0)
    out: list[JSON] = []
    i = 0
    while i < len(rest):
        m = rest[i]
        i += 1
        if isinstance(m, SystemMessage):  # a later system message has no place of its own: sent as user text
            out.append({"role": "user", "content": m.text})
        elif isinstance(m, UserMessage):
            out.append({"role": "user", "content": m.text})
        elif isinstance(m, AssistantMessage):
            out.append(_assistant(m if reasoning else replace(m, reasoning=None), o, ids, args))
        else:
            blocks: list[JSON] = []
            tool: Message = m
            while True:
                assert isinstance(tool, ToolMessage)
                block: JSON = {"type": "tool_result", "tool_use_id": ids(tool.call_id), "content": tool.content}
                if tool.is_error:
                    block["is_error"] = True
                blocks.append(block)
                if i < len(rest) and isinstance(rest[i], ToolMessage):
                    tool = rest[i]
                    i += 1
                else:
                    break
            if i < len(rest) and isinstance(rest[i], UserMessage):
                user = rest[i]
                assert isinstance(user, UserMessage)
                text: JSON = {"type": "text", "text": user.text}
                blocks = [text, *blocks] if text_first else [*blocks, text]
                i += 1
            out.append({"role": "user", "content": blocks})
    doc["messages"] = out
    return doc


def render(messages: Sequence[Message], o: Options) -> JSON:
    return anthropic(messages, o)


# -- mutants: one per rule -------------------------------------------------------------


def _text_first(messages: Sequence[Message], o: Options) -> JSON:
    return anthropic(messages, o, text_first=True)


def _raw_ids(messages: Sequence[Message], o: Options) -> JSON:
    return anthropic(messages, o, ids=lambda i: i)


def _text_dropped(messages: Sequence[Message], o: Options) -> JSON:
    return anthropic([replace(m, text="") if isinstance(m, AssistantMessage) and not m.calls else m for m in messages], o)


def _no_thinking(messages: Sequence[Message], o: Options) -> JSON:
    return anthropic(messages, o, reasoning=False)


def _string_input(messages: Sequence[Message], o: Options) -> JSON:
    return anthropic(messages, o, args=lambda a: a)


MUTANTS: tuple[MutantRenderer, ...] = (
    MutantRenderer("anthropic_last_result_dropped", "anthropic", "AN1", "the last tool_result of each block is not sent", with_bug(last_results_dropped, render)),
    MutantRenderer("anthropic_first_call_forgotten", "anthropic", "AN2", "an assistant turn with several calls loses its first tool_use", with_bug(first_call_forgotten, render)),
    MutantRenderer("anthropic_call_twice", "anthropic", "AN3", "the last tool_use of a turn is sent twice", with_bug(last_call_twice, render)),
    MutantRenderer("anthropic_text_before_results", "anthropic", "AN4", "the user's text goes before the tool_result blocks", _text_first),
    MutantRenderer("anthropic_raw_ids", "anthropic", "AN5", "call ids are sent as logged, ':' and all", _raw_ids),
    MutantRenderer("anthropic_text_dropped", "anthropic", "AN6", "an assistant reply without calls is sent without its text", _text_dropped),
    MutantRenderer("anthropic_thinking_dropped", "anthropic", "AN7", "in thinking mode, the thinking blocks are not sent back", _no_thinking),
    MutantRenderer("anthropic_string_input", "anthropic", "AN8", "arguments are sent as the JSON text, not the object", _string_input),
)
