"""Kimi Code ``agents/<name>/wire.jsonl``, protocol 1.0 to 1.5.

How records map to canonical events (``docs/formats/kimi-wire.md`` says why):

=================================  ==========================================
record                             canonical events
=================================  ==========================================
``metadata`` (line 1)              ``session.meta`` (with the system prompt of
                                   a ``config.update`` that comes before any
                                   model context)
``turn.prompt``                    ``turn.prompt`` (ending a running turn
                                   first); its mirrored user message is skipped;
                                   with no input it only ends the running turn
``turn.ended``                     ``turn.end``
``turn.steer``                     ``turn.steer``
``turn.cancel``                    ``turn.cancel``
``context.append_message``         user: ``turn.prompt``/``turn.steer`` (origin
                                   ``user``) or ``notification`` (any other
                                   origin); assistant: a reply; tool: a result
``step.begin`` ... ``step.end``    ``step.begin``, one ``assistant`` built from
                                   the step's ``content.part`` and ``tool.call``
                                   records, ``step.end``
``tool.result``                    ``tool.result`` (output, then ``note``)
``context.apply_compaction``       ``compaction`` up to the last message its
                                   ``compactedCount`` covers
``context.undo`` / ``context.clear``  ``undo`` / ``clear``
``ctxcontract.event``              the canonical event it holds (extension)
anything else                      skipped and counted
=================================  ==========================================
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from ctxspec.errors import InvalidEvent, InvalidLog
from ctxspec.events import (
    Assistant,
    Clear,
    Compaction,
    Event,
    Notification,
    SessionMeta,
    StepBegin,
    StepEnd,
    ToolCall,
    ToolResult,
    TurnCancel,
    TurnEnd,
    TurnPrompt,
    TurnSteer,
    Undo,
    event_to_dict,
)
from ctxspec.state import Phase

from .. import STDIN

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
    get_int,
    get_list,
    get_obj,
    get_str,
)

#: Protocol versions whose records this importer knows, oldest first.  The
#: record shapes differ only in 1.0 (a call in a message nests ``name`` and
#: ``arguments`` under ``function``) and 1.5 (``tool.result`` gains ``note``);
#: 1.1 to 1.4 change records that are not model context.
VERSIONS: Final = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")
#: The prompt of a turn Kimi Code's history has no user message for.
NO_PROMPT: Final = "[no user message]"
EXT: Final = "ctxcontract.event"
#: Record types that never reach the model's context.
NOT_CONTEXT: Final = frozenset(
    {
        "forked",
        "config.update",
        "permission.set_mode",
        "permission.record_approval_result",
        "full_compaction.begin",
        "full_compaction.complete",
        "full_compaction.cancel",
        "micro_compaction.apply",
        "usage.record",
        "tools.set_active_tools",
        "tools.register_user_tool",
        "tools.unregister_user_tool",
        "tools.update_store",
        "plan_mode.enter",
        "plan_mode.cancel",
        "plan_mode.exit",
        "swarm_mode.enter",
        "swarm_mode.exit",
        "goal.create",
        "goal.update",
        "goal.clear",
        "llm.tools_snapshot",
        "llm.request",
        "mcp.tools_discovered",
    }
)


def part_text(parts: object, where: str) -> str:
    """The text of a content value: a string or ``ContentPart[]``.

    Text parts are joined; ``think`` parts are not sent; media become a
    ``[image_url]``-style placeholder so the message is not silently empty.
    """
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        raise FieldError(f"{where}: expected a string or an array of parts")
    out: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            raise FieldError(f"{where}: a part is not an object")
        kind = part.get("type")
        if kind == "text":
            out.append(get_str(part, "text"))
        elif kind == "think":
            continue
        elif isinstance(kind, str):
            out.append(f"[{kind}]")
        else:
            raise FieldError(f"{where}: a part has no type")
    return "".join(out)


def args_text(value: object) -> str:
    """``tool.call.args`` is the parsed argument object; a string is kept raw."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def args_value(text: str) -> object:
    """The exporter's inverse of :func:`args_text`: an object when that round-trips."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, (dict, list)) and json.dumps(value, ensure_ascii=False) == text:
        return value
    return text


# ---------------------------------------------------------------------------
# Kimi's message history, as far as compactedCount needs it.
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _History:
    """Kimi's message history, as far as ``compactedCount`` needs it.

    ``compactedCount`` counts messages from the start of the history, where a
    compaction's summary sits.  A later compaction always replaces the summary
    (so does ours), so the summary is kept as a flag, and ``lines`` holds the
    canonical line of every other message, in order (which is line order:
    what a compaction keeps is the tail, and new messages come after it).
    """

    lines: list[int] = field(default_factory=list)
    prompts: list[bool] = field(default_factory=list)  # is the entry a real user prompt
    summary: bool = False

    def feed(self, event: Event, line: int) -> None:
        if isinstance(event, (TurnPrompt, TurnSteer, Notification)):
            self.lines.append(line)
            self.prompts.append(isinstance(event, TurnPrompt))
        elif isinstance(event, (Assistant, ToolResult)):
            self.lines.append(line)
            self.prompts.append(False)
        elif isinstance(event, Compaction):
            replaced = self.count(event.upto) - self.summary
            del self.lines[:replaced], self.prompts[:replaced]
            self.summary = True
        elif isinstance(event, Clear):
            self.lines, self.prompts, self.summary = [], [], False
        elif isinstance(event, Undo):  # drop the tail until ``count`` prompts are gone; never the summary
            left = event.count
            while self.lines and left:
                left -= self.prompts.pop()
                self.lines.pop()

    def upto(self, count: int) -> int:
        """The canonical line up to which the first ``count`` messages reach (0: none but the summary)."""
        return max(self.lines[: max(0, count - self.summary)], default=0)

    def count(self, upto: int) -> int:
        """How many messages, from the start, a compaction up to canonical line ``upto`` replaces."""
        return self.summary + sum(1 for line in self.lines if line <= upto)

    def recount(self, raw: str, upto: int) -> str | None:
        """The compaction record ``raw``, read after this history, set to cover up to canonical line ``upto``."""
        obj = json.loads(raw)
        if not isinstance(obj, dict):
            return None
        obj["compactedCount"] = self.count(upto)
        return dumps(obj)


# ---------------------------------------------------------------------------
# Import.
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Reply:
    """The step being read: its parts and calls until the reply is complete."""

    texts: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    call_lines: list[int] = field(default_factory=list)  # each call's tool.call record

    def empty(self) -> bool:
        return not self.texts and not self.calls


class _Reader:
    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.em = Emitter()
        self.history = _History()
        self.reply = _Reply()
        self.meta_lines: list[int] = []
        self.system = ""
        self.mirrors: list[str] = []  # prompt/steer texts whose user message is still to come
        self.ready: list[Sourced] = []
        self.placeholders: list[int] = []  # canonical lines of prompts Kimi's history does not have

    def take(self) -> list[Sourced]:
        """The events emitted so far, with Kimi's history kept up to date."""
        events = self.em.drain()
        if not events and not self.ready:  # most records emit nothing on their own (parts, calls, skipped)
            return events
        first = self.em.count - len(events) + 1
        for i, s in enumerate(events):
            if self.placeholders and self.placeholders[0] == first + i:
                self.placeholders.pop(0)
                continue  # not a message of Kimi's history: compactedCount and undo do not count it
            self.history.feed(s.event, first + i)
        self.ready.extend(events)
        out, self.ready = self.ready, []
        return out

    def start(self, line: int) -> None:
        if not self.em.started:
            self.em.meta(SessionMeta(system=self.system), self.meta_lines or [line])

    def flush(self, *, step_end: bool = False) -> None:
        """Emit the step's reply once it is complete (or its step ended)."""
        r = self.reply
        if not r.empty():
            self.start(r.lines[0])
            self.em.reply("".join(r.texts), r.calls, r.lines, call_lines=r.call_lines)
        elif step_end and self.em.phase is Phase.STEP:
            self.em.reply("", (), r.lines)
        self.reply = _Reply()

    def record(self, rec: Record) -> None:
        obj = rec.obj
        if "type" not in obj and is_kimi_cli_wire(obj):
            raise kimi_cli_wire_error(self.report.path, rec.line)
        kind = get_str(obj, "type")
        line = (rec.line,)
        if kind == "metadata":
            if self.em.started or self.meta_lines:
                raise FieldError("metadata may only be the first record")
            version = get_str(obj, "protocol_version")
            nearest = nearest_version(version)
            if nearest != version:
                known = f"{VERSIONS[0]} to {VERSIONS[-1]}"
                self.report.notes.append(Skipped(rec.line, f"protocol {version} is not one this importer knows ({known}): read as {nearest}, the nearest; record types it does not know are skipped and counted"))
            self.meta_lines.append(rec.line)
            return
        if not self.meta_lines and not self.em.started:
            raise FieldError("the first record must be metadata")
        if kind == "config.update" and not self.em.started and isinstance(obj.get("systemPrompt"), str):
            self.system = get_str(obj, "systemPrompt")
            self.meta_lines.append(rec.line)
            return
        if kind in NOT_CONTEXT:
            self.report.skip(kind)
            return
        if kind == "context.append_loop_event":
            self.loop_event(get_obj(obj, "event"), rec.line)
            return
        self.flush()  # any other record means the reply is complete
        self.start(rec.line)
        if kind == "turn.prompt":
            text = _input_text(obj)
            if text:
                self.em.new_turn(text, line)
                self._mirror(text)
            else:  # Kimi Code only counts the turn; what follows in the history is all there is
                self.em.end_turn(line)
                self.report.skip("turn.prompt (no input: no user message)")
        elif kind == "turn.ended":
            self.em.end_turn(line)
        elif kind == "turn.steer":
            text = _input_text(obj) or "[empty steer]"
            self.em.user(text, line)
            self._mirror(text)
        elif kind == "turn.cancel":
            self.em.cancel(line)
        elif kind == "context.append_message":
            self.message(get_obj(obj, "message"), rec.line)
        elif kind == "context.apply_compaction":
            count = get_int(obj, "compactedCount")
            summary = get_str(obj, "summary") or "[empty summary]"
            taken = self.take()  # the history must be up to date to read the count
            self.ready.extend(taken)
            self.em.compaction(summary, self.history.upto(count) or 1, line)
        elif kind == "context.undo":
            self.em.undo(get_int(obj, "count", 1), line)
        elif kind == "context.clear":
            self.em.clear(line)
        elif kind == EXT:
            self.em.emit(ext_event(obj.get("event")), line, native=False)
        else:
            self.report.skip(kind)

    def _turn_for_reply(self, line: int) -> None:
        """A reply with no turn running: Kimi Code restores it as it is (a
        history imported from Kimi CLI may start with one), the canonical log
        needs a turn: one is started with a placeholder prompt, and noted."""
        if self.em.phase is Phase.IDLE:
            self.em.emit(TurnPrompt(text=NO_PROMPT), (line,))
            self.placeholders.append(self.em.count)
            self.report.notes.append(
                Skipped(line, f"a model reply with no user message before it (Kimi Code keeps it as it is); read as a turn whose prompt is the placeholder {NO_PROMPT!r}, which Kimi Code does not send")
            )

    def _mirror(self, text: str) -> None:
        self.mirrors.append(text)
        del self.mirrors[:-8]  # a runtime that never writes the mirror must not grow this

    def message(self, msg: JSON, line: int) -> None:
        role = get_str(msg, "role")
        text = part_text(msg.get("content", ""), "message.content")
        if role == "user":
            origin = msg.get("origin")
            kind = origin.get("kind") if isinstance(origin, dict) else "user"
            if kind == "user" and text in self.mirrors:
                self.mirrors.remove(text)
                self.report.skip("context.append_message (copy of a turn.prompt/turn.steer input)")
                return
            self.em.user(text or "[empty message]", (line,), notification=kind != "user")
        elif role == "assistant":
            calls = [_call(c) for c in get_list(msg, "toolCalls", [])]
            self._turn_for_reply(line)
            self.em.reply(text, calls, (line,))
            self.em.end_step((line,))
        elif role == "tool":
            self.em.result(get_str(msg, "toolCallId"), text, (line,), is_error=get_bool(msg, "isError"))
        else:
            self.report.skip(f"context.append_message ({role})")

    def loop_event(self, event: JSON, line: int) -> None:
        kind = get_str(event, "type")
        if kind == "content.part":
            part = get_obj(event, "part")
            if part.get("type") == "text":
                self.reply.texts.append(get_str(part, "text"))
                self.reply.lines.append(line)
            else:
                self.report.skip(f"content.part ({part.get('type')})")
            return
        if kind == "tool.call":
            self.reply.calls.append(ToolCall(id=get_str(event, "toolCallId"), name=get_str(event, "name"), args=args_text(event.get("args"))))
            self.reply.lines.append(line)
            self.reply.call_lines.append(line)
            return
        if kind == "step.end":
            self.reply.lines = self.reply.lines or [line]
            self.flush(step_end=True)
            self.em.end_step((line,), _finish(event))
            return
        self.flush()
        self.start(line)
        if kind == "step.begin":
            self._turn_for_reply(line)
            self.em.begin_step((line,))
        elif kind == "tool.result":
            result = get_obj(event, "result")
            output = part_text(result.get("output", ""), "tool.result.result.output")
            note = result.get("note")
            if isinstance(note, str) and note:
                output = f"{output}\n{note}" if output else note
            self.em.result(get_str(event, "toolCallId"), output, (line,), is_error=get_bool(result, "isError"))
        else:
            self.report.skip(f"context.append_loop_event ({kind})")


