"""The rules of the context contract, as a registry: code, title, statement, level.

What this module owns: the names and numbers of the rules (C1, C2, ...), which
appear identically in code, docs, test names and command output, and the
consequence levels a finding can have.  How each rule is checked is
:mod:`ctxspec.contract`; why each exists, the provider error it prevents and
the tests that check it are ``docs/contract.md``.  It imports nothing of the
model, so that listing the rules costs nothing.

Consequence levels
------------------
Every finding says what it costs the user, most severe first:

* ``reject``: a provider answers 400 and keeps answering it (pairing, orphans,
  duplicate ids, shape);
* ``loss``: the model silently misses something the log holds, or sees
  something the log does not (fidelity, nothing lost);
* ``cache``: the request is right but costs more (prefix stability, determinism);
* ``policy``: a difference from the declared policy that costs nothing else
  (placement, placeholder wording, summary position).

A rule's ``level`` is the level of most of its findings; a finding may carry
another (``C1`` is ``reject`` when a call is unanswered, ``policy`` when the
block is only in another order).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class Level(enum.Enum):
    """What a finding costs; ``Level.REJECT`` is the most severe."""

    REJECT = "reject"
    LOSS = "loss"
    CACHE = "cache"
    POLICY = "policy"

    @property
    def severity(self) -> int:
        """3 for ``reject`` down to 0 for ``policy``."""
        return len(LEVELS) - 1 - LEVELS.index(self)

    def at_least(self, floor: Level) -> bool:
        """Whether a finding of this level counts under ``--fail-on floor``."""
        return self.severity >= floor.severity


#: The levels, most severe first.
LEVELS: Final[tuple[Level, ...]] = tuple(Level)


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    title: str
    statement: str
    level: Level
    #: The other levels a finding of this rule can have, each with when.
    also: tuple[tuple[Level, str], ...] = ()


RULES: Final[dict[str, Rule]] = {
    r.code: r
    for r in (
        Rule("C1", "pairing", "each call is answered by exactly one tool message, right after its assistant message, in the order the policy declares", Level.REJECT, ((Level.POLICY, "every call answered in its block, in another order than the policy declares"),)),
        Rule("C2", "no orphans", "each tool message answers a call of the assistant message right before its block, once", Level.REJECT),
        Rule("C3", "unique ids", "call ids are unique in the projection; under keep-first an id's first use keeps it and only a reuse gets a new id (any unique id under any-unique)", Level.REJECT, ((Level.POLICY, "unique ids, but a first use renamed under keep-first"),)),
        Rule("C4", "fidelity", "a result logged before its call closed is carried verbatim", Level.LOSS),
        Rule("C5", "closure", "a call without a result is closed as the policy declares: a synthetic error result in the declared words, or left out", Level.POLICY, ((Level.REJECT, "a carried call with no tool message at all"), (Level.LOSS, "a synthetic result not flagged as a synthetic error"))),
        Rule("C6", "input placement", "user input and late notes sit between the exchanges around their arrival, in arrival order, merged or apart as declared", Level.POLICY, ((Level.REJECT, "user input inside a tool block"),)),
        Rule("C7", "compaction", "the summary comes first (after kept input under user-then-summary); no exchange is split; nothing refers to a summarized call", Level.POLICY, ((Level.LOSS, "the summary not sent"),)),
        Rule("C8", "nothing lost", "everything in the context reaches the projection, and nothing else does", Level.LOSS, ((Level.POLICY, "a late note sent that the policy drops, or arguments re-serialised to the same JSON under arguments = text"),)),
        Rule("C9", "prefix stability", "with no compaction, undo or clear between them, a request is a prefix of the next", Level.CACHE),
        Rule("C10", "shape", "first non-system message is user; no empty message; no half-streamed call", Level.REJECT),
        Rule("C11", "determinism and replay", "same log, same messages: twice, batch = incremental, in another process; an idle resume changes nothing", Level.CACHE),
        Rule("C12", "totality", "the projector returns a message list for every log the state machine accepts", Level.REJECT),
    )
}
