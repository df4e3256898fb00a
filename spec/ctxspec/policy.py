"""Declared policies: a runtime's own choices where the contract leaves room.

What this module owns: the knobs a runtime may set (:class:`Policy`), the
values no runtime may declare because a provider would reject the request
(:data:`REFUSED`), the presets that describe real runtimes (:data:`PRESETS`)
and the TOML form a runtime writes its own policy in (:func:`load_policy`).
The ledger, the contract, the reference projector and the abstraction read a
policy from here; none of them takes a flag of its own.

What it must not know: how a projection is checked or built.  A knob states a
choice; ``contract.py`` says what each choice lets through.

Why knobs at all
----------------
Two runtimes that both never cause a 400 may still send different lists for
the same log: one answers an unanswered call with "aborted", another drops the
call; one keeps a steer as its own user message, another merges it into the
next.  Neither is a bug.  Judged against the reference's choices, each would be
reported, and a verifier that reports design choices gets switched off.  So a
runtime declares its choices, and the contract checks the projection against
the declaration.  Every choice that can be declared is safe for every provider;
the unsafe ones are in :data:`REFUSED`, each with the provider error it causes.

Each knob's first value is the reference's choice.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from .errors import CtxError
from .state import Reason


class Unanswered(enum.Enum):
    """A call with no result when a request is built (cancelled, lost at crash, never answered)."""

    SYNTHESIZE = "synthesize"  # a synthetic error result answers it
    DROP = "drop"  # the call is left out of its assistant message


class SyntheticText(enum.Enum):
    """What a synthetic result must say."""

    REASON = "reason"  # words that say why (the reference's, :data:`REASON_WORDS`)
    OWN = "own"  # the runtime's own words per reason (``Policy.words``)
    ANY = "any"  # any text


class BlockOrder(enum.Enum):
    """The order of the tool messages after an assistant message with several calls."""

    CALL = "call"  # the order of the calls
    ARRIVAL = "arrival"  # results in the order they were logged; synthetic closures anywhere in the block
    ANY = "any"  # any order (each call still answered once, inside its block)


class LateResult(enum.Enum):
    """A result for a call that is already closed, or whose exchange was summarized."""

    NOTE = "note"  # a user-role note that contains the output
    DROP = "drop"  # not sent


class UserMessages(enum.Enum):
    """User-role messages with nothing between them (input, late notes, the summary)."""

    SEPARATE = "separate"
    MERGED = "merged"  # one user message that contains each text, in order


class CallIds(enum.Enum):
    """The ids calls are sent with."""

    KEEP_FIRST = "keep-first"  # an id's first use keeps it; a reuse gets a fresh id
    ANY_UNIQUE = "any-unique"  # any ids, unique in the request (a provider's character set, say)


class CompactionOutput(enum.Enum):
    """What a compaction leaves in front of the kept conversation."""

    SUMMARY_FIRST = "summary-first"  # the summary is the first non-system message
    USER_THEN_SUMMARY = "user-then-summary"  # some summarized user input, verbatim and in order, then the summary


class CutStream(enum.Enum):
    """The fully streamed calls of a reply whose stream was cut."""

    SEND_CLOSED = "send-closed"  # sent, each closed as a call that did not run
    DROP = "drop"  # left out (the reply's text, if any, is still sent)


class Arguments(enum.Enum):
    """How a call's arguments must match the log."""

    TEXT = "text"  # the same text
    JSON = "json"  # the same JSON value (any serialisation); text that is not JSON must match as text


#: The reference's words: a synthetic result for ``reason`` contains one of them (case-insensitive).
REASON_WORDS: Final[Mapping[Reason, tuple[str, ...]]] = {
    Reason.CANCELLED: ("cancel",),
    Reason.LOST_AT_CRASH: ("crash", "restart", "lost"),
    Reason.STREAM_CUT: ("stream", "cut"),
    Reason.NEVER_ANSWERED: ("never answered", "no result", "not answered"),
}


