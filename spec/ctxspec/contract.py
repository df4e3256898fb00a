"""The context contract: numbered rules as executable predicates.

What this module owns: the rules C1-C11, each a check over (log, projection)
that returns :class:`Violation` values naming the rule, the message index and
the log line.  What it must not know: how any projector works.  A projector is
just a function from a log to messages, handed in by the caller.

The message-level rules (C1, C2, C3 uniqueness, C10 shape) read the messages
alone.  The rest compare the messages with the :class:`~ctxspec.ledger.Ledger`,
the meaning of the log.  Matching never relies on a projector's formatting:
exchanges are recognised by their text and the names and arguments of their
calls, user input by its exact text, late notes and summaries by containing
the original text.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from .errors import InvalidLog
from .events import Event, delete_lines, event_to_dict
from .ledger import Call, Item, Kind, Ledger, ledger_of
from .messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage, messages_from_openai
from .rules import RULES as RULES  # re-exported: the registry, checked here
from .rules import Rule as Rule
from .state import REWRITE_KINDS, CallStatus, Reason


#: Words that say why a call got a synthetic result (rule C5): one must appear.
REASON_WORDS: Final[dict[Reason, tuple[str, ...]]] = {
    Reason.CANCELLED: ("cancel",),
    Reason.LOST_AT_CRASH: ("crash", "restart", "lost"),
    Reason.STREAM_CUT: ("stream", "cut"),
    Reason.NEVER_ANSWERED: ("never answered", "no result", "not answered"),
}


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    message: str
    index: int | None = None  # message index in the projection
    line: int | None = None  # log line

    def __str__(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"message {self.index}")
        if self.line is not None:
            where.append(f"log line {self.line}")
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{self.rule} {RULES[self.rule].title}: {self.message}{suffix}"


Projector = Callable[[Sequence[Event]], Sequence[Message]]

# ---------------------------------------------------------------------------
# Message-level rules: C1, C2, C3 (uniqueness), C10 (shape).
# ---------------------------------------------------------------------------

#: The rules :func:`check_messages` checks: those a message list can be judged by without its log.
MESSAGE_RULES: Final = ("C1", "C2", "C3", "C10")


def _blocks(messages: Sequence[Message]) -> dict[int, int]:
    """For each tool message index, the index of the assistant message owning its block (-1: none)."""
    owner: dict[int, int] = {}
    current = -1
    for i, m in enumerate(messages):
        if isinstance(m, ToolMessage):
            owner[i] = current
        else:
            current = i if isinstance(m, AssistantMessage) and m.calls else -1
    return owner


def check_messages(messages: Sequence[Message]) -> list[Violation]:
    """The rules a message list must satisfy whatever log it came from."""
    out: list[Violation] = []
    for i, m in enumerate(messages):
        if isinstance(m, AssistantMessage) and m.calls:
            for j, call in enumerate(m.calls):
                k = i + 1 + j
                got = messages[k] if k < len(messages) else None
                if not isinstance(got, ToolMessage) or got.call_id != call.id:
                    seen = "nothing" if got is None else (f"tool message for {got.call_id!r}" if isinstance(got, ToolMessage) else f"a {got.role} message")
                    out.append(Violation("C1", f"call {call.id!r} ({call.name}) is not answered in order: found {seen}", k))
                    break
    owner = _blocks(messages)
    answered: dict[int, set[str]] = defaultdict(set)
    for i, own in owner.items():
        m = messages[i]
        assert isinstance(m, ToolMessage)
        if own < 0:
            out.append(Violation("C2", f"tool message for {m.call_id!r} does not follow an assistant message with calls", i))
            continue
        owner_msg = messages[own]
        assert isinstance(owner_msg, AssistantMessage)
        if m.call_id not in {c.id for c in owner_msg.calls}:
            out.append(Violation("C2", f"tool message answers {m.call_id!r}, which message {own} did not call", i))
        elif m.call_id in answered[own]:
            out.append(Violation("C2", f"second tool message for {m.call_id!r}", i))
        answered[own].add(m.call_id)
    seen_ids: dict[str, int] = {}
    for i, m in enumerate(messages):
        if isinstance(m, AssistantMessage):
            for call in m.calls:
                if call.id in seen_ids:
                    out.append(Violation("C3", f"call id {call.id!r} already used by message {seen_ids[call.id]}", i))
                else:
                    seen_ids[call.id] = i
    first = next((i for i, m in enumerate(messages) if not isinstance(m, SystemMessage)), None)
    if first is not None and not isinstance(messages[first], UserMessage):
        out.append(Violation("C10", f"first non-system message is a {messages[first].role} message", first))
    for i, m in enumerate(messages):
        if isinstance(m, (SystemMessage, UserMessage)) and not m.text:
            out.append(Violation("C10", f"empty {m.role} message", i))
        elif isinstance(m, AssistantMessage) and not m.text and not m.calls:
            out.append(Violation("C10", "assistant message with no text and no calls", i))
        elif isinstance(m, SystemMessage) and i > 0:
            out.append(Violation("C10", "system message after the start", i))
    return out


# ---------------------------------------------------------------------------
# Log-level rules: the projection against the ledger.
# ---------------------------------------------------------------------------


def _signature(text: str, calls: Sequence[tuple[str, str]]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (text, tuple(calls))


def _item_sig(item: Item) -> tuple[str, tuple[tuple[str, str], ...]]:
    return _signature(item.text, [(c.name, c.args) for c in item.calls])


def _msg_sig(m: AssistantMessage) -> tuple[str, tuple[tuple[str, str], ...]]:
    return _signature(m.text, [(c.name, c.args) for c in m.calls])


def _match_in_order(
    wanted: Sequence[Item], candidates: Sequence[int], key_item: Callable[[Item], object], key_msg: Callable[[int], object]
) -> dict[int, int]:
    """Greedy in-order matching: item position in ``wanted`` -> message index."""
    out: dict[int, int] = {}
    p = 0
    for w, item in enumerate(wanted):
        key = key_item(item)
        q = p
        while q < len(candidates) and key_msg(candidates[q]) != key:
            q += 1
        if q < len(candidates):
            out[w] = candidates[q]
            p = q + 1
    return out


def check_projection(log: Sequence[Event], messages: Sequence[Message], *, flags: bool = True, ledger: Ledger | None = None) -> list[Violation]:
    """Every single-projection rule (C1-C8, C10) for the request built after ``log``.

    ``flags`` says whether the projector reports ``is_error`` and ``synthetic``
    on tool messages (the canonical form does; OpenAI-shaped output does not).
    """
    led = ledger if ledger is not None else ledger_of(log)
    out = check_messages(messages)
    ctx = led.context()
    accounted: set[int] = set()
    msg_line: dict[int, int] = {}

    # System prompt.
    if led.system:
        if messages and isinstance(messages[0], SystemMessage) and messages[0].text == led.system:
            accounted.add(0)
        else:
            out.append(Violation("C8", "the system prompt is missing or altered", 0 if messages else None, 1))

    # Summary (C7): a user message containing it, first after the system prompt.
    first = next((i for i, m in enumerate(messages) if not isinstance(m, SystemMessage)), None)
    if led.summary is not None:
        if first is not None and isinstance(messages[first], UserMessage) and led.summary in messages[first].text:  # type: ignore[union-attr]
            accounted.add(first)
            msg_line[first] = led.summary_line or 0
        else:
            out.append(Violation("C7", "the compaction summary is not the first non-system message", first, led.summary_line))

    # Exchanges (assistant messages with calls).
    exchanges = [it for it in ctx if it.kind is Kind.EXCHANGE]
    with_calls = [i for i, m in enumerate(messages) if isinstance(m, AssistantMessage) and m.calls]
    ex_match = _match_in_order(exchanges, with_calls, _item_sig, lambda i: _msg_sig(messages[i]))  # type: ignore[arg-type]
    item_pos: dict[int, int] = {}  # id(item) -> message index
    for w, item in enumerate(exchanges):
        if w not in ex_match:
            names = ", ".join(f"{c.id}:{c.name}" for c in item.calls)
            out.append(Violation("C8", f"exchange with calls [{names}] is missing", None, item.line))
            continue
        i = ex_match[w]
        item_pos[id(item)] = i
        accounted.add(i)
        msg_line[i] = item.line
        m = messages[i]
        assert isinstance(m, AssistantMessage)
        for j, call in enumerate(item.calls):
            out.extend(_check_call(led, call, m.calls[j].id, messages, i + 1 + j, i, flags))
            if i + 1 + j < len(messages) and isinstance(messages[i + 1 + j], ToolMessage):
                accounted.add(i + 1 + j)
    for i in with_calls:
        if i not in accounted:
            out.extend(_unexpected_exchange(led, messages, i))

    # Replies (assistant text without calls).
    replies = [it for it in ctx if it.kind is Kind.REPLY]
    plain = [i for i, m in enumerate(messages) if isinstance(m, AssistantMessage) and not m.calls]
    for w, i in _match_occurrences(replies, plain, lambda it: it.text, lambda i: messages[i].text).items():  # type: ignore[union-attr]
        item_pos[id(replies[w])] = i
        accounted.add(i)
    for it in replies:
        if id(it) not in item_pos:
            out.append(Violation("C8", f"assistant reply {_short(it.text)} is missing", None, it.line))

    # User input (exact text) and late notes (containing the output).
    users = [i for i, m in enumerate(messages) if isinstance(m, UserMessage) and i not in accounted]
    inputs = [it for it in ctx if it.kind in (Kind.PROMPT, Kind.STEER, Kind.NOTIFICATION)]
    for w, i in _match_occurrences(inputs, users, lambda it: it.text, lambda i: messages[i].text).items():  # type: ignore[union-attr]
        item_pos[id(inputs[w])] = i
        accounted.add(i)
    for it in inputs:
        if id(it) not in item_pos:
            out.append(Violation("C8", f"{it.kind.value} {_short(it.text)} is missing", None, it.line))
    notes = [it for it in ctx if it.kind is Kind.NOTE]
    free_users = [i for i in users if i not in accounted]
    for it in notes:
        hit = next((i for i in free_users if it.text in messages[i].text), None)  # type: ignore[union-attr]
        if hit is None:
            about = f" for call {it.note_of.id!r}" if it.note_of else ""
            out.append(Violation("C8", f"late result{about} {_short(it.text)} is not delivered as a user note", None, it.line))
            continue
        free_users.remove(hit)
        item_pos[id(it)] = hit
        accounted.add(hit)

    # Placement (C6): each user item sits after the previous assistant item's block
    # and before the next assistant item; user items keep arrival order.
    out.extend(_check_placement(ctx, item_pos, messages))

    # Anything left is not accounted for by the context (C8).
    for i, m in enumerate(messages):
        if i in accounted or isinstance(m, ToolMessage):
            continue
        if isinstance(m, AssistantMessage) and m.calls:
            continue  # reported as an unexpected exchange above
        out.append(Violation("C8", f"{m.role} message {_short(_text_of(m))} is not accounted for by the log", i))
    return out


def _text_of(m: Message) -> str:
    return m.content if isinstance(m, ToolMessage) else m.text


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _match_occurrences(
    wanted: Sequence[Item], candidates: Sequence[int], key_item: Callable[[Item], str], key_msg: Callable[[int], str]
) -> dict[int, int]:
    """The k-th wanted item with key K matches the k-th candidate with key K."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for i in candidates:
        by_key[key_msg(i)].append(i)
    used: Counter[str] = Counter()
    out: dict[int, int] = {}
    for w, item in enumerate(wanted):
        key = key_item(item)
        slot = used[key]
        if slot < len(by_key[key]):
            out[w] = by_key[key][slot]
        used[key] += 1
    return out


