"""Claude Code transcripts (``~/.claude/projects/<encoded cwd>/<sessionId>.jsonl``).

Every line is an *entry*.  Entries form a tree through ``uuid`` and
``parentUuid``; the conversation the runtime resumes is the path from the
*leaf* (the last ``user``, ``assistant`` or ``compact_boundary`` entry of the
file) back to the root, continued past a ``compact_boundary`` through its
``logicalParentUuid``.  ``docs/formats/claude.md`` is the mapping in prose,
with what is verified and what is not.

Which entries are read (the *active conversation*):

* every entry on that path;
* the other lines of an API message that has a line on the path (one API
  message is written as several ``assistant`` lines sharing ``message.id``,
  one content block each);
* a ``user`` entry off the path that holds only ``tool_result`` blocks, for
  calls declared in the active conversation and not answered on the path,
  hanging (through skipped entries only) from an entry already read: a
  parallel call's result written as its own branch;
* a queued-command attachment or an extension record whose parent is read.

Everything else on other branches (an edited or retried message, a
sidechain) is skipped and counted.  The entries read are taken in *file*
order.

How entries become canonical events:

* ``user`` with text, not ``isMeta``: a prompt (``em.new_turn``: Claude Code
  writes no record when a turn ends).  ``[Request interrupted by user...]``
  is ``turn.cancel``.  ``isMeta`` text (injected by the runtime) is a
  ``notification``.  ``isCompactSummary`` text is the summary of a
  ``compaction`` covering every canonical line before the
  ``compact_boundary`` that precedes it.
* ``tool_result`` blocks are ``tool.result`` events, in block order; text
  blocks beside them are user input typed during the turn (``turn.steer``).
* ``assistant`` lines are merged by ``message.id`` into one reply: text
  blocks joined, ``tool_use`` blocks are calls (``args`` = the JSON text of
  ``input``), ``thinking`` skipped.  A reply begins a step.  The step ends
  (``step.end`` with the message's ``stop_reason``) when the next reply or
  prompt comes.  ``isApiErrorMessage`` entries are ``step.error``.
* ``attachment`` of type ``queued_command`` (text typed while the model
  works, delivered mid-turn) is ``turn.steer``.
* ``summary``, ``file-history-snapshot``, ``queue-operation``, ``progress``,
  other ``attachment`` kinds, ``custom-title``, ``system`` entries other than
  ``compact_boundary``, and unknown types are skipped and counted.

Canonical events Claude Code has no entry for are *extension records*,
``{"type": "ctxcontract", "uuid": ..., "parentUuid": ..., "event": {...}}``,
hanging off the conversation as a side branch so that a loader that drops
unknown entries keeps its chain whole.  A ``tool_use`` line whose argument
text ``json.dumps(input)`` would not give back carries it in the entry field
``ctxcontractArgs`` (outside ``message``: never sent to the model).  The
exporter writes one chain in file order and leaves out every glue event the
importer infers: it runs the importer's own reader on a copy to find out.

Memory: the tree is only known at the end of the file, so ``read`` indexes
every entry first (uuid, parent, line: about 200 bytes each) and keeps the
parsed content of ``user``/``assistant`` entries (their texts, call
arguments and outputs: about the size of the canonical log).  Skipped
entries (snapshots, progress, attachments: most of a real transcript) cost
only their index entry.  Events come out once the file is read.

Repair: the repair engine moves, inserts and drops whole lines, as if line
order were context order.  :func:`relink` makes that true for this format:
it re-chains the active conversation of the edited file in file order.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Final, Union

from ctxspec.errors import InvalidEvent
from ctxspec.events import (
    Assistant,
    Compaction,
    Event,
    Notification,
    SessionMeta,
    StepBegin,
    StepEnd,
    StepError,
    ToolCall,
    ToolResult,
    TurnCancel,
    TurnEnd,
    TurnPrompt,
    TurnSteer,
    event_to_dict,
)
from ctxspec.state import Phase

from .base import (
    JSON,
    Emitter,
    FieldError,
    ImportReport,
    Lenience,
    Record,
    Skipped,
    Sourced,
    dumps,
    ext_event,
    get_bool,
    get_obj,
    get_str,
    records_of_text,
)

EXTENSION: Final = "ctxcontract"
#: Entry field our exporter adds to a ``tool_use`` line whose argument text is
#: not what ``json.dumps(input)`` gives back (it is not sent to the model).
RAW_ARGS: Final = "ctxcontractArgs"
#: Message entries (the leaf is one of them, or a ``compact_boundary``).
_CONVERSATION: Final = frozenset({"user", "assistant"})
#: How Claude Code marks an interrupted turn (text of a user entry).
INTERRUPT: Final = "[Request interrupted by user"
_DEFAULT_BOUNDARY: Final = "Conversation compacted"
#: Entry types of the sniffed first line (with a field that only they carry).
_SNIFF: Final[dict[str, str]] = {
    "summary": "leafUuid",
    "file-history-snapshot": "messageId",
    "queue-operation": "operation",
    "user": "parentUuid",
    "assistant": "parentUuid",
    "system": "parentUuid",
    "attachment": "parentUuid",
    "progress": "parentUuid",
    EXTENSION: "parentUuid",
}


# ---------------------------------------------------------------------------
# Parsed entries: what the importer keeps of a record.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Result:
    call_id: str
    output: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class _User:
    """A ``user`` entry: texts and results in block order."""

    parts: tuple[Union[str, _Result], ...]
    meta: bool = False
    compact_summary: bool = False

    @property
    def results_only(self) -> bool:
        return bool(self.parts) and all(isinstance(p, _Result) for p in self.parts)


@dataclass(frozen=True, slots=True)
class _Reply:
    """One or more ``assistant`` lines of one API message."""

    message_id: str | None
    texts: tuple[str, ...]
    calls: tuple[ToolCall, ...]
    stop_reason: str | None
    api_error: bool = False


@dataclass(frozen=True, slots=True)
class _Steer:
    text: str


@dataclass(frozen=True, slots=True)
class _Boundary:
    content: str


@dataclass(frozen=True, slots=True)
class _Ext:
    event: Event


_Item = Union[_User, _Reply, _Steer, _Boundary, _Ext]


def _jtype(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _opt_str(obj: JSON, key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise FieldError(f"field {key!r}: expected a string or null, got {_jtype(value)}")


def _block_text(blocks: list[object], where: str, report: ImportReport) -> str:
    """The text blocks of a block list joined by newlines (other blocks are counted)."""
    texts: list[str] = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise FieldError(f"{where}[{i}]: expected an object, got {_jtype(block)}")
        kind = _block_type(block, f"{where}[{i}]")
        if kind == "text":
            texts.append(_field_str(block, "text", f"{where}[{i}]"))
        else:
            report.skip(f"{kind} block")
    return "\n".join(texts)


def _block_type(block: JSON, where: str) -> str:
    return _field_str(block, "type", where)


def _field_str(obj: JSON, key: str, where: str) -> str:
    try:
        return get_str(obj, key)
    except FieldError as exc:
        raise FieldError(f"{where}: {exc}") from None


def _args(value: object) -> str:
    """A call's arguments as text: the JSON of ``input``."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, RecursionError):  # pragma: no cover - json.loads gave it to us
        raise FieldError("tool_use.input cannot be written back as JSON") from None


