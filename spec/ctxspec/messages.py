"""Messages: what a projector sends the provider, in canonical form.

What this module owns: the four message kinds and their OpenAI-chat-shaped
JSON form.  What it must not know: how messages are made from a log.

``ToolMessage`` carries two facts the OpenAI shape has no field for:
``is_error`` and ``synthetic`` (made by the projector, not by a tool).  They
travel as ``x_is_error`` / ``x_synthetic`` keys when present and default to
false when a projector's output lacks them; no rule needs them to decide a
verdict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
class AssistantMessage:
    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    role: ClassVar[str] = "assistant"


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolMessage:
    call_id: str
    content: str
    is_error: bool = False
    synthetic: bool = False
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


def from_openai(obj: object, index: int = 0) -> Message:
    """Parse one OpenAI-chat-shaped message; raises :class:`InvalidLog`."""
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
            is_error=obj.get("x_is_error") is True,
            synthetic=obj.get("x_synthetic") is True,
        )
    raise InvalidLog(f"{where}: unknown role {role!r}")


def messages_from_openai(objs: object) -> tuple[Message, ...]:
    if not isinstance(objs, list):
        raise InvalidLog("expected a JSON array of messages")
    return tuple(from_openai(o, i) for i, o in enumerate(objs))
