"""What every runtime format shares: reading hostile files, glue, provenance.

What this module owns:

* :func:`read_records` turns a file into parsed JSON records, one per physical
  line, bounded in memory (a line longer than :data:`MAX_LINE_BYTES` is an
  error, never a giant allocation), with the 1-based line number of each.
  Bad bytes, bad JSON and non-objects are a one-line :class:`InvalidLog`; in
  lenient mode they are skipped and counted in the :class:`ImportReport`.  A
  truncated last line (the writer died mid-line) is always skipped and noted:
  that is how the runtimes' own loaders treat it, and it is the usual state of
  a file after a crash.
* :class:`Emitter` lets an importer speak in the runtime's terms ("a user
  message", "a reply with these calls", "a result") and emits a canonical log
  the phase table accepts, adding the glue events the runtime's file leaves
  implicit (``step.begin``, ``step.end``, ``turn.end``).  Every canonical
  event carries the original lines it came from (:class:`Sourced`).
* Extension records: a canonical event with no native record in a format is
  exported as one record the format's importer reads back exactly, so every
  format round-trips every canonical log.

What it must not know: any one format's field names.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import stat
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Final, Protocol

import msgspec

from ctxspec.errors import InvalidEvent, InvalidLog
from ctxspec.events import (
    Assistant,
    Clear,
    Compaction,
    Event,
    Notification,
    Resume,
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
    Undo,
    event_from_dict,
)
from ctxspec.state import Phase, Refusal, next_phase

from .. import STDIN

#: The longest line read; longer lines are refused without reading them whole.
MAX_LINE_BYTES: Final = 64 * 1024 * 1024
#: The UTF-8 byte order mark: accepted before the first line, and noted.
BOM: Final = b"\xef\xbb\xbf"
#: The gzip magic number: a compressed file is named as such, not misread.
GZIP_MAGIC: Final = b"\x1f\x8b"

JSON = dict[str, object]


# ---------------------------------------------------------------------------
# Records and the import report.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One parsed line of a runtime file."""

    line: int
    obj: JSON


@dataclass(frozen=True, slots=True)
class Skipped:
    line: int
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.why}"


@dataclass(slots=True)
class ImportReport:
    """What an importer read, skipped and could not read."""

    path: str = "<input>"
    lines: int = 0
    #: Records the model's context does not depend on, counted by kind.
    skipped: Counter[str] = field(default_factory=Counter)
    #: Lines that could not be read (lenient mode only; strict mode raises).
    unreadable: list[Skipped] = field(default_factory=list)
    #: Things a reader should know: a truncated last line, a mirrored record.
    notes: list[Skipped] = field(default_factory=list)

    def skip(self, kind: str) -> None:
        self.skipped[kind] += 1

    def summary(self) -> str:
        parts = [f"{self.lines} lines"]
        if self.skipped:
            kinds = ", ".join(f"{k} x{n}" for k, n in sorted(self.skipped.items()))
            parts.append(f"skipped (not model context): {kinds}")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable line(s) skipped")
        return "; ".join(parts)


class Lenience:
    """Strict mode raises at the first unreadable line; lenient mode counts it."""

    def __init__(self, report: ImportReport, lenient: bool) -> None:
        self.report = report
        self.lenient = lenient

    def bad(self, line: int, why: str) -> None:
        if not self.lenient:
            raise InvalidLog(why, line=line, path=self.report.path)
        self.report.unreadable.append(Skipped(line, why))


def _jtype(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def _physical_lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes | None, bool]]:
    """``(number, bytes, ended)``; bytes is None for a line over the limit."""
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest, a bounded chunk at a time
                raw = handle.readline(MAX_LINE_BYTES)
            yield number, None, True
            continue
        yield number, raw, raw.endswith(b"\n")