def _user(obj: JSON, report: ImportReport) -> _User:
    message = get_obj(obj, "message")
    content = message.get("content")
    parts: list[Union[str, _Result]] = []
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        for i, block in enumerate(content):
            where = f"message.content[{i}]"
            if not isinstance(block, dict):
                raise FieldError(f"{where}: expected an object, got {_jtype(block)}")
            kind = _block_type(block, where)
            if kind == "text":
                parts.append(_field_str(block, "text", where))
            elif kind == "tool_result":
                parts.append(_tool_result(block, where, report))
            else:
                report.skip(f"{kind} block")
    else:
        raise FieldError(f"field 'message.content': expected a string or an array, got {_jtype(content)}")
    return _User(tuple(parts), meta=get_bool(obj, "isMeta"), compact_summary=get_bool(obj, "isCompactSummary"))


def _tool_result(block: JSON, where: str, report: ImportReport) -> _Result:
    call_id = _field_str(block, "tool_use_id", where)
    if not call_id:
        raise FieldError(f"{where}: tool_use_id must not be empty")
    content = block.get("content")
    if content is None:
        output = ""
    elif isinstance(content, str):
        output = content
    elif isinstance(content, list):
        output = _block_text(content, f"{where}.content", report)
    else:
        raise FieldError(f"{where}.content: expected a string or an array, got {_jtype(content)}")
    try:
        is_error = get_bool(block, "is_error")
    except FieldError as exc:
        raise FieldError(f"{where}: {exc}") from None
    return _Result(call_id, output, is_error)


