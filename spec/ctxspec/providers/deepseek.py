"""DeepSeek: the ``messages`` array of ``POST /chat/completions`` (OpenAI's shape).

DeepSeek pairs as the chat-completions family does (:mod:`.chat`) and names
no index in its pairing errors; ``param`` is always null.  Its own rule is
thinking mode's: an assistant message with ``tool_calls`` carries its
``reasoning_content`` back in every later request.

When thinking is on (inferred from the docs and reports): the request says
``"thinking": {"type": "enabled"}`` (whatever the model), or it names
``deepseek-reasoner`` and does not say ``"disabled"``.  The docs now make
thinking the default for every model; a request that names another model and
says nothing is not judged, because the reports of that case show a newer
text without an index (``The reasoning_content in the thinking mode must be
passed back to the API.``), not the one this rule answers.  Which messages
need it: the docs require the reasoning of a turn that called tools; the
rule asks it only of the messages that carry the calls, where every report
points, so an answer it misses costs a miss, never a false alarm.

Left out on purpose: the R1-era rule against successive user or assistant
messages (``deepseek-reasoner does not support successive user or assistant
messages ...``).  No report shows it since early 2025 and a false alarm
costs more than a miss.  Sources: ``docs/research-providers.md`` §5.
"""

from __future__ import annotations

from collections.abc import Iterator

from .base import Evidence, Payload, Provider, ProviderRule, Rejection, text
from .chat import chat_messages, pairing, reasoning_missing, thinking_switch

UNANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
    "(insufficient tool messages following tool_calls message)"
)
ORPHAN = "Messages with role 'tool' must be a response to a preceding message with 'tool_calls'"
REASONING = (
    "Missing `reasoning_content` field in the assistant message at message index {i}. "
    "For more information, please refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls"
)


def thinking_enabled(payload: Payload) -> bool:
    """Whether the request runs in thinking mode, as far as this module judges it (module docstring)."""
    switch = thinking_switch(payload)
    if switch in ("enabled", "disabled"):
        return switch == "enabled"
    return text(payload.get("model")) == "deepseek-reasoner"


def _unanswered(payload: Payload) -> Iterator[Rejection]:
    for i in pairing(chat_messages(payload)).unanswered:
        yield Rejection("DS1", UNANSWERED, "messages", i)


def _orphan(payload: Payload) -> Iterator[Rejection]:
    for j in pairing(chat_messages(payload)).orphans:
        yield Rejection("DS2", ORPHAN, "messages", j)


def _reasoning(payload: Payload) -> Iterator[Rejection]:
    if thinking_enabled(payload):
        for i in reasoning_missing(chat_messages(payload)):
            yield Rejection("DS3", REASONING.format(i=i), f"messages[{i}].reasoning_content", i)


def _envelope(r: Rejection) -> dict[str, object]:
    return {"error": {"message": r.error, "type": "invalid_request_error", "param": None, "code": "invalid_request_error"}}


PROVIDER = Provider(
    name="deepseek",
    title="DeepSeek Chat Completions",
    format="openai",
    items="messages",
    envelope=_envelope,
    rules=(
        ProviderRule(
            "DS1", "answered", "every call of an assistant message is answered by a tool message in the run of tool messages right after it",
            UNANSWERED, Evidence.VERIFIED, ("https://github.com/langgenius/dify/issues/32222", "https://github.com/agno-agi/agno/issues/3105"), _unanswered, ("C1", "C5", "C6"),
        ),
        ProviderRule(
            "DS2", "no orphan", "a tool message answers a call of the assistant message right before its run",
            ORPHAN, Evidence.VERIFIED, ("https://github.com/FoundationAgents/OpenManus/issues/23", "https://github.com/itmisx/deepx-code/issues/94"), _orphan, ("C2", "C1"),
        ),
        ProviderRule(
            "DS3", "reasoning back", "in thinking mode, an assistant message with tool_calls carries its reasoning_content",
            REASONING, Evidence.VERIFIED,
            ("https://github.com/0xPlaygrounds/rig/issues/1266", "https://github.com/continuedev/continue/issues/9831", "https://api-docs.deepseek.com/guides/thinking_mode"),
            _reasoning, when="thinking enabled",
        ),
    ),
)
