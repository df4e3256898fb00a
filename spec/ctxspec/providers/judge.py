"""What a contract finding costs with one provider: the ``reject`` level, computed by its rules.

The contract is stated over chat messages for every provider at once; a
finding of level ``reject`` says "some provider answers 400".  Under
``--provider P`` that becomes a question about P: the projection is rendered
as P's payload (by the renderer the caller passes: the reference's) and P's
rules judge it.

* A ``reject`` finding P's rules confirm (a rejection of a rule that is an
  instance of the finding's contract rule) stays ``reject`` and carries P's
  error text.
* A ``reject`` finding P is known to accept becomes ``policy``, saying so:
  P lists its contract rule in ``Provider.accepts``, with why (a Responses
  request with a steer between a call and its output), and none of P's
  rules fires on it.
* Any other ``reject`` finding stays ``reject``, saying that P's own error
  for it is not known.  That P's rules do not fire is no evidence that P
  accepts it: a rule may cover only part of a contract rule (Moonshot's
  unknown-id rule does not see a call answered twice).
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