def _assistant(obj: JSON, report: ImportReport) -> _Reply:
    message = get_obj(obj, "message")
    content = message.get("content")
    texts: list[str] = []
    calls: list[ToolCall] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for i, block in enumerate(content):
            where = f"message.content[{i}]"
            if not isinstance(block, dict):
                raise FieldError(f"{where}: expected an object, got {_jtype(block)}")
            kind = _block_type(block, where)
            if kind == "text":
                texts.append(_field_str(block, "text", where))
            elif kind == "tool_use":
                call_id = _field_str(block, "id", where)
                name = _field_str(block, "name", where)
                if not call_id or not name:
                    raise FieldError(f"{where}: tool_use id and name must not be empty")
                calls.append(ToolCall(id=call_id, name=name, args=_args(block.get("input", {}))))
            elif kind in ("thinking", "redacted_thinking"):
                report.skip("thinking block")
            else:
                report.skip(f"assistant {kind} block")
    else:
        raise FieldError(f"field 'message.content': expected a string or an array, got {_jtype(content)}")
    raw = obj.get(RAW_ARGS)
    if isinstance(raw, str) and len(calls) == 1:  # our exporter: the argument text as it was
        calls[0] = ToolCall(id=calls[0].id, name=calls[0].name, args=raw)
    return _Reply(
        message_id=_opt_str(message, "id"),
        texts=tuple(texts),
        calls=tuple(calls),
        stop_reason=_opt_str(message, "stop_reason"),
        api_error=get_bool(obj, "isApiErrorMessage"),
    )


def _steer(obj: JSON) -> _Steer | None:
    """A queued command typed while the model works, or None for other attachments."""
    att = obj.get("attachment")
    if not isinstance(att, dict) or att.get("type") != "queued_command" or att.get("commandMode") not in (None, "prompt"):
        return None
    prompt = att.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(b["text"] for b in prompt if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str))
    return _Steer(prompt) if isinstance(prompt, str) and prompt else None


def parse_entry(obj: JSON, report: ImportReport) -> _Item | None:
    """The model context an entry holds, or None (the entry is then counted as skipped)."""
    kind = obj.get("type")
    if kind == "user":
        return _user(obj, report)
    if kind == "assistant":
        return _assistant(obj, report)
    if kind == "system" and obj.get("subtype") == "compact_boundary":
        content = obj.get("content")
        return _Boundary(content if isinstance(content, str) and content else _DEFAULT_BOUNDARY)
    if kind == "attachment":
        return _steer(obj)
    if kind == EXTENSION:
        return _Ext(ext_event(obj.get("event")))
    return None


def _skip_kind(obj: JSON) -> str:
    kind = str(obj.get("type"))
    if kind == "system":
        return f"system {obj.get('subtype')}"
    if kind == "attachment":
        att = obj.get("attachment")
        sub = att.get("type") if isinstance(att, dict) else None
        return f"attachment {sub}" if isinstance(sub, str) else "attachment"
    return kind


def merge_replies(parts: Sequence[_Reply]) -> _Reply:
    """The lines of one API message as one reply (file order)."""
    stop = next((p.stop_reason for p in reversed(parts) if p.stop_reason is not None), None)
    return _Reply(
        message_id=parts[0].message_id,
        texts=tuple(t for p in parts for t in p.texts),
        calls=tuple(c for p in parts for c in p.calls),
        stop_reason=stop,
        api_error=parts[0].api_error,
    )


# ---------------------------------------------------------------------------
# The tree: index every entry, then find the active conversation.
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    line: int
    parent: str | None
    leafable: bool  # user, assistant or compact_boundary
    sidechain: bool
    item: _Item | None


