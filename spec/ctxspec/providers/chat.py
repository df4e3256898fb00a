"""The chat-completions family: a ``messages`` array with ``tool_calls`` and ``role: tool``.

OpenAI Chat Completions, DeepSeek, Moonshot and Mistral take this shape and
reject the same broken histories, each in its own words.  :func:`pairing`
reads a ``messages`` array once and says what is wrong with its tool
exchanges; each provider's rules turn that into its own error text.

How the family pairs (the contract's C1 and C2, as these providers apply them):
the tool messages answering an assistant message's ``tool_calls`` form the
run of ``tool`` messages right after it, in any order; a call with no tool
message in that run is unanswered; a tool message in a run that answers no
call of the run's assistant message (or sits in no run) is an orphan.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from .base import Payload, items_of, obj, objs, text


@dataclass(frozen=True, slots=True)
class Call:
    item: int  # index of the assistant message in ``messages``
    index: int  # index in its ``tool_calls``
    id: str
    name: str


@dataclass(slots=True)
class Pairing:
    """What is wrong with the tool exchanges of one ``messages`` array."""

    #: assistant message index -> the ids of its calls no tool message in its run answers, in call order
    unanswered: dict[int, list[str]] = field(default_factory=dict)
    #: tool message index -> its ``tool_call_id``, for tool messages that answer no call of their run
    orphans: dict[int, str] = field(default_factory=dict)
    #: tool message index -> index of the earlier tool message in the same run with the same id
    repeated: dict[int, int] = field(default_factory=dict)
    #: every call, in order
    calls: list[Call] = field(default_factory=list)
    #: assistant message index -> index of the next message that is not a tool message (or len(messages))
    run_end: dict[int, int] = field(default_factory=dict)


def role(message: object) -> str:
    return text(obj(message).get("role"))


def tool_calls(message: object) -> list[Mapping[str, object]]:
    return objs(obj(message).get("tool_calls"))


def call_id(call: Mapping[str, object]) -> str:
    return text(call.get("id"))


def pairing(messages: Sequence[object]) -> Pairing:
    out = Pairing()
    i = 0
    while i < len(messages):
        m = messages[i]
        if role(m) == "tool":  # a tool message with no assistant tool_calls right before its run
            out.orphans[i] = text(obj(m).get("tool_call_id"))
            i += 1
            continue
        calls = tool_calls(m) if role(m) == "assistant" else []
        if not calls:
            i += 1
            continue
        ids = [call_id(c) for c in calls]
        out.calls.extend(Call(i, j, cid, text(obj(c.get("function")).get("name"))) for j, (c, cid) in enumerate(zip(calls, ids)))
        answered: dict[str, int] = {}
        j = i + 1
        while j < len(messages) and role(messages[j]) == "tool":
            cid = text(obj(messages[j]).get("tool_call_id"))
            if cid not in ids:
                out.orphans[j] = cid
            elif cid in answered:
                out.repeated[j] = answered[cid]
            else:
                answered[cid] = j
            j += 1
        missing = [cid for cid in ids if cid not in answered]
        if missing:
            out.unanswered[i] = missing
        out.run_end[i] = j
        i = j
    return out


def chat_messages(payload: Payload) -> list[object]:
    return items_of(payload, "messages")


def duplicate_calls(calls: Sequence[Call]) -> Iterator[tuple[Call, Call]]:
    """Each call whose id an earlier call in the request already used, with that earlier call."""
    first: dict[str, Call] = {}
    for c in calls:
        if c.id in first:
            yield first[c.id], c
        else:
            first[c.id] = c


def thinking_switch(payload: Payload) -> str:
    """The request's ``thinking.type`` (``enabled``, ``disabled``), or ``""`` when it says nothing."""
    return text(obj(payload.get("thinking")).get("type"))


def reasoning_missing(messages: Sequence[object], key: str = "reasoning_content") -> Iterator[int]:
    """The index of each assistant message with ``tool_calls`` that carries no ``key`` (absent or null).

    An empty string counts as carried: DeepSeek and Moonshot are reported to
    let ``""`` past (docs/research-providers.md, inferred).
    """
    for i, m in enumerate(messages):
        if role(m) == "assistant" and tool_calls(m) and obj(m).get(key) is None:
            yield i