def _check_call(led: Ledger, call: Call, sent_id: str, messages: Sequence[Message], k: int, owner: int, flags: bool) -> list[Violation]:
    out: list[Violation] = []
    first_use = led.calls_by_id[call.id][0] is call
    if first_use and sent_id != call.id:
        out.append(Violation("C3", f"first use of id {call.id!r} was renamed to {sent_id!r}", owner, call.line))
    tool = messages[k] if k < len(messages) else None
    if not isinstance(tool, ToolMessage) or tool.call_id != sent_id:
        tool = None
    if call.status is CallStatus.ANSWERED:
        assert call.output is not None
        if tool is None:
            out.append(Violation("C4", f"result of {call.id!r} is in the log but not sent", k, call.result_line))
        elif tool.content != call.output:
            out.append(Violation("C4", f"result of {call.id!r} altered: sent {_short(tool.content)}, logged {_short(call.output)}", k, call.result_line))
        elif flags and (tool.is_error != call.is_error or tool.synthetic):
            out.append(Violation("C4", f"result of {call.id!r} sent with the wrong error or synthetic flag", k, call.result_line))
    else:
        reason = call.reason if call.status is CallStatus.CLOSED else Reason.NEVER_ANSWERED
        assert reason is not None
        where = call.closed_line if call.closed_line is not None else call.line
        if tool is None:
            out.append(Violation("C5", f"call {call.id!r} has no result and no synthetic closure ({reason.value})", k, where))
        elif not any(word in tool.content.lower() for word in REASON_WORDS[reason]):
            out.append(Violation("C5", f"synthetic result of {call.id!r} does not say why ({reason.value}): {_short(tool.content)}", k, where))
        elif flags and not (tool.synthetic and tool.is_error):
            out.append(Violation("C5", f"synthetic result of {call.id!r} is not flagged as a synthetic error", k, where))
    return out