def is_kimi_cli_wire(obj: JSON) -> bool:
    """A record of the legacy Kimi CLI's ``wire.jsonl`` (Python ``kimi-cli``):
    ``{"timestamp": <seconds>, "message": {"type": "TurnBegin", "payload": {...}}}``.

    Its header, ``{"type": "metadata", "protocol_version": "1.1"...}``, looks
    like Kimi Code's (the version numbers overlap), so the records after it
    tell the two apart: Kimi Code's have a dotted ``type`` of their own.
    """
    message = obj.get("message")
    return "type" not in obj and "timestamp" in obj and isinstance(message, dict) and isinstance(message.get("type"), str)


def kimi_cli_wire_error(path: str, line: int) -> InvalidLog:
    """The one-line refusal of a legacy Kimi CLI ``wire.jsonl``."""
    beside = os.path.join(os.path.dirname(path) or ".", "context.jsonl")
    where = f"the context.jsonl beside it ({beside})" if path != STDIN and os.path.isfile(beside) else "the session's context.jsonl (in the same directory)"
    return InvalidLog(
        f"a Kimi CLI wire.jsonl (the legacy Python kimi-cli's UI event stream, protocol 1.x): it records what the UI showed, not the model's context (no system prompt, no compaction summary), so it is not read; check {where} instead (format kimi-context)",
        line=line,
        path=path,
    )


