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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from .errors import InvalidLog, ProjectorFailed
from .events import Event, delete_lines, event_to_dict
from .ledger import Call, Item, Kind, Ledger, ledger_of
from .messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage, messages_from_openai, same, to_openai
from .policy import REASON_WORDS as REASON_WORDS  # re-exported: they lived here first
from .policy import REFERENCE as REFERENCE  # re-exported: it lived here first
from .policy import Arguments, BlockOrder, CallIds, CompactionOutput, Policy, UserMessages
from .rules import RULES as RULES  # re-exported: the registry, checked here
from .rules import Level as Level
from .rules import Rule as Rule
from .state import REWRITE_KINDS, CallStatus, Reason, validate_log

_AS_JSON: Final = Policy(arguments=Arguments.JSON, name="arguments as JSON")


@dataclass(frozen=True, slots=True)
class Violation:
    """One finding: the rule, what is wrong, where, and what it costs (``level``)."""

    rule: str
    message: str
    index: int | None = None  # message index in the projection
    line: int | None = None  # log line
    level: Level = field(default=None)  # type: ignore[assignment]  # None: the rule's level
    call: str | None = None  # the id (as sent) of the call it is about, if any

    def __post_init__(self) -> None:
        if self.level is None:
            object.__setattr__(self, "level", RULES[self.rule].level)

    def __str__(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"message {self.index}")
        if self.line is not None:
            where.append(f"log line {self.line}")
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{self.rule} {RULES[self.rule].title} [{self.level.value}]: {self.message}{suffix}"


