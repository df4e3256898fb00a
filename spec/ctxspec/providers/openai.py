"""OpenAI Chat Completions: the ``messages`` array of ``POST /v1/chat/completions``.

Sources and the verified/inferred mark of each rule: ``docs/providers.md``
and ``docs/research-providers.md``.
"""

from __future__ import annotations

from collections.abc import Iterator

from .base import Evidence, Payload, Provider, ProviderRule, Rejection, openai_envelope, obj, text
from .chat import chat_messages, duplicate_calls, pairing, role, tool_calls

UNANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
    "The following tool_call_ids did not have response messages: {ids}"
)
ORPHAN = "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
DUPLICATE = "Invalid parameter: Duplicate value for 'tool_call_id' of '{id}', in messages[{first}] and messages[{second}]."
EMPTY = "Invalid value for 'content': expected a string, got null."
ID_LENGTH = "Invalid 'messages[{i}].tool_calls[{j}].id': string too long. Expected a string with maximum length 40, but got a string with length {n} instead."


def _unanswered(payload: Payload) -> Iterator[Rejection]:
    for i, ids in pairing(chat_messages(payload)).unanswered.items():
        yield Rejection("OC1", UNANSWERED.format(ids=", ".join(ids)), "messages", i)  # the param is not in any recorded response


def _orphan(payload: Payload) -> Iterator[Rejection]:
    for j in pairing(chat_messages(payload)).orphans:
        yield Rejection("OC2", ORPHAN, f"messages.[{j}].role", j)


def _duplicate(payload: Payload) -> Iterator[Rejection]:
    p = pairing(chat_messages(payload))
    for j, k in p.repeated.items():
        cid = text(obj(chat_messages(payload)[j]).get("tool_call_id"))
        yield Rejection("OC3", DUPLICATE.format(id=cid, first=k, second=j), f"messages.[{j}].tool_call_id", j)
    for a, b in duplicate_calls(p.calls):
        yield Rejection("OC3", DUPLICATE.format(id=b.id, first=a.item, second=b.item), f"messages.[{b.item}].tool_calls", b.item)


def _empty(payload: Payload) -> Iterator[Rejection]:
    for i, m in enumerate(chat_messages(payload)):
        if role(m) == "assistant" and obj(m).get("content") is None and not tool_calls(m):
            yield Rejection("OC4", EMPTY, f"messages.[{i}].content", i)


def _id_length(payload: Payload) -> Iterator[Rejection]:
    for i, m in enumerate(chat_messages(payload)):
        for j, c in enumerate(tool_calls(m) if role(m) == "assistant" else []):
            n = len(text(c.get("id")))
            if n > 40:
                yield Rejection("OC5", ID_LENGTH.format(i=i, j=j, n=n), f"messages[{i}].tool_calls[{j}].id", i)


PROVIDER = Provider(
    name="openai",
    title="OpenAI Chat Completions",
    format="openai",
    items="messages",
    envelope=openai_envelope(),
    rules=(
        ProviderRule(
            "OC1", "answered", "every call of an assistant message is answered by a tool message in the run of tool messages right after it",
            UNANSWERED, Evidence.VERIFIED, ("https://github.com/BerriAI/litellm/issues/10083", "https://github.com/aliasrobotics/cai/issues/111"), _unanswered, ("C1", "C5", "C6"),
        ),
        ProviderRule(
            "OC2", "no orphan", "a tool message answers a call of the assistant message right before its run",
            ORPHAN, Evidence.VERIFIED, ("https://github.com/smarter-sh/smarter/issues/264", "https://github.com/miurla/morphic/issues/136"), _orphan, ("C2", "C1"),
        ),
        ProviderRule(
            "OC3", "unique ids", "no call id is used twice in the request, and no call is answered twice",
            DUPLICATE, Evidence.VERIFIED, ("https://github.com/agno-agi/agno/issues/5116",), _duplicate, ("C3",),
        ),
        ProviderRule(
            "OC4", "content", "an assistant message without tool_calls has content",
            EMPTY, Evidence.VERIFIED, ("https://github.com/vercel/ai/pull/14950", "https://github.com/langchain-ai/langchainjs/issues/4153"), _empty, ("C10",),
        ),
        ProviderRule(
            "OC5", "id length", "a call id has at most 40 characters",
            ID_LENGTH, Evidence.VERIFIED, ("https://github.com/microsoft/autogen/issues/6377", "https://github.com/vercel/ai/issues/8132"), _id_length,
        ),
    ),
)
