"""``--provider P``: a request judged by one provider's own rules, with the error it would answer.

A captured request in P's own shape is judged as captured; anything else (a
message list of another shape, the reference projection of a log) is
rendered for P by the reference renderer first.  Each rejection is placed on
the line of the captured file it is about, when there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from ctxspec.contract import Violation
from ctxspec.messages import Message
from ctxspec.providers import PROVIDERS, Provider, Rejection
from ctxspec.providers.judge import Judge, relevel

from .formats.messages import DocumentSource, LoadedMessages
from .render import render


def judge(name: str) -> Judge:
    """The provider's judge, rendering with the reference renderer."""
    return Judge(PROVIDERS[name], lambda messages: render(messages, name))


@dataclass(frozen=True, slots=True)
class ProviderVerdict:
    provider: Provider
    #: Every rejection, in payload order: the first is the error the provider answers.
    rejections: tuple[Rejection, ...]
    #: The file line of each rejection (None when the payload was rendered, not read).
    lines: tuple[int | None, ...]
    #: ``captured`` (the file in the provider's own shape) or ``rendered`` (by the reference renderer).
    source: str

    @property
    def accepted(self) -> bool:
        return not self.rejections

    def relevel(self, found: Sequence[Violation]) -> list[Violation]:
        return relevel(found, self.rejections, self.provider)

    def to_json(self) -> dict[str, object]:
        first = self.rejections[0] if self.rejections else None
        return {
            "name": self.provider.name,
            "payload": self.source,
            "accepted": self.accepted,
            "error": None if first is None else self.provider.envelope(first),
            "rejections": [
                {"rule": r.rule, "error": r.error, "path": r.path, "item": r.item, "line": line}
                for r, line in zip(self.rejections, self.lines)
            ],
        }


def _line(source: DocumentSource, r: Rejection) -> int | None:
    if r.item is None or r.item >= len(source.message_lines):
        return None
    blocks = source.block_lines[r.item]
    if r.block is not None and r.block < len(blocks):
        return blocks[r.block]
    return source.message_lines[r.item]


def verdict(name: str, messages: Sequence[Message], loaded: LoadedMessages | None = None) -> ProviderVerdict:
    """``name``'s verdict on ``messages``; on the captured document itself when ``loaded`` is in its shape."""
    p = PROVIDERS[name]
    source = loaded.source if loaded is not None else None
    if loaded is not None and loaded.format == p.format and isinstance(source, DocumentSource) and isinstance(source.document, dict):
        found = p.check(source.document)
        return ProviderVerdict(p, tuple(found), tuple(_line(source, r) for r in found), "captured")
    if loaded is not None and loaded.format == p.format and isinstance(source, DocumentSource):  # a bare messages array
        found = p.check({p.items: list(source.raw_messages)})
        return ProviderVerdict(p, tuple(found), tuple(_line(source, r) for r in found), "captured")
    found = p.check(render(messages, name))
    return ProviderVerdict(p, tuple(found), (None,) * len(found), "rendered")


def print_verdict(v: ProviderVerdict, out: TextIO, what: str = "this request") -> None:
    how = "as captured" if v.source == "captured" else "rendered by the reference renderer"
    print(f"{v.provider.title} ({v.provider.name}) rules on {what}, {how}:", file=out)
    for r, line in zip(v.rejections, v.lines):
        at = f" (line {line})" if line is not None else ""
        print(f"  {r.rule} {v.provider.rule(r.rule).title}: {r.error}{at}", file=out)
    if v.accepted:
        print("  none broken", file=out)


def verdict_line(v: ProviderVerdict) -> str:
    if v.accepted:
        return f"{v.provider.name} would accept it"
    return f"{v.provider.name} would answer 400: {v.rejections[0].error}"