#: Decides the level of a request's findings by one provider's rules (``ctxspec.providers.judge.Judge``).
ProviderJudge = Callable[[Sequence[Message], Sequence[Violation]], list[Violation]]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which findings count: ``--rules``, ``--fail-on`` and, with ``--provider``, whose ``reject`` it is.

    ``provider`` relevels the findings of a request by that provider's rules
    before the level counts (it sees the request's messages: ``keep`` without
    them leaves levels as they are).
    """

    rules: frozenset[str] = frozenset(RULES)
    fail_on: Level = Level.POLICY
    provider: ProviderJudge | None = None

    def __call__(self, v: Violation) -> bool:
        return v.rule in self.rules and v.level.at_least(self.fail_on)

    def keep(self, found: Iterable[Violation], messages: Sequence[Message] | None = None) -> list[Violation]:
        if self.provider is not None and messages is not None:
            found = self.provider(messages, list(found))
        return [v for v in found if self(v)]


EVERYTHING: Final = Selection()


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


def block_of(messages: Sequence[Message], i: int) -> list[int]:
    """The indices of the tool messages right after message ``i``."""
    out: list[int] = []
    k = i + 1
    while k < len(messages) and isinstance(messages[k], ToolMessage):
        out.append(k)
        k += 1
    return out


def check_messages(messages: Sequence[Message], policy: Policy = REFERENCE) -> list[Violation]:
    """The rules a message list must satisfy whatever log it came from."""
    out: list[Violation] = []
    misplaced: set[int] = set()  # tool messages reported under C1 as their call's misplaced answer
    for i, m in enumerate(messages):
        if isinstance(m, AssistantMessage) and m.calls:
            block = block_of(messages, i)
            ids = [messages[k].call_id for k in block]  # type: ignore[union-attr]
            missing = [c for c in m.calls if c.id not in ids]
            for call in missing:
                k = i + 1 + len(block)
                got = messages[k] if k < len(messages) else None
                ends = "at the end of the request" if got is None else f"at {'an' if got.role == 'assistant' else 'a'} {got.role} message"
                elsewhere = [j for j, x in enumerate(messages) if isinstance(x, ToolMessage) and x.call_id == call.id and j not in block]
                misplaced.update(elsewhere[:1])
                if elsewhere:
                    what = f"is answered out of place: its tool message is message {elsewhere[0]}, but its block ends {ends}"
                else:
                    what = f"is not answered: its block of tool messages ends {ends}"
                out.append(Violation("C1", f"call {call.id!r} ({call.name}) {what}", k if got is not None else i, call=call.id))
            if not missing and policy.block_order is BlockOrder.CALL:
                answers = [x for x in ids if x in {c.id for c in m.calls}]
                order = list(dict.fromkeys(answers))
                calls = list(dict.fromkeys(c.id for c in m.calls))  # a repeated id is C3's finding
                if order != calls:
                    out.append(Violation("C1", f"the block answers {order} but the calls are {calls}: not in call order", i + 1, level=Level.POLICY))
    owner = _blocks(messages)
    answered: dict[int, set[str]] = defaultdict(set)
    for i, own in owner.items():
        m = messages[i]
        assert isinstance(m, ToolMessage)
        if i in misplaced:
            continue
        if own < 0:
            out.append(Violation("C2", f"tool message for {m.call_id!r} does not follow an assistant message with calls", i, call=m.call_id))
            continue
        owner_msg = messages[own]
        assert isinstance(owner_msg, AssistantMessage)
        if m.call_id not in {c.id for c in owner_msg.calls}:
            out.append(Violation("C2", f"tool message answers {m.call_id!r}, which message {own} did not call", i, call=m.call_id))
        elif m.call_id in answered[own]:
            out.append(Violation("C2", f"second tool message for {m.call_id!r}", i, call=m.call_id))
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
        out.append(Violation("C10", f"first non-system message is {'an' if messages[first].role == 'assistant' else 'a'} {messages[first].role} message", first))
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


Sig = tuple[str, tuple[tuple[str, str], ...]]


def args_key(args: str, policy: Policy) -> str:
    """What two argument texts are compared by: the text, or its JSON value (``arguments``)."""
    if policy.arguments is Arguments.JSON:
        try:
            return json.dumps(json.loads(args), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except (ValueError, RecursionError):
            return args
    return args


def _msg_sig(m: AssistantMessage, policy: Policy) -> Sig:
    return (m.text, tuple((c.name, args_key(c.args, policy)) for c in m.calls))


@dataclass(frozen=True, slots=True)
class _Shape:
    """One way an assistant item of the context may be sent: its text and the calls it carries."""

    calls: tuple[Call, ...]
    sig: Sig
    what: str  # how it differs from the policy ("" for the policy's own shape)


def _shapes(led: Ledger, item: Item, policy: Policy) -> list[_Shape]:
    """The policy's shape of an assistant item first, then the shapes other policies send.

    A message of another shape is a policy finding, not a missing item: the
    other unanswered and cut-stream choices are each safe for providers.
    """
    if item.kind is Kind.REPLY:
        return [_Shape((), (item.text, ()), "")]
    carried = tuple(led.carried(item))
    out = [_Shape(carried, (item.text, tuple((c.name, args_key(c.args, policy)) for c in carried)), "")]
    for unanswered in (True, False):
        for cut in (True, False):
            calls = tuple(
                c
                for c in item.calls
                if c.status is CallStatus.ANSWERED or (cut if c.reason is Reason.STREAM_CUT else unanswered)
            )
            if calls == carried or any(s.calls == calls for s in out):
                continue
            extra = [c for c in calls if c not in carried]
            gone = [c for c in carried if c not in calls]
            what = "; ".join(
                part
                for part in (
                    f"sends {[c.id for c in extra]}, which the policy drops" if extra else "",
                    f"drops {[c.id for c in gone]}, which the policy closes with a synthetic result" if gone else "",
                )
                if part
            )
            out.append(_Shape(calls, (item.text, tuple((c.name, args_key(c.args, policy)) for c in calls)), what))
    return [s for s in out if s.calls or s.sig[0]]  # an empty message is never sent


def check_projection(
    log: Sequence[Event], messages: Sequence[Message], *, flags: bool = True, ledger: Ledger | None = None, policy: Policy | None = None
) -> list[Violation]:
    """Every single-projection rule (C1-C8, C10) for the request built after ``log``.

    ``flags`` says whether to check the ``is_error`` and ``synthetic`` flags
    of tool messages; a flag that is ``None`` (a JSON projection that does not
    carry it) is never checked.
    ``policy`` is the runtime's declared policy (the ledger's when not given).
    """
    led = ledger if ledger is not None else ledger_of(log, policy)
    pol = policy if policy is not None else led.policy
    merged = pol.user_messages is UserMessages.MERGED
    out = check_messages(messages, pol)
    ctx = led.context()
    accounted: set[int] = set()
    item_pos: dict[int, int] = {}  # id(item) -> message index
    item_end: dict[int, int] = {}  # id(assistant item) -> index of its block's last message

    # System prompt.
    if led.system:
        if messages and isinstance(messages[0], SystemMessage) and messages[0].text == led.system:
            accounted.add(0)
        else:
            out.append(Violation("C8", "the system prompt is missing or altered", 0 if messages else None, 1))

    # Summary (C7): a user message containing it, first after the system prompt
    # (after some summarized user input, verbatim, when the policy keeps it).
    first = next((i for i, m in enumerate(messages) if not isinstance(m, SystemMessage)), None)
    summary_at: int | None = None
    if led.summary is not None:
        k = first
        if pol.compaction is CompactionOutput.USER_THEN_SUMMARY and k is not None:
            k = _kept_input(led, messages, k, merged, accounted)
        m = messages[k] if k is not None and k < len(messages) else None
        if isinstance(m, UserMessage) and led.summary in m.text:
            summary_at = k
            accounted.add(k)  # type: ignore[arg-type]
        else:
            where = "first non-system message" if pol.compaction is CompactionOutput.SUMMARY_FIRST else "first message after the kept user input"
            hit = next((i for i, x in enumerate(messages) if isinstance(x, UserMessage) and led.summary in x.text), None)
            if hit is not None:
                accounted.add(hit)
                summary_at = hit
                out.append(Violation("C7", f"the compaction summary is message {hit}, not the {where}", hit, led.summary_line))
            else:
                out.append(Violation("C7", "the compaction summary is not sent", first, led.summary_line, level=Level.LOSS))

    # Assistant items (exchanges and replies), in order, each in one of its shapes.
    assistants = [it for it in ctx if it.kind in (Kind.EXCHANGE, Kind.REPLY)]
    sent = [i for i, m in enumerate(messages) if isinstance(m, AssistantMessage)]
    shapes = {id(it): _shapes(led, it, pol) for it in assistants}
    sigs = {i: _msg_sig(messages[i], pol) for i in sent}  # type: ignore[arg-type]
    chosen: dict[int, _Shape] = {}
    reserialised: set[int] = set()  # sent messages whose arguments match the log as JSON, not as text

    def same(shape: _Shape, i: int) -> bool:
        if shape.sig == sigs[i]:
            return True
        if pol.arguments is Arguments.TEXT and _json_sig(shape.sig) == _json_sig(sigs[i]):
            reserialised.add(i)
            return True
        return False

    p = 0
    for item in assistants:
        for q in range(p, len(sent)):
            shape = next((s for s in shapes[id(item)] if same(s, sent[q])), None)
            if shape is not None:
                chosen[id(item)], item_pos[id(item)] = shape, sent[q]
                p = q + 1
                break
    for item in assistants:  # present, but out of order
        if id(item) in item_pos or not shapes[id(item)] or shapes[id(item)][0].what:
            continue  # matched, or the policy sends nothing for it
        moved = next(((i, s) for i in sent if i not in item_pos.values() for s in shapes[id(item)] if same(s, i)), None)
        if moved is not None:
            item_pos[id(item)], chosen[id(item)] = moved
            out.append(Violation("C8", f"{_describe(item)} is sent out of order", moved[0], item.line))
        elif item.kind is Kind.EXCHANGE and not item.text and not any(c.status is CallStatus.ANSWERED for c in item.calls):
            # No result and no text: under the other unanswered or cut-stream choice nothing is sent.
            out.append(Violation("C5", f"{_describe(item)} is not sent: no call has a result and the reply has no text; the policy closes the calls with synthetic results", None, item.line, level=Level.POLICY))
        else:
            out.append(Violation("C8", f"{_describe(item)} is missing", None, item.line))
    for item in assistants:
        if id(item) not in item_pos:
            continue
        i, shape = item_pos[id(item)], chosen[id(item)]
        accounted.add(i)
        if shape.what:
            out.append(Violation("C5", f"{_describe(item)} {shape.what}", i, item.line, level=Level.POLICY))
        if i in reserialised:
            out.append(Violation("C8", f"{_describe(item)} is sent with its arguments re-serialised (the same JSON); the policy compares them as text", i, item.line, level=Level.POLICY))
        m = messages[i]
        assert isinstance(m, AssistantMessage)
        block = block_of(messages, i)
        by_id = {messages[k].call_id: k for k in reversed(block)}  # type: ignore[union-attr]
        for j, call in enumerate(shape.calls):
            k = by_id.get(m.calls[j].id)
            out.extend(_check_call(led, pol, call, m.calls[j].id, messages, k, i, flags))
            if k is not None:
                accounted.add(k)
        # The block ends at its last tool message, even one sent past a message in the way.
        ids = {c.id for c in m.calls}
        item_end[id(item)] = max([i + len(block), *(k for k in range(i + 1, len(messages)) if isinstance(messages[k], ToolMessage) and messages[k].call_id in ids)])  # type: ignore[union-attr]
        if pol.block_order is BlockOrder.ARRIVAL and len(shape.calls) > 1:
            out.extend(_arrival_order(shape.calls, m, messages, block, i))
    gone: dict[CallStatus, dict[tuple[str, str], Call]] | None = None  # built once, when first needed
    for i in sent:
        if i not in accounted and messages[i].calls:  # type: ignore[union-attr]
            gone = gone if gone is not None else _gone_calls(led, pol)
            out.extend(_unexpected_exchange(gone, pol, messages, i))

    # User input (exact text; contained, when the policy merges) and late notes (containing the output).
    users = [i for i, m in enumerate(messages) if isinstance(m, UserMessage) and (i not in accounted or (merged and i == summary_at))]
    inputs = [it for it in ctx if it.kind in (Kind.PROMPT, Kind.STEER, Kind.NOTIFICATION, Kind.NOTE)]
    after = _after_blocks(ctx, item_end)
    if merged:
        item_pos.update(_match_merged(inputs, users, messages, after))
    else:
        for w, i in _match_occurrences([it for it in inputs if it.kind is not Kind.NOTE], users, lambda it: it.text, lambda i: messages[i].text).items():  # type: ignore[union-attr]
            item_pos[id([it for it in inputs if it.kind is not Kind.NOTE][w])] = i
        free = [i for i in users if i not in item_pos.values()] + ([summary_at] if summary_at is not None else [])
        for it in inputs:
            if it.kind is Kind.NOTE or id(it) in item_pos:
                continue
            hit = next((i for i in free if it.text in messages[i].text), None)  # type: ignore[union-attr]
            if hit is not None:  # merged with other input: a different policy, nothing lost
                item_pos[id(it)] = hit
                out.append(Violation("C6", f"{it.kind.value} {_short(it.text)} is merged into another user message; the policy keeps them separate", hit, it.line))
        free = [i for i in users if i not in item_pos.values()]
        for it in inputs:
            if it.kind is Kind.NOTE:
                hit = _first_containing(it, free, messages, after.get(id(it), 0))
                if hit is not None:
                    free.remove(hit)
                    item_pos[id(it)] = hit
    for it in inputs:
        if id(it) in item_pos:
            accounted.add(item_pos[id(it)])
        elif it.kind is Kind.NOTE:
            about = f" for call {it.note_of.id!r}" if it.note_of else ""
            out.append(Violation("C8", f"late result{about} {_short(it.text)} is not delivered as a user note", None, it.line))
        else:
            out.append(Violation("C8", f"{it.kind.value} {_short(it.text)} is missing", None, it.line))
    if merged:
        for i in range(len(messages) - 1):
            if isinstance(messages[i], UserMessage) and isinstance(messages[i + 1], UserMessage):
                out.append(Violation("C6", "two user messages in a row; the policy merges them", i + 1, level=Level.POLICY))

    # Placement (C6): each user item sits after the previous assistant item's block
    # and before the next assistant item; user items keep arrival order.
    out.extend(_check_placement(ctx, item_pos, item_end))

    # Anything left is not accounted for by the context (C8).
    for i, m in enumerate(messages):
        if i in accounted or isinstance(m, ToolMessage):
            continue
        if isinstance(m, AssistantMessage) and m.calls:
            continue  # reported as an unexpected exchange above
        if isinstance(m, UserMessage) and led.summary is not None and any(it.text == m.text for it in led.summarized_input):
            out.append(Violation("C7", f"summarized user input {_short(m.text)} is sent again; the policy sends the summary in its place", i, level=Level.POLICY))
            continue
        late = next((n for n in led.dropped_notes if isinstance(m, UserMessage) and n.text in m.text), None)
        if late is not None:
            out.append(Violation("C8", f"late result {_short(late.text)} is sent as a note; the policy drops late results", i, late.line, level=Level.POLICY))
            continue
        out.append(Violation("C8", f"{m.role} message {_short(_text_of(m))} is not accounted for by the log", i))
    return out


def _json_sig(sig: Sig) -> Sig:
    return (sig[0], tuple((name, args_key(args, _AS_JSON)) for name, args in sig[1]))


def _describe(item: Item) -> str:
    if item.kind is Kind.REPLY or not item.calls:
        return f"assistant reply {_short(item.text)}"
    return f"exchange with calls [{', '.join(f'{c.id}:{c.name}' for c in item.calls)}]"


def _kept_input(led: Ledger, messages: Sequence[Message], k: int, merged: bool, accounted: set[int]) -> int:
    """Skip the summarized user input a compaction kept in front of its summary (verbatim, in order)."""
    pool = led.summarized_input
    p = 0
    assert led.summary is not None
    while k < len(messages):
        m = messages[k]
        if not isinstance(m, UserMessage) or led.summary in m.text:
            break
        q = next((j for j in range(p, len(pool)) if pool[j].text == m.text or (merged and pool[j].text in m.text)), None)
        if q is None:
            break
        p = q + 1
        while merged and p < len(pool) and pool[p].text in m.text:
            p += 1
        accounted.add(k)
        k += 1
    return k


def _after_blocks(ctx: Sequence[Item], item_end: dict[int, int]) -> dict[int, int]:
    """For each user item, the index just past the tool block of the last sent assistant item before it."""
    out: dict[int, int] = {}
    floor = 0
    for item in ctx:
        if id(item) in item_end:
            floor = item_end[id(item)] + 1
        else:
            out[id(item)] = floor
    return out


def _first_containing(item: Item, candidates: Sequence[int], messages: Sequence[Message], floor: int) -> int | None:
    """The first candidate message holding the item's text, one at or past ``floor`` first.

    Texts are found by containment (a note holds the output, a merged message
    several inputs), and an empty text is in every message: where the item
    belongs is tried first, and an empty text is looked for nowhere else (it
    would be found in the first message of all).
    """
    holding = [i for i in candidates if item.text in messages[i].text]  # type: ignore[union-attr]
    return next((i for i in holding if i >= floor), holding[0] if holding and item.text else None)


def _match_merged(items: Sequence[Item], users: Sequence[int], messages: Sequence[Message], after: dict[int, int]) -> dict[int, int]:
    """In order; one user message may hold several items in a row."""
    out: dict[int, int] = {}
    p = 0
    for it in items:
        hit = _first_containing(it, users[p:], messages, after.get(id(it), 0))
        if hit is not None:
            out[id(it)] = hit
            p = users.index(hit)
    return out


def _arrival_order(calls: Sequence[Call], m: AssistantMessage, messages: Sequence[Message], block: Sequence[int], i: int) -> list[Violation]:
    """Results in the order they were logged; synthetic closures may sit anywhere in the block."""
    sent_id = {id(c): m.calls[j].id for j, c in enumerate(calls)}
    answered = sorted((c for c in calls if c.status is CallStatus.ANSWERED), key=lambda c: c.result_line or 0)
    want = [sent_id[id(c)] for c in answered]
    got = list(dict.fromkeys(x for x in (messages[k].call_id for k in block) if x in set(want)))  # type: ignore[union-attr]
    if sorted(got) == sorted(want) and got != want:
        return [Violation("C1", f"the block answers {got}; in arrival order it is {want}", i + 1, level=Level.POLICY)]
    return []


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


def _check_call(led: Ledger, pol: Policy, call: Call, sent_id: str, messages: Sequence[Message], k: int | None, owner: int, flags: bool) -> list[Violation]:
    out: list[Violation] = []
    first_use = led.calls_by_id[call.id][0] is call
    if first_use and sent_id != call.id and pol.call_ids is CallIds.KEEP_FIRST:
        out.append(Violation("C3", f"first use of id {call.id!r} was renamed to {sent_id!r}", owner, call.line, level=Level.POLICY))
    if k is None:  # a misplaced answer (C1 says where) is still judged for what it says
        k = next((j for j in range(owner + 1, len(messages)) if isinstance(messages[j], ToolMessage) and messages[j].call_id == sent_id), None)  # type: ignore[union-attr]
    tool = messages[k] if k is not None else None
    assert tool is None or isinstance(tool, ToolMessage)
    if call.status is CallStatus.ANSWERED:
        assert call.output is not None
        if tool is None:
            end = owner + 1 + len(block_of(messages, owner))
            out.append(Violation("C4", f"result of {call.id!r} is in the log but not sent", end if end < len(messages) else owner, call.result_line, call=sent_id))
        elif tool.content != call.output:
            out.append(Violation("C4", f"result of {call.id!r} altered: sent {_short(tool.content)}, logged {_short(call.output)}", k, call.result_line, call=sent_id))
        elif flags and ((tool.is_error is not None and tool.is_error != call.is_error) or tool.synthetic):
            out.append(Violation("C4", f"result of {call.id!r} sent with the wrong error or synthetic flag", k, call.result_line, call=sent_id))
    else:
        reason = call.reason if call.status is CallStatus.CLOSED else Reason.NEVER_ANSWERED
        assert reason is not None
        where = call.closed_line if call.closed_line is not None else call.line
        if tool is None:
            out.append(Violation("C5", f"call {call.id!r} has no result and no synthetic closure ({reason.value})", owner, where, level=Level.REJECT, call=sent_id))
        elif not pol.says_why(reason, tool.content):
            out.append(Violation("C5", f"synthetic result of {call.id!r} does not say why ({reason.value}): {_short(tool.content)}", k, where, call=sent_id))
        elif flags and (tool.synthetic is False or tool.is_error is False):
            out.append(Violation("C5", f"synthetic result of {call.id!r} is not flagged as a synthetic error", k, where, level=Level.LOSS, call=sent_id))
    return out


def _gone_calls(led: Ledger, pol: Policy) -> dict[CallStatus, dict[tuple[str, str], Call]]:
    """The half-streamed and the summarized calls, by name and arguments (the first of each)."""
    out: dict[CallStatus, dict[tuple[str, str], Call]] = {CallStatus.DROPPED: {}, CallStatus.SUMMARIZED: {}}
    for c in led.all_calls:
        if c.status in out:
            out[c.status].setdefault((c.name, args_key(c.args, pol)), c)
    return out


def _unexpected_exchange(gone: dict[CallStatus, dict[tuple[str, str], Call]], pol: Policy, messages: Sequence[Message], i: int) -> list[Violation]:
    m = messages[i]
    assert isinstance(m, AssistantMessage)
    pairs = [(c.name, args_key(c.args, pol)) for c in m.calls]
    half = [gone[CallStatus.DROPPED][p] for p in pairs if p in gone[CallStatus.DROPPED]]
    if half:
        first = min(half, key=lambda c: c.line)
        return [Violation("C10", f"half-streamed call {first.id!r} ({first.name}) is sent", i, first.line)]
    summarized = [gone[CallStatus.SUMMARIZED][p] for p in pairs if p in gone[CallStatus.SUMMARIZED]]
    if summarized:
        first = min(summarized, key=lambda c: c.line)
        return [Violation("C7", f"call {first.id!r} was summarized but is still sent", i, first.line)]
    return [Violation("C8", f"assistant message with calls {[c.id for c in m.calls]} is not accounted for by the log", i)]


def _check_placement(ctx: Sequence[Item], item_pos: dict[int, int], item_end: dict[int, int]) -> list[Violation]:
    out: list[Violation] = []
    user_kinds = (Kind.PROMPT, Kind.STEER, Kind.NOTIFICATION, Kind.NOTE)
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
        if prev_assistant is not None and pos <= item_end[id(prev_assistant)]:
            inside = item_pos[id(prev_assistant)] < pos
            level = Level.REJECT if inside else Level.POLICY
            out.append(Violation("C6", f"{what} is {'inside' if inside else 'before'} the tool block of the exchange it arrived after", pos, item.line, level=level))
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
        if i >= len(b) or not same(m, b[i]):
            return i
    return None


def same_messages(a: Sequence[Message], b: Sequence[Message]) -> bool:
    """The same list (:func:`~ctxspec.messages.same` message by message)."""
    return len(a) == len(b) and first_difference(a, b) is None


class Incremental(Protocol):
    """What an incremental projector offers: feed events, read the request."""

    def feed(self, event: Event) -> None: ...

    def messages(self) -> Sequence[Message]: ...


class SessionChecker:
    """Checks a projector at every request while events are fed.

    A request is built at each ``step.begin``: ``feed`` returns the findings
    about that request (every rule, C9 against the previous request, C11
    projecting twice and against the incremental projector).  ``finish``
    checks the replay rule C11 at the last request.  Lists no runtime sends
    (at the end of a log, before a compaction, undo or clear) are not judged:
    see ``docs/contract.md``, "Judge what is sent".

    ``policy`` is the runtime's declared policy; ``select`` says which
    findings count (``--rules``, ``--fail-on``): the others are not returned.
    ``elsewhere``, if given, is the same projector run in another process
    (another hash seed, other object ids): ``finish`` projects the last
    request there too, and a difference is a C11 finding.
    """

    def __init__(
        self,
        projector: Projector,
        *,
        incremental: Callable[[], Incremental] | None = None,
        flags: bool = True,
        policy: Policy = REFERENCE,
        select: Selection = EVERYTHING,
        elsewhere: Projector | None = None,
    ) -> None:
        self.projector = projector
        self.elsewhere = elsewhere
        self.flags = flags
        self.policy = policy
        self.select = select
        self.log: list[Event] = []
        self.ledger = Ledger(policy=policy)
        self.inc = incremental() if incremental is not None else None
        self.previous: list[Message] | None = None
        self.rewrite_since = False
        self.last_request = 0  # log length at the last step.begin
        self.judged = 0  # log length at the last step.begin judged here (not advanced over)

    def feed(self, event: Event) -> list[Violation]:
        self.log.append(event)
        self.ledger.feed(event)
        if self.inc is not None:
            self.inc.feed(event)
        if event.type in REWRITE_KINDS:
            self.rewrite_since = True
        if event.type != "step.begin":
            return []
        self.last_request = self.judged = len(self.log)
        found, messages = self._check_point()
        if self.previous is not None and not self.rewrite_since and messages is not None:
            d = first_difference(self.previous, messages)
            if d is not None and not self._grown(self.previous, messages, d):
                found.append(Violation("C9", "the previous request is not a prefix of this one", d, len(self.log)))
        self.previous = messages
        self.rewrite_since = False
        return self.select.keep(found, messages)

    def advance(self, event: Event, sent: Sequence[Message] | None = None) -> None:
        """Feed ``event`` without judging it: its request, if it is one, was judged elsewhere and passed.

        ``sent``: the messages that request got (the next request is compared
        with them, C9).  The exhaustive run along the enumeration tree
        (``ctxspec.treewise``) judges each request once and brings a checker
        up to it this way.
        """
        self.log.append(event)
        self.ledger.feed(event)
        if self.inc is not None:
            self.inc.feed(event)
        if event.type in REWRITE_KINDS:
            self.rewrite_since = True
        if event.type == "step.begin":
            self.last_request = len(self.log)
            self.previous = list(sent) if sent is not None else None
            self.rewrite_since = False

    def _grown(self, previous: Sequence[Message], messages: Sequence[Message], d: int) -> bool:
        """Under a merging policy, the last user message may grow: its text is still a prefix."""
        if self.policy.user_messages is not UserMessages.MERGED or d != len(previous) - 1:
            return False
        a, b = previous[d], messages[d] if d < len(messages) else None
        return isinstance(a, UserMessage) and isinstance(b, UserMessage) and b.text.startswith(a.text)

    def _run(self, log: Sequence[Event], projector: Projector | None = None) -> list[Message] | Violation:
        try:
            return list((projector or self.projector)(tuple(log)))
        except ProjectorFailed as exc:
            return Violation("C12", str(exc), None, len(log))
        except Exception as exc:  # the projector under test is not ours to trust
            return Violation("C12", f"the projector raised {type(exc).__name__}: {exc}", None, len(log))

    def _check_point(self) -> tuple[list[Violation], list[Message] | None]:
        n = len(self.log)
        messages = self._run(self.log)
        if isinstance(messages, Violation):
            return [messages], None
        found = check_projection(self.log, messages, flags=self.flags, ledger=self.ledger, policy=self.policy)
        again = self._run(self.log)
        if isinstance(again, Violation):
            found.append(again)
        elif not same_messages(again, messages):
            d = first_difference(messages, again)
            found.append(Violation("C11", "projecting the same log twice gave different messages", d, n))
        if self.inc is not None:
            inc_messages = list(self.inc.messages())
            if not same_messages(inc_messages, messages):
                d = first_difference(messages, inc_messages)
                found.append(Violation("C11", "incremental projection differs from batch projection", d if d is not None else len(messages), n))
        return found, messages

    def finish(self) -> list[Violation]:
        """C11 at the last request: an idle resume before it changes nothing, and another process projects the same."""
        upto = self.log[: self.last_request]
        idle = _removable([line for line in self.ledger.idle_resumes if line <= self.last_request], upto)
        if not self.last_request or not (idle or self.elsewhere):
            return []
        # the last request's messages, when it was judged here (projecting it again gives them: C11 checked it)
        here = self.previous if self.previous is not None and self.judged == self.last_request else self._run(upto)
        if isinstance(here, Violation):
            return self.select.keep([here])
        if idle:
            without = self._run(delete_lines(upto, idle))
            if isinstance(without, Violation):
                return self.select.keep([without])
            if not same_messages(without, here):
                return self.select.keep([Violation("C11", "removing a resume at which nothing was in flight changes the projection", None, min(idle))])
        if self.elsewhere is not None:
            there = self._run(upto, self.elsewhere)
            if isinstance(there, Violation):
                return self.select.keep([replace(there, message=there.message + " (in another process)")])
            if not same_messages(here, there):
                d = first_difference(here, there)
                d = d if d is not None else len(here)
                a, b = _around_difference(_shown_at(here, d), _shown_at(there, d))
                message = f"projecting the same log in another process (another hash seed) gave different messages: {a!r} here, {b!r} there"
                return self.select.keep([Violation("C11", message, d, self.last_request)])
        return []


def _removable(idle: Sequence[int], log: Sequence[Event]) -> set[int]:
    """The idle resumes whose removal leaves a log the state machine accepts.

    A resume ends a running turn even with no call in flight; without it a
    later prompt would arrive during the turn, a log no runtime writes and
    no projector owes an answer (C12 covers only accepted logs).
    """

    def valid(drop: set[int]) -> bool:
        try:
            validate_log(delete_lines(log, drop))
        except InvalidLog:
            return False
        return True

    if not idle:
        return set()
    lines = [line for line in idle if valid({line})]
    return set(lines) if valid(set(lines)) else set(lines[:1])


def _shown_at(messages: Sequence[Message], i: int) -> str:
    return json.dumps(to_openai(messages[i]), ensure_ascii=False) if i < len(messages) else "nothing"


def _around_difference(a: str, b: str, width: int = 20) -> tuple[str, str]:
    """Both texts cut to ``width`` characters either side of where they first differ."""
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    cut = max(0, k - width)

    def around(t: str) -> str:
        return ("..." if cut else "") + t[cut : k + width] + ("..." if len(t) > k + width else "")

    return around(a), around(b)


def check_session(
    log: Sequence[Event],
    projector: Projector,
    *,
    incremental: Callable[[], Incremental] | None = None,
    flags: bool = True,
    policy: Policy = REFERENCE,
    select: Selection = EVERYTHING,
    elsewhere: Projector | None = None,
) -> list[Violation]:
    """Run ``projector`` at every request of ``log``; check every rule under ``policy``.

    Stops at the first request that fails: that is the one to report.
    ``elsewhere``: the same projector in another process (:class:`SessionChecker`).
    """
    checker = SessionChecker(projector, incremental=incremental, flags=flags, policy=policy, select=select, elsewhere=elsewhere)
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
