"""Messages: what a projector sends the provider, in canonical form.

What this module owns: the four message kinds and their OpenAI-chat-shaped
JSON form.  What it must not know: how messages are made from a log.

``ToolMessage`` carries two facts the OpenAI shape has no field for:
``is_error`` and ``synthetic`` (made by the projector, not by a tool).  They
travel as optional ``x_is_error`` / ``x_synthetic`` keys, written when true.
A message list that carries a key on any tool message states that flag for
all of its tool messages (a missing key is false); a list that never carries
it does not say, and the flag is ``None``: C4 and C5 check a flag only where
it is stated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Union

from .errors import InvalidLog
from .events import ToolCall


@dataclass(frozen=True, kw_only=True, slots=True)
class SystemMessage:
    text: str
    role: ClassVar[str] = "system"


@dataclass(frozen=True, kw_only=True, slots=True)
class UserMessage:
    text: str
    role: ClassVar[str] = "user"


@dataclass(frozen=True, kw_only=True, slots=True)
class Reasoning:
    """What a thinking model returned before its reply, as it must be sent back.

    ``text`` is the thinking (or its summary); ``signature`` the opaque token
    the provider returned with it (Anthropic's ``signature``, the Responses
    API's ``encrypted_content``, Gemini's ``thoughtSignature``); ``id`` the
    item id, where the provider gives one (Responses ``rs_...``).
    """

    text: str = ""
    signature: str = ""
    id: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class AssistantMessage:
    """A reply: its text and calls, and the reasoning that came with it.

    ``reasoning`` is not part of what the contract compares (two messages
    that differ only in it are equal): the log model does not carry it, and
    only a provider's thinking mode needs it sent back (``ctxspec.providers``).
    """

    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    reasoning: Reasoning | None = field(default=None, compare=False)
    role: ClassVar[str] = "assistant"


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolMessage:
    """A tool result.  ``is_error``/``synthetic`` are ``None`` when the
    projection does not state them (JSON without the ``x_`` keys)."""

    call_id: str
    content: str
    is_error: bool | None = False
    synthetic: bool | None = False
    role: ClassVar[str] = "tool"


Message = Union[SystemMessage, UserMessage, AssistantMessage, ToolMessage]


def to_openai(message: Message) -> dict[str, object]:
    """One message as an OpenAI chat-completions ``messages`` item."""
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": message.text}
    if isinstance(message, UserMessage):
        return {"role": "user", "content": message.text}
    if isinstance(message, AssistantMessage):
        out: dict[str, object] = {"role": "assistant", "content": message.text or None}
        if message.calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.args}}
                for c in message.calls
            ]
        return out
    out = {"role": "tool", "tool_call_id": message.call_id, "content": message.content}
    if message.is_error:
        out["x_is_error"] = True
    if message.synthetic:
        out["x_synthetic"] = True
    return out


def same(a: Message, b: Message) -> bool:
    """Equal messages, where a flag one of them does not state matches either value.

    Whether a JSON list states a flag depends on the whole list (a key on any
    tool message states it), so one message may read as stated in one request
    and unstated in the next; that is no difference in what was sent.
    """
    if isinstance(a, ToolMessage) and isinstance(b, ToolMessage):
        return (
            a.call_id == b.call_id
            and a.content == b.content
            and (a.is_error is None or b.is_error is None or a.is_error == b.is_error)
            and (a.synthetic is None or b.synthetic is None or a.synthetic == b.synthetic)
        )
    return a == b


def messages_to_openai(messages: Sequence[Message]) -> list[dict[str, object]]:
    return [to_openai(m) for m in messages]


def _text(obj: Mapping[str, object], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: keep the text ones
        parts = []
        for part in value:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise InvalidLog(f"{where}: unsupported content part {json.dumps(part)[:60]}")
        return "".join(parts)
    raise InvalidLog(f"{where}: '{key}' must be a string, got {type(value).__name__}")


def _flag(obj: Mapping[str, object], key: str, where: str, stated: bool) -> bool | None:
    value = obj.get(key)
    if value is None:
        return False if stated else None
    if not isinstance(value, bool):
        raise InvalidLog(f"{where}: '{key}' must be true or false, got {json.dumps(value)[:40]}")
    return value


def from_openai(obj: object, index: int = 0, *, stated: tuple[bool, bool] = (True, True)) -> Message:
    """Parse one OpenAI-chat-shaped message; raises :class:`InvalidLog`.

    ``stated`` says whether a missing ``x_is_error`` / ``x_synthetic`` key
    means false (the list carries that flag) or ``None`` (it does not say).
    """
    where = f"message {index}"
    if not isinstance(obj, dict):
        raise InvalidLog(f"{where}: expected an object")
    role = obj.get("role")
    if role in ("system", "developer"):
        return SystemMessage(text=_text(obj, "content", where))
    if role == "user":
        return UserMessage(text=_text(obj, "content", where))
    if role == "assistant":
        raw_calls = obj.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise InvalidLog(f"{where}: tool_calls must be a list")
        calls = []
        for j, c in enumerate(raw_calls):
            fn = c.get("function") if isinstance(c, dict) else None
            if not isinstance(c, dict) or not isinstance(fn, dict):
                raise InvalidLog(f"{where}: tool_calls[{j}] must be {{id, function: {{name, arguments}}}}")
            cid, name, args = c.get("id"), fn.get("name"), fn.get("arguments", "")
            if not isinstance(cid, str) or not cid or not isinstance(name, str) or not name or not isinstance(args, str):
                raise InvalidLog(f"{where}: tool_calls[{j}] needs string id, name and arguments")
            calls.append(ToolCall(id=cid, name=name, args=args))
        return AssistantMessage(text=_text(obj, "content", where), calls=tuple(calls))
    if role == "tool":
        cid = obj.get("tool_call_id")
        if not isinstance(cid, str):
            raise InvalidLog(f"{where}: tool message needs a string tool_call_id")
        return ToolMessage(
            call_id=cid,
            content=_text(obj, "content", where),
            is_error=_flag(obj, "x_is_error", where, stated[0]),
            synthetic=_flag(obj, "x_synthetic", where, stated[1]),
        )
    raise InvalidLog(f"{where}: unknown role {role!r}")


def messages_from_openai(objs: object) -> tuple[Message, ...]:
    if not isinstance(objs, list):
        raise InvalidLog("expected a JSON array of messages")
    tools = [o for o in objs if isinstance(o, dict) and o.get("role") == "tool"]
    stated = (any("x_is_error" in o for o in tools), any("x_synthetic" in o for o in tools))
    return tuple(from_openai(o, i, stated=stated) for i, o in enumerate(objs))
