"""A search that keeps going: distinct findings, each shrunk on its own.

What this module owns: what makes two findings the same (:func:`signature`
and :attr:`Finding.key`), the list of findings a team has judged
(:class:`Accepted`, loaded from TOML by :func:`load_accepted`), and the
collector the state machine hands every failing program to
(:class:`Collector`).  What it must not know: how programs are generated
(``checker.py``) or how a finding is printed (the CLI).

Two findings are the same when they break the same rule at the same level and
their shrunk sessions have the same shape: the same event types in the same
order, a reply counted by its calls.  Texts and ids do not count: the
shrinker picks them, not the projector.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, cast

from .contract import Violation
from .errors import CtxError
from .events import Assistant, Event, ToolResult
from .policy import read_toml
from .rules import LEVELS, RULES, Level
from .shrink import minimize

#: One word per event type in a signature.
_WORDS: Final[Mapping[str, str]] = {
    "session.meta": "meta",
    "turn.prompt": "prompt",
    "turn.steer": "steer",
    "notification": "notification",
    "turn.cancel": "cancel",
    "turn.end": "end",
    "step.begin": "step",
    "assistant": "reply",
    "step.error": "error",
    "step.end": "step-end",
    "tool.result": "result",
    "resume": "resume",
    "compaction": "compaction",
    "undo": "undo",
    "clear": "clear",
}


def signature(log: Sequence[Event]) -> str:
    """The shape of a session: ``prompt step reply/2 result step`` (``session.meta`` left out).

    A reply shows its number of calls (``reply/2``) and ``-cut`` when its stream
    was cut; a result for a call the log never made shows as ``result?``.
    """
    made: set[str] = set()
    parts: list[str] = []
    for event in log[1:]:
        word = _WORDS[event.type]
        if isinstance(event, Assistant):
            made.update(c.id for c in event.calls)
            word += f"/{len(event.calls)}" + ("" if event.complete else "-cut")
        elif isinstance(event, ToolResult) and event.call_id not in made:
            word += "?"
        parts.append(word)
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Finding:
    """One distinct way the projector breaks the contract, with the shrunk session that shows it."""

    rule: str
    level: Level
    signature: str
    violations: tuple[Violation, ...]
    log: tuple[Event, ...]
    accepted: str | None = None  # the team's reason, when the accept list holds this finding

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.level.value, self.signature)


class AcceptError(CtxError):
    """An accept file that cannot be read."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A finding the team has judged: its rule, optionally its level and signature, and why."""

    rule: str
    reason: str
    level: Level | None = None
    signature: str | None = None  # None: any session shape

    def matches(self, finding: Finding) -> bool:
        return (
            finding.rule == self.rule
            and (self.level is None or finding.level is self.level)
            and (self.signature is None or finding.signature == self.signature)
        )


def load_accepted(path: str) -> tuple[Accepted, ...]:
    """The ``[[accept]]`` entries of a TOML file; errors name the file and line.

    ::

        [[accept]]
        rule = "C5"
        level = "policy"                     # optional: any level
        signature = "prompt step reply/1 cancel prompt step"   # optional: any shape
        reason = "we close cancelled calls with 'aborted'"
    """
    text, data = read_toml(path, "the accept file", AcceptError)
    starts = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r"^[ \t]*\[\[[ \t]*accept[ \t]*\]\]", text, re.MULTILINE)]
    unknown = sorted(set(data) - {"accept"})
    if unknown:
        raise AcceptError(f"{path}: unknown key {unknown[0]!r}: an accept file holds [[accept]] tables only")
    entries = data.get("accept", [])
    if not isinstance(entries, list):
        raise AcceptError(f"{path}: accept must be an array of tables ([[accept]])")
    out: list[Accepted] = []
    for n, entry in enumerate(entries):
        where = f"{path}:{starts[n]}" if n < len(starts) else path

        def need(key: str, entry: Mapping[str, object] = entry, where: str = where) -> str | None:
            value = entry.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise AcceptError(f"{where}: {key} must be a non-empty string")
            return value

        extra = sorted(set(entry) - {"rule", "level", "signature", "reason"})
        if extra:
            raise AcceptError(f"{where}: unknown key {extra[0]!r}; an entry has rule, level, signature, reason")
        rule, reason, level, sig = need("rule"), need("reason"), need("level"), need("signature")
        if rule not in RULES:
            raise AcceptError(f"{where}: rule must be one of {', '.join(RULES)}, got {rule!r}")
        if reason is None:
            raise AcceptError(f"{where}: every accepted finding needs a reason")
        levels = {lv.value: lv for lv in LEVELS}
        if level is not None and level not in levels:
            raise AcceptError(f"{where}: level must be one of {', '.join(levels)}, got {level!r}")
        out.append(Accepted(rule, reason, levels[level] if level else None, " ".join(sig.split()) if sig else None))
    return tuple(out)


Check = Callable[[Sequence[Event]], list[Violation]]

