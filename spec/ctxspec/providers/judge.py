"""What a contract finding costs with one provider: the ``reject`` level, computed by its rules.

The contract is stated over chat messages for every provider at once; a
finding of level ``reject`` says "some provider answers 400".  Under
``--provider P`` that becomes a question about P: the projection is rendered
as P's payload (by the renderer the caller passes: the reference's) and P's
rules judge it.

* A ``reject`` finding P's rules confirm (a rejection of a rule that is an
  instance of the finding's contract rule) stays ``reject`` and carries P's
  error text.
* A ``reject`` finding P accepts becomes ``policy``, saying so: P's rules
  cover that contract rule and none fires (a Responses request with a steer
  between a call and its output), or P lists it in ``Provider.accepts``.
* A ``reject`` finding about a contract rule none of P's rules covers stays
  ``reject``, saying that P's own error for it is not known: no evidence of
  acceptance is no evidence.
* A rejection no finding explains (Mistral refuses a user message right
  after a tool message, which the contract allows) is a finding of its own,
  under the rule's first contract rule, or C10 (shape).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ..contract import Violation
from ..messages import Message
from ..rules import Level
from .base import Payload, Provider, Rejection

Render = Callable[[Sequence[Message]], Payload]


def covers(provider: Provider, rule: str) -> bool:
    """Whether some rule of ``provider`` is an instance of contract rule ``rule``."""
    return any(rule in r.contract for r in provider.rules)


def relevel(found: Sequence[Violation], rejections: Sequence[Rejection], provider: Provider) -> list[Violation]:
    """``found`` with each ``reject`` level decided by ``provider``'s ``rejections`` (module docstring)."""
    contract_of = {r.code: r.contract for r in provider.rules}
    out: list[Violation] = []
    explained: set[int] = set()
    for v in found:
        if v.level is not Level.REJECT:
            out.append(v)
            continue
        matching = [n for n, r in enumerate(rejections) if v.rule in contract_of[r.rule]]
        if matching:
            explained.update(matching)
            r = rejections[matching[0]]
            out.append(replace(v, message=f"{v.message}; {provider.title} answers 400 ({r.rule}): {r.error}"))
        elif v.rule in provider.accepts:
            out.append(replace(v, level=Level.POLICY, message=f"{v.message} ({provider.title} accepts it: {provider.accepts[v.rule]})"))
        elif covers(provider, v.rule):
            out.append(replace(v, level=Level.POLICY, message=f"{v.message} ({provider.title} accepts it: none of its rules rejects this request)"))
        else:
            out.append(replace(v, message=f"{v.message} ({provider.title}'s own error for this is not known)"))
    for n, r in enumerate(rejections):
        if n not in explained:
            rule = next(iter(contract_of[r.rule]), "C10")
            out.append(Violation(rule, f"{provider.title} answers 400 ({r.rule}): {r.error}", level=Level.REJECT))
    return out


@dataclass(frozen=True, slots=True)
class Judge:
    """Relevels findings by one provider's rules (:func:`relevel`), rendering with ``render``."""

    provider: Provider
    render: Render

    def __call__(self, messages: Sequence[Message], found: Sequence[Violation]) -> list[Violation]:
        return relevel(found, self.provider.check(self.render(messages)), self.provider)
