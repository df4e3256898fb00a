"""The fast paths of ``check`` give exactly the verdicts of the plain ones.

``read_records`` reads every line of every event format (canonical,
kimi-wire, codex, claude) and of the Kimi CLI context.jsonl with msgspec, and
falls back to ``json`` for a line msgspec will not read.  Here the plain path
reads every line with ``json`` alone (``_parse_plain``), and both read the same
generated logs, exported in each format, with hostile lines mixed in: the
verdict (events, hazards and their lines and messages, the request at the end,
the import report) or the one-line refusal must be the same.  Events are checked on construction
by a quick test per field before the schema: a value passes the quick test
only if the schema accepts it.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxref.formats.base as base
from ctxref.formats import EVENT_FORMATS, export_text
from ctxref.formats.messages import check_messages_file, export_kimi_context
from ctxref.formats.verdict import check_file
from ctxref.projector import Projector
from ctxspec.errors import InvalidLog
import ctxspec.events as events
from ctxspec.events import EVENT_CLASSES, Event, ToolCall
from ctxspec.strategies import session_logs

T = TypeVar("T")

#: Lines the standard library and msgspec may read differently, or not at all.
HOSTILE: tuple[bytes, ...] = (
    b"",  # blank
    b"   ",
    b'{"type":"usage.record","v":NaN}',  # json only
    b'{"type":"usage.record","v":1e400}',  # json only
    b'{"type":"usage.record","v":"\\ud800"}',  # a lone surrogate escape: json only
    b'{"type":"usage.record","v":123456789012345678901234567890}',  # both, as an int
    b'{"type":"usage.record","v":"\xff"}',  # not UTF-8
    b'{"type":"usage.record"',  # malformed
    b'{"type":"usage.record"} x',  # trailing data
    b"[1, 2]",  # not an object
    b'"text"',
    b"[" * 3000 + b"]" * 3000,  # nested too deeply for json
    b'{"type": "usage.record", "a": 1, "a": 2}',  # a key twice
)

FORMATS = sorted(EVENT_FORMATS)
FEW = settings(max_examples=max(10, settings().max_examples // 10), deadline=None)


@contextmanager
def plain() -> Iterator[None]:
    """Every line read by the standard library alone, as before msgspec."""
    with mock.patch.object(base, "_parse", base._parse_plain):
        yield


def outcome(run: Callable[[], T]) -> T | str:
    try:
        return run()
    except InvalidLog as exc:
        return f"refused: {exc}"


@st.composite
def damaged(draw: st.DrawFn, text: str) -> bytes:
    """``text`` with hostile lines put in, some lines ending in CRLF, maybe a truncated last line."""
    lines = text.encode("utf-8").splitlines()
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(HOSTILE)))
    ends = [b"\r\n" if draw(st.booleans()) and draw(st.booleans()) else b"\n" for _ in lines]
    data = b"".join(line + end for line, end in zip(lines, ends))
    if draw(st.booleans()) and draw(st.booleans()):
        data = data.rstrip(b"\r\n")[: -draw(st.integers(1, 5))]  # the writer died mid-line
    return data


def written(data: bytes, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


@FEW
@given(log=session_logs(max_events=30), format=st.sampled_from(FORMATS), lenient=st.booleans(), data=st.data())
def test_check_file_same_verdict(log: tuple[Event, ...], format: str, lenient: bool, data: st.DataObject) -> None:
    raw = data.draw(damaged(export_text(log, format)))
    path = written(raw, f".{format}.jsonl")
    try:
        fast = outcome(lambda: check_file(path, format=format, lenient=lenient))
        with plain():
            slow = outcome(lambda: check_file(path, format=format, lenient=lenient))
        assert fast == slow
    finally:
        os.unlink(path)


@FEW
@given(log=session_logs(max_events=30), lenient=st.booleans(), data=st.data())
def test_kimi_context_same_verdict(log: tuple[Event, ...], lenient: bool, data: st.DataObject) -> None:
    projector = Projector()
    for event in log:
        projector.feed(event)
    raw = data.draw(damaged(export_kimi_context(projector.messages())))
    path = written(raw, ".context.jsonl")
    try:
        fast = outcome(lambda: check_messages_file(path, "kimi-context", lenient=lenient))
        with plain():
            slow = outcome(lambda: check_messages_file(path, "kimi-context", lenient=lenient))
        assert fast == slow
    finally:
        os.unlink(path)


@pytest.mark.parametrize("line", HOSTILE)
def test_hostile_line_same_reading(line: bytes) -> None:
    """Each hostile line on its own, strict and lenient, read by both paths."""
    for lenient in (False, True):
        report_fast, report_slow = base.ImportReport(), base.ImportReport()
        got_fast = outcome(lambda: repr(_records(line + b"\n", report_fast, lenient)))
        with plain():
            got_slow = outcome(lambda: repr(_records(line + b"\n", report_slow, lenient)))
        assert got_fast == got_slow
        assert report_fast == report_slow


def _records(data: bytes, report: base.ImportReport, lenient: bool) -> list[base.Record]:
    return list(base.read_records(io.BytesIO(b'{"type":"metadata"}\n' + data + b'{"type":"x"}\n'), report, lenient=lenient))


# ---------------------------------------------------------------------------
# Events are checked by a quick test per field before the schema.
# ---------------------------------------------------------------------------

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.lists(st.just(ToolCall(id="a", name="b")), max_size=2).map(tuple),
    st.lists(st.just(ToolCall(id="a", name="b")), max_size=2),
    st.tuples(st.just(ToolCall(id="a", name="b")), st.text(max_size=2)),
)


@given(cls=st.sampled_from(EVENT_CLASSES + (ToolCall,)), value=VALUES)
def test_quick_field_test_passes_only_what_the_schema_accepts(cls: type[object], value: object) -> None:
    for name, quick, spec in events._quick_tests(cls):
        if quick(value):
            events._check_value(value, spec, name)  # must not raise
