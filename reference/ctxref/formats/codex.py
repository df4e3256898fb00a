"""Codex CLI rollout files (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``).

Every line is ``{"timestamp": ..., "type": <kind>, "payload": {...}}``.  The
kinds read here are ``session_meta``, ``response_item`` (the items Codex sends
to the model: messages, reasoning, calls and their outputs), ``compacted``,
``turn_context`` and ``event_msg``.  ``docs/formats/codex.md`` is the mapping
in prose, with what is verified and what is not.

How the records become canonical events:

* ``session_meta`` is ``session.meta``; its system prompt is
  ``base_instructions.text`` or else ``instructions``.  A repeated
  ``session_meta`` is skipped.
* A user ``message`` starts a turn (``em.new_turn``): Codex writes no record
  when a turn ends, so the next prompt ends the running one.  A user message
  the runtime injects (environment context, AGENTS.md, a user shell command,
  a turn-aborted marker, ...) is a ``notification``.  Developer and system
  messages are skipped: the canonical log has one system prompt.
* Consecutive assistant-side items (``reasoning``, assistant ``message``,
  ``function_call``, ``custom_tool_call``, ``local_shell_call``,
  ``web_search_call``) are one reply: one ``assistant`` event listing every
  line.  It is known complete only when a record that is not assistant-side
  arrives, so it is buffered until then (or the end of the file).
  ``event_msg`` and unknown records are transparent: skipped, and they
  neither join nor end a reply.
* ``function_call_output`` and ``custom_tool_call_output`` are ``tool.result``.
* ``compacted`` is a ``compaction`` covering everything before it: Codex
  replaces the whole history.  Its summary is the text of the replacement
  history when there is one, else ``message``.
* ``event_msg`` ``turn_aborted`` is ``turn.cancel``; ``thread_rolled_back`` is
  ``undo``.  Other event messages and ``turn_context`` are skipped.

Canonical events Codex has no record for are written as *extension records*,
``{"timestamp": ..., "type": "ctxcontract", "payload": <canonical event>}``.
Codex's loader skips a line that is not one of its own kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Final

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
    Undo,
    event_to_dict,
)
from ctxspec.state import Phase, Refusal, next_phase

from .base import (
    JSON,
    Emitter,
    FieldError,
    ImportReport,
    Lenience,
    Record,
    Sourced,
    dumps,
    ext_event,
    get_bool,
    get_int,
    get_list,
    get_obj,
    get_str,
)

#: The ``type`` of an extension record.
EXTENSION: Final = "ctxcontract"
#: Codex's own line kinds (``RolloutItem``).
KINDS: Final = frozenset({"session_meta", "response_item", "compacted", "turn_context", "event_msg"})

#: Openings of the user-role messages Codex injects itself (lower case, after
#: leading white space).  Such a message is a notification, not a prompt.
INJECTED_OPENINGS: Final = (
    "<environment_context>",
    "<user_instructions>",
    "# agents.md instructions for ",
    "<skill>",
    "<user_shell_command>",
    "<turn_aborted>",
    "<subagent_notification>",
    "<subagents>",
)

#: The summary of a compaction whose record holds no readable text (a remote
#: compaction keeps its summary encrypted).
NO_SUMMARY: Final = "(compacted: the rollout holds no readable summary)"

#: Where exported timestamps start; each line adds one millisecond.
EXPORT_EPOCH: Final = datetime(2025, 1, 1, tzinfo=timezone.utc)
EXPORT_SESSION_ID: Final = "00000000-0000-4000-8000-000000000000"

_CALL_ITEMS: Final = frozenset({"function_call", "custom_tool_call", "local_shell_call"})
_OUTPUT_ITEMS: Final = frozenset({"function_call_output", "custom_tool_call_output"})
#: Model output that is not context for us: part of a reply, content skipped.
_SILENT_OUTPUT: Final = frozenset({"reasoning", "web_search_call"})
_GLUE: Final = (StepBegin, StepEnd, StepError, TurnEnd)


def is_injected(text: str) -> bool:
    """Whether a user message's text is context Codex injects, not the user's words."""
    head = text.lstrip()[:40].lower()
    return head.startswith(INJECTED_OPENINGS)


def _label(*parts: str) -> str:
    """A skip count's key; names taken from the file are cut short (hostile input)."""
    return ".".join(p if len(p) <= 40 else p[:40] + "..." for p in parts)