@dataclass(slots=True)
class _Tree:
    nodes: dict[str, _Node] = field(default_factory=dict)
    #: Entries that carry model context, by line (a uuid-less queued command too).
    items: dict[int, tuple[str | None, _Node]] = field(default_factory=dict)

    def add(self, rec: Record, report: ImportReport) -> None:
        obj = rec.obj
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise FieldError("missing field 'type'" if kind is None else f"field 'type': expected a string, got {_jtype(kind)}")
        uuid = _opt_str(obj, "uuid")
        parent = _opt_str(obj, "parentUuid")
        boundary = kind == "system" and obj.get("subtype") == "compact_boundary"
        if boundary and parent is None:
            parent = _opt_str(obj, "logicalParentUuid")
        if uuid is not None and uuid in self.nodes:
            report.notes.append(Skipped(rec.line, f"uuid {uuid} already used at line {self.nodes[uuid].line}; this copy is skipped"))
            report.skip("duplicate entry")
            return
        leafable = kind in _CONVERSATION or boundary
        node = _Node(rec.line, parent, leafable, obj.get("isSidechain") is True, None)
        if uuid is not None:
            self.nodes[uuid] = node  # before parsing: a bad entry still links its children
        item = parse_entry(obj, report)
        if item is None:
            report.skip(_skip_kind(obj))
            return
        node.item = item
        self.items[rec.line] = (uuid, node)

    # -- the active conversation ------------------------------------------------

    def leaf(self) -> str | None:
        main = [u for u, n in self.nodes.items() if n.leafable and not n.sidechain]
        pool = main or [u for u, n in self.nodes.items() if n.leafable]
        return max(pool, key=lambda u: self.nodes[u].line) if pool else None

    def select(self, report: ImportReport | None = None) -> tuple[list[int], dict[int, list[int]], set[str]]:
        """The lines to read in file order, reply groups (first line -> all lines), chosen uuids."""
        chosen: set[str] = set()
        u = self.leaf()
        while u is not None and u not in chosen:
            node = self.nodes.get(u)
            if node is None:
                if report is not None:
                    report.notes.append(Skipped(self._child_line(u), f"parent {u} is not in the file; the conversation starts here"))
                break
            chosen.add(u)
            u = node.parent
        lines = {self.nodes[u].line for u in chosen if self.nodes[u].item is not None}
        # The other lines of API messages on the path.
        msg_ids = {n.item.message_id for u in chosen if isinstance((n := self.nodes[u]).item, _Reply) and not n.item.api_error}
        msg_ids.discard(None)
        for line, (uuid, node) in self.items.items():
            if isinstance(node.item, _Reply) and not node.item.api_error and node.item.message_id in msg_ids and line not in lines:
                lines.add(line)
                if uuid is not None:
                    chosen.add(uuid)
        declared = {c.id for line in lines if isinstance(r := self.items[line][1].item, _Reply) for c in r.calls}
        answered = {
            p.call_id
            for u in chosen
            if isinstance(usr := self.nodes[u].item, _User)
            for p in usr.parts
            if isinstance(p, _Result)
        }
        for line in sorted(self.items):
            if line in lines:
                continue
            uuid, node = self.items[line]
            item = node.item
            take = False
            if isinstance(item, _User) and item.results_only:
                ids = {p.call_id for p in item.parts if isinstance(p, _Result)}
                take = ids <= declared and not ids & answered and self._hangs_from(node.parent, chosen)
            elif isinstance(item, (_Ext, _Steer)):
                take = uuid is None or node.parent is None or node.parent in chosen
            if take:
                lines.add(line)
                if uuid is not None:
                    chosen.add(uuid)
            elif report is not None:
                report.skip("sidechain entry" if node.sidechain else "entry off the active branch")
        ordered = sorted(lines)
        groups: dict[int, list[int]] = {}
        first_of: dict[str, int] = {}
        for line in ordered:
            item = self.items[line][1].item
            if isinstance(item, _Reply) and not item.api_error and item.message_id is not None:
                head = first_of.setdefault(item.message_id, line)
                groups.setdefault(head, []).append(line)
        return ordered, groups, chosen

    def _hangs_from(self, parent: str | None, chosen: set[str]) -> bool:
        """Whether ``parent`` is chosen, or leads to a chosen entry through skipped entries only."""
        seen: set[str] = set()
        while parent is not None and parent not in seen:
            if parent in chosen:
                return True
            seen.add(parent)
            node = self.nodes.get(parent)
            if node is None or node.item is not None:
                return False
            parent = node.parent
        return False

    def _child_line(self, uuid: str) -> int:
        return min((n.line for n in self.nodes.values() if n.parent == uuid), default=0)


# ---------------------------------------------------------------------------
# Reading: the chosen entries, in file order, through the emitter.
# ---------------------------------------------------------------------------


def _default_finish(calls: Sequence[ToolCall]) -> str:
    return "tool_use" if calls else "end_turn"