#: The text fields of events, which the shrinker's texts fill.
_TEXT_FIELDS: Final = ("text", "output", "summary", "system")


def _printable(text: str) -> str:
    return "".join(ch for ch in text if " " <= ch <= "~")


def plain_texts(log: Sequence[Event], fails: Callable[[Sequence[Event]], bool]) -> tuple[Event, ...]:
    """``log`` with each text made printable ASCII where the failure does not need otherwise.

    A counterexample that hinges on an invisible character keeps it; every
    other text loses what a reader cannot see or type (``<prompt 7> \x85`` is
    tried as ``<prompt 7> ``).  A required text never becomes empty.
    """
    out = list(log)
    for i, event in enumerate(out):
        for name in _TEXT_FIELDS:
            text = getattr(event, name, None)
            if not isinstance(text, str) or text == _printable(text):
                continue
            plain = _printable(text).strip() or ("" if name in ("output", "system") else None)
            if plain is None:
                continue
            try:
                candidate: Event = replace(cast(Any, event), **{name: plain})
            except CtxError:  # the event refuses it (an id in the text, say)
                continue
            trial = [*out[:i], candidate, *out[i + 1 :]]
            if fails(trial):
                out = trial
                event = candidate
    return tuple(out)


@dataclass(slots=True)
class Collector:
    """Receives each failing program; keeps up to ``limit`` distinct findings.

    For each (rule, level) the program broke, most severe first, the log is
    shrunk keeping that pair (see :meth:`add`).  Shrinking costs
    milliseconds, but a projector may fail most programs the same way: after
    ``patience`` shrinks of a pair in a row that found nothing new, that pair
    is no longer shrunk (a finding it would have added is then missed;
    ``seen`` counts the failing programs).
    """

    check: Check
    limit: int = 1
    accepted: tuple[Accepted, ...] = ()
    patience: int = 25
    on_finding: Callable[[Finding], None] | None = None
    findings: list[Finding] = field(default_factory=list)
    judged: list[Finding] = field(default_factory=list)  # accepted findings met, once each
    seen: int = 0  # failing programs handed in
    _known: set[tuple[str, str, str]] = field(default_factory=set)
    _stale: dict[tuple[str, Level], int] = field(default_factory=dict)
    _judged_pairs: set[tuple[str, Level]] = field(default_factory=set)

    @property
    def full(self) -> bool:
        return len(self.findings) >= self.limit

    def add(self, violations: Sequence[Violation], log: Sequence[Event]) -> None:
        """A failing program: ``violations`` at the last event of ``log``.

        Its most severe (rule, level) pair is shrunk first.  A new finding is
        recorded; a known one explains the program, unless the team accepted
        it: then the next pair is tried, so that an accepted finding never
        hides what comes behind it.
        """
        self.seen += 1
        if self.full:
            return
        order = {code: n for n, code in enumerate(RULES)}
        pairs = sorted({(v.rule, v.level) for v in violations}, key=lambda p: (-p[1].severity, order[p[0]]))
        for pair in pairs:
            if self._stale.get(pair, 0) >= self.patience:
                if pair in self._judged_pairs:
                    continue
                return
            finding = self.shrink(pair, log)
            if finding.key in self._known or self._shown(finding):
                self._stale[pair] = self._stale.get(pair, 0) + 1
                if pair in self._judged_pairs:
                    continue
                return
            self._stale[pair] = 0
            self._known.add(finding.key)
            reason = next((a.reason for a in self.accepted if a.matches(finding)), None)
            if reason is not None:
                self._judged_pairs.add(pair)
                self.judged.append(Finding(finding.rule, finding.level, finding.signature, finding.violations, finding.log, reason))
                continue
            self.findings.append(finding)
            if self.on_finding is not None:
                self.on_finding(finding)
            return

    def _shown(self, finding: Finding) -> bool:
        """A finding already shows this one: same session shape, and it broke this pair too."""
        return any(
            f.signature == finding.signature and any((v.rule, v.level) == (finding.rule, finding.level) for v in f.violations)
            for f in (*self.findings, *self.judged)
        )

    def shrink(self, pair: tuple[str, Level], log: Sequence[Event]) -> Finding:
        """The finding for ``pair``, shrunk; a C11 finding when ``log`` no longer breaks it (a flaky projector)."""

        def breaks(candidate: Sequence[Event]) -> bool:
            return any((v.rule, v.level) == pair for v in self.check(candidate))

        if not breaks(log):
            message = f"the same log broke {pair[0]} on one run and not on the next: the projector is not deterministic"
            return Finding("C11", Level.CACHE, signature(log), (Violation("C11", message, None, len(log)),), tuple(log))
        small = plain_texts(minimize(log, breaks), breaks)
        found = self.check(small)
        mine = [v for v in found if (v.rule, v.level) == pair] or [Violation(pair[0], "broken while shrinking, not on the shrunk log", level=pair[1])]
        rest = [v for v in found if (v.rule, v.level) != pair]
        return Finding(pair[0], pair[1], signature(small), tuple(mine + rest), small)