def timestamp(n: int) -> str:
    """The exporter's timestamp for line index ``n`` (UTC, milliseconds, ``Z``)."""
    moment = EXPORT_EPOCH + timedelta(milliseconds=n)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------
# Reading payload fields.
# ---------------------------------------------------------------------------


def _parts_text(parts: list[object], *, images: bool) -> str:
    """The text of a content array: non-empty text parts joined by newlines."""
    pieces: list[str] = []
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            raise FieldError(f"content[{i}]: expected an object")
        kind = get_str(part, "type")
        if kind in ("input_text", "output_text", "text"):
            text = get_str(part, "text")
            if text:
                pieces.append(text)
        elif kind == "input_image" and images:
            pieces.append("[image]")
    return "\n".join(pieces)


def _system(payload: JSON) -> str:
    base = payload.get("base_instructions")
    if isinstance(base, dict):
        return get_str(base, "text")
    if isinstance(base, str):
        return base
    if base is not None:
        raise FieldError("field 'base_instructions': expected an object or a string")
    old = payload.get("instructions")
    if old is None:
        return ""
    if not isinstance(old, str):
        raise FieldError("field 'instructions': expected a string")
    return old


def _call(item: JSON) -> ToolCall:
    kind = get_str(item, "type")
    if kind == "function_call":
        return ToolCall(id=get_str(item, "call_id"), name=get_str(item, "name"), args=get_str(item, "arguments"))
    if kind == "custom_tool_call":
        return ToolCall(id=get_str(item, "call_id"), name=get_str(item, "name"), args=get_str(item, "input"))
    call_id = item.get("call_id") if item.get("call_id") is not None else item.get("id")
    if not isinstance(call_id, str):
        raise FieldError("local_shell_call: missing field 'call_id'")
    return ToolCall(id=call_id, name="local_shell", args=dumps(get_obj(item, "action")))


def _output(item: JSON) -> tuple[str, bool]:
    """A call output's text and whether it failed.

    ``output`` is a string, an array of content items, or the older
    ``{content, success}`` object.  ``success: false`` next to ``output`` is
    how this module writes a failure (Codex itself persists none).
    """
    out = item.get("output")
    failed = not get_bool(item, "success", True)
    if isinstance(out, str):
        return out, failed
    if isinstance(out, list):
        return _parts_text(out, images=True), failed
    if isinstance(out, dict):
        content = out.get("content")
        if isinstance(content, list):
            text = _parts_text(content, images=True)
        else:
            text = get_str(out, "content")
        return text, failed or not get_bool(out, "success", True)
    raise FieldError("field 'output': expected a string, an array or an object")


def _summary(payload: JSON, report: ImportReport) -> str:
    """A ``compacted`` record's summary: its replacement history as text."""
    raw = payload.get("message")
    if raw is not None and not isinstance(raw, str):
        raise FieldError("field 'message': expected a string")
    message = raw or ""
    history = payload.get("replacement_history")
    if history is None:
        return message or NO_SUMMARY
    if not isinstance(history, list):
        raise FieldError("field 'replacement_history': expected an array")
    parts: list[str] = []
    found = False
    for i, item in enumerate(history):
        if not isinstance(item, dict):
            raise FieldError(f"replacement_history[{i}]: expected an object")
        kind = get_str(item, "type")
        if kind == "message":
            role = get_str(item, "role")
            text = _parts_text(get_list(item, "content"), images=role == "user")
            if role == "user":
                found = found or text == message
                parts.append(text)
            elif role == "assistant":
                parts.append(f"[assistant] {text}")
            else:
                report.skip(_label("compacted.replacement_history.message", role))
        elif kind in _CALL_ITEMS:
            call = _call(item)
            parts.append(f"[call {call.name} {call.id}] {call.args}")
        elif kind in _OUTPUT_ITEMS:
            parts.append(f"[output {get_str(item, 'call_id')}] {_output(item)[0]}")
        else:
            report.skip(_label("compacted.replacement_history", kind))
    if message and not found:
        parts.insert(0, message)
    return "\n\n".join(p for p in parts if p) or NO_SUMMARY


# ---------------------------------------------------------------------------
# The verbs shared by the importer and the exporter's prediction of it.
# ---------------------------------------------------------------------------


def _finish(had_calls: bool) -> str:
    return "tool_calls" if had_calls else "stop"


