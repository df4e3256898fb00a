"""The chat-completions family: OpenAI Chat Completions and the providers that took its shape.

One renderer, :func:`chat`, with what each provider needs on top stated by
a :class:`Dialect`: which ids it takes (and how another is mapped), where
reasoning goes back in thinking mode, and what goes between a tool result
and a user message where the provider refuses them adjacent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage

from .base import MutantRenderer, Options, Renderer, id_mapper, safe_id

JSON = dict[str, object]


@dataclass(frozen=True, slots=True)
class Dialect:
    #: A call id as the provider takes it (``str`` -> the id sent).
    ids: Callable[[str], str]
    #: The assistant message's key for its reasoning in thinking mode (``None``: not sent back).
    reasoning_key: str | None = None
    #: An assistant message put between a tool message and a user message, where the provider refuses them adjacent.
    bridge: str | None = None


def _assistant(m: AssistantMessage, d: Dialect, o: Options) -> JSON:
    out: JSON = {"role": "assistant", "content": m.text if m.text or not m.calls else None}
    if m.calls:
        out["tool_calls"] = [{"id": d.ids(c.id), "type": "function", "function": {"name": c.name, "arguments": c.args}} for c in m.calls]
    if o.thinking and d.reasoning_key is not None and m.reasoning is not None:
        out[d.reasoning_key] = m.reasoning.text
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
    doc: JSON = {} if o.model is None else {"model": o.model}
    doc["messages"] = out
    return doc


def dialect_renderer(d: Dialect) -> Renderer:
    def render(messages: Sequence[Message], o: Options) -> JSON:
        return chat(messages, o, d)

    return render


#: OpenAI: ids of at most 40 characters; reasoning is not sent back in chat completions.
OPENAI = Dialect(ids=id_mapper(lambda i: len(i) <= 40, lambda i: safe_id(i, 40)))

RENDERERS: dict[str, Renderer] = {"openai": dialect_renderer(OPENAI)}


# -- mutants: one per OpenAI rule ------------------------------------------------


def _last_result_dropped(messages: Sequence[Message], o: Options) -> JSON:
    """The last tool message of each block is not sent (an off-by-one in a block loop)."""
    keep = [m for n, m in enumerate(messages) if not (isinstance(m, ToolMessage) and (n + 1 == len(messages) or not isinstance(messages[n + 1], ToolMessage)))]
    return chat(keep, o, OPENAI)


def _first_call_forgotten(messages: Sequence[Message], o: Options) -> JSON:
    """An assistant message with several calls loses its first one (a stream merge keeping the last delta)."""
    return chat([replace(m, calls=m.calls[1:]) if isinstance(m, AssistantMessage) and len(m.calls) > 1 else m for m in messages], o, OPENAI)


def _result_twice(messages: Sequence[Message], o: Options) -> JSON:
    """Each tool message is sent twice (a retry that appends instead of replacing)."""
    twice: list[Message] = []
    for m in messages:
        twice.extend((m, m) if isinstance(m, ToolMessage) else (m,))
    return chat(twice, o, OPENAI)


def _null_text(messages: Sequence[Message], o: Options) -> JSON:
    """An assistant message's text is sent as null (the text of the last delta only, which is empty)."""
    doc = chat(messages, o, OPENAI)
    for m in doc["messages"]:  # type: ignore[attr-defined]
        if m["role"] == "assistant":
            m["content"] = None
    return doc


_NAMESPACED = Dialect(ids=lambda i: f"session-7f3c9a2e-41d8-4b6e-9c55-0242ac120002/{i}")


MUTANTS: tuple[MutantRenderer, ...] = (
    MutantRenderer("openai_last_result_dropped", "openai", "OC1", "the last tool message of each block is not sent", _last_result_dropped),
    MutantRenderer("openai_first_call_forgotten", "openai", "OC2", "an assistant message with several calls loses its first call", _first_call_forgotten),
    MutantRenderer("openai_result_twice", "openai", "OC3", "each tool message is sent twice", _result_twice),
    MutantRenderer("openai_null_text", "openai", "OC4", "assistant text is sent as null", _null_text),
    MutantRenderer("openai_namespaced_ids", "openai", "OC5", "call ids get the session id in front, past 40 characters", dialect_renderer(_NAMESPACED)),
)
