"""Moonshot / Kimi: the ``messages`` array of ``POST /v1/chat/completions`` (OpenAI's shape).

Kimi's own call ids (``functions.Shell:0``, ``Shell:58``) are native here and
pass every rule.  The results of an assistant message's calls are the
unbroken run of tool messages right after it (:mod:`.chat`): in a reported
request with a user message inside that run, Moonshot named as unanswered
exactly the calls answered after the user message.

When thinking is on (inferred from the model list and reports): the request
says ``"thinking": {"type": "enabled"}``; or the model's name has
``thinking`` in it (``kimi-k2-thinking``: always on); or the model is
kimi-k2.5 or later (``kimi-k2.6``, ``kimi-k3``), where thinking is the
default, and the request does not say ``"disabled"``.  A model named
otherwise, or none, is taken as not thinking.

Not modelled: an orphan tool message whose id some call of the request has
(Moonshot's text for it was not found); ``tool_choice: "required"`` with
thinking on (a request option, not history).  Sources:
``docs/research-providers.md`` §6.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .base import Evidence, Payload, Provider, ProviderRule, Rejection, obj, text
from .chat import chat_messages, duplicate_calls, pairing, reasoning_missing, role, thinking_switch

UNANSWERED = (
    "Invalid request: an assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
    "The following tool_call_ids did not have response messages: {ids}"
)
DUPLICATE = "Invalid request: tool call id {id} is duplicated"
UNKNOWN = "Invalid request: tool_call_id {id} is not found"
REASONING = "thinking is enabled but reasoning_content is missing in assistant tool call message at index {i}"

_VERSION = re.compile(r"kimi-k(\d+)(?:\.(\d+))?")


def thinking_enabled(payload: Payload) -> bool:
    """Whether the request runs in thinking mode, as far as this module judges it (module docstring)."""
    model = text(payload.get("model")).lower().rsplit("/", 1)[-1]
    if "thinking" in model:
        return True
    switch = thinking_switch(payload)
    if switch in ("enabled", "disabled"):
        return switch == "enabled"
    found = _VERSION.match(model)
    return found is not None and (int(found[1]), int(found[2] or 0)) >= (2, 5)


def _unanswered(payload: Payload) -> Iterator[Rejection]:
    for i, ids in pairing(chat_messages(payload)).unanswered.items():
        yield Rejection("MS1", UNANSWERED.format(ids=", ".join(ids)), "messages", i)


def _duplicate(payload: Payload) -> Iterator[Rejection]:
    for _first, again in duplicate_calls(pairing(chat_messages(payload)).calls):
        yield Rejection("MS2", DUPLICATE.format(id=again.id), "messages", again.item)


def _unknown(payload: Payload) -> Iterator[Rejection]:
    """A tool message whose id no call of the request has (an empty id included)."""
    messages = chat_messages(payload)
    known = {c.id for c in pairing(messages).calls}
    for j, m in enumerate(messages):
        cid = text(obj(m).get("tool_call_id"))
        if role(m) == "tool" and cid not in known:
            yield Rejection("MS3", UNKNOWN.format(id=cid), "messages", j)


def _reasoning(payload: Payload) -> Iterator[Rejection]:
    if thinking_enabled(payload):
        for i in reasoning_missing(chat_messages(payload)):
            yield Rejection("MS4", REASONING.format(i=i), f"messages[{i}].reasoning_content", i)


def _envelope(r: Rejection) -> dict[str, object]:
    return {"error": {"message": r.error, "type": "invalid_request_error"}}


PROVIDER = Provider(
    name="moonshot",
    title="Moonshot / Kimi Chat Completions",
    format="openai",
    items="messages",
    envelope=_envelope,
    rules=(
        ProviderRule(
            "MS1", "answered", "every call of an assistant message is answered by a tool message in the unbroken run of tool messages right after it",
            UNANSWERED, Evidence.VERIFIED, ("https://github.com/MoonshotAI/kimi-cli/issues/1977", "https://github.com/charmbracelet/crush/pull/3847"), _unanswered, ("C1", "C5", "C6"),
        ),
        ProviderRule(
            "MS2", "unique ids", "no call id is used twice in the request",
            DUPLICATE, Evidence.VERIFIED, ("https://github.com/openclaw/openclaw/pull/51155", "https://github.com/openclaw/openclaw/issues/84730"), _duplicate, ("C3",),
        ),
        ProviderRule(
            "MS3", "known id", "a tool message's tool_call_id is the id of a call in the request",
            UNKNOWN, Evidence.INFERRED, ("https://github.com/langbot-app/LangBot/issues/1040", "https://github.com/yaogang1991/harness/issues/392"), _unknown, ("C2", "C1"),
        ),
        ProviderRule(
            "MS4", "reasoning back", "in thinking mode, an assistant message with tool_calls carries its reasoning_content",
            REASONING, Evidence.VERIFIED,
            ("https://github.com/NousResearch/hermes-agent/issues/13848", "https://github.com/mastra-ai/mastra/issues/12592", "https://github.com/VicBilibily/GCMP/issues/162"),
            _reasoning, when="thinking enabled",
        ),
    ),
)