def _prompt(em: Emitter, had_calls: bool, text: str, lines: Sequence[int]) -> None:
    if em.phase is Phase.REPLIED:
        em.end_step(lines, _finish(had_calls))
    em.new_turn(text, lines)


def _reply(em: Emitter, had_calls: bool, text: str, calls: Sequence[ToolCall], lines: Sequence[int], call_lines: Sequence[int] = ()) -> None:
    if em.phase is Phase.REPLIED:
        em.end_step(lines, _finish(had_calls))
    em.reply(text, calls, lines, call_lines=call_lines)


def _undo(em: Emitter, had_calls: bool, count: int, lines: Sequence[int]) -> None:
    if em.phase is Phase.REPLIED:
        em.end_step(lines, _finish(had_calls))
    em.undo(count, lines)


# ---------------------------------------------------------------------------
# Import.
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Reply:
    """The assistant-side items read so far, not yet known to be complete."""

    lines: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    call_lines: list[int] = field(default_factory=list)  # each call's own record
    message: bool = False


class _Reader:
    def __init__(self, report: ImportReport, lax: Lenience) -> None:
        self.report = report
        self.lax = lax
        self.em = Emitter()
        self.had_calls = False  # the last reply's calls decide an inferred step.end's reason
        self.reply: _Reply | None = None

    def read(self, records: Iterable[Record]) -> Iterator[Sourced]:
        for rec in records:
            try:
                self._record(rec)
            except (FieldError, InvalidEvent) as exc:
                self.lax.bad(rec.line, str(exc))
            yield from self.em.drain()
        self._flush()
        yield from self.em.drain()

    # -- one record ------------------------------------------------------------

    def _record(self, rec: Record) -> None:
        kind = get_str(rec.obj, "type")
        line = (rec.line,)
        if kind == EXTENSION:
            event = ext_event(rec.obj.get("payload"))
            self._flush()
            self.em.emit(event, line, native=False)
            if isinstance(event, Assistant):
                self.had_calls = bool(event.calls)
        elif kind == "session_meta":
            meta = SessionMeta(system=_system(get_obj(rec.obj, "payload")))
            self._flush()
            if self.em.started:
                self.report.skip("session_meta (repeated)")
            else:
                self.em.meta(meta, line)
        elif kind == "response_item":
            self._item(get_obj(rec.obj, "payload"), rec.line)
        elif kind == "compacted":
            summary = _summary(get_obj(rec.obj, "payload"), self.report)
            self._flush()
            self.em.compaction(summary, self.em.count, line)
        elif kind == "event_msg":
            self._event_msg(get_obj(rec.obj, "payload"), rec.line)
        elif kind == "turn_context":
            self._flush()  # written where a turn (or a compaction) starts
            self.report.skip(kind)
        else:
            self.report.skip(_label(kind))

    def _item(self, item: JSON, line: int) -> None:
        kind = get_str(item, "type")
        if kind == "message":
            role = get_str(item, "role")
            content = get_list(item, "content")
            if role == "assistant":
                text = _parts_text(content, images=False)
                reply = self._open(line)
                reply.message = True
                if text:
                    reply.texts.append(text)
                return
            text = _parts_text(content, images=True)
            self._flush()
            if role != "user":
                self.report.skip(_label("response_item.message", role))
            elif not text:
                raise FieldError("user message with no text")
            elif is_injected(text):
                self.em.user(text, (line,), notification=True)
            else:
                _prompt(self.em, self.had_calls, text, (line,))
        elif kind in _CALL_ITEMS:
            call = _call(item)
            reply = self._open(line)
            reply.calls.append(call)
            reply.call_lines.append(line)
        elif kind in _SILENT_OUTPUT:
            self._open(line)
            self.report.skip(_label("response_item", kind))
        elif kind in _OUTPUT_ITEMS:
            call_id = get_str(item, "call_id")
            output, failed = _output(item)
            self._flush()
            self.em.result(call_id, output, (line,), is_error=failed)
        else:
            self.report.skip(_label("response_item", kind))

    def _event_msg(self, msg: JSON, line: int) -> None:
        kind = get_str(msg, "type")
        if kind == "turn_aborted":
            self._flush()
            if self.em.phase is Phase.IDLE:
                self.report.skip("event_msg.turn_aborted (no turn running)")
            else:
                self.em.cancel((line,))
        elif kind == "thread_rolled_back":
            count = get_int(msg, "num_turns")
            if count < 1:
                raise FieldError("thread_rolled_back.num_turns: must be at least 1")
            self._flush()
            _undo(self.em, self.had_calls, count, (line,))
        else:
            self.report.skip(_label("event_msg", kind))

    # -- the buffered reply ------------------------------------------------------

    def _open(self, line: int) -> _Reply:
        if self.reply is None:
            self.reply = _Reply()
        self.reply.lines.append(line)
        return self.reply

    def _flush(self) -> None:
        reply, self.reply = self.reply, None
        if reply is None or not (reply.message or reply.calls):
            return  # nothing but reasoning: no reply to send back
        try:
            _reply(self.em, self.had_calls, "\n".join(reply.texts), reply.calls, reply.lines, reply.call_lines)
        except FieldError as exc:
            self.lax.bad(reply.lines[0], str(exc))
            return
        self.had_calls = bool(reply.calls)