def nearest_version(version: str) -> str:
    """The known protocol version ``version`` is read as: itself, else the nearest.

    Versions compare as ``major.minor`` numbers, as Kimi Code compares them
    (so 1.10 is newer than 1.5); one that does not parse is read as the newest.
    """
    key = _version_key(version)
    if version in VERSIONS or key is None:
        return version if key is not None else VERSIONS[-1]
    older = [v for v in VERSIONS if tuple(int(n) for n in v.split(".")) <= key]
    return older[-1] if older else VERSIONS[0]


def _version_key(version: str) -> tuple[int, int] | None:
    major, dot, minor = version.partition(".")
    if not (major.isdigit() and (minor.isdigit() or not dot)):
        return None
    return int(major), int(minor or 0)


def _finish(event: JSON) -> str:
    reason = event.get("finishReason")
    return reason if isinstance(reason, str) and reason else "stop"


def _input_text(obj: JSON) -> str:
    return part_text(obj.get("input", ""), "input")


def _call(c: object) -> ToolCall:
    if not isinstance(c, dict):
        raise FieldError("toolCalls: a call is not an object")
    fn = c.get("function")
    source = fn if isinstance(fn, dict) else c
    return ToolCall(id=get_str(c, "id"), name=get_str(source, "name"), args=args_text(source.get("arguments")))


