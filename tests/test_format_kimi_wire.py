"""Kimi Code wire.jsonl: import, export, round trip, hostile input, the examples."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxref.formats.base as base
import ctxref.formats.kimi_wire as kimi
from ctxref.formats import export_text, load, load_text
from ctxref.formats.verdict import check_file
from ctxspec.errors import InvalidLog
from ctxspec.events import (
    Assistant,
    Compaction,
    Event,
    Notification,
    SessionMeta,
    StepBegin,
    StepEnd,
    ToolCall,
    ToolResult,
    TurnPrompt,
    TurnSteer,
)
from ctxspec.strategies import session_logs

#: tests/test_repair.py round-trips every format on every log of the profile; the
#: checks that are Kimi's own run on a share of that (generating logs is the cost).
SHARE = settings(max_examples=max(50, settings().max_examples * 3 // 10))

EXAMPLES = Path(__file__).parent.parent / "examples" / "kimi-wire"
META = {"type": "metadata", "protocol_version": "1.4", "created_at": 1}


def wire(*records: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in (META, *records))


def loop(event: dict[str, object]) -> dict[str, object]:
    return {"type": "context.append_loop_event", "event": event}


def prompt(text: str) -> dict[str, object]:
    return {"type": "turn.prompt", "input": [{"type": "text", "text": text}], "origin": {"kind": "user"}}


def round_trips(log: tuple[Event, ...]) -> bool:
    return load_text(export_text(log, "kimi-wire"), format="kimi-wire").log == log


# ---------------------------------------------------------------------------
# Round trip.
# ---------------------------------------------------------------------------


@SHARE
@given(session_logs())
def test_every_canonical_log_round_trips(log: tuple[Event, ...]) -> None:
    text = export_text(log, "kimi-wire")
    assert load_text(text, format="kimi-wire").log == log
    assert export_text(log, "kimi-wire") == text  # deterministic


LOG = (
    SessionMeta(system="be brief"),
    TurnPrompt(text="go"),
    StepBegin(),
    Assistant(text="ok", calls=(ToolCall(id="a", name="Shell", args='{"cmd": "ls"}'),)),
    StepEnd(finish_reason="tool_use"),
    ToolResult(call_id="a", output="x"),
)


def test_round_trip_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that forgets the step end is caught by the same check."""
    assert round_trips(LOG)
    original = kimi._Writer.event

    def forgetful(self: kimi._Writer, event: Event, line: int, nxt: Event | None) -> Iterator[str]:
        return iter(()) if isinstance(event, StepEnd) else original(self, event, line, nxt)

    monkeypatch.setattr(kimi._Writer, "event", forgetful)
    assert not round_trips(LOG)


def test_native_records_where_kimi_has_them() -> None:
    text = export_text(LOG, "kimi-wire")
    kinds = [json.loads(line)["type"] for line in text.splitlines()]
    assert "ctxcontract.event" not in kinds
    assert kinds[:2] == ["metadata", "config.update"]


# ---------------------------------------------------------------------------
# Mapping.
# ---------------------------------------------------------------------------


def test_prompt_mirror_is_skipped_and_parts_make_one_reply() -> None:
    text = wire(
        prompt("hi"),
        {"type": "context.append_message", "message": {"role": "user", "content": [{"type": "text", "text": "hi"}], "toolCalls": [], "origin": {"kind": "user"}}},
        loop({"type": "step.begin", "uuid": "s", "turnId": "1", "step": 1}),
        loop({"type": "content.part", "stepUuid": "s", "part": {"type": "think", "think": "hmm"}}),
        loop({"type": "content.part", "stepUuid": "s", "part": {"type": "text", "text": "a"}}),
        loop({"type": "content.part", "stepUuid": "s", "part": {"type": "text", "text": "b"}}),
        loop({"type": "tool.call", "stepUuid": "s", "toolCallId": "c", "name": "Shell", "args": {"x": 1}}),
        {"type": "usage.record", "model": "k", "usage": {}},
        {"type": "someday.new_kind"},
        loop({"type": "tool.result", "parentUuid": "c", "toolCallId": "c", "result": {"output": [{"type": "text", "text": "out"}], "note": "<system>1 line</system>"}}),
    )
    imp = load_text(text)
    assert imp.format == "kimi-wire"
    assert [(s.event, s.lines) for s in imp.sources[1:]] == [
        (TurnPrompt(text="hi"), (2,)),
        (StepBegin(), (4,)),
        (Assistant(text="ab", calls=(ToolCall(id="c", name="Shell", args='{"x": 1}'),)), (6, 7, 8)),
        (ToolResult(call_id="c", output="out\n<system>1 line</system>"), (11,)),
    ]
    assert imp.report.skipped["usage.record"] == 1 and imp.report.skipped["someday.new_kind"] == 1