class _Reader:
    """Turns parsed entries into canonical events (also the exporter's model of the importer)."""

    def __init__(self, report: ImportReport) -> None:
        self.em = Emitter()
        self.report = report
        self.finish = "end_turn"  # stop_reason of the running step's reply
        self.boundary: tuple[int, tuple[int, ...], str] | None = None  # upto, lines, content

    def copy(self) -> _Reader:
        other = copy.copy(self)
        other.em = copy.copy(self.em)
        other.em.drain()  # its own output list
        return other

    def _end_step(self, lines: Sequence[int]) -> None:
        if self.em.phase is Phase.REPLIED:
            self.em.end_step(lines, self.finish)

    def _flush_boundary(self) -> None:
        if self.boundary is not None:
            upto, lines, content = self.boundary
            self.boundary = None
            self.em.compaction(content, upto, lines)

    def feed(self, item: _Item, lines: tuple[int, ...], call_lines: tuple[int, ...] = ()) -> None:
        """``call_lines``: the line of each call's ``tool_use`` entry, for a reply merged from several lines."""
        try:
            self._feed(item, lines, call_lines)
        except InvalidEvent as exc:  # pragma: no cover - parsing rules out invalid events
            raise FieldError(str(exc)) from None

    def _feed(self, item: _Item, lines: tuple[int, ...], call_lines: tuple[int, ...] = ()) -> None:
        em = self.em
        if not (isinstance(item, _User) and item.compact_summary):
            self._flush_boundary()
        if isinstance(item, _Boundary):
            self.boundary = (em.count, lines, item.content)
        elif isinstance(item, _Ext):
            em.emit(item.event, lines, native=False)
            if isinstance(item.event, Assistant):
                self.finish = _default_finish(item.event.calls)
        elif isinstance(item, _Steer):
            em.user(item.text, lines)
        elif isinstance(item, _Reply):
            text = "\n".join(item.texts)
            self._end_step(lines)
            if item.api_error:
                if em.phase is not Phase.STEP:
                    em.begin_step(lines)
                em.emit(StepError(message=text), lines)
            else:
                em.reply(text, item.calls, lines, call_lines=call_lines)
                self.finish = item.stop_reason or _default_finish(item.calls)
        elif item.compact_summary:
            text = "\n".join(p for p in item.parts if isinstance(p, str))
            if self.boundary is not None:
                upto, blines, content = self.boundary
                self.boundary = None
                em.compaction(text or content, upto, blines + lines)
            else:
                em.compaction(text or _DEFAULT_BOUNDARY, em.count, lines)
        elif not any(isinstance(p, _Result) for p in item.parts):
            self._user_text("\n".join(p for p in item.parts if isinstance(p, str)), item.meta, lines)
        else:
            pending: list[str] = []
            for part in item.parts + (_Result("", "", False),):  # a sentinel flushes trailing text
                if isinstance(part, str):
                    pending.append(part)
                    continue
                if pending:
                    self._steer_text("\n".join(pending), lines)
                    pending = []
                if part.call_id:
                    em.result(part.call_id, part.output, lines, is_error=part.is_error)

    def _user_text(self, text: str, meta: bool, lines: tuple[int, ...]) -> None:
        if not text:
            self.report.skip("empty user message")
        elif meta:
            self.em.user(text, lines, notification=True)
        elif text.startswith(INTERRUPT):
            self._cancel(lines)
        else:
            self._end_step(lines)
            self.em.new_turn(text, lines)

    def _steer_text(self, text: str, lines: tuple[int, ...]) -> None:
        if not text:
            self.report.skip("empty user message")
        elif text.startswith(INTERRUPT):
            self._cancel(lines)
        else:
            self.em.user(text, lines)

    def _cancel(self, lines: tuple[int, ...]) -> None:
        if self.em.phase is Phase.IDLE:
            self.report.skip("interruption outside a turn")
        else:
            self.em.cancel(lines)

    def close(self) -> None:
        self._flush_boundary()
        if not self.em.started:
            self.em.meta(SessionMeta(), ())


# ---------------------------------------------------------------------------
# Export.
# ---------------------------------------------------------------------------

SESSION_ID: Final = "00000000-0000-4000-8000-000000000000"
_T0: Final = datetime(2025, 1, 1, tzinfo=timezone.utc)
_COMMON: Final[JSON] = {"userType": "external", "cwd": "/project", "sessionId": SESSION_ID, "version": "2.0.35", "gitBranch": "main"}
_USAGE: Final[JSON] = {"input_tokens": 0, "output_tokens": 0}
_GLUE: Final = (StepBegin, StepEnd, TurnEnd)


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012x}"