def _unexpected_exchange(led: Ledger, messages: Sequence[Message], i: int) -> list[Violation]:
    m = messages[i]
    assert isinstance(m, AssistantMessage)
    pairs = {(c.name, c.args) for c in m.calls}
    half = [c for c in led.all_calls if c.status is CallStatus.DROPPED and (c.name, c.args) in pairs]
    if half:
        return [Violation("C10", f"half-streamed call {half[0].id!r} ({half[0].name}) is sent", i, half[0].line)]
    summarized = [c for c in led.all_calls if c.status is CallStatus.SUMMARIZED and (c.name, c.args) in pairs]
    if summarized:
        return [Violation("C7", f"call {summarized[0].id!r} was summarized but is still sent", i, summarized[0].line)]
    return [Violation("C8", f"assistant message with calls {[c.id for c in m.calls]} is not accounted for by the log", i)]


def _check_placement(ctx: Sequence[Item], item_pos: dict[int, int], messages: Sequence[Message]) -> list[Violation]:
    out: list[Violation] = []
    user_kinds = (Kind.PROMPT, Kind.STEER, Kind.NOTIFICATION, Kind.NOTE)

    def end_of(item: Item) -> int:  # last message index of an assistant item
        pos = item_pos[id(item)]
        return pos + len(item.calls)

    prev_assistant: Item | None = None
    last_user_pos = -1
    assistants_after: list[Item | None] = [None] * len(ctx)
    nxt: Item | None = None
    for idx in range(len(ctx) - 1, -1, -1):
        assistants_after[idx] = nxt
        if ctx[idx].kind in (Kind.EXCHANGE, Kind.REPLY) and id(ctx[idx]) in item_pos:
            nxt = ctx[idx]
    for idx, item in enumerate(ctx):
        if item.kind in (Kind.EXCHANGE, Kind.REPLY):
            if id(item) in item_pos:
                prev_assistant = item
            continue
        if item.kind not in user_kinds or id(item) not in item_pos:
            continue
        pos = item_pos[id(item)]
        what = f"{item.kind.value} {_short(item.text)}"
        if prev_assistant is not None and pos <= end_of(prev_assistant):
            inside = item_pos[id(prev_assistant)] < pos
            out.append(Violation("C6", f"{what} is {'inside' if inside else 'before'} the tool block of the exchange it arrived after", pos, item.line))
        following = assistants_after[idx]
        if following is not None and pos > item_pos[id(following)]:
            out.append(Violation("C6", f"{what} is deferred past a later assistant message", pos, item.line))
        if pos < last_user_pos:
            out.append(Violation("C6", f"{what} is out of arrival order", pos, item.line))
        last_user_pos = max(last_user_pos, pos)
    return out