@dataclass(frozen=True, slots=True)
class Policy:
    """A runtime's declared choices.  ``Policy()`` is the reference's."""

    unanswered: Unanswered = Unanswered.SYNTHESIZE
    synthetic_text: SyntheticText = SyntheticText.REASON
    block_order: BlockOrder = BlockOrder.CALL
    late_result: LateResult = LateResult.NOTE
    user_messages: UserMessages = UserMessages.SEPARATE
    call_ids: CallIds = CallIds.KEEP_FIRST
    compaction: CompactionOutput = CompactionOutput.SUMMARY_FIRST
    cut_stream: CutStream = CutStream.SEND_CLOSED
    arguments: Arguments = Arguments.TEXT
    #: With ``synthetic_text = "own"``: the words a synthetic result for each reason contains (one of them).
    words: Mapping[Reason, tuple[str, ...]] = field(default_factory=lambda: dict(REASON_WORDS))
    name: str = "reference"

    def __post_init__(self) -> None:
        for reason in Reason:
            said = self.words.get(reason, ())
            if not said or not all(isinstance(w, str) and w.strip() for w in said):
                raise PolicyError(f"policy {self.name!r}: words for {reason.value!r} must be a non-empty list of non-blank strings")
        object.__setattr__(self, "words", {r: tuple(self.words[r]) for r in Reason})

    def says_why(self, reason: Reason, text: str) -> bool:
        """Whether ``text`` is an acceptable synthetic result for ``reason``."""
        if self.synthetic_text is SyntheticText.ANY:
            return True
        words = REASON_WORDS[reason] if self.synthetic_text is SyntheticText.REASON else self.words[reason]
        low = text.lower()
        return any(w.lower() in low for w in words)

    def knobs(self) -> dict[str, str]:
        """Each knob's value, by name (what ``--json`` and the docs print)."""
        return {k.name: getattr(self, k.name).value for k in KNOBS}


@dataclass(frozen=True, slots=True)
class Knob:
    """One declared choice: its field, its values (the reference's first) and what it is about."""

    name: str
    values: type[enum.Enum]
    about: str
    rules: tuple[str, ...]  # the rules whose checks the knob changes


#: Every knob, in the order the docs list them.
KNOBS: Final[tuple[Knob, ...]] = (
    Knob("unanswered", Unanswered, "a call with no result when a request is built", ("C5", "C8")),
    Knob("synthetic_text", SyntheticText, "what a synthetic result must say", ("C5",)),
    Knob("block_order", BlockOrder, "the order of a tool block", ("C1",)),
    Knob("late_result", LateResult, "a result for a call already closed", ("C8",)),
    Knob("user_messages", UserMessages, "user-role messages with nothing between them", ("C6", "C9")),
    Knob("call_ids", CallIds, "the ids calls are sent with", ("C3",)),
    Knob("compaction", CompactionOutput, "what a compaction leaves before the kept conversation", ("C7",)),
    Knob("cut_stream", CutStream, "the fully streamed calls of a cut reply", ("C5",)),
    Knob("arguments", Arguments, "how a call's arguments must match the log", ("C8",)),
)

#: Choices no policy may declare: ``(knob, value)`` -> the provider error it causes.
REFUSED: Final[Mapping[tuple[str, str], str]] = {
    ("unanswered", "leave-open"): "a call with no tool message after it is a 400 on every provider "
    "(OpenAI: 'tool_call_ids did not have response messages'; Anthropic: 'tool_use ids were found without tool_result blocks')",
    ("call_ids", "kept"): "a reused id sent twice is a 400 (OpenAI: \"Duplicate value for 'tool_call_id'\"; Anthropic: 'tool_use ids must be unique')",
    ("cut_stream", "send-half"): "the call cut mid-arguments has no complete argument JSON: "
    "Anthropic needs 'input' to be an object, and the call never ran",
    ("late_result", "tool-message"): "a tool message for a call that is already answered or not in the request is a 400 "
    "(OpenAI: \"messages with role 'tool' must be a response to a preceeding message with 'tool_calls'\"; "
    "Anthropic: 'unexpected tool_use_id found in tool_result blocks')",
    ("user_messages", "inside-block"): "a user message between the calls and their results breaks the pairing: a 400 on every provider",
}


class PolicyError(CtxError):
    """A policy that cannot be loaded or declared."""


def _preset(name: str, words: Mapping[Reason, tuple[str, ...]] | None = None, **knobs: enum.Enum) -> Policy:
    return Policy(name=name, words=dict(words) if words else dict(REASON_WORDS), **knobs)  # type: ignore[arg-type]


#: The reference's policy, ``Policy()``: one shared instance (a policy never changes once made).
REFERENCE: Final = Policy()


def _same(*words: str) -> dict[Reason, tuple[str, ...]]:
    return {r: words for r in Reason}