def _stamp(n: int) -> str:
    return (_T0 + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _user_record(content: object, **extra: object) -> JSON:
    return {"type": "user", "message": {"role": "user", "content": content}, **extra}


class _Writer:
    """Writes a canonical log, choosing native entries wherever the importer reads them back exactly."""

    def __init__(self) -> None:
        self.sim = _Reader(ImportReport())
        self.out: list[JSON] = []  # entries without uuid, parent, timestamp
        self.src: list[int] = []  # the canonical line of each entry
        self.running: set[str] = set()  # calls the canonical log has open (for the interrupt wording)
        self.replies = 0

    def run(self, log: Sequence[Event], *, final: bool = True) -> list[tuple[int, str]]:
        """The lines, each with its canonical line; ``final=False`` holds trailing glue and the title."""
        events = list(log)
        first = 1
        if events and isinstance(events[0], SessionMeta):
            meta = events.pop(0)
            first = 2
            if meta != SessionMeta():
                self._ext([meta], [1])
            else:  # the importer supplies it: start the model of the importer the same way
                self.sim.em.meta(meta, ())
                self.sim.em.drain()
        pending: list[Event] = []
        at: list[int] = []
        for i, event in enumerate(events):
            if isinstance(event, _GLUE):
                pending.append(event)
                at.append(i + first)
            else:
                self._place(pending, at, event, i + first, self._native(event, events, i))
                pending, at = [], []
            self._track(event)
        if final:
            self._ext(pending, at)
        return self._lines(title=final)

    def _place(self, pending: list[Event], at: list[int], event: Event, line: int, native: list[JSON] | None) -> None:
        if native is not None:
            items = _items_of(native)
            for k in range(len(pending) + 1):
                trial = self.sim.copy()
                try:
                    for e in pending[:k]:
                        trial.feed(_Ext(e), (0,))
                    trial.em.drain()
                    for item in items:
                        trial.feed(item, (0,))
                except FieldError:
                    continue
                if [s.event for s in trial.em.drain()] == pending[k:] + [event]:
                    self.out.extend({"type": EXTENSION, "event": event_to_dict(e)} for e in pending[:k])
                    self.src.extend(at[:k])
                    self.out.extend(native)
                    self.src.extend(line for _ in native)
                    self.sim = trial
                    return
        self._ext(pending + [event], at + [line])

    def _ext(self, events: Sequence[Event], at: Sequence[int]) -> None:
        for event, line in zip(events, at):
            self.sim.feed(_Ext(event), (0,))
            self.sim.em.drain()
            self.out.append({"type": EXTENSION, "event": event_to_dict(event)})
            self.src.append(line)

    def _track(self, event: Event) -> None:
        if isinstance(event, Assistant):
            self.running = {c.id for c in event.calls}
        elif isinstance(event, ToolResult):
            self.running.discard(event.call_id)
        elif not isinstance(event, (StepEnd, TurnSteer, Notification, Compaction)):
            self.running = set()

    def _native(self, event: Event, events: Sequence[Event], i: int) -> list[JSON] | None:
        if isinstance(event, TurnPrompt):
            return [_user_record(event.text)]
        if isinstance(event, TurnSteer):
            return [{"type": "attachment", "attachment": {"type": "queued_command", "prompt": event.text, "commandMode": "prompt"}}]
        if isinstance(event, Notification):
            return [_user_record(event.text, isMeta=True)]
        if isinstance(event, TurnCancel):
            text = INTERRUPT + (" for tool use]" if self.running else "]")
            return [_user_record([{"type": "text", "text": text}])]
        if isinstance(event, ToolResult):
            block: JSON = {"type": "tool_result", "tool_use_id": event.call_id, "content": event.output}
            if event.is_error:
                block["is_error"] = True
            return [_user_record([block])]
        if isinstance(event, Compaction):
            boundary: JSON = {
                "type": "system",
                "subtype": "compact_boundary",
                "content": _DEFAULT_BOUNDARY,
                "isMeta": False,
                "level": "info",
                "compactMetadata": {"trigger": "auto", "preTokens": 0},
            }
            return [boundary, _user_record(event.summary, isCompactSummary=True, isVisibleInTranscriptOnly=True)]
        if isinstance(event, Assistant) and event.complete:
            return self._reply(event, _finish_after(events, i))
        if isinstance(event, StepError) and not event.retryable:
            self.replies += 1
            return [
                {
                    "type": "assistant",
                    "message": _message(f"msg_ctxerr{self.replies:06d}", "<synthetic>", [{"type": "text", "text": event.message}], "stop_sequence"),
                    "isApiErrorMessage": True,
                }
            ]
        return None  # resume, undo, clear, a cut reply, a retryable error: extension records

    def _reply(self, event: Assistant, stop: str) -> list[JSON]:
        """One line per content block, sharing ``message.id``, as Claude Code streams them."""
        self.replies += 1
        msg_id = f"msg_ctx{self.replies:06d}"
        lines: list[tuple[list[JSON], str | None]] = [([{"type": "text", "text": event.text}], None)] if event.text else []
        for call in event.calls:
            try:
                value = json.loads(call.args)
            except (ValueError, RecursionError):
                value = None
            if not isinstance(value, dict):
                value = {}
            raw = None if _args(value) == call.args else call.args
            lines.append(([{"type": "tool_use", "id": call.id, "name": call.name, "input": value}], raw))
        out: list[JSON] = []
        for content, raw in lines or [([], None)]:
            entry: JSON = {"type": "assistant", "message": _message(msg_id, "ctxcontract-export", content, stop), "requestId": f"req_ctx{self.replies:06d}"}
            if raw is not None:
                entry[RAW_ARGS] = raw
            out.append(entry)
        return out

    def _lines(self, *, title: bool = True) -> list[tuple[int, str]]:
        """Uuids, parents and times by line: one chain, extension records as side leaves.

        The title names the last entry, so a file still being written has none yet.
        """
        lines: list[JSON] = []
        prev: str | None = None
        for n, entry in enumerate(self.out, start=2):  # line 1 is the title
            uuid = _uuid(n)
            record: JSON = {"parentUuid": None if entry.get("subtype") == "compact_boundary" else prev, "isSidechain": False}
            if entry["type"] != EXTENSION:
                record.update(_COMMON)
            record.update(entry)
            if entry.get("subtype") == "compact_boundary":
                record["logicalParentUuid"] = prev
            record["uuid"] = uuid
            record["timestamp"] = _stamp(n)
            if entry["type"] != EXTENSION:
                prev = uuid
            lines.append(record)
        head: JSON = {"type": "summary", "summary": "ctxcontract export", "leafUuid": prev}
        return ([(1, dumps(head))] if title else []) + [(at, dumps(r)) for at, r in zip(self.src, lines)]


def _message(msg_id: str, model: str, content: list[JSON], stop: str) -> JSON:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": dict(_USAGE),
    }


