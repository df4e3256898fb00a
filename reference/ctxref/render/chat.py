"""The chat-completions family: OpenAI Chat Completions and the providers that took its shape.

One renderer, :func:`chat`, with what each provider needs on top stated by
a :class:`Dialect`: which ids it takes (and how another is mapped), where
reasoning goes back in thinking mode, and what goes between a tool result
and a user message where the provider refuses them adjacent.

The adaptations, per provider (none changes what the model is told, except
where said):

* OpenAI: an id longer than 40 characters is sent as :func:`~.base.safe_id` of it.
* DeepSeek and Moonshot: ids are sent as they are (Kimi's ``functions.Shell:0``
  is Moonshot's own form).  The request says ``"thinking": {"type": "enabled"}``
  in thinking mode and ``"disabled"`` otherwise (thinking is the default of
  current models, so plain mode has to say so).  In thinking mode each
  assistant message's reasoning goes back as ``reasoning_content``; one with
  calls and no reasoning (a reply whose reasoning was not kept) is sent with
  ``""``, which both are reported to let past (inferred).
* Mistral: an id that is not nine letters and digits is sent as nine base-62
  characters of a hash of it (:func:`~.base.digest62`: the same call keeps
  its id in every request).  Where a user message follows a tool message,
  the assistant message :data:`MISTRAL_BRIDGE` is put between them: Mistral
  refuses them adjacent.  This one adds words the model did not say: a
  short, neutral acknowledgement.  A request that ends with an assistant
  reply sends it with ``"prefix": true``, which Mistral requires: the model
  continues that reply, as Anthropic continues a final assistant message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage

from .base import (
    MutantRenderer,
    Options,
    Renderer,
    digest62,
    first_call_forgotten,
    id_mapper,
    input_moved_up,
    last_call_twice,
    last_results_dropped,
    results_twice,
    safe_id,
    with_bug,
)

JSON = dict[str, object]


@dataclass(frozen=True, slots=True)
class Dialect:
    #: A call id as the provider takes it (``str`` -> the id sent).
    ids: Callable[[str], str]
    #: The assistant message's key for its reasoning in thinking mode (``None``: not sent back).
    reasoning_key: str | None = None
    #: An assistant message put between a tool message and a user message, where the provider refuses them adjacent.
    bridge: str | None = None
    #: The request member that turns thinking on or off (``{"type": "enabled"}`` or ``"disabled"``), sent in both modes.
    thinking_switch: str | None = None
    #: In thinking mode, send an empty reasoning on an assistant message with calls that carries none.
    empty_reasoning: bool = False
    #: The key marking a final assistant message as one to continue, where the provider refuses a request ending with one otherwise.
    prefix_key: str | None = None


def _assistant(m: AssistantMessage, d: Dialect, o: Options) -> JSON:
    out: JSON = {"role": "assistant", "content": m.text if m.text or not m.calls else None}
    if m.calls:
        out["tool_calls"] = [{"id": d.ids(c.id), "type": "function", "function": {"name": c.name, "arguments": c.args}} for c in m.calls]
    if o.thinking and d.reasoning_key is not None:
        if m.reasoning is not None:
            out[d.reasoning_key] = m.reasoning.text
        elif m.calls and d.empty_reasoning:
            out[d.reasoning_key] = ""
    return out


def chat(messages: Sequence[Message], o: Options, d: Dialect) -> JSON:
    out: list[JSON] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append({"role": "system", "content": m.text})
        elif isinstance(m, UserMessage):
            if d.bridge is not None and out and out[-1]["role"] == "tool":
                out.append({"role": "assistant", "content": d.bridge})
            out.append({"role": "user", "content": m.text})
        elif isinstance(m, AssistantMessage):
            out.append(_assistant(m, d, o))
        else:
            out.append({"role": "tool", "tool_call_id": d.ids(m.call_id), "content": m.content})
    if d.prefix_key is not None and len(out) > 1 and out[-1]["role"] == "assistant":
        out[-1][d.prefix_key] = True
    doc: JSON = {} if o.model is None else {"model": o.model}
    if d.thinking_switch is not None:
        doc[d.thinking_switch] = {"type": "enabled" if o.thinking else "disabled"}
    doc["messages"] = out
    return doc


def dialect_renderer(d: Dialect) -> Renderer:
    def render(messages: Sequence[Message], o: Options) -> JSON:
        return chat(messages, o, d)

    return render


#: OpenAI: ids of at most 40 characters; reasoning is not sent back in chat completions.
OPENAI = Dialect(ids=id_mapper(lambda i: len(i) <= 40, lambda i: safe_id(i, 40)))

#: DeepSeek and Moonshot: ids as they are; reasoning back as ``reasoning_content`` in thinking mode.
DEEPSEEK = Dialect(ids=lambda i: i, reasoning_key="reasoning_content", thinking_switch="thinking", empty_reasoning=True)
MOONSHOT = DEEPSEEK

#: What the reference puts between a tool message and a user message for Mistral.
MISTRAL_BRIDGE = "Tool results received."

_MISTRAL_ID = re.compile(r"^[a-zA-Z0-9]{9}$")

#: Mistral: ids of nine letters and digits; a bridge before a user message that follows a tool message.
MISTRAL = Dialect(ids=id_mapper(lambda i: bool(_MISTRAL_ID.match(i)), lambda i: digest62(i, 9)), bridge=MISTRAL_BRIDGE, prefix_key="prefix")

RENDERERS: dict[str, Renderer] = {
    "openai": dialect_renderer(OPENAI),
    "deepseek": dialect_renderer(DEEPSEEK),
    "moonshot": dialect_renderer(MOONSHOT),
    "mistral": dialect_renderer(MISTRAL),
}


# -- mutants: one per OpenAI rule ------------------------------------------------


def _null_text(messages: Sequence[Message], o: Options) -> JSON:
    """An assistant message's text is sent as null (the text of the last delta only, which is empty)."""
    doc = chat(messages, o, OPENAI)
    for m in doc["messages"]:  # type: ignore[attr-defined]
        if m["role"] == "assistant":
            m["content"] = None
    return doc


