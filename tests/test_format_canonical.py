"""Our canonical log read as one more format: same events, lenient mode, hostile input."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ctxref.formats import load_text
from ctxspec.errors import InvalidLog
from ctxspec.events import Compaction, load_log

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_examples_read_the_same_both_ways() -> None:
    for path in sorted(EXAMPLES.glob("*.jsonl")):
        assert load_text(path.read_text(encoding="utf-8")).log == load_log(str(path))


def test_lenient_mode_keeps_compactions_pointing_at_the_same_line() -> None:
    text = (
        '{"type":"session.meta","version":1}\n'
        '{"type":"turn.prompt","text":"a"}\n'
        "{not json\n"
        '{"type":"turn.steer","text":"b"}\n'
        '{"type":"compaction","summary":"s","upto":4}\n'
    )
    imported = load_text(text, lenient=True)
    assert [u.line for u in imported.report.unreadable] == [3]
    assert imported.log[-1] == Compaction(summary="s", upto=3)  # line 4 of the file is canonical line 3
    assert imported.origin(3) == 4


LINES = [line for p in sorted(EXAMPLES.glob("*.jsonl")) for line in p.read_text(encoding="utf-8").splitlines()]


@given(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=40)), max_size=12))
def test_any_mix_of_lines_raises_only_invalid_log(lines: list[str]) -> None:
    text = "\n".join(lines)
    for lenient in (False, True):
        try:
            load_text(text, format="ctxcontract", lenient=lenient)
        except InvalidLog:
            pass
