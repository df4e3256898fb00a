"""repair_stream: the same repair as repair_text, from a file to a file, in memory of the order of check's."""

from __future__ import annotations

import gc
import io
import random
import re
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxref.formats.repair as repair
from ctxref.formats import EVENT_FORMATS, export_text, load_text
from ctxref.formats.repair import RepairReport, repair_stream, repair_text
from ctxref.formats.verdict import check_file
from ctxspec.errors import InvalidLog
from ctxspec.events import (
    Assistant,
    Compaction,
    Event,
    Resume,
    SessionMeta,
    StepBegin,
    StepEnd,
    ToolCall,
    ToolResult,
    TurnEnd,
    TurnPrompt,
    TurnSteer,
)
from ctxspec.state import validate_log
from ctxspec.strategies import session_logs

#: tests/test_repair.py repairs every generated log in every format through
#: repair_text (itself repair_stream over memory); comparing it with a stream
#: over real and spooled files runs on a share of the profile (generating logs is the cost).
SHARE = settings(max_examples=max(50, settings().max_examples // 4))

ROOT = Path(__file__).parent.parent
FOLDERS = {"ctxcontract": ROOT / "examples", "kimi-wire": ROOT / "examples" / "kimi-wire", "codex": ROOT / "examples" / "codex", "claude": ROOT / "examples" / "claude"}
NAMES = ("todolist3", "crash-mid-parallel", "steer-during-parallel", "compaction-cut")


def streamed(data: bytes, fmt: str, *, lenient: bool = False, spooled: bool = False) -> tuple[bytes, RepairReport]:
    """Repair ``data`` the way the command line does: a seekable binary file in, a temporary file out."""
    source: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=1024) if spooled else io.BytesIO()  # type: ignore[assignment]
    source.write(data)
    source.seek(0)
    with tempfile.TemporaryFile() as sink:
        report = repair_stream(source, fmt, sink, lenient=lenient, path="session.jsonl")
        sink.seek(0)
        return sink.read(), report


def assert_same(text: str, fmt: str, *, lenient: bool = False, spooled: bool = False) -> RepairReport | None:
    """Both ways give the same bytes and report, or the same one-line error."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        whole = repair_text(text, fmt, lenient=lenient, path="session.jsonl")
    except InvalidLog as exc:
        with pytest.raises(InvalidLog, match=re.escape(str(exc))):
            streamed(data, fmt, lenient=lenient, spooled=spooled)
        return None
    out, report = streamed(data, fmt, lenient=lenient, spooled=spooled)
    assert out.decode("utf-8", "surrogateescape") == whole.text
    assert (report.changes, report.remaining, report.remaining_text) == (whole.changes, whole.remaining, whole.remaining_text)
    assert report.format == fmt
    assert report.lines_in == data.count(b"\n") + (not data.endswith(b"\n"))
    assert report.lines_out == out.count(b"\n") + (bool(out) and not out.endswith(b"\n"))
    return report


@pytest.mark.parametrize("fmt", sorted(FOLDERS))
@pytest.mark.parametrize("name", NAMES)
def test_examples_stream_as_they_repair_in_memory(fmt: str, name: str) -> None:
    path = FOLDERS[fmt] / f"{name}.jsonl"
    with open(path, "rb") as source, tempfile.TemporaryFile() as sink:
        report = repair_stream(source, fmt, sink)
        sink.seek(0)
        out = sink.read()
    assert out.decode("utf-8") == repair_text(path.read_text(encoding="utf-8"), fmt).text
    assert report.remaining == ()
    assert assert_same(path.read_text(encoding="utf-8"), fmt, spooled=True) is not None


@SHARE
@given(session_logs(), st.sampled_from(sorted(EVENT_FORMATS)), st.booleans())
def test_generated_sessions_stream_as_they_repair_in_memory(log: tuple[Event, ...], fmt: str, spooled: bool) -> None:
    assert_same(export_text(log, fmt), fmt, spooled=spooled)


@SHARE
@given(session_logs(), st.data())
def test_hostile_edits_stream_as_they_repair_in_memory(log: tuple[Event, ...], data: st.DataObject) -> None:
    """Lines moved, repeated, broken, and no newline at the end."""
    fmt = data.draw(st.sampled_from(sorted(EVENT_FORMATS)))
    lines = export_text(log, fmt).split("\n")[:-1]
    i, j = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines)))
    how = data.draw(st.sampled_from(["move", "repeat", "break", "crlf"]))
    if how == "move":
        lines.insert(j, lines.pop(i))
    elif how == "repeat":
        lines.insert(j, lines[i])
    elif how == "break":
        lines.insert(j, '{"broken')
    else:
        lines[i] += "\r"
    text = "\n".join(lines) + data.draw(st.sampled_from(["", "\n"]))
    for lenient in (False, True):
        assert_same(text, fmt, lenient=lenient)


def test_nothing_to_repair_copies_the_bytes() -> None:
    clean = (ROOT / "examples" / "clean.jsonl").read_bytes()
    for data in (clean, clean.replace(b"\n", b"\r\n"), clean.rstrip(b"\n")):
        out, report = streamed(data, "ctxcontract")
        assert out == data and report.changes == () and report.lines_in == report.lines_out


def test_an_insert_at_the_end_of_the_file_is_named_so() -> None:
    log = (SessionMeta(), TurnPrompt(text="hi"), StepBegin(), Assistant(text="", calls=(ToolCall(id="a", name="x", args="{}"),)))
    for fmt in EVENT_FORMATS:
        once = repair_text(export_text(log, fmt), fmt)
        inserted = [c for c in once.changes if c.action == "appended"]
        assert [c.line for c in inserted] == [0] and str(inserted[0]).startswith("at the end, after line ")


def test_strict_mode_names_the_first_line_that_is_not_utf8() -> None:
    good = (FOLDERS["kimi-wire"] / "crash-mid-parallel.jsonl").read_bytes().split(b"\n")
    data = b"\n".join([*good[:3], b'{"type":"caf\xe9"}', *good[3:]])
    with pytest.raises(InvalidLog) as err:
        streamed(data, "kimi-wire")
    assert str(err.value).startswith("session.jsonl:4: not UTF-8") and "\n" not in str(err.value)
    out, report = streamed(data, "kimi-wire", lenient=True)  # leniently the line is dropped, and named
    assert b"caf\xe9" not in out and any(c.line == 4 and c.action == "dropped" and "unreadable" in c.detail for c in report.changes)
    assert load_text(out.decode("utf-8"), format="kimi-wire").report.unreadable == []


def test_an_unknown_format_is_one_line() -> None:
    with pytest.raises(InvalidLog, match="no repair for format 'kimi-context'"):
        streamed(b"{}\n", "kimi-context")


RunSpec = list[tuple[bool, int]]


def composition_errors(first: RunSpec, second: RunSpec, compose: Callable[[repair._Runs, repair._Runs], repair._Runs]) -> list[int]:
    """Lines where ``compose(later, earlier)`` disagrees with composing the plain lists of every line's source."""

    def build(spec: RunSpec, sources: int) -> tuple[repair._Runs, list[int]]:
        runs, flat, next_source = repair._Runs(), [], 1
        for kept, count in spec:
            for _ in range(count):
                source = next_source if kept and next_source <= sources else 0
                next_source += bool(source)
                runs.add(source)
                flat.append(source)
        return runs, flat

    earlier, a = build(first, 10**6)
    later, b = build(second, len(a))
    composed = compose(later, earlier)
    expected = [a[s - 1] if s else 0 for s in b]
    wrong = [k for k in range(1, len(b) + 1) if composed(k) != expected[k - 1]]
    # an inserted line is named by the next line that has a source
    wrong += [k for k in range(1, len(b) + 1) if composed.named(k) != next((x for x in expected[k - 1 :] if x), 0)]
    return wrong


SPECS = st.lists(st.tuples(st.booleans(), st.integers(1, 4)), max_size=12)


@given(SPECS, SPECS)
def test_runs_compose_as_lists(first: RunSpec, second: RunSpec) -> None:
    """Line maps kept as runs compose like the lists of every line's source."""
    assert composition_errors(first, second, lambda later, earlier: later.then(earlier)) == []


def test_the_composition_check_can_fail() -> None:
    """Composing in the wrong order (a plausible slip) is caught on a small case."""
    first, second = [(True, 2), (False, 1), (True, 2)], [(False, 1), (True, 4)]
    assert composition_errors(first, second, lambda later, earlier: earlier.then(later)) != []


# ---------------------------------------------------------------------------
# Memory: a fraction of the file, and a whole-file reading fails the same bound.
# ---------------------------------------------------------------------------


def big_session(turns: int, output_bytes: int, seed: int = 3) -> Iterator[Event]:
    """A session whose bytes are mostly tool outputs, with a hazard every few
    turns: a steer inside an exchange, a crash, a late result, results out of
    order, an orphan, and a compaction now and then."""
    rng = random.Random(seed)
    words = "the a parser test file module error line value token".split()
    late: str | None = None
    line = 1
    yield SessionMeta(system="You are a coding agent.")
    for turn in range(turns):
        calls = tuple(ToolCall(id=f"Shell:{turn}.{i}", name="Shell", args='{"cmd":"make"}') for i in range(rng.randint(1, 3)))
        out = [ToolResult(call_id=c.id, output=" ".join(rng.choice(words) for _ in range(output_bytes // 5))) for c in calls]
        events: list[Event] = [TurnPrompt(text=f"turn {turn}"), StepBegin(), Assistant(text="on it", calls=calls)]
        if late is not None:
            events.insert(1, ToolResult(call_id=late, output="finally"))
            late = None
        kind = turn % 7
        if kind == 1:  # the user steered inside the exchange
            events += [out[0], TurnSteer(text="also check the docs"), *out[1:], StepEnd(), TurnEnd()]
        elif kind == 3:  # the runtime died with a call open; its result arrives next turn, or never
            events += [*out[:-1], Resume()]
            late = calls[-1].id if turn % 2 else None
        elif kind == 5:  # results out of order, and an orphan
            events += [*reversed(out), ToolResult(call_id="Ghost:0", output="?"), StepEnd(), TurnEnd()]
        else:
            events += [*out, StepEnd(), TurnEnd()]
        line += len(events)
        yield from events
        if turn % 10 == 9:
            yield Compaction(summary="what happened so far", upto=line - 3)
            line += 1


def write_big(path: Path, fmt: str, turns: int, output_bytes: int) -> int:
    log = tuple(big_session(turns, output_bytes))
    validate_log(log)
    with open(path, "w", encoding="utf-8") as out:
        for line in EVENT_FORMATS[fmt].export(log):
            out.write(line + "\n")
    return path.stat().st_size


def peak_while(job: IO[bytes], fmt: str, whole: bool = False) -> tuple[int, RepairReport]:
    """Peak traced memory of repairing ``job`` (``whole``: after reading it whole, as repair_text did)."""
    gc.collect()
    tracemalloc.start()
    try:
        source: IO[bytes] = io.BytesIO(job.read()) if whole else job
        with tempfile.TemporaryFile() as sink:
            report = repair_stream(source, fmt, sink)
        return tracemalloc.get_traced_memory()[1], report
    finally:
        tracemalloc.stop()


#: The bound: a repair holds less than this share of the file.
MEMORY_SHARE = 0.1


@pytest.mark.parametrize("fmt", ["kimi-wire", "codex"])
def test_repair_memory_is_a_small_fraction_of_the_file(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    size = write_big(path, fmt, turns=350, output_bytes=40_000)
    assert size > 25_000_000
    with open(path, "rb") as job:
        peak, report = peak_while(job, fmt)
    kinds = {c.action for c in report.changes}
    assert {"moved", "inserted before", "dropped", "renumbered"} <= kinds
    assert peak < MEMORY_SHARE * size, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
    gc.collect()
    tracemalloc.start()
    try:  # of the order of check's, which streams the same file through the same projector
        check_file(str(path), format=fmt)
        checked = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * checked
    # The bound can fail: holding the file whole, as the old repair did, breaks it.
    with open(path, "rb") as job:
        whole, _ = peak_while(job, fmt, whole=True)
    assert whole > MEMORY_SHARE * size
    print(f"{fmt}: {size / 1e6:.1f} MB file, peak {peak / 1e6:.2f} MB streaming ({checked / 1e6:.2f} MB check), {whole / 1e6:.1f} MB read whole")


#: A Claude transcript with one line moved, readable as it is, that repair
#: cannot finish: its own first round writes a file the reader refuses
#: (found by moving lines of generated sessions; about one in five such
#: Claude files).  Kept until the bug is fixed.
UNFINISHED = Path(__file__).parent / "repair_cases" / "claude_moved_line_unfinished.jsonl"


def test_a_repair_that_cannot_finish_says_so_and_names_no_line_of_the_input() -> None:
    text = UNFINISHED.read_text(encoding="utf-8")
    load_text(text, format="claude")  # the input itself is readable
    with pytest.raises(InvalidLog) as caught:
        repair_text(text, "claude", path="t.jsonl")
    assert caught.value.line is None
    assert caught.value.one_line().startswith("t.jsonl: repair could not finish: its own edits of round 1 made the file unreadable")


@pytest.mark.xfail(strict=True, reason="known bug: repair of a Claude transcript with a moved line can make it unreadable (tests/repair_cases)")
def test_repair_finishes_on_a_readable_claude_file_with_a_moved_line() -> None:
    repaired = repair_text(UNFINISHED.read_text(encoding="utf-8"), "claude")
    load_text(repaired.text, format="claude")
