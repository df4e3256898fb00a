"""What a renderer is, and what every renderer shares: ids a provider accepts."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ctxspec.messages import AssistantMessage, Message, ToolMessage, UserMessage


@dataclass(frozen=True, slots=True)
class Options:
    model: str | None = None
    thinking: bool = False


Renderer = Callable[[Sequence[Message], Options], dict[str, object]]


@dataclass(frozen=True, slots=True)
class MutantRenderer:
    """A renderer with one bug, which the provider rule ``rule`` must catch."""

    name: str
    provider: str
    rule: str
    what: str
    render: Renderer


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def digest62(value: str, n: int) -> str:
    """``n`` base-62 characters of a hash of ``value``: the same value, the same characters."""
    number = int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest(), "big")
    out = []
    for _ in range(n):
        number, r = divmod(number, 62)
        out.append(_B62[r])
    return "".join(out)


def id_mapper(ok: Callable[[str], bool], make: Callable[[str], str]) -> Callable[[str], str]:
    """A call id as the provider accepts it: kept when ``ok``, else ``make(id)``.

    The mapping depends on the id alone, so an id is sent the same way in
    every request (the prefix stays stable) and a call and its result agree.
    """

    def mapped(call_id: str) -> str:
        return call_id if ok(call_id) else make(call_id)

    return mapped


_ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def safe_id(call_id: str, limit: int = 64) -> str:
    """An id of ``[a-zA-Z0-9_-]`` that keeps what it can of ``call_id`` and a hash of all of it."""
    kept = re.sub(r"[^a-zA-Z0-9_-]", "_", call_id)[: limit - 9]
    return f"{kept}_{digest62(call_id, 8)}"


def anthropic_id(call_id: str) -> bool:
    return bool(_ANTHROPIC_ID.match(call_id))


def json_object(args: str) -> object:
    """Call arguments as the JSON value they hold, or the text itself when they hold none."""
    try:
        return json.loads(args)
    except (json.JSONDecodeError, RecursionError):
        return args


# ---------------------------------------------------------------------------
# Bugs the mutant renderers share: each changes the message list the way a
# runtime gets it wrong, before a renderer sends it.
# ---------------------------------------------------------------------------

Bug = Callable[[Sequence[Message]], list[Message]]


def last_results_dropped(messages: Sequence[Message]) -> list[Message]:
    """The last tool message of each block is not sent (an off-by-one in a block loop)."""
    return [m for n, m in enumerate(messages) if not (isinstance(m, ToolMessage) and (n + 1 == len(messages) or not isinstance(messages[n + 1], ToolMessage)))]


def first_call_forgotten(messages: Sequence[Message]) -> list[Message]:
    """An assistant message with several calls loses its first one (a stream merge keeping the last delta)."""
    return [replace(m, calls=m.calls[1:]) if isinstance(m, AssistantMessage) and len(m.calls) > 1 else m for m in messages]


def last_call_twice(messages: Sequence[Message]) -> list[Message]:
    """The last call of an assistant message is sent twice (a stream merge that appends its final delta again)."""
    return [replace(m, calls=m.calls + m.calls[-1:]) if isinstance(m, AssistantMessage) and m.calls else m for m in messages]


def results_twice(messages: Sequence[Message]) -> list[Message]:
    """Each tool message is sent twice (a retry that appends instead of replacing)."""
    return [n for m in messages for n in ((m, m) if isinstance(m, ToolMessage) else (m,))]


def input_moved_up(messages: Sequence[Message], *, into: bool) -> list[Message]:
    """Each user message right after a block of tool messages, moved before the block's last one (``into``) or before all of them."""
    out: list[Message] = list(messages)
    n = 0
    while n < len(out):
        if not isinstance(out[n], ToolMessage):
            n += 1
            continue
        end = n
        while end < len(out) and isinstance(out[end], ToolMessage):
            end += 1
        if end < len(out) and isinstance(out[end], UserMessage):
            out.insert(end - 1 if into else n, out.pop(end))
        n = end + 1
    return out


def with_bug(bug: Bug, renderer: Renderer) -> Renderer:
    """``renderer``, sending the messages as ``bug`` changes them."""

    def render(messages: Sequence[Message], o: Options) -> dict[str, object]:
        return renderer(bug(messages), o)

    return render