# ---------------------------------------------------------------------------
# Export.
# ---------------------------------------------------------------------------


def _user_item(text: str) -> JSON:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _native(event: Event) -> list[tuple[str, JSON]] | None:
    """The Codex records holding ``event``, or None when it has no native form."""
    if isinstance(event, TurnPrompt) and not is_injected(event.text):
        return [("response_item", _user_item(event.text))]
    if isinstance(event, Notification) and is_injected(event.text):
        return [("response_item", _user_item(event.text))]
    if isinstance(event, Assistant) and event.complete:
        items: list[tuple[str, JSON]] = []
        if event.text or not event.calls:
            text_part: JSON = {"type": "output_text", "text": event.text}
            items.append(("response_item", {"type": "message", "role": "assistant", "content": [text_part]}))
        for c in event.calls:
            items.append(("response_item", {"type": "function_call", "name": c.name, "arguments": c.args, "call_id": c.id}))
        return items
    if isinstance(event, ToolResult):
        return [("response_item", _result_item(event, "function_call_output"))]
    if isinstance(event, TurnCancel):
        return [("event_msg", {"type": "turn_aborted", "reason": "interrupted"})]
    if isinstance(event, Compaction):
        return [("compacted", {"message": event.summary, "replacement_history": [_user_item(event.summary)]})]
    if isinstance(event, Undo):
        return [("event_msg", {"type": "thread_rolled_back", "num_turns": event.count})]
    return None


def _result_item(event: ToolResult, kind: str) -> JSON:
    item: JSON = {"type": kind, "call_id": event.call_id, "output": event.output}
    if event.is_error:
        item["success"] = False
    return item


def _predict(event: Event, phase: Phase, had_calls: bool, count: int) -> list[Event] | None:
    """What the importer emits for ``event``'s native records in ``phase``."""
    em = Emitter()
    em.meta(SessionMeta(), ())
    em.drain()
    em.phase, em.count = phase, count
    try:
        if isinstance(event, TurnPrompt):
            _prompt(em, had_calls, event.text, ())
        elif isinstance(event, Notification):
            em.user(event.text, (), notification=True)
        elif isinstance(event, Assistant):
            _reply(em, had_calls, event.text, event.calls, ())
        elif isinstance(event, ToolResult):
            em.result(event.call_id, event.output, (), is_error=event.is_error)
        elif isinstance(event, TurnCancel):
            em.cancel(())
        elif isinstance(event, Compaction):
            em.compaction(event.summary, count, ())
        elif isinstance(event, Undo):
            _undo(em, had_calls, event.count, ())
        else:
            return None
    except FieldError:
        return None
    return [s.event for s in em.drain()]


def _after(phase: Phase, event: Event) -> Phase:
    target = next_phase(phase, event)
    if isinstance(target, Refusal):
        raise ValueError(f"not a valid canonical log: {event.type} in phase {phase.value}: {target}")
    return target