def test_injected_user_message_is_a_notification_and_a_late_system_prompt_is_kept_out() -> None:
    text = wire(
        {"type": "config.update", "systemPrompt": "sys"},
        prompt("go"),
        {"type": "context.append_message", "message": {"role": "user", "content": "<system-reminder>x</system-reminder>", "origin": {"kind": "injection"}}},
        {"type": "config.update", "systemPrompt": "other"},
    )
    imp = load_text(text)
    assert imp.log == (SessionMeta(system="sys"), TurnPrompt(text="go"), Notification(text="<system-reminder>x</system-reminder>"))
    assert imp.report.skipped["config.update"] == 1


def test_compacted_count_maps_to_the_last_covered_message() -> None:
    text = wire(
        prompt("one"),
        loop({"type": "step.begin", "uuid": "s", "turnId": "1", "step": 1}),
        loop({"type": "content.part", "stepUuid": "s", "part": {"type": "text", "text": "r"}}),
        loop({"type": "step.end", "uuid": "s", "turnId": "1", "step": 1, "finishReason": "end_turn"}),
        prompt("two"),
        {"type": "context.apply_compaction", "summary": "S", "compactedCount": 2},
    )
    log = load_text(text).log
    assert log[-1] == Compaction(summary="S", upto=4)  # the prompt and the reply
    assert log[3] == Assistant(text="r")


def test_steer_is_read_in_turn() -> None:
    text = wire(prompt("go"), {"type": "turn.steer", "input": [{"type": "text", "text": "faster"}], "origin": {"kind": "user"}})
    assert load_text(text).log[-1] == TurnSteer(text="faster")


# ---------------------------------------------------------------------------
# Bad and hostile input.
# ---------------------------------------------------------------------------


def one_line_error(text: str | bytes, tmp_path: Path, **kw: object) -> str:
    path = tmp_path / "wire.jsonl"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    with pytest.raises(InvalidLog) as info:
        load(str(path), format="kimi-wire", **kw)  # type: ignore[arg-type]
    message = info.value.one_line()
    assert "\n" not in message and str(path) in message
    return message


def test_hostile_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert one_line_error("", tmp_path).endswith("empty file: no records")
    assert "empty file" in one_line_error("\n\n", tmp_path)
    assert ":2: malformed JSON" in one_line_error(wire() + "{oops\n" + json.dumps(prompt("x")) + "\n", tmp_path)
    assert ":2: not UTF-8" in one_line_error(wire().encode() + b'{"type": "\xff"}\n', tmp_path)
    assert ":1:" in one_line_error(json.dumps(prompt("x")) + "\n", tmp_path) and "metadata" in one_line_error(json.dumps(prompt("x")) + "\n", tmp_path)
    assert ":2: expected a JSON object" in one_line_error(wire() + "[1]\n", tmp_path)
    assert ":2: turn.prompt" in one_line_error(wire({"type": "turn.prompt", "input": 5}), tmp_path)
    monkeypatch.setattr(base, "MAX_LINE_BYTES", 64)
    assert ":2: line longer than" in one_line_error(wire(prompt("x" * 200)), tmp_path)
    with pytest.raises(InvalidLog, match="directory"):
        load(str(tmp_path))


def test_a_field_no_event_can_hold_is_a_bad_line(tmp_path: Path) -> None:
    """An empty call id passes the type check but no call can have it."""
    call = loop({"type": "tool.call", "stepUuid": "s", "toolCallId": "", "name": "Shell", "args": {}})
    text = wire(prompt("x"), loop({"type": "step.begin", "uuid": "s", "turnId": "1", "step": 1}), call)
    assert ":4: context.append_loop_event: call.id: must not be empty" in one_line_error(text, tmp_path)
    assert [u.line for u in load_text(text, lenient=True).report.unreadable] == [4]


