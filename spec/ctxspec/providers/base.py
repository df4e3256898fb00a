"""What a provider's acceptance rule is, and what a rejection says.

A provider rule is a predicate over the provider's *own* request payload (the
JSON body a runtime posts), not over canonical messages: what a provider
rejects depends on its shape (an Anthropic ``tool_result`` block before or
after text, a Gemini turn holding some of the responses).  Each rule yields
:class:`Rejection` s carrying the error text the provider sends, with the index
path worded as the provider words it.  A provider answers only one error per
request; which of several it reports first is not documented, so
:meth:`Provider.error` takes the first by position in the payload.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

#: A request body as posted: the parsed JSON object.
Payload = Mapping[str, object]


class Evidence(enum.Enum):
    """How we know the rule and its error text."""

    VERIFIED = "verified"  # the provider's docs, or a response someone recorded and published
    INFERRED = "inferred"  # our reading: the rule is documented but not its words, or neither


@dataclass(frozen=True, slots=True)
class Rejection:
    """One reason the provider answers 400.

    ``error`` is the text of the provider's error message; ``path`` is the
    part of the payload it names, as the provider words it (``messages.3``,
    ``messages.[3].role``, ``contents[4]``); ``item`` is the index of the
    offending item in the payload's list of messages, contents or input items
    (for mapping back to a file line); ``block`` the index inside that item's
    content or parts, when the error names one.
    """

    rule: str
    error: str
    path: str
    item: int | None = None
    block: int | None = None

    def __str__(self) -> str:
        return f"{self.rule}: {self.error}"


Check = Callable[[Payload], Iterator[Rejection]]


@dataclass(frozen=True, slots=True)
class ProviderRule:
    """One rule of one provider: what it requires, the error it answers, and how we know.

    ``contract`` names the rules of the context contract the rule is an
    instance of (``C1`` pairing, ...); empty when only this provider requires
    it (Mistral's "no user message right after a tool message").  ``when``
    says when the rule applies at all ("thinking enabled"), empty if always.
    """

    code: str
    title: str
    statement: str
    error: str
    evidence: Evidence
    sources: tuple[str, ...]
    check: Check = field(compare=False, repr=False)
    contract: tuple[str, ...] = ()
    when: str = ""


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider's acceptance rules over its own payload shape.

    ``format`` is the payload shape (the message format that reads a captured
    request of this provider): ``openai`` for the chat-completions family,
    ``openai-responses``, ``anthropic`` or ``gemini``.  ``items`` is the
    payload key holding the history.  ``envelope`` wraps an error text in the
    provider's HTTP 400 body.  ``accepts`` names the contract rules whose
    ``reject`` findings this provider is known to accept, each with why (the
    Responses API pairs a call and its output wherever the output sits).
    """

    name: str
    title: str
    format: str
    items: str
    rules: tuple[ProviderRule, ...]
    envelope: Callable[[Rejection], dict[str, object]] = field(compare=False, repr=False)
    accepts: Mapping[str, str] = field(default_factory=dict)

    def check(self, payload: Payload) -> list[Rejection]:
        """Every rejection, in payload order (then rule order)."""
        found = [r for rule in self.rules for r in rule.check(payload)]
        order = {rule.code: n for n, rule in enumerate(self.rules)}
        return sorted(found, key=lambda r: (r.item if r.item is not None else -1, r.block or 0, order[r.rule]))

    def error(self, payload: Payload) -> Rejection | None:
        """The error the provider would answer (the first by position), or ``None``: accepted."""
        found = self.check(payload)
        return found[0] if found else None

    def rule(self, code: str) -> ProviderRule:
        for r in self.rules:
            if r.code == code:
                return r
        raise KeyError(code)


# ---------------------------------------------------------------------------
# Reading a payload without trusting it: a rule never raises on a malformed body.
# ---------------------------------------------------------------------------


def items_of(payload: Payload, key: str) -> list[object]:
    value = payload.get(key)
    return value if isinstance(value, list) else []


def obj(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def objs(value: object) -> list[Mapping[str, object]]:
    """The objects of a list (a string content is no list of blocks)."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def quoted_list(ids: Sequence[str]) -> str:
    """A Python-style list of strings, as some providers print one: ``['a', 'b']``."""
    return "[" + ", ".join(repr(i) for i in ids) + "]"


#: The JSON body of an OpenAI-style 400 (OpenAI, DeepSeek, Moonshot).
def openai_envelope(kind: str = "invalid_request_error") -> Callable[[Rejection], dict[str, object]]:
    def wrap(r: Rejection) -> dict[str, object]:
        return {"error": {"message": r.error, "type": kind, "param": r.path or None, "code": None}}

    return wrap


FIRST: Final = "the first by position in the payload"