#: The presets.  ``docs/policies.md`` gives the facts each rests on.
PRESETS: Final[Mapping[str, Policy]] = {
    p.name: p
    for p in (
        REFERENCE,
        _preset(
            "codex",
            _same("aborted"),
            synthetic_text=SyntheticText.OWN,
            late_result=LateResult.DROP,
            compaction=CompactionOutput.USER_THEN_SUMMARY,
        ),
        _preset(
            "claude-code",
            {
                Reason.CANCELLED: ("interrupted", "doesn't want to proceed", "cancelled"),
                Reason.LOST_AT_CRASH: ("missing", "interrupted"),
                Reason.STREAM_CUT: ("discarded",),
                Reason.NEVER_ANSWERED: ("missing",),
            },
            synthetic_text=SyntheticText.OWN,
            block_order=BlockOrder.ARRIVAL,
            late_result=LateResult.DROP,
            user_messages=UserMessages.MERGED,
            cut_stream=CutStream.DROP,
            arguments=Arguments.JSON,
        ),
        _preset(
            "kimi-code",
            {
                Reason.CANCELLED: ("aborted", "not available"),
                Reason.LOST_AT_CRASH: ("interrupted", "not available"),
                Reason.STREAM_CUT: ("not executed", "not available"),
                Reason.NEVER_ANSWERED: ("not available",),
            },
            synthetic_text=SyntheticText.OWN,
            block_order=BlockOrder.ARRIVAL,
            late_result=LateResult.DROP,
            user_messages=UserMessages.MERGED,
            compaction=CompactionOutput.USER_THEN_SUMMARY,
            arguments=Arguments.JSON,
        ),
        _preset(
            "openai-agents",
            unanswered=Unanswered.DROP,
            synthetic_text=SyntheticText.ANY,
            late_result=LateResult.DROP,
            cut_stream=CutStream.DROP,
        ),
        _preset(
            "vercel-ai",
            unanswered=Unanswered.DROP,
            synthetic_text=SyntheticText.ANY,
            late_result=LateResult.DROP,
            cut_stream=CutStream.DROP,
            arguments=Arguments.JSON,
        ),
    )
}


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", re.MULTILINE)
    hit = pattern.search(text)
    return text.count("\n", 0, hit.start()) + 1 if hit else None


def policy_from_mapping(data: Mapping[str, object], *, name: str = "custom", where: str = "<policy>", text: str = "") -> Policy:
    """A policy from the keys of a TOML document (``base``, the knobs, ``[words]``)."""

    def fail(message: str, key: str | None = None) -> PolicyError:
        line = _line_of(text, key) if key else None
        return PolicyError(f"{where}:{line}: {message}" if line else f"{where}: {message}")

    by_name = {k.name: k for k in KNOBS}
    base_name = data.get("base", "reference")
    if not isinstance(base_name, str) or base_name not in PRESETS:
        raise fail(f"base must be one of {', '.join(PRESETS)}, got {base_name!r}", "base")
    policy = replace(PRESETS[base_name], name=name)
    changes: dict[str, object] = {}
    for key, value in data.items():
        if key in ("base", "words", "name"):
            continue
        knob = by_name.get(key)
        if knob is None:
            raise fail(f"unknown key {key!r}; the knobs are {', '.join(by_name)}", key)
        if not isinstance(value, str):
            raise fail(f"{key} must be a string, got {value!r}", key)
        refused = REFUSED.get((key, value))
        if refused is not None:
            raise fail(f"{key} = {value!r} cannot be declared: {refused}", key)
        try:
            changes[key] = knob.values(value)
        except ValueError:
            allowed = ", ".join(repr(v.value) for v in knob.values)
            raise fail(f"{key} must be one of {allowed}, got {value!r}", key) from None
    words = data.get("words")
    if words is not None:
        if not isinstance(words, Mapping):
            raise fail("words must be a table: reason = [\"word\", ...]", "words")
        merged = dict(policy.words)
        reasons = {r.value: r for r in Reason} | {r.name.lower(): r for r in Reason}
        for key, value in words.items():
            reason = reasons.get(str(key).replace("_", " ")) or reasons.get(str(key))
            if reason is None:
                raise fail(f"words: unknown reason {key!r}; the reasons are {', '.join(repr(r.value) for r in Reason)}", str(key))
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not value or not all(isinstance(w, str) and w.strip() for w in value):
                raise fail(f"words.{key} must be a non-empty list of non-blank strings", str(key))
            merged[reason] = tuple(value)
        changes["words"] = merged
    if data.get("synthetic_text") == "own" and words is None and base_name == "reference":
        raise fail("synthetic_text = 'own' needs a [words] table: the runtime's words per reason", "synthetic_text")
    return replace(policy, **changes)  # type: ignore[arg-type]


def read_toml(path: str, what: str, error: type[CtxError]) -> tuple[str, dict[str, object]]:
    """The text and the table of a TOML file; ``error`` names ``path`` (and the line) when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: {what} is not UTF-8 text") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column \d+\)", msg)
        if m:
            raise error(f"{path}:{m.group(1)}: not valid TOML: {msg[: m.start()].strip()}") from None
        raise error(f"{path}: not valid TOML: {msg}") from None


def load_policy(spec: str) -> Policy:
    """A preset by name, or a policy from a TOML file (``my-runtime.toml``)."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if not spec.endswith(".toml") and not path.exists():
        raise PolicyError(f"unknown policy {spec!r}: a preset ({', '.join(PRESETS)}) or a .toml file")
    text, data = read_toml(spec, "the policy", PolicyError)
    section = data.get("policy", data)
    if not isinstance(section, Mapping):
        raise PolicyError(f"{spec}: [policy] must be a table")
    return policy_from_mapping(section, name=path.stem, where=spec, text=text)