# ---------------------------------------------------------------------------
# Rules across projections: C9 prefix stability, C11 determinism and replay.
# ---------------------------------------------------------------------------


def first_difference(a: Sequence[Message], b: Sequence[Message]) -> int | None:
    """Index of the first message where ``a`` is not a prefix of ``b``."""
    for i, m in enumerate(a):
        if i >= len(b) or b[i] != m:
            return i
    return None


def without_idle_resumes(log: Sequence[Event], ledger: Ledger) -> list[Event]:
    """The log with every resume at which nothing was in flight removed (C11)."""
    return delete_lines(log, set(ledger.idle_resumes))


class Incremental(Protocol):
    """What an incremental projector offers: feed events, read the request."""

    def feed(self, event: Event) -> None: ...

    def messages(self) -> Sequence[Message]: ...


class SessionChecker:
    """Checks a projector at every projection point while events are fed.

    ``feed`` returns the violations found at that event: at a ``step.begin``,
    and just before a compaction, undo or clear (which could remove the
    evidence), the request is checked; ``finish`` checks the end of the log
    (the request a step.begin would build now) and the replay rule C11.
    """

    def __init__(self, projector: Projector, *, incremental: Callable[[], Incremental] | None = None, flags: bool = True) -> None:
        self.projector = projector
        self.flags = flags
        self.log: list[Event] = []
        self.ledger = Ledger()
        self.inc = incremental() if incremental is not None else None
        self.previous: list[Message] | None = None
        self.rewrite_since = False

    def feed(self, event: Event) -> list[Violation]:
        if event.type in REWRITE_KINDS and self.log and self.log[-1].type != "step.begin":
            # A rewrite may remove the evidence of a broken request before the
            # next step.begin: check the request that would be built now first.
            found, _ = self._check_point()
            if found:
                return found
        self.log.append(event)
        self.ledger.feed(event)
        if self.inc is not None:
            self.inc.feed(event)
        if event.type in REWRITE_KINDS:
            self.rewrite_since = True
        if event.type != "step.begin":
            return []
        found, messages = self._check_point()
        if self.previous is not None and not self.rewrite_since:
            d = first_difference(self.previous, messages)
            if d is not None:
                found.append(Violation("C9", "the previous request is not a prefix of this one", d, len(self.log)))
        self.previous = messages
        self.rewrite_since = False
        return found

    def _run(self, log: Sequence[Event]) -> list[Message] | Violation:
        try:
            return list(self.projector(tuple(log)))
        except Exception as exc:  # the projector under test is not ours to trust
            return Violation("C12", f"the projector raised {type(exc).__name__}: {exc}", None, len(log))

    def _check_point(self) -> tuple[list[Violation], list[Message]]:
        n = len(self.log)
        messages = self._run(self.log)
        if isinstance(messages, Violation):
            return [messages], []
        found = check_projection(self.log, messages, flags=self.flags, ledger=self.ledger)
        again = self._run(self.log)
        if isinstance(again, Violation):
            found.append(again)
        elif again != messages:
            d = first_difference(messages, again)
            found.append(Violation("C11", "projecting the same log twice gave different messages", d, n))
        if self.inc is not None:
            inc_messages = list(self.inc.messages())
            if inc_messages != messages:
                d = first_difference(messages, inc_messages)
                found.append(Violation("C11", "incremental projection differs from batch projection", d if d is not None else len(messages), n))
        return found, messages

    def finish(self) -> list[Violation]:
        found: list[Violation] = []
        if self.log and self.log[-1].type != "step.begin":
            found, _ = self._check_point()
        if self.ledger.idle_resumes and not found:
            stripped = without_idle_resumes(self.log, self.ledger)
            a, b = self._run(stripped), self._run(self.log)
            if isinstance(a, Violation) or isinstance(b, Violation):
                found.append(a if isinstance(a, Violation) else b)  # type: ignore[arg-type]
            elif a != b:
                found.append(Violation("C11", "removing a resume at which nothing was in flight changes the projection", None, self.ledger.idle_resumes[0]))
        return found


def check_session(
    log: Sequence[Event],
    projector: Projector,
    *,
    incremental: Callable[[], Incremental] | None = None,
    flags: bool = True,
) -> list[Violation]:
    """Run ``projector`` at every projection point of ``log`` and at its end; check every rule.

    Stops at the first projection point that fails: that is the one to report.
    """
    checker = SessionChecker(projector, incremental=incremental, flags=flags)
    for event in log:
        found = checker.feed(event)
        if found:
            return found
    return checker.finish()


# ---------------------------------------------------------------------------
# Projectors that speak JSON.
# ---------------------------------------------------------------------------

JsonProjector = Callable[[list[dict[str, object]]], object]


def json_projector(fn: JsonProjector) -> Projector:
    """Adapt a projector over JSON (event dicts -> OpenAI message dicts)."""

    def project(log: Sequence[Event]) -> Sequence[Message]:
        dicts = [json.loads(json.dumps(event_to_dict(e))) for e in log]  # fresh copies each call
        out = fn(dicts)
        try:
            return messages_from_openai(out)
        except InvalidLog as exc:
            raise InvalidLog(f"the projector returned a malformed message list: {exc.message}") from None

    project.__name__ = getattr(fn, "__name__", "projector")
    return project
