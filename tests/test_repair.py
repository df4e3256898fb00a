"""Repair, in every event format: complete, lossless, idempotent, and able to fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxref.formats.repair as repair
from ctxref.formats import EVENT_FORMATS, export_text, load_text
from ctxref.formats.repair import Repaired, repair_text
from ctxref.formats.verdict import check_file
from ctxspec.events import Event
from ctxspec.strategies import session_logs

ROOT = Path(__file__).parent.parent
FOLDERS = {"ctxcontract": ROOT / "examples", "kimi-wire": ROOT / "examples" / "kimi-wire", "codex": ROOT / "examples" / "codex", "claude": ROOT / "examples" / "claude"}
NAMES = ("todolist3", "crash-mid-parallel", "steer-during-parallel", "compaction-cut")


def lossless(before: str, after: Repaired) -> list[int]:
    """Input lines that are neither in the output nor named by a change (should be none).

    A renamed or rewritten line counts as named; everything else must be
    there byte for byte.
    """
    kept = set(lines(after.text))
    named = {c.line for c in after.changes}
    return [k for k, line in enumerate(lines(before), start=1) if line not in kept and k not in named]


def lines(text: str) -> list[str]:
    """Physical lines: they end at ``\n`` only, as every reader counts them."""
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def assert_repaired(text: str, fmt: str) -> Repaired:
    once = repair_text(text, fmt)
    assert once.remaining == (), once.remaining_text
    assert lossless(text, once) == []
    again = load_text(once.text, format=fmt)  # strict: the output reads in the same importer
    assert not again.report.unreadable
    twice = repair_text(once.text, fmt)
    assert twice.text == once.text and twice.changes == ()
    return once


@settings(max_examples=500)  # half the ci profile's: each log is repaired, checked and repaired again (the suite's 10 minutes)
@given(session_logs())
def test_repair_of_any_session_is_complete_lossless_and_idempotent(log: tuple[Event, ...]) -> None:
    for fmt in EVENT_FORMATS:  # one generated log for every format: generation is the cost
        text = export_text(log, fmt)
        assert load_text(text, format=fmt).log == log  # and every format round-trips it
        assert_repaired(text, fmt)


@pytest.mark.parametrize("fmt", sorted(FOLDERS))
@pytest.mark.parametrize("name", NAMES)
def test_examples_repair_and_then_check_clean(fmt: str, name: str, tmp_path: Path) -> None:
    path = FOLDERS[fmt] / f"{name}.jsonl"
    text = path.read_text(encoding="utf-8")
    before = check_file(str(path), format=fmt)
    once = assert_repaired(text, fmt)
    # every runtime example has something to repair; the canonical todolist3 is
    # clean on purpose (its bug is in a projector: examples/todolist_bug.py)
    clean = (fmt, name) == ("ctxcontract", "todolist3")
    assert bool(before.hazards) == bool(once.changes) == (not clean)
    out = tmp_path / "repaired.jsonl"
    out.write_text(once.text, encoding="utf-8")
    assert check_file(str(out), format=fmt).hazards == ()


CRASH = (ROOT / "examples" / "kimi-wire" / "crash-mid-parallel.jsonl").read_text(encoding="utf-8")


def test_a_repair_that_forgets_missing_results_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The completeness check fails on an engine that never inserts results."""
    assert repair_text(CRASH, "kimi-wire").remaining == ()
    monkeypatch.setattr(repair._Plan, "insert", lambda self, slot, text, prio=0: None)
    assert repair_text(CRASH, "kimi-wire").remaining != ()


def test_a_repair_that_drops_silently_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lossless check fails on an engine that drops a line without naming it."""
    text = (ROOT / "examples" / "crash-mid-parallel.jsonl").read_text(encoding="utf-8")
    honest = repair_text(text, "ctxcontract")
    assert lossless(text, honest) == []
    original = repair._Plan.drop

    def quiet(self: repair._Plan, line: int, why: str) -> None:
        original(self, line, why)
        self.changes.pop()

    monkeypatch.setattr(repair._Plan, "drop", quiet)
    orphan = text + '{"type":"tool.result","call_id":"nobody","output":"?","is_error":false}\n'
    assert lossless(orphan, repair_text(orphan, "ctxcontract")) != []


@given(st.sampled_from(sorted(FOLDERS)), st.sampled_from(NAMES), st.data())
def test_repair_keeps_unrelated_lines_byte_for_byte(fmt: str, name: str, data: st.DataObject) -> None:
    text = (FOLDERS[fmt] / f"{name}.jsonl").read_text(encoding="utf-8")
    once = repair_text(text, fmt)
    touched = {c.line for c in once.changes}
    physical = lines(text)
    k = data.draw(st.integers(1, len(physical)))
    if k not in touched:
        assert physical[k - 1] in lines(once.text)