def _finish_after(events: Sequence[Event], i: int) -> str:
    """The finish reason of the step the reply at ``i`` is in, if it ends with a step.end."""
    reply = events[i]
    assert isinstance(reply, Assistant)
    for event in events[i + 1 :]:
        if isinstance(event, StepEnd):
            return event.finish_reason
        if not isinstance(event, (ToolResult, TurnSteer, Notification, Compaction)):
            break
    return _default_finish(reply.calls)


def _items_of(entries: Sequence[JSON]) -> list[_Item]:
    """What the importer makes of freshly written entries (one API message merged)."""
    report = ImportReport()
    items: list[_Item] = []
    replies: list[_Reply] = []
    for entry in entries:
        item = parse_entry(entry, report)
        if isinstance(item, _Reply) and not item.api_error:
            replies.append(item)
        elif item is not None:
            items.append(item)
    if replies:
        items.insert(0, merge_replies(replies))
    return items


# ---------------------------------------------------------------------------
# The format.
# ---------------------------------------------------------------------------


def _index(records: Iterable[Record], report: ImportReport, lax: Lenience) -> _Tree:
    tree = _Tree()
    for rec in records:
        try:
            tree.add(rec, report)
        except FieldError as exc:
            lax.bad(rec.line, str(exc))
    return tree


