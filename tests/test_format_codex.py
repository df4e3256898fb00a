"""Codex CLI rollout JSONL: import, export, round trip, hostile input, the examples."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxref.formats.base as base
from ctxref.formats import EVENT_FORMATS, Imported, export_text, load, load_text
from ctxref.formats.codex import CODEX, NO_SUMMARY, is_injected, timestamp
from ctxref.projector import RepairKind, project_with_repairs
from ctxspec.errors import InvalidLog
from ctxspec.events import (
    Assistant,
    Compaction,
    Event,
    Notification,
    SessionMeta,
    StepBegin,
    StepEnd,
    StepError,
    ToolCall,
    ToolResult,
    TurnCancel,
    TurnEnd,
    TurnPrompt,
    Undo,
    parse_log,
)
from ctxspec.strategies import session_logs

#: tests/test_repair.py round-trips every format on every log of the profile; the
#: checks that are Codex's own run on a share of that (generating logs is the cost).
SHARE = settings(max_examples=max(50, settings().max_examples * 3 // 10))

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples" / "codex"
NAMES = ("todolist3", "crash-mid-parallel", "steer-during-parallel", "compaction-cut")
VERSION_NAMES = ("compacted-legacy", "compacted-windows", "turn-aborted")
SCRATCH = Path(tempfile.mkdtemp(prefix="ctx-codex-"))


def scratch(name: str, data: bytes | str) -> str:
    path = SCRATCH / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


def rollout(*records: tuple[str, dict[str, object]]) -> str:
    """A rollout file's text from ``(type, payload)`` pairs."""
    return "".join(json.dumps({"timestamp": timestamp(i), "type": k, "payload": p}) + "\n" for i, (k, p) in enumerate(records))


META = ("session_meta", {"id": "s", "timestamp": "t", "cwd": "/w", "originator": "o", "cli_version": "1", "source": "cli"})


def user(text: str) -> tuple[str, dict[str, object]]:
    return ("response_item", {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})


def said(text: str) -> tuple[str, dict[str, object]]:
    return ("response_item", {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})


def fcall(cid: str, name: str = "shell", args: str = "{}") -> tuple[str, dict[str, object]]:
    return ("response_item", {"type": "function_call", "name": name, "arguments": args, "call_id": cid})


def fout(cid: str, output: object, **extra: object) -> tuple[str, dict[str, object]]:
    return ("response_item", {"type": "function_call_output", "call_id": cid, "output": output, **extra})


def kinds(imp: Imported) -> list[tuple[str, tuple[int, ...]]]:
    return [(s.event.type, s.lines) for s in imp.sources]


# ---------------------------------------------------------------------------
# Round trip and export.
# ---------------------------------------------------------------------------


def has_native_form(event: Event, index: int) -> bool:
    """The events the exporter must write natively (``index``: 0-based position)."""
    if isinstance(event, TurnPrompt):
        return not is_injected(event.text)
    if isinstance(event, Notification):
        return is_injected(event.text)
    if isinstance(event, Assistant):
        return event.complete
    if isinstance(event, Compaction):
        return event.upto == index
    return isinstance(event, (ToolResult, TurnCancel, Undo))


@SHARE
@given(session_logs())
def test_round_trip(log: tuple[Event, ...]) -> None:
    """Import gives back every canonical log; export is native wherever Codex has a record,
    deterministic, and stable under import (one test: drawing the logs is the cost)."""
    text = export_text(log, "codex")
    imp = load_text(text)  # the format is detected from the first line
    assert imp.format == "codex"
    assert imp.log == log
    assert imp.report.unreadable == [] and not imp.report.skipped
    for i, s in enumerate(imp.sources):
        if not isinstance(s.event, (SessionMeta, StepBegin, StepEnd, StepError, TurnEnd)):
            assert s.native == has_native_form(s.event, i), (i, s)
    assert export_text(log, "codex") == text
    assert export_text(imp.log, "codex") == text
    stamps = [json.loads(line)["timestamp"] for line in text.split("\n") if line]
    assert stamps == [timestamp(i) for i in range(len(stamps))]