def read_records(handle: IO[bytes], report: ImportReport, *, lenient: bool = False) -> Iterator[Record]:
    """Every JSON-object line of ``handle``, with its 1-based physical line number.

    Blank lines count but yield nothing.  ``\\r\\n`` endings are accepted.
    """
    lax = Lenience(report, lenient)
    previous: tuple[int, bytes, bool] | None = None
    for number, raw, ended in _physical_lines(handle):
        report.lines = number
        if raw is None:
            lax.bad(number, f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB")
            continue
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
            report.notes.append(Skipped(1, "UTF-8 byte order mark before the first record (ignored here; a runtime that parses lines with JSON.parse would not)"))
        if previous is not None:
            record = _parse(*previous, last=False, lax=lax)
            if record is not None:
                yield record
        previous = (number, raw, ended)
    if previous is not None:
        record = _parse(*previous, last=True, lax=lax)
        if record is not None:
            yield record


#: The fast parser: msgspec decodes a line's bytes, UTF-8 checked, to the very
#: ``dict`` ``json.loads`` gives (integers of any size included), 3.5 times as
#: fast on Kimi Code records (``benchmarks/bench_json.py``).
_decode: Final = msgspec.json.decode


def _parse(number: int, raw: bytes, ended: bool, *, last: bool, lax: Lenience) -> Record | None:
    """The record on line ``number``, or None for a blank or unreadable line.

    A line msgspec reads as an object is that record.  Any other line (blank,
    malformed, not an object, or JSON msgspec refuses and the standard library
    accepts: ``NaN``, ``1e400``, a lone surrogate escape) is read again by
    :func:`_parse_plain`, whose messages name what is wrong: the verdict on
    every line is the one the standard library alone gives.
    """
    try:
        obj: object = _decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return _parse_plain(number, raw, ended, last=last, lax=lax)
    if isinstance(obj, dict):
        return Record(number, obj)
    return _parse_plain(number, raw, ended, last=last, lax=lax)


def _parse_plain(number: int, raw: bytes, ended: bool, *, last: bool, lax: Lenience) -> Record | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        lax.bad(number, f"not UTF-8 (byte {exc.start + 1} of the line)")
        return None
    text = text.rstrip("\n").rstrip("\r")
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if last and not ended:
            lax.report.notes.append(Skipped(number, "truncated last line skipped (the writer stopped mid-line)"))
            return None
        lax.bad(number, f"malformed JSON: {exc.msg} at column {exc.colno}")
        return None
    except RecursionError:
        lax.bad(number, "JSON nested too deeply")
        return None
    if not isinstance(obj, dict):
        lax.bad(number, f"expected a JSON object, got {_jtype(obj)}")
        return None
    return Record(number, obj)


def open_input(path: str) -> IO[bytes]:
    """Open a session file for reading, or raise a one-line :class:`InvalidLog`.

    ``-`` is standard input.  It is read once, into a temporary copy that is
    removed when the process exits, so that detection and import can each
    read it from the start (stdin may be a pipe).  So is any other path that
    can be read only once: ``/dev/stdin``, a named pipe, a shell's
    ``<(...)``.  A gzip-compressed file is
    named as such: the runtimes write and load plain JSON, so a repaired copy
    must be plain too, and a pipe (``gunzip -c F | ctxcontract check -``)
    reads it without a stored plain copy.
    """
    try:
        handle: IO[bytes] = open(_readable_copy(path), "rb")
    except IsADirectoryError:
        raise InvalidLog("is a directory, not a session file", path=path) from None
    except FileNotFoundError:
        raise InvalidLog("no such file", path=path) from None
    except PermissionError:
        raise InvalidLog("permission denied", path=path) from None
    except OSError as exc:
        raise InvalidLog(f"cannot be read: {exc.strerror}", path=path) from None
    try:
        head = handle.peek(2)[:2] if hasattr(handle, "peek") else b""
    except OSError as exc:
        handle.close()
        raise InvalidLog(f"cannot be read: {exc.strerror}", path=path) from None
    if head == GZIP_MAGIC:
        handle.close()
        name = "FILE" if path == STDIN else path
        raise InvalidLog(f"gzip-compressed, not a session file; decompress it first (gunzip -c {name} | ctxcontract check -)", line=1, path=path)
    return handle


#: Inputs that can be read only once, and the temporary copy each was read into.
_copies: dict[str, str] = {}


def _readable_copy(path: str) -> str:
    """``path`` itself, or, for an input that can be read only once, a temporary copy of it all."""
    if path != STDIN:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return path  # open() says what is wrong with it
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISBLK(mode):
            return path
    if path not in _copies:
        if path == STDIN and (sys.stdin is None or sys.stdin.isatty()):
            raise InvalidLog("standard input is a terminal: pipe a file in, or name one", path=STDIN)
        fd, name = tempfile.mkstemp(prefix="ctxcontract-input-", suffix=".partial")
        atexit.register(_remove, name)
        with os.fdopen(fd, "wb") as copy:
            if path == STDIN:
                shutil.copyfileobj(sys.stdin.buffer, copy, 1024 * 1024)
            else:
                with open(path, "rb") as once:
                    shutil.copyfileobj(once, copy, 1024 * 1024)
        _copies[path] = name
    return _copies[path]


def _remove(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def records_of_text(text: str, report: ImportReport | None = None, *, lenient: bool = False) -> list[Record]:
    """:func:`read_records` over text held in memory (tests, exporters' round trips)."""
    return list(read_records(io.BytesIO(text.encode("utf-8")), report or ImportReport(), lenient=lenient))


# -- typed access to JSON fields: wrong types are the importer's own error ----


class FieldError(Exception):
    """A record field is missing or has the wrong type; the importer adds the line."""


def get_str(obj: Mapping[str, object], key: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        if value is None and default is None and key not in obj:
            raise FieldError(f"missing field {key!r}")
        raise FieldError(f"field {key!r}: expected a string, got {_jtype(value)}")
    return value


def get_obj(obj: Mapping[str, object], key: str) -> JSON:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise FieldError(f"field {key!r}: expected an object, got {_jtype(value)}")
    return value


def get_list(obj: Mapping[str, object], key: str, default: list[object] | None = None) -> list[object]:
    value = obj.get(key, default)
    if not isinstance(value, list):
        raise FieldError(f"field {key!r}: expected an array, got {_jtype(value)}")
    return value


def get_int(obj: Mapping[str, object], key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"field {key!r}: expected an integer, got {_jtype(value)}")
    return value


def get_bool(obj: Mapping[str, object], key: str, default: bool = False) -> bool:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise FieldError(f"field {key!r}: expected a boolean, got {_jtype(value)}")
    return value


# ---------------------------------------------------------------------------
# Extension records: canonical events a format has no record for.
# ---------------------------------------------------------------------------


def ext_event(payload: object) -> Event:
    """The canonical event inside an extension record (raises :class:`FieldError`)."""
    try:
        event = event_from_dict(payload)
    except InvalidEvent as exc:
        raise FieldError(f"ctxcontract extension record: {exc}") from None
    return event


# ---------------------------------------------------------------------------
# Provenance and the emitter.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sourced:
    """A canonical event and the original lines it came from (the first is its place).

    ``lines`` is empty only for glue no record stands for: the ``session.meta``
    of a format without a header.  ``native`` is False for an event read
    from an extension record.  ``calls`` is, for an ``assistant`` whose calls
    have records of their own (a Codex ``function_call``, a Kimi ``tool.call``,
    a Claude ``tool_use`` line), the line of each call's record in call order;
    it is empty when every call is on the event's own line.
    """

    event: Event
    lines: tuple[int, ...]
    native: bool = True
    calls: tuple[int, ...] = ()

    @property
    def line(self) -> int:
        return self.lines[0] if self.lines else 0

    def call_line(self, index: int) -> int:
        """The line of the record declaring call ``index`` of this event."""
        return self.calls[index] if 0 <= index < len(self.calls) else self.line


#: The events :class:`Emitter` adds on its own: an importer infers them again
#: from the records around them, wherever those records go.
GLUE: Final = (StepBegin, StepEnd, StepError, TurnEnd)


class Emitter:
    """Builds a canonical log the phase table accepts from a runtime's records.

    An importer calls the verbs below in file order and drains the events
    after each record.  Glue events take the line of the record that made
    them necessary.  A verb that cannot happen in the current phase, even with
    glue, raises :class:`FieldError` naming the refusal.
    """

    def __init__(self) -> None:
        self.phase = Phase.IDLE
        self.count = 0  # canonical lines emitted, the meta line included
        self._out: list[Sourced] = []
        self._started = False

    # -- output -------------------------------------------------------------

    def mark(self) -> tuple[Phase, int, int, bool]:
        """A point to :meth:`rollback` to when a record turns out unreadable halfway."""
        return self.phase, self.count, len(self._out), self._started

    def rollback(self, mark: tuple[Phase, int, int, bool]) -> None:
        self.phase, self.count, n, self._started = mark
        del self._out[n:]

    def drain(self) -> list[Sourced]:
        out, self._out = self._out, []
        return out

    def emit(self, event: Event, lines: Sequence[int], *, native: bool = True, calls: Sequence[int] = ()) -> None:
        """Emit ``event`` as it is (the phase table must accept it here)."""
        if isinstance(event, SessionMeta):
            if self._started:
                raise FieldError("session.meta may only come first")
        else:
            if not self._started:
                self.meta(SessionMeta(), ())
            target = next_phase(self.phase, event)
            if isinstance(target, Refusal):
                raise FieldError(f"{event.type} cannot happen in phase {self.phase.value}: {target}")
            if isinstance(event, Compaction) and event.upto > self.count:
                raise FieldError(f"compaction covers line {event.upto}, which does not exist yet")
            self.phase = target
        self._started = True
        self.count += 1
        own: tuple[int, ...] = ()
        if calls and (not lines or any(line != lines[0] for line in calls)):
            own = tuple(calls)
        self._out.append(Sourced(event, tuple(lines), native, own))

    @property
    def started(self) -> bool:
        return self._started

    def meta(self, meta: SessionMeta, lines: Sequence[int]) -> None:
        self.emit(meta, lines)

    # -- verbs in the runtime's terms -----------------------------------------

    def user(self, text: str, lines: Sequence[int], *, notification: bool = False) -> None:
        """User-role input: a prompt between turns, a steer inside one."""
        if notification:
            self.emit(Notification(text=text), lines)
        elif self.phase is Phase.IDLE:
            self.emit(TurnPrompt(text=text), lines)
        else:
            self.emit(TurnSteer(text=text), lines)

    def new_turn(self, text: str, lines: Sequence[int]) -> None:
        """A prompt that starts a turn, ending the running one first."""
        self.end_turn(lines)
        self.emit(TurnPrompt(text=text), lines)

    def end_step(self, lines: Sequence[int], finish_reason: str = "stop") -> None:
        if self.phase is Phase.REPLIED:
            self.emit(StepEnd(finish_reason=finish_reason), lines)
        elif self.phase is Phase.STEP:
            self.emit(StepError(message="the step ended with no reply"), lines)

    def end_turn(self, lines: Sequence[int]) -> None:
        self.end_step(lines)
        if self.phase is Phase.TURN:
            self.emit(TurnEnd(), lines)

    def begin_step(self, lines: Sequence[int]) -> None:
        self.end_step(lines)
        if self.phase is Phase.IDLE:
            raise FieldError("a model reply with no user prompt before it")
        self.emit(StepBegin(), lines)

    def reply(self, text: str, calls: Sequence[ToolCall], lines: Sequence[int], *, complete: bool = True, call_lines: Sequence[int] = ()) -> None:
        """The model's reply; begins a step when none is in flight.

        ``call_lines``: the line of each call's own record, when the format
        writes calls as records of their own (see :attr:`Sourced.calls`).
        """
        if self.phase is not Phase.STEP:
            self.begin_step(lines)
        self.emit(Assistant(text=text, calls=tuple(calls), complete=complete), lines, calls=call_lines)

    def result(self, call_id: str, output: str, lines: Sequence[int], *, is_error: bool = False) -> None:
        self.emit(ToolResult(call_id=call_id, output=output, is_error=is_error), lines)

    def cancel(self, lines: Sequence[int]) -> None:
        if self.phase is not Phase.IDLE:
            self.emit(TurnCancel(), lines)

    def resume(self, lines: Sequence[int]) -> None:
        self.emit(Resume(), lines)

    def compaction(self, summary: str, upto: int, lines: Sequence[int]) -> None:
        self.emit(Compaction(summary=summary, upto=max(1, upto)), lines)

    def between_turns(self, lines: Sequence[int]) -> None:
        """Undo and clear are commands between turns: end the running turn."""
        self.end_turn(lines)

    def undo(self, count: int, lines: Sequence[int]) -> None:
        self.between_turns(lines)
        self.emit(Undo(count=count), lines)

    def clear(self, lines: Sequence[int]) -> None:
        self.between_turns(lines)
        self.emit(Clear(), lines)


# ---------------------------------------------------------------------------
# The format interface.
# ---------------------------------------------------------------------------


class EventFormat(Protocol):
    """A runtime format that stores an event log (Kimi Code wire, Codex, Claude)."""

    @property
    def name(self) -> str:
        """The ``--format`` name."""

    @property
    def title(self) -> str:
        """The runtime and file, for people."""

    @property
    def id_keys(self) -> frozenset[str]:
        """JSON keys whose string values are tool-call ids (for renaming a reused id)."""

    def sniff(self, first: Record) -> bool:
        """Whether the first record of a file looks like this format."""

    def read(self, records: Iterable[Record], report: ImportReport, lax: Lenience) -> Iterator[Sourced]:
        """The canonical log, streamed; a bad record raises :class:`FieldError`
        via ``lax`` in strict mode or is counted in lenient mode."""

    def export(self, log: Sequence[Event]) -> Iterator[str]:
        """The file's lines (no newlines) for a canonical log."""

    def export_sourced(self, log: Sequence[Event], *, final: bool = True) -> Iterator[tuple[int, str]]:
        """The file's lines, each with the canonical line it came from (1-based).

        ``final=False``: the file as the runtime has written it so far, while
        the session goes on; a record whose form depends on the events after
        it is held back.  At a ``step.begin`` the lines are then a prefix of
        the lines of any longer log.
        """

    def result_record(self, event: ToolResult, name: str, near: Record | None) -> str:
        """One line holding ``event`` natively, as the runtime writes results
        (``near`` is the record of the call, for ids and times to copy)."""


def rename_ids(obj: object, keys: frozenset[str], old: str, new: str, nth: int | None = None) -> object:
    """A copy of ``obj`` with the call id ``old`` set to ``new``.

    An *occurrence* is one JSON object holding ``old`` under a key in
    ``keys`` (a record may name one call under two keys).  ``nth`` renames
    only the n-th occurrence (0-based, in document order), None all of them.
    """
    seen = 0

    def walk(value: object) -> object:
        nonlocal seen
        if isinstance(value, dict):
            hit = any(k in keys and v == old for k, v in value.items())
            mine = hit and (nth is None or seen == nth)
            seen += hit
            return {k: (new if mine and k in keys and v == old else walk(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(obj)


def count_ids(obj: object, keys: frozenset[str], old: str) -> int:
    """How many occurrences of the call id ``old`` ``obj`` holds (see :func:`rename_ids`)."""
    if isinstance(obj, dict):
        return int(any(k in keys and v == old for k, v in obj.items())) + sum(count_ids(v, keys, old) for v in obj.values())
    if isinstance(obj, list):
        return sum(count_ids(v, keys, old) for v in obj)
    return 0


def dumps(obj: object) -> str:
    """A record as one line, the way the runtimes write them (no ASCII escaping)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