class _Writer:
    """Chooses, event by event, native records or extension records.

    Glue events (``step.begin``, ``step.end``, ``step.error``, ``turn.end``)
    are held until the next other event: if the importer, reading that
    event's native records, infers exactly the held glue (or its tail), the
    glue is not written.  Whatever it would not infer exactly is written as
    extension records, so importing gives back the same log.
    """

    def __init__(self) -> None:
        self.n = 0
        self.phase = Phase.IDLE
        self.had_calls = False
        self.held: list[Event] = []
        self.held_at: list[int] = []  # the canonical line of each held event
        self.source = 0  # the canonical line of the record last yielded
        self.after_reply = False  # the last line written is part of a native reply

    def line(self, kind: str, payload: JSON) -> str:
        text = dumps({"timestamp": timestamp(self.n), "type": kind, "payload": payload})
        self.n += 1
        self.after_reply = False
        return text

    def ext(self, event: Event) -> str:
        return self.line(EXTENSION, event_to_dict(event))

    def event(self, event: Event, count: int, line: int = 0) -> Iterator[str]:
        """The records of ``event`` (canonical line ``line``), and of the glue held before it."""
        if isinstance(event, _GLUE):
            self.held.append(event)
            self.held_at.append(line)
            return
        held, self.held = self.held, []
        held_at, self.held_at = self.held_at, []
        records = _native(event)
        phases = [self.phase]
        for glue in held:
            phases.append(_after(phases[-1], glue))
        keep = len(held)  # how many held events go out as extension records
        if records is not None:
            for k in range(len(held) + 1):
                if k == 0 and self.after_reply and isinstance(event, Assistant):
                    continue  # two native replies in a row would read as one
                if _predict(event, phases[k], self.had_calls, count) == [*held[k:], event]:
                    keep = k
                    break
            else:
                records = None
        for glue, at in zip(held[:keep], held_at):
            self.source = at
            yield self.ext(glue)
        self.source = line
        if records is None:
            yield self.ext(event)
        else:
            for kind, payload in records:
                yield self.line(kind, payload)
            self.after_reply = isinstance(event, Assistant)
        self.phase = _after(phases[-1], event)
        if isinstance(event, Assistant):
            self.had_calls = bool(event.calls)

    def close(self) -> Iterator[str]:
        held, self.held = self.held, []
        held_at, self.held_at = self.held_at, []
        for glue, at in zip(held, held_at):
            self.source = at
            yield self.ext(glue)


# ---------------------------------------------------------------------------
# The format.
# ---------------------------------------------------------------------------


class CodexFormat:
    name: Final = "codex"
    title: Final = "Codex CLI rollout JSONL"
    id_keys: Final = frozenset({"call_id", "id"})
    #: A ``compacted`` record replaces everything before it (the repair engine
    #: mends a cut by moving the record before the exchange it cut).
    compaction_covers_before: Final = True

    def sniff(self, first: Record) -> bool:
        kind = first.obj.get("type")
        return (kind in KINDS or kind == EXTENSION) and isinstance(first.obj.get("payload"), dict)

    def read(self, records: Iterable[Record], report: ImportReport, lax: Lenience) -> Iterator[Sourced]:
        return _Reader(report, lax).read(records)

    def export(self, log: Sequence[Event]) -> Iterator[str]:
        return (text for _line, text in self.export_sourced(log))

    def export_sourced(self, log: Sequence[Event], *, final: bool = True) -> Iterator[tuple[int, str]]:
        if not log:
            return
        meta = log[0] if isinstance(log[0], SessionMeta) else SessionMeta()
        rest = log[1:] if isinstance(log[0], SessionMeta) else log
        first = 2 if isinstance(log[0], SessionMeta) else 1
        writer = _Writer()
        payload: JSON = {
            "id": EXPORT_SESSION_ID,
            "timestamp": timestamp(0),
            "cwd": "/workspace",
            "originator": "ctxcontract",
            "cli_version": "0.0.0",
            "source": "cli",
        }
        if meta.system:
            payload["base_instructions"] = {"text": meta.system}
        yield 1, writer.line("session_meta", payload)
        for count, event in enumerate(rest, start=1):
            for text in writer.event(event, count, count + first - 1):
                yield writer.source, text
        if final:  # a session still being written holds its glue until the next event
            for text in writer.close():
                yield writer.source, text

    def result_record(self, event: ToolResult, name: str, near: Record | None) -> str:
        kind = "function_call_output"
        stamp = timestamp(0)
        if near is not None:
            raw = near.obj.get("timestamp")
            if isinstance(raw, str):
                stamp = raw
            payload = near.obj.get("payload")
            if isinstance(payload, dict) and payload.get("type") == "custom_tool_call" and payload.get("call_id") == event.call_id:
                kind = "custom_tool_call_output"
        return dumps({"timestamp": stamp, "type": "response_item", "payload": _result_item(event, kind)})


CODEX: Final = CodexFormat()
