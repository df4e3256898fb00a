"""Mistral (La Plateforme): the ``messages`` array of ``POST /v1/chat/completions``.

OpenAI's roles, with Mistral's own checks, and errors that name roles, never
a position (each rejection still carries the index of the message it is
about, for the file line).  What the rules take from Mistral's open validator
(``mistral-common``, whose texts the API answers): the role that may follow
each role (after ``tool`` only ``assistant`` or ``tool``; ``tool`` only after
``assistant`` or ``tool``), the call count (the tool messages after an
assistant message with calls, up to the next assistant message or the end,
number as many as its calls: ids are not matched), and ids of exactly nine
letters and digits.  A request that ends with an assistant message needs
``"prefix": true`` on it.

Envelope: ``{"object": "error", "message", "type", "param": null, "code"}``,
type and code as the API answers them now (``invalid_request_message_order``
``"3230"``, ``invalid_function_call`` ``"3280"``); 2024 answers had
``invalid_request_error`` and a null code.  Sources:
``docs/research-providers.md`` §7.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .base import Evidence, Payload, Provider, ProviderRule, Rejection, obj
from .chat import chat_messages, role, tool_calls

AFTER_TOOL = "Unexpected role '{role}' after role 'tool'"
ID_FORMAT = "Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9."
COUNT = "Not the same number of function calls and responses"
LAST = "Expected last role User or Tool (or Assistant with prefix True) for serving but got assistant"
TOOL_AFTER = "Unexpected role 'tool' after role '{previous}'"

#: As Mistral's validator matches it (``$`` and all).
_ID = re.compile(r"^[a-zA-Z0-9]{9}$")


def _after_tool(payload: Payload) -> Iterator[Rejection]:
    messages = chat_messages(payload)
    for i in range(1, len(messages)):
        if role(messages[i]) in ("user", "system") and role(messages[i - 1]) == "tool":
            yield Rejection("MI1", AFTER_TOOL.format(role=role(messages[i])), "messages", i)


def _id_format(payload: Payload) -> Iterator[Rejection]:
    """Each call id and each tool message's ``tool_call_id`` (a missing one is another error)."""
    for i, m in enumerate(chat_messages(payload)):
        ids = [c.get("id") for c in tool_calls(m)] if role(m) == "assistant" else [obj(m).get("tool_call_id")] if role(m) == "tool" else []
        for cid in ids:
            if isinstance(cid, str) and cid != "null" and not _ID.match(cid):
                yield Rejection("MI2", ID_FORMAT.format(id=cid), "messages", i)


def _count(payload: Payload) -> Iterator[Rejection]:
    """Mistral's count, message by message (its first message is not counted).

    The rejection names the assistant message whose calls are miscounted (the
    message it checks at, when there is none).
    """
    messages = chat_messages(payload)
    expected = 0
    owner: int | None = None
    for i in range(1, len(messages)):
        r = role(messages[i])
        if r == "tool":
            expected -= 1
        elif r == "assistant":
            if expected != 0:
                yield Rejection("MI3", COUNT, "messages", i if owner is None else owner)
            expected = len(tool_calls(messages[i]))
            owner = i
    if expected != 0:
        yield Rejection("MI3", COUNT, "messages", len(messages) - 1 if owner is None else owner)


def _last(payload: Payload) -> Iterator[Rejection]:
    messages = chat_messages(payload)
    if len(messages) > 1 and role(messages[-1]) == "assistant" and obj(messages[-1]).get("prefix") is not True:
        yield Rejection("MI4", LAST, "messages", len(messages) - 1)


def _tool_after(payload: Payload) -> Iterator[Rejection]:
    messages = chat_messages(payload)
    for i in range(1, len(messages)):
        if role(messages[i]) == "tool" and role(messages[i - 1]) in ("user", "system"):
            yield Rejection("MI5", TOOL_AFTER.format(previous=role(messages[i - 1])), "messages", i)


def _envelope(r: Rejection) -> dict[str, object]:
    kind, code = ("invalid_function_call", "3280") if r.rule == "MI2" else ("invalid_request_message_order", "3230")
    return {"object": "error", "message": r.error, "type": kind, "param": None, "code": code}


PROVIDER = Provider(
    name="mistral",
    title="Mistral Chat Completions",
    format="openai",
    items="messages",
    envelope=_envelope,
    rules=(
        ProviderRule(
            "MI1", "no user after tool", "a user (or system) message never comes right after a tool message: an assistant message comes between",
            AFTER_TOOL, Evidence.VERIFIED, ("https://github.com/avante-corp/avante.nvim/pull/2695", "https://github.com/datapizza-labs/datapizza-ai/issues/98"), _after_tool,
        ),
        ProviderRule(
            "MI2", "id format", "every call id and tool_call_id is nine characters of a-z, A-Z, 0-9",
            ID_FORMAT, Evidence.VERIFIED,
            ("https://github.com/nearai/ironclaw/issues/1241", "https://github.com/editor-code-assistant/eca/issues/233", "https://github.com/langchain-ai/langchain/pull/24668"),
            _id_format,
        ),
        ProviderRule(
            "MI3", "call count", "the tool messages after an assistant message with calls, up to the next assistant message or the end, are as many as its calls",
            COUNT, Evidence.VERIFIED,
            ("https://github.com/mistralai/client-ts/issues/106", "https://github.com/camel-ai/camel/issues/1467", "https://github.com/mistralai/client-python/issues/234"),
            _count, ("C1", "C2", "C5"),
        ),
        ProviderRule(
            "MI4", "last role", "the last message is a user or tool message, or an assistant message with prefix true",
            LAST, Evidence.VERIFIED, ("https://github.com/huggingface/smolagents/issues/757", "https://github.com/QuantumNous/new-api/issues/2858"), _last,
        ),
        ProviderRule(
            "MI5", "tool after a call", "a tool message comes right after an assistant message or another tool message, never after a user or system message",
            TOOL_AFTER, Evidence.VERIFIED, ("https://github.com/charmbracelet/crush/issues/279",), _tool_after, ("C2", "C1", "C6"),
        ),
    ),
)