class KimiWireFormat:
    name: Final = "kimi-wire"
    title: Final = "Kimi Code wire.jsonl (protocol 1.0 to 1.5)"
    id_keys: Final = frozenset({"toolCallId", "uuid", "parentUuid", "id"})

    def sniff(self, first: Record) -> bool:
        return first.obj.get("type") == "metadata" and "protocol_version" in first.obj

    def read(self, records: Iterable[Record], report: ImportReport, lax: Lenience) -> Iterator[Sourced]:
        reader = _Reader(report)
        last = 0
        for rec in records:
            last = rec.line
            mark, reply, notes = reader.em.mark(), reader.reply, len(report.notes)
            try:
                reader.record(rec)
            except (FieldError, InvalidEvent) as exc:  # a field an event cannot hold, e.g. an empty id
                reader.em.rollback(mark)  # a half-read record leaves nothing behind
                reader.reply = reply
                del report.notes[notes:]
                reader.placeholders = [p for p in reader.placeholders if p <= reader.em.count]
                lax.bad(rec.line, f"{rec.obj.get('type', 'record')}: {exc}")
                continue
            yield from reader.take()
        try:
            reader.flush()
            reader.start(last)
        except (FieldError, InvalidEvent) as exc:
            lax.bad(last, str(exc))
        yield from reader.take()

    # -- export ---------------------------------------------------------------

    def export(self, log: Sequence[Event]) -> Iterator[str]:
        return (text for _line, text in self.export_sourced(log))

    def export_sourced(self, log: Sequence[Event], *, final: bool = True) -> Iterator[tuple[int, str]]:
        w = _Writer()
        for i, event in enumerate(log):
            nxt = log[i + 1] if i + 1 < len(log) else None
            if nxt is None and not final and isinstance(event, TurnEnd):
                return  # whether it is written depends on the next event
            for text in w.event(event, i + 1, nxt):
                yield i + 1, text

    def compaction_counter(self) -> _History:
        """The repair engine's hook: fed an edited file's events in order, it
        recounts a compaction record there (:meth:`_History.recount`), in
        memory bounded by Kimi's history, not by the file."""
        return _History()

    def result_record(self, event: ToolResult, name: str, near: Record | None) -> str:
        time = near.obj.get("time") if near is not None else None
        return dumps(_result_record(event, time if isinstance(time, int) else 0))