_NAMESPACED = Dialect(ids=lambda i: f"session-7f3c9a2e-41d8-4b6e-9c55-0242ac120002/{i}")


# -- mutants: one per DeepSeek, Moonshot and Mistral rule ---------------------------------


_NO_REASONING = Dialect(ids=lambda i: i, thinking_switch="thinking")


def _moonshot_result_id_lost(messages: Sequence[Message], o: Options) -> JSON:
    """Tool messages are sent with an empty ``tool_call_id`` (read from a field the runtime never fills)."""
    return chat([replace(m, call_id="") if isinstance(m, ToolMessage) else m for m in messages], o, MOONSHOT)


MUTANTS: tuple[MutantRenderer, ...] = (
    MutantRenderer("openai_last_result_dropped", "openai", "OC1", "the last tool message of each block is not sent", with_bug(last_results_dropped, RENDERERS["openai"])),
    MutantRenderer("openai_first_call_forgotten", "openai", "OC2", "an assistant message with several calls loses its first call", with_bug(first_call_forgotten, RENDERERS["openai"])),
    MutantRenderer("openai_result_twice", "openai", "OC3", "each tool message is sent twice", with_bug(results_twice, RENDERERS["openai"])),
    MutantRenderer("openai_null_text", "openai", "OC4", "assistant text is sent as null", _null_text),
    MutantRenderer("openai_namespaced_ids", "openai", "OC5", "call ids get the session id in front, past 40 characters", dialect_renderer(_NAMESPACED)),
    MutantRenderer("deepseek_last_result_dropped", "deepseek", "DS1", "the last tool message of each block is not sent", with_bug(last_results_dropped, RENDERERS["deepseek"])),
    MutantRenderer("deepseek_first_call_forgotten", "deepseek", "DS2", "an assistant message with several calls loses its first call", with_bug(first_call_forgotten, RENDERERS["deepseek"])),
    MutantRenderer("deepseek_reasoning_dropped", "deepseek", "DS3", "in thinking mode, reasoning_content is not sent back", dialect_renderer(_NO_REASONING)),
    MutantRenderer("moonshot_input_between_results", "moonshot", "MS1", "the user message after a block goes before its last tool message", with_bug(partial(input_moved_up, into=True), RENDERERS["moonshot"])),
    MutantRenderer("moonshot_call_twice", "moonshot", "MS2", "the last call of an assistant message is sent twice", with_bug(last_call_twice, RENDERERS["moonshot"])),
    MutantRenderer("moonshot_result_id_lost", "moonshot", "MS3", "tool messages are sent with an empty tool_call_id", _moonshot_result_id_lost),
    MutantRenderer("moonshot_reasoning_dropped", "moonshot", "MS4", "in thinking mode, reasoning_content is not sent back", dialect_renderer(_NO_REASONING)),
    MutantRenderer("mistral_no_bridge", "mistral", "MI1", "no assistant message between a tool message and the user message after it", dialect_renderer(replace(MISTRAL, bridge=None))),
    MutantRenderer("mistral_raw_ids", "mistral", "MI2", "call ids are sent as logged", dialect_renderer(replace(MISTRAL, ids=lambda i: i))),
    MutantRenderer("mistral_result_twice", "mistral", "MI3", "each tool message is sent twice", with_bug(results_twice, RENDERERS["mistral"])),
    MutantRenderer("mistral_no_prefix", "mistral", "MI4", "a request ending with an assistant reply sends it without prefix", dialect_renderer(replace(MISTRAL, prefix_key=None))),
    MutantRenderer("mistral_input_before_results", "mistral", "MI5", "the user message after a block goes before its tool messages", with_bug(partial(input_moved_up, into=False), RENDERERS["mistral"])),
)
