"""The rules of the context contract, as a registry: code, title, statement.

What this module owns: the names and numbers of the rules (C1, C2, ...), which
appear identically in code, docs, test names and command output.  How each
rule is checked is :mod:`ctxspec.contract`; why each exists, the provider
error it prevents and the tests that check it are ``docs/contract.md``.  It
imports nothing of the model, so that listing the rules costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    title: str
    statement: str


RULES: Final[dict[str, Rule]] = {
    r.code: r
    for r in (
        Rule("C1", "pairing", "each call is answered by exactly one tool message, right after its assistant message, in call order"),
        Rule("C2", "no orphans", "each tool message answers a call of the assistant message right before its block, once"),
        Rule("C3", "unique ids", "call ids are unique in the projection; an id's first use keeps it, reuses are renamed"),
        Rule("C4", "fidelity", "a result logged before its call closed is carried verbatim"),
        Rule("C5", "closure", "a call without a result gets a synthetic error result that says why"),
        Rule("C6", "input placement", "user input and late notes sit between the exchanges around their arrival, in arrival order"),
        Rule("C7", "compaction", "the summary comes first; no exchange is split; nothing refers to a summarized call"),
        Rule("C8", "nothing lost", "everything in the context reaches the projection, and nothing else does"),
        Rule("C9", "prefix stability", "with no compaction, undo or clear between them, a request is a prefix of the next"),
        Rule("C10", "shape", "first non-system message is user; no empty message; no half-streamed call"),
        Rule("C11", "determinism and replay", "same log, same messages: batch = incremental; an idle resume changes nothing"),
        Rule("C12", "totality", "the projector returns a message list for every log the state machine accepts"),
    )
}