def _result_record(event: ToolResult, time: int) -> JSON:
    result: JSON = {"output": event.output}
    if event.is_error:
        result["isError"] = True
    return {
        "type": "context.append_loop_event",
        "event": {"type": "tool.result", "parentUuid": event.call_id, "toolCallId": event.call_id, "result": result},
        "time": time,
    }


class _Writer:
    """Canonical events to records, native where the importer reads them back exactly."""

    BASE_TIME: Final = 1_767_225_600_000  # 2026-01-01T00:00:00Z, so exports are deterministic

    def __init__(self) -> None:
        self.history = _History()
        self.turn = 0
        self.step = 0
        self.step_uuid = ""
        self.time = self.BASE_TIME
        self.line = 0

    def rec(self, obj: JSON) -> str:
        self.time += 1
        obj["time"] = self.time
        return dumps(obj)

    def loop(self, event: JSON) -> str:
        return self.rec({"type": "context.append_loop_event", "event": event})

    def ext(self, event: Event) -> str:
        return self.rec({"type": EXT, "event": event_to_dict(event)})

    def event(self, event: Event, line: int, nxt: Event | None) -> Iterator[str]:
        if isinstance(event, SessionMeta):
            yield dumps({"type": "metadata", "protocol_version": "1.4", "created_at": self.BASE_TIME})
            if event.system:
                yield self.rec({"type": "config.update", "systemPrompt": event.system})
            return
        count = self.history.count(event.upto) if isinstance(event, Compaction) else 0
        native_compaction = isinstance(event, Compaction) and count > 0 and self.history.upto(count) == event.upto
        self.history.feed(event, line)
        if isinstance(event, (TurnPrompt, TurnSteer)):
            kind = "turn.prompt" if isinstance(event, TurnPrompt) else "turn.steer"
            if isinstance(event, TurnPrompt):
                self.turn += 1
            parts = [{"type": "text", "text": event.text}]
            yield self.rec({"type": kind, "input": parts, "origin": {"kind": "user"}})
            yield self.rec({"type": "context.append_message", "message": {"role": "user", "content": parts, "toolCalls": [], "origin": {"kind": "user"}}})
        elif isinstance(event, Notification):
            message = {"role": "user", "content": [{"type": "text", "text": event.text}], "toolCalls": [], "origin": {"kind": "injection"}}
            yield self.rec({"type": "context.append_message", "message": message})
        elif isinstance(event, TurnCancel):
            yield self.rec({"type": "turn.cancel", "turnId": self.turn})
        elif isinstance(event, TurnEnd) and isinstance(nxt, TurnPrompt):
            return  # the next prompt ends the turn (protocol 1.4 writes no turn end)
        elif isinstance(event, StepBegin):
            self.step += 1
            self.step_uuid = f"step-{self.step}"
            yield self.loop({"type": "step.begin", "uuid": self.step_uuid, "turnId": str(self.turn), "step": self.step})
        elif isinstance(event, Assistant) and event.complete and (event.text or event.calls):
            ids = {"turnId": str(self.turn), "step": self.step, "stepUuid": self.step_uuid}
            if event.text:
                yield self.loop({"type": "content.part", "uuid": f"{self.step_uuid}-text", **ids, "part": {"type": "text", "text": event.text}})
            for c in event.calls:
                yield self.loop({"type": "tool.call", "uuid": c.id, **ids, "toolCallId": c.id, "name": c.name, "args": args_value(c.args)})
        elif isinstance(event, StepEnd):
            yield self.loop({"type": "step.end", "uuid": self.step_uuid, "turnId": str(self.turn), "step": self.step, "finishReason": event.finish_reason})
        elif isinstance(event, ToolResult):
            record = _result_record(event, 0)
            del record["time"]
            yield self.rec(record)
        elif isinstance(event, Compaction) and native_compaction:
            yield self.rec({"type": "context.apply_compaction", "summary": event.summary, "compactedCount": count, "tokensBefore": 0, "tokensAfter": 0})
        elif isinstance(event, Undo):
            yield self.rec({"type": "context.undo", "count": event.count})
        elif isinstance(event, Clear):
            yield self.rec({"type": "context.clear"})
        else:
            yield self.ext(event)


KIMI_WIRE: Final = KimiWireFormat()
