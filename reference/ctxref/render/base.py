"""What a renderer is, and what every renderer shares: ids a provider accepts."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ctxspec.messages import Message


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