def test_a_truncated_last_line_is_skipped_and_noted() -> None:
    text = wire(prompt("x")) + '{"type":"turn.pro'
    imp = load_text(text)
    assert imp.log == (SessionMeta(), TurnPrompt(text="x"))
    assert [n.line for n in imp.report.notes] == [3]


def test_lenient_mode_skips_and_counts() -> None:
    text = wire(prompt("x")) + "{oops\n" + json.dumps({"type": "turn.steer", "input": 3}) + "\n" + json.dumps(prompt("y")) + "\n"
    imp = load_text(text, lenient=True)
    assert imp.log[-1] == TurnPrompt(text="y")
    assert [u.line for u in imp.report.unreadable] == [3, 4]


EXAMPLE_LINES = [line for p in sorted(EXAMPLES.glob("*.jsonl"), key=lambda p: (p.name.startswith("protocol-"), p.name)) for line in p.read_text(encoding="utf-8").splitlines()]


def mutate(draw: st.DrawFn) -> str:
    lines = list(EXAMPLE_LINES[:40])
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["cut", "drop-key", "retype", "garbage", "swap"]))
        if how == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif how == "garbage":
            lines[i] = draw(st.text(max_size=30))
        elif how == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            try:
                obj = json.loads(lines[i])
            except ValueError:
                continue  # already broken by an earlier mutation
            if not isinstance(obj, dict) or not obj:
                continue
            target = obj.get("event", obj) if isinstance(obj.get("event"), dict) else obj
            keys = sorted(target)
            if not keys:
                continue
            key = keys[draw(st.integers(0, len(keys) - 1))]
            if how == "drop-key":
                del target[key]
            else:
                target[key] = draw(st.sampled_from([None, 7, [], {}, "s", "", True]))
            lines[i] = json.dumps(obj)
    return "\n".join(lines) + "\n"


