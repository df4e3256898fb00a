"""Runtime session formats: import to the canonical log, export back, detect.

Two kinds of format:

* **event formats** store the runtime's log (Kimi Code ``wire.jsonl``, Codex
  rollouts, Claude Code transcripts, and our own canonical log).  They import
  to a canonical log with the original line of every event, and export any
  canonical log so that importing gives it back.
* **message formats** store the message list itself (Kimi CLI
  ``context.jsonl``, captured OpenAI and Anthropic requests).  They are
  checked against the contract's message-level rules as the runtime would send
  them.  See :mod:`ctxref.formats.messages`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from itertools import chain
from typing import IO
from dataclasses import dataclass

from ctxspec.errors import InvalidEvent, InvalidLog
from ctxspec.events import Assistant, Event

from .base import EventFormat, FieldError, ImportReport, Lenience, Record, Sourced, open_input, read_records

#: Event formats by name, filled in by :func:`_register` at the bottom.
EVENT_FORMATS: dict[str, EventFormat] = {}


@dataclass(frozen=True, slots=True)
class Imported:
    """A whole imported file: the canonical log, where each event came from, the report."""

    format: str
    log: tuple[Event, ...]
    sources: tuple[Sourced, ...]
    report: ImportReport

    def origin(self, canonical_line: int) -> int:
        """The original file's line of canonical line ``canonical_line`` (0: none)."""
        if 1 <= canonical_line <= len(self.sources):
            return self.sources[canonical_line - 1].line
        return 0

    def call_origin(self, canonical_line: int, call: str | None) -> int:
        """:meth:`origin`, but for a finding about call ``call`` on the reply
        that declares it, the line of the call's own record."""
        if call is not None and 1 <= canonical_line <= len(self.sources):
            source = self.sources[canonical_line - 1]
            if isinstance(source.event, Assistant):
                for i, c in enumerate(source.event.calls):
                    if c.id == call:
                        return source.call_line(i)
        return self.origin(canonical_line)


def detect(first: Record) -> str | None:
    """The event format whose importer claims this first record."""
    for name, fmt in EVENT_FORMATS.items():
        if fmt.sniff(first):
            return name
    return None


def stream(handle: IO[bytes], report: ImportReport, *, format: str | None = None, lenient: bool = False) -> tuple[str, Iterator[Sourced]]:
    """Detect (unless ``format`` is given) and import lazily: ``(format, events)``.

    Memory stays bounded by the longest line: nothing is read ahead beyond
    the first record (the second, for a Kimi Code header, which the legacy
    Kimi CLI's UI log shares: its records tell the two apart).
    """
    lax = Lenience(report, lenient)
    records = read_records(handle, report, lenient=lenient)
    first = next(records, None)
    if first is None:
        if report.unreadable:
            raise InvalidLog("nothing readable in the file", path=report.path)
        raise InvalidLog("empty file: no records", path=report.path)
    if format is None:
        found = detect(first)
        if found is None:
            from .kimi_wire import is_kimi_cli_wire, kimi_cli_wire_error

            if is_kimi_cli_wire(first.obj):  # before its header was written (protocol 1.1)
                raise kimi_cli_wire_error(report.path, first.line)
            raise InvalidLog(
                "cannot tell the format from the first record (use --format; known: " + ", ".join(EVENT_FORMATS) + ")",
                line=first.line,
                path=report.path,
            )
        format = found
    fmt = EVENT_FORMATS.get(format)
    if fmt is None:
        raise InvalidLog(f"unknown event format {format!r}", path=report.path)
    ahead: list[Record] = []
    if format == "kimi-wire":
        from .kimi_wire import is_kimi_cli_wire, kimi_cli_wire_error

        ahead = [rec for rec in (next(records, None),) if rec is not None]
        if ahead and is_kimi_cli_wire(ahead[0].obj):
            raise kimi_cli_wire_error(report.path, ahead[0].line)

    at = first.line

    def all_records() -> Iterator[Record]:
        nonlocal at
        yield first
        for rec in chain(ahead, records):
            at = rec.line
            yield rec

    def events() -> Iterator[Sourced]:
        try:
            yield from fmt.read(all_records(), report, lax)
        except (FieldError, InvalidEvent) as exc:  # an importer that let a bad field through: the last record read
            raise InvalidLog(str(exc), line=at, path=report.path) from None

    return format, events()


def load(path: str, *, format: str | None = None, lenient: bool = False) -> Imported:
    """Import a whole file (``repair`` and the tests; ``check`` streams)."""
    report = ImportReport(path=path)
    with open_input(path) as handle:
        name, events = stream(handle, report, format=format, lenient=lenient)
        sources = tuple(events)
    return _imported(name, sources, report)


def load_text(text: str, *, format: str | None = None, lenient: bool = False, path: str = "<text>") -> Imported:
    """Import a file's text held in memory."""
    report = ImportReport(path=path)
    name, events = stream(io.BytesIO(text.encode("utf-8", "surrogateescape")), report, format=format, lenient=lenient)
    return _imported(name, tuple(events), report)


def _imported(name: str, sources: tuple[Sourced, ...], report: ImportReport) -> Imported:
    if len(sources) <= 1 and report.unreadable:
        raise InvalidLog("nothing usable: every record was unreadable", path=report.path)
    return Imported(name, tuple(s.event for s in sources), sources, report)


def detect_file(path: str) -> str:
    """The event format of the file at ``path`` (a one-line :class:`InvalidLog` if none)."""
    report = ImportReport(path=path)
    with open_input(path) as handle:
        name, _events = stream(handle, report, lenient=True)
    return name


def detect_format(path: str) -> str:
    """The format of the session file at ``path``: a message format, else an event format.

    Raises a one-line :class:`InvalidLog` when it is neither.
    """
    from .messages import sniff_messages

    return sniff_messages(path) or detect_file(path)


def export_text(log: tuple[Event, ...] | list[Event], format: str) -> str:
    """A canonical log as the text of a ``format`` file."""
    return "".join(line + "\n" for line in EVENT_FORMATS[format].export(log))


def _register() -> None:
    from .canonical import CANONICAL
    from .claude import CLAUDE
    from .codex import CODEX
    from .kimi_wire import KIMI_WIRE

    formats: tuple[EventFormat, ...] = (CANONICAL, KIMI_WIRE, CODEX, CLAUDE)
    for fmt in formats:
        EVENT_FORMATS[fmt.name] = fmt


_register()