class ClaudeFormat:
    name: str = "claude"
    title: str = "Claude Code transcript"
    id_keys: frozenset[str] = frozenset({"id", "tool_use_id", "sourceToolUseID", "call_id"})
    #: A native compaction (``compact_boundary`` + summary) covers everything
    #: before it in the file: moving its lines moves the cut (for the repair engine).
    compaction_covers_before: bool = True

    def sniff(self, first: Record) -> bool:
        key = _SNIFF.get(str(first.obj.get("type")))
        return key is not None and key in first.obj

    def read(self, records: Iterable[Record], report: ImportReport, lax: Lenience) -> Iterator[Sourced]:
        tree = _index(records, report, lax)
        ordered, groups, _ = tree.select(report)
        reader = _Reader(report)
        for line in ordered:
            node = tree.items[line][1]
            item = node.item
            assert item is not None
            lines: tuple[int, ...] = (line,)
            call_lines: tuple[int, ...] = ()
            if isinstance(item, _Reply) and not item.api_error and item.message_id is not None:
                if line not in groups:
                    continue  # a later line of a message already read
                lines = tuple(groups[line])
                parts = [(n, r) for n in lines if isinstance(r := tree.items[n][1].item, _Reply)]
                item = merge_replies([r for _n, r in parts])
                call_lines = tuple(n for n, r in parts for _c in r.calls)
            try:
                reader.feed(item, lines, call_lines)
            except FieldError as exc:
                lax.bad(line, str(exc))
            yield from reader.em.drain()
        try:
            reader.close()
        except FieldError as exc:  # pragma: no cover - a pending compaction is always valid
            lax.bad(report.lines, str(exc))
        yield from reader.em.drain()

    def export(self, log: Sequence[Event]) -> Iterator[str]:
        return (text for _line, text in _Writer().run(log))

    def export_sourced(self, log: Sequence[Event], *, final: bool = True) -> Iterator[tuple[int, str]]:
        return iter(_Writer().run(log, final=final))

    def result_record(self, event: ToolResult, name: str, near: Record | None) -> str:
        """A ``user`` entry holding one ``tool_result``, hanging from the call's line.

        Its uuid is derived from the call's entry and the call id, so the same
        repair gives the same file.  :func:`relink` puts it on the chain.
        """
        base: JSON = near.obj if near is not None else {}
        parent = base.get("uuid") if isinstance(base.get("uuid"), str) else None
        block: JSON = {"type": "tool_result", "tool_use_id": event.call_id, "content": event.output}
        if event.is_error:
            block["is_error"] = True
        record: JSON = {"parentUuid": parent, "isSidechain": base.get("isSidechain", False) is True}
        for key in ("userType", "cwd", "sessionId", "version", "gitBranch"):
            if key in base:
                record[key] = base[key]
        record.update(_user_record([block]))
        record["uuid"] = _derived_uuid(f"{parent}/{event.call_id}/{event.output}")
        if isinstance(base.get("timestamp"), str):
            record["timestamp"] = base["timestamp"]
        if parent is not None:
            record["sourceToolAssistantUUID"] = parent
        return dumps(record)

    def relink(self, original: str, lines: Sequence[str]) -> list[str]:
        return relink(original, lines)


def _derived_uuid(seed: str) -> str:
    import hashlib

    h = hashlib.sha256(seed.encode("utf-8")).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def relink(original: str, lines: Sequence[str]) -> list[str]:
    """Re-chain the active conversation of an edited transcript in file order.

    ``original`` is the file before the edit; ``lines`` are the edited file's
    lines (each with its newline), where whole lines were moved, inserted or
    dropped as if line order were context order.  The conversation of the
    edited file is every entry of ``original``'s active conversation that is
    still there, plus every entry ``original`` does not have (inserted).
    Each of them gets as parent the conversation entry before it in the new
    file: ``parentUuid``, or for a ``compact_boundary`` (which keeps
    ``parentUuid: null``) ``logicalParentUuid``; an extension record hangs
    from it as a side leaf.  Other entries (other branches, skipped kinds,
    unreadable lines) are left as they are.

    The result has the same lines in the same order; a line changes only
    when its links do.  On a file whose conversation already is one chain
    in file order, nothing changes, so relinking twice is relinking once.
    Assumed: the edit keeps at least one entry of the active branch after
    any other branch's entries (true unless the edit drops the whole branch
    that was active), so the last entry is still the leaf.
    """
    report = ImportReport()
    tree = _index(records_of_text(original, report, lenient=True), report, Lenience(report, True))
    _, _, chosen = tree.select()
    known: set[str] = set()
    for raw in original.split("\n"):
        obj = _loads(raw)
        if obj is not None and isinstance(obj.get("uuid"), str):
            known.add(str(obj["uuid"]))
    result: list[str] = []
    prev: str | None = None
    for raw in lines:
        obj = _loads(raw)
        uuid = obj.get("uuid") if obj is not None else None
        if obj is None or not isinstance(uuid, str) or (uuid in known and uuid not in chosen):
            result.append(raw)
            continue
        new = dict(obj)
        if obj.get("type") == EXTENSION:
            new["parentUuid"] = prev
        elif obj.get("type") == "system" and obj.get("subtype") == "compact_boundary":
            new["parentUuid"] = None
            new["logicalParentUuid"] = prev
            prev = uuid
        else:
            new["parentUuid"] = prev
            prev = uuid
        if new != obj:
            ending = raw[len(raw.rstrip("\r\n")) :]
            raw = dumps(new) + ending
        result.append(raw)
    return result


def _loads(raw: str) -> JSON | None:
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


CLAUDE: Final[ClaudeFormat] = ClaudeFormat()
