"""Our own canonical log (``docs/format.md``) as one more event format.

It lets every tool that takes a runtime file take a canonical log too, with
the same lenient mode and the same reports.
"""

from __future__ import annotations

import bisect

from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from ctxspec.errors import InvalidEvent
from ctxspec.events import Compaction, Event, SessionMeta, ToolResult, dumps_event, event_from_dict

from .base import FieldError, ImportReport, Lenience, Record, Sourced, Emitter


class CanonicalFormat:
    name: Final = "ctxcontract"
    title: Final = "ctxcontract canonical log"
    id_keys: Final = frozenset({"id", "call_id"})

    def sniff(self, first: Record) -> bool:
        return first.obj.get("type") == "session.meta"

    def read(self, records: Iterable[Record], report: ImportReport, lax: Lenience) -> Iterator[Sourced]:
        em = Emitter()
        skipped: list[int] = []  # original lines that are no canonical line: blank, unreadable
        for rec in records:
            skipped.extend(range(em.count + len(skipped) + 1, rec.line))
            try:
                event = event_from_dict(rec.obj)
                if isinstance(event, Compaction):  # upto names an original line
                    upto = event.upto - bisect.bisect_right(skipped, event.upto)
                    if upto < 1 or event.upto >= rec.line:
                        raise FieldError(f"compaction.upto {event.upto} must name an earlier line")
                    event = Compaction(summary=event.summary, upto=upto)
                if isinstance(event, SessionMeta) and em.started:
                    raise FieldError("session.meta may only be line 1")
                if not em.started and not isinstance(event, SessionMeta):
                    raise FieldError(f"line 1 must be session.meta, got {event.type}")
                em.emit(event, (rec.line,))
            except (InvalidEvent, FieldError) as exc:
                skipped.append(rec.line)
                lax.bad(rec.line, str(exc))
                continue
            yield from em.drain()

    def export(self, log: Sequence[Event]) -> Iterator[str]:
        for event in log:
            yield dumps_event(event)

    def export_sourced(self, log: Sequence[Event], *, final: bool = True) -> Iterator[tuple[int, str]]:
        for i, event in enumerate(log):
            yield i + 1, dumps_event(event)

    def result_record(self, event: ToolResult, name: str, near: Record | None) -> str:
        return dumps_event(event)


CANONICAL: Final = CanonicalFormat()