def test_export_of_a_clean_session_is_native_but_the_end() -> None:
    log = parse_log((ROOT / "examples" / "clean.jsonl").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in export_text(log, "codex").split("\n") if line]
    shape = [(r["type"], r["payload"].get("type", "")) for r in records]
    assert shape == [
        ("session_meta", ""),
        ("response_item", "message"),
        ("response_item", "function_call"),
        ("response_item", "function_call_output"),
        ("response_item", "message"),
        ("ctxcontract", "step.end"),  # Codex writes no record when a step or turn ends
        ("ctxcontract", "turn.end"),
    ]
    assert records[0]["payload"]["base_instructions"] == {"text": "You are a coding agent."}


def test_two_replies_in_a_row_are_kept_apart() -> None:
    log = (
        SessionMeta(),
        TurnPrompt(text="go"),
        StepBegin(),
        Assistant(text="a"),
        StepEnd(finish_reason="stop"),
        StepBegin(),
        Assistant(text="b"),
    )
    text = export_text(log, "codex")
    assert '"type":"ctxcontract","payload":{"type":"step.end"' in text  # the separator
    assert load_text(text).log == log


def test_result_record_imports_as_the_result() -> None:
    near = base.Record(7, {"timestamp": "2025-10-02T09:14:06.402Z", "type": "response_item", "payload": {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"}})
    event = ToolResult(call_id="c1", output="Tool call lost at crash.", is_error=True)
    line = json.loads(CODEX.result_record(event, "apply_patch", near))
    assert line["timestamp"] == "2025-10-02T09:14:06.402Z"
    assert line["payload"] == {"type": "custom_tool_call_output", "call_id": "c1", "output": "Tool call lost at crash.", "success": False}
    plain = json.loads(CODEX.result_record(ToolResult(call_id="c2", output="ok"), "shell", None))
    assert plain["payload"] == {"type": "function_call_output", "call_id": "c2", "output": "ok"}
    imp = load_text(rollout(META, user("go"), ("response_item", near.obj["payload"]), (line["type"], line["payload"])))
    assert imp.log[-1] == event


# ---------------------------------------------------------------------------
# The mapping, record by record.
# ---------------------------------------------------------------------------


def test_a_reply_is_every_assistant_side_item_until_the_next_other_record() -> None:
    text = rollout(
        META,
        ("response_item", {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions instructions>"}]}),
        user("<environment_context>\n<cwd>/w</cwd>\n</environment_context>"),
        ("turn_context", {"cwd": "/w"}),
        user("Run both."),
        ("event_msg", {"type": "user_message", "message": "Run both."}),
        ("response_item", {"type": "reasoning", "summary": [], "encrypted_content": "x"}),
        said("Running them."),
        ("event_msg", {"type": "agent_message", "message": "Running them."}),  # transparent
        fcall("a", args='{"command":["pytest"]}'),
        ("response_item", {"type": "local_shell_call", "call_id": "b", "status": "completed", "action": {"type": "exec", "command": ["ruff"]}}),
        ("response_item", {"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "*** Begin Patch"}),
        fout("b", "clean"),
    )
    imp = load_text(text)
    assert kinds(imp) == [
        ("session.meta", (1,)),
        ("notification", (3,)),
        ("turn.prompt", (5,)),
        ("step.begin", (7, 8, 10, 11, 12)),
        ("assistant", (7, 8, 10, 11, 12)),
        ("tool.result", (13,)),
    ]
    reply = imp.log[4]
    assert reply == Assistant(
        text="Running them.",
        calls=(
            ToolCall(id="a", name="shell", args='{"command":["pytest"]}'),
            ToolCall(id="b", name="local_shell", args='{"type":"exec","command":["ruff"]}'),
            ToolCall(id="c", name="apply_patch", args="*** Begin Patch"),
        ),
    )
    skipped = imp.report.skipped
    assert skipped["response_item.message.developer"] == 1 and skipped["turn_context"] == 1
    assert skipped["event_msg.user_message"] == 1 and skipped["event_msg.agent_message"] == 1
    assert skipped["response_item.reasoning"] == 1


def test_a_user_message_starts_a_turn_and_ends_the_running_one() -> None:
    imp = load_text(rollout(META, user("one"), fcall("a"), user("two"), said("done"), user("three")))
    assert [e for e in imp.log[1:]] == [
        TurnPrompt(text="one"),
        StepBegin(),
        Assistant(calls=(ToolCall(id="a", name="shell"),)),
        StepEnd(finish_reason="tool_calls"),
        TurnEnd(),
        TurnPrompt(text="two"),
        StepBegin(),
        Assistant(text="done"),
        StepEnd(finish_reason="stop"),
        TurnEnd(),
        TurnPrompt(text="three"),
    ]


@pytest.mark.parametrize(
    "output, extra, expected",
    [
        ("plain", {}, ("plain", False)),
        ("failed", {"success": False}, ("failed", True)),
        ([{"type": "input_text", "text": "a"}, {"type": "input_image", "image_url": "data:"}, {"type": "input_text", "text": "b"}], {}, ("a\n[image]\nb", False)),
        ({"content": "no such file", "success": False}, {}, ("no such file", True)),
        ({"content": [{"type": "input_text", "text": "ok"}], "success": True}, {}, ("ok", False)),
    ],
)
def test_output_forms(output: object, extra: dict[str, object], expected: tuple[str, bool]) -> None:
    imp = load_text(rollout(META, user("go"), fcall("a"), fout("a", output, **extra)))
    assert imp.log[-1] == ToolResult(call_id="a", output=expected[0], is_error=expected[1])


def test_system_prompt_from_base_instructions_or_instructions() -> None:
    base_meta = ("session_meta", {"id": "s", "base_instructions": {"text": "B"}, "instructions": "I"})
    assert load_text(rollout(base_meta, user("x"))).log[0] == SessionMeta(system="B")
    old_meta = ("session_meta", {"id": "s", "instructions": "I"})
    assert load_text(rollout(old_meta, user("x"))).log[0] == SessionMeta(system="I")
    imp = load_text(rollout(META, user("x"), old_meta))
    assert imp.log[0] == SessionMeta() and imp.report.skipped["session_meta (repeated)"] == 1


def test_compacted_covers_everything_before_it() -> None:
    legacy = ("compacted", {"message": "S"})
    imp = load_text(rollout(META, user("go"), fcall("a"), legacy, fout("a", "ok")))
    assert imp.log[4:] == (Compaction(summary="S", upto=4), ToolResult(call_id="a", output="ok"))
    history = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "a"},
        {"type": "compaction", "encrypted_content": "x"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "S"}]},
    ]
    imp = load_text(rollout(META, user("go"), ("compacted", {"message": "S", "replacement_history": history})))
    assert imp.log[-1] == Compaction(summary="go\n\n[call shell a] {}\n\nS", upto=2)
    assert imp.report.skipped["compacted.replacement_history.compaction"] == 1
    remote = ("compacted", {"message": "", "replacement_history": [{"type": "compaction", "encrypted_content": "x"}]})
    assert load_text(rollout(META, user("go"), remote)).log[-1] == Compaction(summary=NO_SUMMARY, upto=2)


def test_turn_aborted_and_thread_rolled_back() -> None:
    aborted = ("event_msg", {"type": "turn_aborted", "reason": "interrupted"})
    rolled = ("event_msg", {"type": "thread_rolled_back", "num_turns": 2})
    imp = load_text(rollout(META, user("go"), fcall("a"), aborted, aborted, user("again"), rolled))
    assert imp.log[1:] == (
        TurnPrompt(text="go"),
        StepBegin(),
        Assistant(calls=(ToolCall(id="a", name="shell"),)),
        TurnCancel(),
        TurnPrompt(text="again"),
        TurnEnd(),
        Undo(count=2),
    )
    assert imp.report.skipped["event_msg.turn_aborted (no turn running)"] == 1


def test_injected_user_messages_are_notifications() -> None:
    for text in ("<environment_context>x</environment_context>", "  # AGENTS.md instructions for /w\n\n<INSTRUCTIONS>", "<USER_SHELL_COMMAND>ls</USER_SHELL_COMMAND>", "<turn_aborted>"):
        assert is_injected(text)
        assert load_text(rollout(META, user(text))).log[-1] == Notification(text=text)
    assert not is_injected("please read <environment_context>")


def test_extension_records_are_read_back_as_such() -> None:
    steer = ("ctxcontract", {"type": "turn.steer", "text": "also this"})
    imp = load_text(rollout(META, user("go"), steer))
    assert imp.log[-1] == parse_log('{"type":"session.meta","version":1}\n{"type":"turn.steer","text":"also this"}\n')[1]
    assert [s.native for s in imp.sources] == [True, True, False]


@pytest.mark.parametrize(
    "record, why",
    [
        (fcall(""), "call.id: must not be empty"),
        (("response_item", {"type": "function_call", "name": "x", "call_id": "a"}), "missing field 'arguments'"),
        (("response_item", {"type": "message", "role": "user", "content": "hi"}), "field 'content': expected an array"),
        (("ctxcontract", {"type": "nonsense"}), "unknown event type"),
        (("compacted", {"message": 3}), "field 'message'"),
        (("event_msg", {"type": "thread_rolled_back", "num_turns": 0}), "at least 1"),
        (fout("a", 5), "field 'output'"),
    ],
)
def test_bad_records_name_their_line(record: tuple[str, dict[str, object]], why: str) -> None:
    text = rollout(META, user("go"), record)
    with pytest.raises(InvalidLog) as exc:
        load_text(text, format="codex", path="r.jsonl")
    assert exc.value.line == 3 and why in exc.value.message
    imp = load_text(text, format="codex", lenient=True)
    assert [b.line for b in imp.report.unreadable] == [3] and imp.log[-1] == TurnPrompt(text="go")


def test_a_reply_in_no_turn_is_refused_at_its_first_line() -> None:
    text = rollout(META, ("response_item", {"type": "reasoning", "summary": []}), said("hello"), user("go"))
    with pytest.raises(InvalidLog) as exc:
        load_text(text, format="codex")
    assert exc.value.line == 2 and "no user prompt" in exc.value.message


def test_unknown_records_are_skipped_and_counted() -> None:
    text = rollout(META, user("go"), ("fancy_new_kind", {}), ("response_item", {"type": "tool_search_call"}), ("event_msg", {"type": "token_count"}))
    imp = load_text(text)
    assert imp.log[-1] == TurnPrompt(text="go")
    assert imp.report.skipped == {"fancy_new_kind": 1, "response_item.tool_search_call": 1, "event_msg.token_count": 1}


# ---------------------------------------------------------------------------
# Fuzz: random and mutated input raises only InvalidLog.
# ---------------------------------------------------------------------------

EXAMPLE_LINES = {name: (EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8").split("\n")[:-1] for name in NAMES}
WRONG = st.sampled_from([None, 0, -1, True, "", "x", [], [1], {}, {"type": 1}, 1.5])


def mutate(obj: object, path: list[int], how: str, value: object) -> object:
    """Change one nested field of a record: delete it or give it ``value``."""
    if isinstance(obj, dict) and obj:
        keys = sorted(obj)
        key = keys[path[0] % len(keys)] if path else keys[0]
        if len(path) > 1 and isinstance(obj[key], (dict, list)) and obj[key]:
            return {**obj, key: mutate(obj[key], path[1:], how, value)}
        if how == "delete":
            return {k: v for k, v in obj.items() if k != key}
        return {**obj, key: value}
    if isinstance(obj, list) and obj:
        i = path[0] % len(obj) if path else 0
        return [*obj[:i], mutate(obj[i], path[1:], how, value), *obj[i + 1 :]]
    return value


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    lines = list(EXAMPLE_LINES[draw(st.sampled_from(NAMES))])
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "retype", "unknown", "truncate", "garbage"]))
        try:
            json.loads(lines[k])
        except ValueError:  # already broken by an earlier mutation
            how = "truncate"
        if how == "truncate":
            lines[k] = lines[k][: draw(st.integers(0, len(lines[k])))]
        elif how == "garbage":
            lines[k] = draw(st.sampled_from(["\ufffd", "null", "[]", "{", '"x"', "{}"]))
        elif how == "unknown":
            lines[k] = json.dumps(mutate(json.loads(lines[k]), [draw(st.integers(0, 9))], "set", draw(st.sampled_from(["mystery", "event_msg", "ctxcontract"]))))
        else:
            path = draw(st.lists(st.integers(0, 9), min_size=1, max_size=4))
            lines[k] = json.dumps(mutate(json.loads(lines[k]), path, how, draw(WRONG)))
    data = "\n".join(lines).encode("utf-8") + draw(st.sampled_from([b"\n", b""]))
    if draw(st.booleans()):
        k = draw(st.integers(0, len(data)))
        data = data[:k] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\r\n"])) + data[k:]
    return data


def import_both(data: bytes) -> None:
    strict: Imported | None = None
    try:
        strict = load(scratch("fuzz.jsonl", data), format="codex")
    except InvalidLog as exc:
        assert "\n" not in str(exc)
    lenient = load(scratch("fuzz.jsonl", data), format="codex", lenient=True)
    if strict is not None:
        assert lenient.log == strict.log


@given(mutated_files())
def test_mutated_examples_raise_only_invalid_log(data: bytes) -> None:
    import_both(data)


@given(st.one_of(st.binary(max_size=300), st.lists(st.text(max_size=40), max_size=6).map(lambda ls: "\n".join(ls).encode("utf-8"))))
def test_random_input_raises_only_invalid_log(data: bytes) -> None:
    for lenient in (False, True):
        try:
            load(scratch("random.jsonl", data), format="codex", lenient=lenient)
        except InvalidLog as exc:
            assert "\n" not in str(exc)


# ---------------------------------------------------------------------------
# Hostile files.
# ---------------------------------------------------------------------------

GOOD = rollout(META, user("go"), fcall("a"), fout("a", "ok"))


@pytest.mark.parametrize(
    "name, data, line, words",
    [
        ("empty.jsonl", b"", None, "empty file"),
        ("blank.jsonl", b"\n  \n\n", None, "empty file"),
        ("bad-json.jsonl", (GOOD.splitlines()[0] + "\n{oops\n" + GOOD.splitlines()[1] + "\n").encode(), 2, "malformed JSON"),
        ("latin1.jsonl", GOOD.encode() + b'{"type":"event_msg","payload":{"type":"x","m":"caf\xe9"}}\n', 5, "not UTF-8"),
        ("array.jsonl", GOOD.encode() + b"[1, 2]\n", 5, "expected a JSON object"),
    ],
)
def test_hostile_files_are_one_line_errors(name: str, data: bytes, line: int | None, words: str) -> None:
    path = scratch(name, data)
    with pytest.raises(InvalidLog) as exc:
        load(path, format="codex")
    message = str(exc.value)
    assert "\n" not in message and path in message and words in message
    assert exc.value.line == line


def test_a_directory_is_refused() -> None:
    with pytest.raises(InvalidLog, match="is a directory"):
        load(str(SCRATCH), format="codex")


def test_a_truncated_last_line_is_skipped_and_noted() -> None:
    path = scratch("torn.jsonl", GOOD + GOOD.splitlines()[2][:30])
    imp = load(path)
    assert imp.log == load_text(GOOD).log
    assert [n.line for n in imp.report.notes] == [5]


def test_a_huge_line_is_refused_without_reading_it_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "MAX_LINE_BYTES", 256)
    path = scratch("huge.jsonl", GOOD + json.dumps({"type": "response_item", "payload": {"type": "function_call_output", "call_id": "a", "output": "x" * 5000}}) + "\n" + GOOD.splitlines()[1] + "\n")
    with pytest.raises(InvalidLog) as exc:
        load(path, format="codex")
    assert exc.value.line == 5 and "longer than" in exc.value.message and path in str(exc.value)
    imp = load(path, format="codex", lenient=True)
    assert [b.line for b in imp.report.unreadable] == [5] and imp.log[-1] == TurnPrompt(text="go")


def test_detection_and_nothing_usable() -> None:
    assert CODEX.sniff(base.Record(1, json.loads(GOOD.splitlines()[0])))
    assert not CODEX.sniff(base.Record(1, {"type": "session.meta", "version": 1}))
    assert not CODEX.sniff(base.Record(1, {"type": "user", "message": {}}))
    assert EVENT_FORMATS["codex"] is CODEX
    with pytest.raises(InvalidLog, match="nothing"):
        load_text("{bad\n{worse\n", format="codex", lenient=True)


# ---------------------------------------------------------------------------
# The examples.
# ---------------------------------------------------------------------------

#: For each example: every canonical event as (type, original lines), then the
#: reference projector's repairs as (kind, original line).
EXPECTED: dict[str, tuple[list[tuple[str, tuple[int, ...]]], list[tuple[RepairKind, int]]]] = {
    "todolist3": (
        [
            ("session.meta", (1,)),
            ("notification", (3,)),
            ("turn.prompt", (5,)),
            ("step.begin", (7, 8, 10)),
            ("assistant", (7, 8, 10)),
            ("step.end", (13,)),
            ("turn.end", (13,)),
            ("turn.prompt", (13,)),
            ("tool.result", (15,)),
            ("step.begin", (16, 17)),
            ("assistant", (16, 17)),
            ("tool.result", (18,)),
            ("step.end", (19,)),
            ("step.begin", (19,)),
            ("assistant", (19,)),
        ],
        [(RepairKind.INPUT_HELD, 13)],
    ),
    "crash-mid-parallel": (
        [
            ("session.meta", (1,)),
            ("notification", (3,)),
            ("turn.prompt", (5,)),
            ("step.begin", (7, 8, 9)),
            ("assistant", (7, 8, 9)),
            ("tool.result", (10,)),
            ("step.end", (12,)),
            ("turn.end", (12,)),
            ("turn.prompt", (12,)),
            ("step.begin", (14, 15, 17)),
            ("assistant", (14, 15, 17)),
            ("tool.result", (18,)),
            ("step.end", (19,)),
            ("step.begin", (19,)),
            ("assistant", (19,)),
        ],
        [(RepairKind.SYNTHETIC_RESULT, 14), (RepairKind.INPUT_HELD, 12)],
    ),
    "steer-during-parallel": (
        [
            ("session.meta", (1,)),
            ("notification", (3,)),
            ("turn.prompt", (5,)),
            ("step.begin", (7, 8, 9)),
            ("assistant", (7, 8, 9)),
            ("tool.result", (10,)),
            ("step.end", (11,)),
            ("turn.end", (11,)),
            ("turn.prompt", (11,)),
            ("tool.result", (13,)),
            ("step.begin", (14, 15)),
            ("assistant", (14, 15)),
            ("tool.result", (16,)),
            ("step.end", (17,)),
            ("step.begin", (17,)),
            ("assistant", (17,)),
        ],
        [(RepairKind.INPUT_HELD, 11)],
    ),
    "compaction-cut": (
        [
            ("session.meta", (1,)),
            ("notification", (3,)),
            ("turn.prompt", (5,)),
            ("step.begin", (7, 8)),
            ("assistant", (7, 8)),
            ("compaction", (11,)),
            ("tool.result", (13,)),
            ("step.end", (14, 15)),
            ("step.begin", (14, 15)),
            ("assistant", (14, 15)),
        ],
        [(RepairKind.EXCHANGE_KEPT_WHOLE, 11)],
    ),
}


@pytest.mark.parametrize("name", NAMES)
def test_example_imports_as_expected(name: str) -> None:
    imp = load(str(EXAMPLES / f"{name}.jsonl"))
    events, repairs = EXPECTED[name]
    assert imp.format == "codex" and not imp.report.unreadable
    assert kinds(imp) == events
    assert all(s.native for s in imp.sources)
    _, found, _ = project_with_repairs(imp.log)
    assert [(r.kind, imp.origin(r.line)) for r in found] == repairs


def test_example_details() -> None:
    todo = load(str(EXAMPLES / "todolist3.jsonl"))
    assert todo.log[0] == SessionMeta(system="You are Codex, a coding agent running in the Codex CLI on the user's machine.")
    reply = todo.log[4]
    assert isinstance(reply, Assistant) and reply.text == "I'll write a plan first."
    assert [(c.id, c.name) for c in reply.calls] == [("call_plan3", "update_plan")]
    assert json.loads(reply.calls[0].args)["plan"][1] == {"step": "Add tests for the totals", "status": "pending"}
    cut = load(str(EXAMPLES / "compaction-cut.jsonl"))
    summary = cut.log[5]
    assert isinstance(summary, Compaction) and summary.upto == 5
    assert summary.summary.startswith("<environment_context>") and "\n\nFind the slow test.\n\nAnother language model" in summary.summary
    assert "permissions" not in summary.summary  # developer messages are not user context


def test_examples_readme_names_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in NAMES + VERSION_NAMES:
        assert f"`{name}.jsonl`" in readme


# ---------------------------------------------------------------------------
# Repair (the engine is ctxref.formats.repair; these check the Codex side).
# ---------------------------------------------------------------------------


#: What repair does to each example: (input line, action).  Every hazard is mended.
REPAIRS = {
    "todolist3": [(15, "moved")],  # the plan's output moved up before the next prompt
    "crash-mid-parallel": [(10, "moved"), (12, "inserted before")],  # results together, an error result for call_pyt
    "steer-during-parallel": [(13, "moved")],  # call_tox's output moved up before the typed message
    "compaction-cut": [(11, "moved")],  # the compaction moved before the exchange it cut
}


@pytest.mark.parametrize("name", NAMES)
def test_repair_mends_every_hazard(name: str) -> None:
    from ctxref.formats.repair import repair_text

    text = (EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8")
    once = repair_text(text, "codex")
    assert [(c.line, c.action) for c in once.changes] == REPAIRS[name]
    assert once.remaining == ()
    again = load_text(once.text, format="codex")  # strict: every line still reads
    assert not again.report.unreadable and all(s.native for s in again.sources)
    assert project_with_repairs(again.log)[1] == []
    twice = repair_text(once.text, "codex")
    assert twice.changes == () and twice.text == once.text


# ---------------------------------------------------------------------------
# Rollouts across Codex versions: compaction records and interrupts.
# ---------------------------------------------------------------------------

#: For each example: the hazards (rule, original line) and a part of the log that shows its shape.
VERSIONS: dict[str, list[tuple[str, int]]] = {
    "compacted-legacy": [],
    "compacted-windows": [],
    "turn-aborted": [("C5", 11)],
}


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_version_example_checks_and_round_trips(name: str) -> None:
    from ctxref.formats.verdict import check_file

    verdict = check_file(str(EXAMPLES / f"{name}.jsonl"))
    assert verdict.format == "codex" and not verdict.report.unreadable and not verdict.report.notes
    assert [(h.rule, h.line) for h in verdict.hazards] == VERSIONS[name]
    imp = load(str(EXAMPLES / f"{name}.jsonl"))
    assert all(s.native for s in imp.sources)
    assert load_text(export_text(imp.log, "codex"), format="codex").log == imp.log


def test_a_legacy_compacted_record_is_its_message() -> None:
    """Before the replacement history, a ``compacted`` record held the summary alone."""
    imp = load(str(EXAMPLES / "compacted-legacy.jsonl"))
    (c,) = [(e, s.lines) for e, s in zip(imp.log, imp.sources) if isinstance(e, Compaction)]
    assert c[0].summary.startswith("The user asked why checkout is slow.") and c[1] == (9,)
    assert c[0].upto == imp.log.index(c[0])  # everything before it


def test_a_windowed_compacted_record_reads_its_history_and_counts_the_encrypted_item() -> None:
    """Newer writers add window fields and keep an encrypted ``compaction`` item in the history."""
    imp = load(str(EXAMPLES / "compacted-windows.jsonl"))
    (c,) = [e for e in imp.log if isinstance(e, Compaction)]
    assert c.summary == "Rename Cart.total to Cart.subtotal everywhere."
    assert imp.report.skipped["compacted.replacement_history.compaction"] == 1
    assert imp.report.skipped["event_msg.context_compacted"] == 1


def test_turn_aborted_with_and_without_a_turn_id_is_a_cancel() -> None:
    imp = load(str(EXAMPLES / "turn-aborted.jsonl"))
    cancels = [s.line for s in imp.sources if isinstance(s.event, TurnCancel)]
    assert cancels == [6, 11]
    notes = [e for e in imp.log if isinstance(e, Notification)]
    assert [n.text.split("\n")[0] for n in notes] == ["<environment_context>", "<turn_aborted>"]


def test_each_call_has_the_line_of_its_own_record() -> None:
    """A call after a reasoning item is declared on its function_call line, not on the reasoning's."""
    from ctxref.formats.verdict import check_file

    imp = load(str(EXAMPLES / "crash-mid-parallel.jsonl"))
    reply = imp.sources[4]
    assert isinstance(reply.event, Assistant) and reply.lines == (7, 8, 9) and reply.calls == (8, 9)
    assert [reply.call_line(i) for i in range(2)] == [8, 9]
    (hazard,) = [h for h in check_file(str(EXAMPLES / "crash-mid-parallel.jsonl")).hazards if h.rule == "C5"]
    assert "call_pyt (declared at line 8)" in hazard.what
    (aborted,) = check_file(str(EXAMPLES / "turn-aborted.jsonl")).hazards
    assert "call_suite (declared at line 10)" in aborted.what


def test_a_reused_id_is_placed_on_the_second_calls_own_record(tmp_path: Path) -> None:
    from ctxref.formats.verdict import check_file

    def item(payload: dict[str, object]) -> str:
        return json.dumps({"timestamp": "2026-01-01T00:00:00.000Z", "type": "response_item", "payload": payload})

    lines = [
        json.dumps({"timestamp": "2026-01-01T00:00:00.000Z", "type": "session_meta", "payload": {"id": "x"}}),
        item({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}),
        item({"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"}),
        item({"type": "function_call_output", "call_id": "c1", "output": "a"}),
        item({"type": "reasoning", "summary": [], "encrypted_content": "e"}),
        item({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "again"}]}),
        item({"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"}),
        item({"type": "function_call_output", "call_id": "c1", "output": "b"}),
    ]
    path = tmp_path / "rollout.jsonl"
    path.write_text("\n".join(lines) + "\n")
    (hazard,) = check_file(str(path)).hazards
    assert hazard.rule == "C3" and hazard.line == 7


def test_a_finding_about_a_call_on_its_reply_is_placed_on_the_calls_record() -> None:
    """Imported.call_origin: what the contract's findings (check --projector) are mapped with."""
    imp = load(str(EXAMPLES / "crash-mid-parallel.jsonl"))
    reply = 5  # canonical line of the assistant that declares call_pyt and call_ruf
    assert isinstance(imp.log[reply - 1], Assistant)
    assert imp.origin(reply) == 7
    assert [imp.call_origin(reply, c) for c in ("call_pyt", "call_ruf", "other", None)] == [8, 9, 7, 7]
    assert imp.call_origin(6, "call_pyt") == imp.origin(6)  # not an assistant: its own line


def test_repair_closes_the_aborted_call() -> None:
    from ctxref.formats.repair import repair_text

    once = repair_text((EXAMPLES / "turn-aborted.jsonl").read_text(encoding="utf-8"), "codex")
    assert [(c.line, c.action) for c in once.changes] == [(11, "inserted before")] and once.remaining == ()
    assert project_with_repairs(load_text(once.text, format="codex").log)[1] == []