@given(st.composite(mutate)())
def test_mutated_files_raise_only_invalid_log(text: str) -> None:
    for lenient in (False, True):
        try:
            load_text(text, format="kimi-wire", lenient=lenient)
        except InvalidLog:
            pass


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_invalid_log(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    for lenient in (False, True):
        try:
            load_text(text, format="kimi-wire", lenient=lenient)
        except InvalidLog:
            pass


# ---------------------------------------------------------------------------
# The examples: the rule and the original line of every hazard.
# ---------------------------------------------------------------------------

EXPECTED = {
    "todolist3": [("C6", 12)],
    "crash-mid-parallel": [("C5", 12), ("C6", 10)],
    "steer-during-parallel": [("C6", 8)],
    "compaction-cut": [("C7", 8)],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_hazards(name: str) -> None:
    verdict = check_file(str(EXAMPLES / f"{name}.jsonl"))
    assert verdict.format == "kimi-wire"
    assert sorted((h.rule, h.line) for h in verdict.hazards) == sorted(EXPECTED[name])


def test_todolist3_projection_names_the_line_of_the_result() -> None:
    verdict = check_file(str(EXAMPLES / "todolist3.jsonl"))
    tool = [(m, line) for m, line in verdict.messages if m.role == "tool"]
    assert len(tool) == 1 and tool[0][1] == 14


def test_the_fuzz_property_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """An importer that lets a foreign exception out is caught by the mutated-files property."""
    original = kimi._Reader.loop_event

    def careless(self: kimi._Reader, event: dict[str, object], line: int) -> None:
        if event.get("type") == "tool.result" and not isinstance(event.get("result"), dict):
            raise KeyError("result")  # a bug: not the importer's own error
        original(self, event, line)

    monkeypatch.setattr(kimi._Reader, "loop_event", careless)
    # The property's own body, on a file its mutations make (a result retyped to a
    # string): a random search finds one only some of the time, so it would flake.
    retyped = "\n".join(line.replace('"result":{"output":"12 passed in 3.1s"}', '"result":"s"') for line in EXAMPLE_LINES[:40]) + "\n"
    assert retyped != "\n".join(EXAMPLE_LINES[:40]) + "\n"
    with pytest.raises(KeyError):
        test_mutated_files_raise_only_invalid_log.hypothesis.inner_test(retyped)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# Protocol versions, and the legacy Kimi CLI wire.jsonl that looks like one.
# ---------------------------------------------------------------------------

VERSION_EXAMPLES = {
    # name: (hazards, notes naming a line, the calls' (id, name, args))
    "protocol-1.0-message-only": ([], [2], [("Shell:7", "Shell", '{"command": "pytest tests/lexer -q"}')]),
    "protocol-1.0-turns": ([], [3], [("ReadFile:2", "ReadFile", '{"path": "lexer.py"}'), ("Shell:3", "Shell", '{"command": "git mv tests/old tests/lexer"}')]),
    "protocol-1.5-note": ([], [], [("Shell:1", "Shell", '{"command": "wc -c app.log"}')]),
    "protocol-newer": ([], [1], []),
}


@pytest.mark.parametrize("name", sorted(VERSION_EXAMPLES))
def test_version_examples(name: str) -> None:
    hazards, notes, calls = VERSION_EXAMPLES[name]
    verdict = check_file(str(EXAMPLES / f"{name}.jsonl"))
    assert verdict.format == "kimi-wire"
    assert [(h.rule, h.line) for h in verdict.hazards] == hazards
    assert [n.line for n in verdict.report.notes] == notes
    log = load(str(EXAMPLES / f"{name}.jsonl")).log
    assert [(c.id, c.name, c.args) for e in log if isinstance(e, Assistant) for c in e.calls] == calls
    assert round_trips(log)


def test_a_reply_with_no_prompt_before_it_gets_a_placeholder_turn_and_a_note() -> None:
    imp = load(str(EXAMPLES / "protocol-1.0-message-only.jsonl"))
    assert imp.log[1] == TurnPrompt(text=kimi.NO_PROMPT)
    assert imp.sources[1].lines == (2,)
    assert "placeholder" in imp.report.notes[0].why


def test_a_prompt_with_no_input_adds_no_user_message() -> None:
    """The 1.0 importer's turn for a history that starts with a reply: Kimi Code only counts it."""
    imp = load(str(EXAMPLES / "protocol-1.0-turns.jsonl"))
    prompts = [e.text for e in imp.log if isinstance(e, TurnPrompt)]
    assert prompts == [kimi.NO_PROMPT, "Now port the tests."]
    assert imp.report.skipped["turn.prompt (no input: no user message)"] == 1


def test_1_5_note_follows_the_output() -> None:
    imp = load(str(EXAMPLES / "protocol-1.5-note.jsonl"))
    (result,) = [e for e in imp.log if isinstance(e, ToolResult)]
    assert result.output == "4096 app.log\n<system>Command exited with code 0.</system>"


@pytest.mark.parametrize(
    ("version", "read_as"),
    [("1.0", "1.0"), ("1.2", "1.2"), ("1.5", "1.5"), ("1.6", "1.5"), ("1.10", "1.5"), ("2.0", "1.5"), ("0.9", "1.0"), ("next", "1.5")],
)
def test_unknown_versions_read_as_the_nearest_known_one_with_a_note(version: str, read_as: str) -> None:
    assert kimi.nearest_version(version) == read_as
    text = json.dumps({"type": "metadata", "protocol_version": version, "created_at": 1}) + "\n" + json.dumps(prompt("hi")) + "\n"
    imp = load_text(text)
    assert imp.format == "kimi-wire"
    assert [n.line for n in imp.report.notes] == ([] if version == read_as else [1])
    if version != read_as:
        assert f"read as {read_as}" in imp.report.notes[0].why


KIMI_CLI = Path(__file__).parent.parent / "examples" / "kimi-cli-wire" / "session"


def test_a_kimi_cli_wire_is_refused_naming_the_context_beside_it() -> None:
    path = str(KIMI_CLI / "wire.jsonl")
    for format in (None, "kimi-wire"):
        with pytest.raises(InvalidLog) as err:
            check_file(path, format=format, lenient=True)
        message = str(err.value)
        assert message.count("\n") == 0 and err.value.line == 2
        assert "Kimi CLI wire.jsonl" in message and str(KIMI_CLI / "context.jsonl") in message and "kimi-context" in message


def test_a_kimi_cli_wire_with_no_header_is_refused_too(tmp_path: Path) -> None:
    """Kimi CLI wrote no metadata line before protocol 1.2 (its legacy version is 1.1)."""
    lines = (KIMI_CLI / "wire.jsonl").read_text().splitlines(keepends=True)[1:]
    (tmp_path / "wire.jsonl").write_text("".join(lines))
    with pytest.raises(InvalidLog, match=r"Kimi CLI wire\.jsonl.*the session's context\.jsonl \(in the same directory\)") as err:
        check_file(str(tmp_path / "wire.jsonl"))
    assert err.value.line == 1


def test_the_context_beside_a_kimi_cli_wire_is_checked() -> None:
    from ctxref.formats import detect_format
    from ctxref.formats.messages import check_messages_file

    assert detect_format(str(KIMI_CLI / "context.jsonl")) == "kimi-context"
    loaded, violations = check_messages_file(str(KIMI_CLI / "context.jsonl"))
    assert violations == [] and [m.role for m in loaded.messages] == ["system", "user", "assistant", "tool", "assistant"]


def test_kimi_code_metadata_without_created_at_is_still_kimi_code() -> None:
    """Detection looks at the records, not at the header's fields: no misfire the other way."""
    text = json.dumps({"type": "metadata", "protocol_version": "1.3"}) + "\n" + json.dumps(prompt("hi")) + "\n"
    assert load_text(text).log[1] == TurnPrompt(text="hi")


def test_each_call_has_the_line_of_its_tool_call_record() -> None:
    """Not the line of the content.part that starts the reply."""
    imp = load(str(EXAMPLES / "crash-mid-parallel.jsonl"))
    (reply,) = [s for s in imp.sources if isinstance(s.event, Assistant) and s.event.calls]
    assert reply.lines == (6, 7, 8) and reply.calls == (7, 8)
    (hazard,) = [h for h in check_file(str(EXAMPLES / "crash-mid-parallel.jsonl")).hazards if h.rule == "C5"]
    assert "Shell:2 (declared at line 8)" in hazard.what
    whole = load(str(EXAMPLES / "protocol-1.0-turns.jsonl"))  # calls inside a message: on the message's line
    assert all(s.calls == () for s in whole.sources)


def test_a_placeholder_prompt_is_not_a_message_of_kimis_history() -> None:
    """compactedCount counts Kimi's own messages: the placeholder turn's prompt is not one."""
    text = (EXAMPLES / "protocol-1.0-message-only.jsonl").read_text()
    compaction = {"type": "context.apply_compaction", "summary": "the lexer tests pass", "compactedCount": 2, "tokensBefore": 0, "tokensAfter": 0}
    imp = load_text(text + json.dumps(compaction) + "\n")
    (c,) = [e for e in imp.log if isinstance(e, Compaction)]
    assert imp.log[c.upto - 1] == TurnSteer(text="Run the lexer tests again.")  # the reply on line 2 and this message (no turn records: input in the one turn)


def test_a_bad_reply_with_no_prompt_before_it_leaves_no_placeholder_behind() -> None:
    meta = {"type": "metadata", "protocol_version": "1.0", "created_at": 1}
    bad = {"type": "context.append_message", "message": {"role": "assistant", "content": "x", "toolCalls": [{"id": ""}]}}
    imp = load_text("".join(json.dumps(r) + "\n" for r in (meta, bad, prompt("hi"))), lenient=True)
    assert imp.log[1:] == (TurnPrompt(text="hi"),) and imp.report.notes == [] and len(imp.report.unreadable) == 1


def test_detection_alone_tells_a_kimi_cli_wire_from_a_kimi_code_one() -> None:
    from ctxref.formats import detect_format

    with pytest.raises(InvalidLog, match="Kimi CLI wire.jsonl") as err:
        detect_format(str(KIMI_CLI / "wire.jsonl"))
    assert err.value.line == 2
    assert detect_format(str(EXAMPLES / "protocol-1.0-message-only.jsonl")) == "kimi-wire"
