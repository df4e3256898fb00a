"""The canonical log format: events validate, round-trip, and the loader names file and line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given

from ctxspec.errors import InvalidEvent, InvalidLog
from ctxspec.events import (
    EVENT_CLASSES,
    Assistant,
    Compaction,
    SessionMeta,
    ToolCall,
    ToolResult,
    TurnPrompt,
    dumps_log,
    event_from_dict,
    event_to_dict,
    json_schema,
    load_log,
    parse_log,
)
from ctxspec.strategies import session_logs

SCHEMA_FILE = Path(__file__).parent.parent / "docs" / "session.schema.json"


@given(session_logs())
def test_logs_round_trip_through_jsonl(log: tuple[object, ...]) -> None:
    assert parse_log(dumps_log(log)) == log  # type: ignore[arg-type]


def test_schema_in_docs_is_the_generated_one() -> None:
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == json_schema()


def test_schema_lists_every_event_type() -> None:
    types = [branch["properties"]["type"]["const"] for branch in json_schema()["oneOf"]]  # type: ignore[index, union-attr]
    assert types == [cls.type for cls in EVENT_CLASSES]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: TurnPrompt(text=""), "turn.prompt.text: must not be empty"),
        (lambda: TurnPrompt(text=3), "turn.prompt.text: expected a string, got an integer"),
        (lambda: ToolResult(call_id="", output="x"), "tool.result.call_id: must not be empty"),
        (lambda: ToolResult(call_id="a", output="x", is_error="no"), "tool.result.is_error: expected true or false"),
        (lambda: Compaction(summary="s", upto=0), "compaction.upto: must be at least 1"),
        (lambda: Assistant(calls=(ToolCall(id="a", name=""),)), "call.name: must not be empty"),
        (lambda: SessionMeta(version=2), "unsupported version 2"),
    ],
)
def test_invalid_events_cannot_exist(build: object, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        build()  # type: ignore[operator]


def test_event_dicts_reject_unknown_and_missing_fields() -> None:
    with pytest.raises(InvalidEvent, match="unknown field 'txt'"):
        event_from_dict({"type": "turn.prompt", "txt": "hi"})
    with pytest.raises(InvalidEvent, match="missing field 'text'"):
        event_from_dict({"type": "turn.prompt"})
    with pytest.raises(InvalidEvent, match="calls\\[0\\].id: expected a string"):
        event_from_dict({"type": "assistant", "calls": [{"id": 7, "name": "x"}]})
    assert event_from_dict(event_to_dict(TurnPrompt(text="hi"))) == TurnPrompt(text="hi")


META = '{"type":"session.meta","version":1}\n'


@pytest.mark.parametrize(
    "content, line, message",
    [
        (b"", 1, "empty file"),
        (META.encode() + b'{"type":"turn.prompt","text":"hi"\n', 2, "malformed JSON"),
        (META.encode() + b'{"type":"turn.prompt","te', 2, "truncated last line"),
        (META.encode() + b'{"type":"turn.wave"}\n', 2, "unknown event type 'turn.wave'"),
        (META.encode() + b'{"type":"undo","count":"2"}\n', 2, "undo.count: expected an integer, got a string"),
        (META.encode() + b"\n", 2, "blank line"),
        (b'{"type":"turn.prompt","text":"hi"}\n', 1, "line 1 must be session.meta"),
        (META.encode() + META.encode(), 2, "session.meta may only be line 1"),
        (META.encode() + b"[1, 2]\n", 2, "expected a JSON object, got an array"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, content: bytes, line: int, message: str) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(content)
    with pytest.raises(InvalidLog) as info:
        load_log(str(path))
    assert info.value.line == line
    assert message in info.value.message
    text = info.value.one_line()
    assert text.startswith(f"{path}:{line}: ") and "\n" not in text


def test_unreadable_paths(tmp_path: Path) -> None:
    with pytest.raises(InvalidLog, match="is a directory"):
        load_log(str(tmp_path))
    with pytest.raises(InvalidLog, match="no such file"):
        load_log(str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(META.encode() + '{"type":"turn.prompt","text":"caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(InvalidLog, match="not UTF-8"):
        load_log(str(bad))
    assert os.path.exists(bad)  # never touched
