"""Claude Code transcripts: the tree, the mapping, export, hostile input, the examples, repair."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxref.formats.base as base
from ctxref.formats import EVENT_FORMATS, Imported, detect, export_text, load, load_text
from ctxref.formats.claude import CLAUDE, EXTENSION, RAW_ARGS, relink
from ctxref.projector import RepairKind, project_with_repairs
from ctxspec.errors import InvalidLog
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
    parse_log,
)
from ctxspec.strategies import session_logs

#: tests/test_repair.py round-trips every format on every log of the profile; the
#: checks that are Claude's own run on a share of that (generating logs is the cost).
SHARE = settings(max_examples=max(50, settings().max_examples * 3 // 10))

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples" / "claude"
NAMES = ("todolist3", "crash-mid-parallel", "steer-during-parallel", "compaction-cut")
SCRATCH = Path(tempfile.mkdtemp(prefix="ctx-claude-"))


def scratch(name: str, data: bytes | str) -> str:
    path = SCRATCH / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


# -- a tiny transcript builder: entries named by short ids --------------------


def entry(kind: str, uid: str | None, parent: str | None, **fields: object) -> dict[str, object]:
    out: dict[str, object] = {"parentUuid": parent, "isSidechain": False, "sessionId": "s", "type": kind, **fields}
    if uid is not None:
        out["uuid"] = uid
    return out


def prompt(uid: str, parent: str | None, text: str, **extra: object) -> dict[str, object]:
    return entry("user", uid, parent, message={"role": "user", "content": text}, **extra)


def results(uid: str, parent: str | None, *pairs: tuple[str, str], error: bool = False) -> dict[str, object]:
    blocks: list[dict[str, object]] = [{"type": "tool_result", "tool_use_id": c, "content": o, **({"is_error": True} if error else {})} for c, o in pairs]
    return entry("user", uid, parent, message={"role": "user", "content": blocks})


def line(uid: str, parent: str | None, msg: str, block: dict[str, object], stop: str | None = None, **extra: object) -> dict[str, object]:
    message = {"id": msg, "type": "message", "role": "assistant", "content": [block], "stop_reason": stop}
    return entry("assistant", uid, parent, message=message, **extra)


def said(t: str) -> dict[str, object]:
    return {"type": "text", "text": t}


def use(cid: str, name: str = "Bash", **inp: object) -> dict[str, object]:
    return {"type": "tool_use", "id": cid, "name": name, "input": inp}


def transcript(*entries: dict[str, object]) -> str:
    return "".join(json.dumps(e) + "\n" for e in entries)


def physical(text: str) -> list[str]:
    """Lines as the repair engine splits them: at ``\n`` only (not at U+0085 or U+2028)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def kinds(imp: Imported) -> list[tuple[str, tuple[int, ...]]]:
    return [(s.event.type, s.lines) for s in imp.sources]


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in text.split("\n") if x]


# ---------------------------------------------------------------------------
# Round trip and export.
# ---------------------------------------------------------------------------


@SHARE
@given(session_logs())
def test_round_trip_and_a_deterministic_single_chain_export(log: tuple[Event, ...]) -> None:
    """One property for both (generating the logs is most of the cost)."""
    text = export_text(log, "claude")
    imp = load_text(text)  # detected from the first line
    assert imp.format == "claude"
    assert imp.log == log
    assert imp.report.unreadable == [] and imp.report.notes == []
    for s in imp.sources:  # what has a native form is written natively
        if isinstance(s.event, (TurnPrompt, Notification, ToolResult, TurnCancel)):
            assert s.native, s
        if isinstance(s.event, (Resume, Clear)) or (isinstance(s.event, Assistant) and not s.event.complete):
            assert not s.native, s
    # deterministic, and a fixed point of import then export
    assert text == export_text(log, "claude")
    assert export_text(imp.log, "claude") == text
    # one chain of native entries; extension records hang from it
    lines = records(text)
    assert lines[0]["type"] == "summary"
    prev = None
    for n, rec in enumerate(lines[1:], start=2):
        assert rec["uuid"] == f"00000000-0000-4000-8000-{n:012x}"
        if rec.get("subtype") == "compact_boundary":
            assert rec["parentUuid"] is None and rec["logicalParentUuid"] == prev
        else:
            assert rec["parentUuid"] == prev
        if rec["type"] != EXTENSION:
            prev = rec["uuid"]
    assert lines[0]["leafUuid"] == prev
    assert relink(text, physical(text)) == physical(text)


def test_export_of_a_clean_session() -> None:
    log = parse_log((ROOT / "examples" / "clean.jsonl").read_text(encoding="utf-8"))
    recs = records(export_text(log, "claude"))
    shape = [(r["type"], r["event"]["type"] if r["type"] == EXTENSION else "") for r in recs]
    assert shape == [
        ("summary", ""),
        (EXTENSION, "session.meta"),  # Claude Code keeps no system prompt
        ("user", ""),
        ("assistant", ""),
        ("user", ""),
        ("assistant", ""),
        (EXTENSION, "step.end"),  # nothing after the last reply ends its step or turn
        (EXTENSION, "turn.end"),
    ]
    first, second = recs[3], recs[5]
    assert first["message"]["content"] == [{"type": "tool_use", "id": "r1", "name": "ReadFile", "input": {"path": "README.md"}}]
    assert first["message"]["stop_reason"] == "tool_calls"
    assert first[RAW_ARGS] == '{"path":"README.md"}'  # compact text: json.dumps would add a space
    assert second["message"]["content"] == [said("It says: a demo project.")] and RAW_ARGS not in second


def test_a_reply_is_one_line_per_block_sharing_the_message_id() -> None:
    call = ToolCall(id="a", name="Bash", args='{"command": "ls"}')
    log = (SessionMeta(), TurnPrompt(text="go"), StepBegin(), Assistant(text="Looking.", calls=(call, ToolCall(id="b", name="Grep", args="not json"))))
    recs = records(export_text(log, "claude"))[2:]
    assert [r["type"] for r in recs] == ["assistant"] * 3
    assert len({r["message"]["id"] for r in recs}) == 1
    assert [len(r["message"]["content"]) for r in recs] == [1, 1, 1]
    assert RAW_ARGS not in recs[1] and recs[2][RAW_ARGS] == "not json"
    assert recs[2]["message"]["content"][0]["input"] == {}
    assert load_text(export_text(log, "claude")).log == log


def test_glue_the_importer_infers_is_not_written() -> None:
    log = (
        SessionMeta(),
        TurnPrompt(text="go"),
        StepBegin(),
        Assistant(text="a", calls=(ToolCall(id="c", name="Bash"),)),
        ToolResult(call_id="c", output="ok"),
        StepEnd(finish_reason="tool_use"),
        StepBegin(),
        Assistant(text="done"),
        StepEnd(finish_reason="end_turn"),
        TurnEnd(),
        TurnPrompt(text="next"),
    )
    recs = records(export_text(log, "claude"))
    assert [r["type"] for r in recs] == ["summary", "user", "assistant", "assistant", "user", "assistant", "user"]
    assert load_text(export_text(log, "claude")).log == log


def test_result_record_hangs_from_the_call_and_imports_as_the_result() -> None:
    call = line("u2", "u1", "m1", use("toolu_1"), stop="tool_use", cwd="/w", version="2.0.35", timestamp="2025-06-01T10:00:00.000Z")
    near = base.Record(2, call)
    event = ToolResult(call_id="toolu_1", output="Tool call lost at crash.", is_error=True)
    made = json.loads(CLAUDE.result_record(event, "Bash", near))
    assert made["parentUuid"] == "u2" and made["sourceToolAssistantUUID"] == "u2"
    assert made["cwd"] == "/w" and made["timestamp"] == "2025-06-01T10:00:00.000Z" and made["sessionId"] == "s"
    assert made["message"] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Tool call lost at crash.", "is_error": True}]}
    assert made["uuid"] == json.loads(CLAUDE.result_record(event, "Bash", near))["uuid"] != "u2"  # deterministic
    imp = load_text(transcript(prompt("u1", None, "go"), call, made))
    assert imp.log[-1] == event and imp.sources[-1].lines == (3,)
    loose = json.loads(CLAUDE.result_record(ToolResult(call_id="x", output="ok"), "t", None))
    assert loose["parentUuid"] is None and "is_error" not in loose["message"]["content"][0]


# ---------------------------------------------------------------------------
# The tree.
# ---------------------------------------------------------------------------


def test_the_active_path_is_the_last_entry_back_to_the_root() -> None:
    text = transcript(
        prompt("p1", None, "first try"),  # 1
        line("a1", "p1", "m1", said("answer one"), stop="end_turn"),  # 2: abandoned with its prompt
        prompt("p2", None, "edited prompt"),  # 3: an edit of line 1: a new root
        line("a2", "p2", "m2", said("answer two"), stop="end_turn"),  # 4
        {"type": "summary", "summary": "title", "leafUuid": "a1"},  # 5: a title, not the leaf
    )
    imp = load_text(text)
    assert imp.log[1:] == (TurnPrompt(text="edited prompt"), StepBegin(), Assistant(text="answer two"))
    assert [s.line for s in imp.sources[1:]] == [3, 4, 4]
    assert imp.report.skipped["entry off the active branch"] == 2 and imp.report.skipped["summary"] == 1


def test_parallel_results_on_sibling_branches_belong_to_the_path() -> None:
    text = transcript(
        prompt("p", None, "both"),  # 1
        line("t", "p", "m", said("Running.")),  # 2
        line("a", "t", "m", use("A")),  # 3
        line("b", "a", "m", use("B"), stop="tool_use"),  # 4
        results("ra", "a", ("A", "out A")),  # 5: hangs from the line of its tool_use
        {"type": "progress", "uuid": "pg", "parentUuid": "b", "data": {}},  # 6
        results("rb", "pg", ("B", "out B")),  # 7: through a skipped entry
        results("rx", "a", ("A", "again")),  # 8: the path answers no A, so this is kept too (a duplicate)
        line("n", "rb", "m2", said("Both done."), stop="end_turn"),  # 9: the leaf's path: 9, 7, 6, 4, 3, 2, 1
    )
    imp = load_text(text)
    assert kinds(imp)[1:] == [
        ("turn.prompt", (1,)),
        ("step.begin", (2, 3, 4)),
        ("assistant", (2, 3, 4)),
        ("tool.result", (5,)),
        ("tool.result", (7,)),
        ("tool.result", (8,)),
        ("step.end", (9,)),
        ("step.begin", (9,)),
        ("assistant", (9,)),
    ]
    assert imp.log[3] == Assistant(text="Running.", calls=(ToolCall(id="A", name="Bash"), ToolCall(id="B", name="Bash")))
    assert imp.log[7] == StepEnd(finish_reason="tool_use")


def test_a_sibling_result_is_skipped_when_the_path_answers_its_call_or_does_not_declare_it() -> None:
    text = transcript(
        prompt("p", None, "go"),  # 1
        line("a", "p", "m", use("A"), stop="tool_use"),  # 2
        results("r1", "a", ("A", "first")),  # 3: a retry branch
        results("r2", "a", ("A", "second")),  # 4: on the path
        results("rz", "a", ("Z", "for nobody")),  # 5: Z is not a call of this conversation
        entry("user", "mix", "a", message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": "A", "content": "x"}, said("and text")]}),  # 6
        line("n", "r2", "m2", said("ok"), stop="end_turn"),  # 7
    )
    imp = load_text(text)
    assert [s.line for s in imp.sources if isinstance(s.event, ToolResult)] == [4]
    assert imp.report.skipped["entry off the active branch"] == 3


def test_a_compaction_covers_what_came_before_its_boundary() -> None:
    text = transcript(
        prompt("p", None, "go"),  # 1
        line("a", "p", "m", use("A"), stop="tool_use"),  # 2
        results("r", "a", ("A", "ok")),  # 3
        entry("system", "cb", None, subtype="compact_boundary", content="Conversation compacted", logicalParentUuid="r"),  # 4
        prompt("s", "cb", "The summary.", isCompactSummary=True),  # 5
        prompt("q", "s", "continue"),  # 6
    )
    imp = load_text(text)
    assert kinds(imp)[4:] == [("tool.result", (3,)), ("compaction", (4, 5)), ("step.end", (6,)), ("turn.end", (6,)), ("turn.prompt", (6,))]
    assert imp.log[5] == Compaction(summary="The summary.", upto=5)
    # a boundary with no summary, and a summary with no boundary
    lone = transcript(prompt("p", None, "go"), entry("system", "cb", None, subtype="compact_boundary", logicalParentUuid="p"), prompt("q", "cb", "next"))
    assert load_text(lone).log[2] == Compaction(summary="Conversation compacted", upto=2)
    bare = transcript(prompt("p", None, "go"), prompt("s", "p", "S", isCompactSummary=True))
    assert load_text(bare).log[2:] == (Compaction(summary="S", upto=2),)


def test_missing_parents_loops_duplicates_and_sidechains() -> None:
    dangling = load_text(transcript(prompt("p", "gone", "go"), line("a", "p", "m", said("hi"))))
    assert dangling.log[1] == TurnPrompt(text="go")
    assert [n.line for n in dangling.report.notes] == [1] and "not in the file" in dangling.report.notes[0].why
    loop = load_text(transcript(prompt("p", "a", "go"), line("a", "p", "m", said("hi"))))
    assert len(loop.log) == 4  # meta, prompt, step.begin, assistant: the walk stops at the loop
    dup = load_text(transcript(prompt("p", None, "go"), prompt("p", None, "go")))
    assert dup.log[1:] == (TurnPrompt(text="go"),) and dup.report.skipped["duplicate entry"] == 1
    side = {"isSidechain": True}
    agent = load_text(transcript(prompt("p", None, "task", **side), line("a", "p", "m", said("done"), **side)))
    assert agent.log[1:] == (TurnPrompt(text="task"), StepBegin(), Assistant(text="done"))
    mixed = load_text(transcript(prompt("p", None, "main"), prompt("x", None, "sub", **side)))
    assert mixed.log[1:] == (TurnPrompt(text="main"),) and mixed.report.skipped["sidechain entry"] == 1


# ---------------------------------------------------------------------------
# The mapping, entry by entry.
# ---------------------------------------------------------------------------


def test_streamed_lines_are_one_reply_and_thinking_is_not_text() -> None:
    text = transcript(
        prompt("p", None, "go"),
        line("t", "p", "m", {"type": "thinking", "thinking": "hmm", "signature": "x"}),
        line("x", "t", "m", said("Part one.")),
        line("y", "x", "m", use("A", "Read", file_path="/a", n=1.5)),
        line("z", "y", "m", said("Part two."), stop="tool_use"),
    )
    imp = load_text(text)
    assert imp.log[3] == Assistant(text="Part one.\nPart two.", calls=(ToolCall(id="A", name="Read", args='{"file_path": "/a", "n": 1.5}'),))
    assert imp.sources[3].lines == (2, 3, 4, 5) and imp.report.skipped["thinking block"] == 1


def test_prompts_end_turns_and_interruptions_cancel_them() -> None:
    text = transcript(
        prompt("p", None, "one"),  # 1
        line("a", "p", "m", use("A"), stop="tool_use"),  # 2
        results("r", "a", ("A", "The user doesn't want to proceed with this tool use."), error=True),  # 3
        entry("user", "i", "r", message={"role": "user", "content": [said("[Request interrupted by user for tool use]")]}),  # 4
        prompt("i2", "i", "[Request interrupted by user]"),  # 5: no turn is running
        prompt("q", "i2", "two"),  # 6
        line("b", "q", "m2", said("ok"), stop="end_turn"),  # 7
        prompt("q3", "b", "three"),  # 8
    )
    imp = load_text(text)
    assert imp.log[1:] == (
        TurnPrompt(text="one"),
        StepBegin(),
        Assistant(calls=(ToolCall(id="A", name="Bash"),)),
        ToolResult(call_id="A", output="The user doesn't want to proceed with this tool use.", is_error=True),
        TurnCancel(),
        TurnPrompt(text="two"),
        StepBegin(),
        Assistant(text="ok"),
        StepEnd(finish_reason="end_turn"),
        TurnEnd(),
        TurnPrompt(text="three"),
    )
    assert imp.report.skipped["interruption outside a turn"] == 1


def test_meta_text_queued_commands_text_beside_results_and_api_errors() -> None:
    text = transcript(
        prompt("m0", None, "Caveat: local command output below.", isMeta=True),  # 1
        prompt("p", "m0", "go"),  # 2
        line("a", "p", "m", use("A"), stop="tool_use"),  # 3
        entry("attachment", "q", "a", attachment={"type": "queued_command", "prompt": "also this", "commandMode": "prompt"}),  # 4
        entry("attachment", "h", "q", attachment={"type": "hook_success", "content": ""}),  # 5
        entry("user", "r", "h", message={"role": "user", "content": [said("before"), {"type": "tool_result", "tool_use_id": "A", "content": [said("x"), {"type": "image"}, said("y")]}, said("after")]}),  # 6
        line("e", "r", "err", said("API Error: 529 overloaded"), isApiErrorMessage=True),  # 7
        {"type": "attachment", "attachment": {"type": "queued_command", "prompt": [said("no uuid")]}},  # 8: older writers
    )
    imp = load_text(text)
    assert imp.log[1:] == (
        Notification(text="Caveat: local command output below."),
        TurnPrompt(text="go"),
        StepBegin(),
        Assistant(calls=(ToolCall(id="A", name="Bash"),)),
        TurnSteer(text="also this"),
        TurnSteer(text="before"),
        ToolResult(call_id="A", output="x\ny"),
        TurnSteer(text="after"),
        StepEnd(finish_reason="tool_use"),
        StepBegin(),
        StepError(message="API Error: 529 overloaded"),
        TurnSteer(text="no uuid"),
    )
    assert imp.report.skipped["attachment hook_success"] == 1 and imp.report.skipped["image block"] == 1


def test_skipped_kinds_are_counted() -> None:
    text = transcript(
        {"type": "summary", "summary": "t", "leafUuid": "x"},
        {"type": "file-history-snapshot", "messageId": "p", "snapshot": {}},
        {"type": "queue-operation", "operation": "enqueue", "content": "hi"},
        prompt("p", None, "go"),
        entry("system", "s1", "p", subtype="turn_duration", durationMs=5),
        entry("system", "s2", "s1", subtype="microcompact_boundary"),
        {"type": "custom-title", "customTitle": "x", "sessionId": "s"},
        {"type": "brand-new-kind", "uuid": "z", "parentUuid": "s2"},
        line("a", "z", "m", {"type": "server_tool_use", "id": "s", "name": "web_search"}),
    )
    imp = load_text(text)
    assert imp.log[1:] == (TurnPrompt(text="go"), StepBegin(), Assistant())  # the path passes the skipped entries
    assert dict(imp.report.skipped) == {
        "summary": 1,
        "file-history-snapshot": 1,
        "queue-operation": 1,
        "system turn_duration": 1,
        "system microcompact_boundary": 1,
        "custom-title": 1,
        "brand-new-kind": 1,
        "assistant server_tool_use block": 1,
    }


def test_extension_records_and_raw_arguments_are_read_back() -> None:
    text = transcript(
        entry(EXTENSION, "e0", None, event={"type": "session.meta", "version": 1, "system": "sys"}),
        prompt("p", None, "go"),
        entry(EXTENSION, "e1", "p", event={"type": "step.begin"}),
        line("a", "p", "m", use("A", x=1), **{RAW_ARGS: '{"x":1}'}),
        entry(EXTENSION, "e2", "a", event={"type": "resume"}),
        entry(EXTENSION, "e3", "elsewhere", event={"type": "undo", "count": 1}),  # another branch: not read
    )
    imp = load_text(text)
    assert imp.log == (SessionMeta(system="sys"), TurnPrompt(text="go"), StepBegin(), Assistant(calls=(ToolCall(id="A", name="Bash", args='{"x":1}'),)), Resume())
    assert [s.native for s in imp.sources] == [False, True, False, True, False]


@pytest.mark.parametrize(
    "bad, why",
    [
        ({"uuid": "b", "parentUuid": "p"}, "missing field 'type'"),
        (entry("user", "b", "p", message="hi"), "field 'message': expected an object"),
        (entry("user", "b", "p", message={"content": 5}), "expected a string or an array"),
        (results("b", "p", ("", "x")), "tool_use_id must not be empty"),
        (entry("user", "b", "p", message={"content": [{"type": "tool_result", "tool_use_id": "A", "is_error": "yes"}]}), "'is_error': expected a boolean"),
        (line("b", "p", "m", {"type": "tool_use", "id": "A", "name": ""}), "must not be empty"),
        (line("b", "p", "m", {"type": "tool_use", "name": "x"}), "missing field 'id'"),
        (entry("assistant", "b", "p", message={"id": 3, "content": []}), "field 'id'"),
        (entry(EXTENSION, "b", "p", event={"type": "nonsense"}), "unknown event type"),
        (entry("user", 7, "p", message={"content": "x"}), "field 'uuid'"),
        (line("b", None, "m", said("a reply before any prompt")), "no user prompt"),
    ],
)
def test_bad_entries_name_their_line(bad: dict[str, object], why: str) -> None:
    text = transcript(prompt("p", None, "go"), bad, prompt("q", "b", "next"))
    with pytest.raises(InvalidLog) as exc:
        load_text(text, format="claude", path="t.jsonl")
    assert exc.value.line == 2 and why in exc.value.message and "\n" not in str(exc.value)
    imp = load_text(text, format="claude", lenient=True)
    assert [b.line for b in imp.report.unreadable] == [2]
    assert imp.log[-1] == TurnPrompt(text="next")


def test_a_bad_entry_keeps_the_chain_through_it_in_lenient_mode() -> None:
    text = transcript(prompt("p", None, "go"), entry("user", "b", "p", message={"content": 5}), prompt("q", "b", "next"))
    imp = load_text(text, lenient=True)
    assert imp.log[1:] == (TurnPrompt(text="go"), TurnEnd(), TurnPrompt(text="next"))  # "go" is still on the path
    assert [b.line for b in imp.report.unreadable] == [2]


# ---------------------------------------------------------------------------
# relink: what the repair engine needs from this format.
# ---------------------------------------------------------------------------


def test_relink_chains_moved_and_inserted_lines_in_file_order() -> None:
    original = transcript(
        prompt("p", None, "go"),  # 1
        line("a", "p", "m", use("A"), stop="tool_use"),  # 2
        line("n", "a", "m2", said("next"), stop="end_turn"),  # 3
        results("r", "a", ("A", "late")),  # 4: a sibling of 3
        prompt("old", None, "abandoned"),  # 5: another branch, left alone
        prompt("q", "n", "more"),  # 6
    )
    lines = physical(original)
    inserted = CLAUDE.result_record(ToolResult(call_id="B", output="synthetic", is_error=True), "Bash", base.Record(2, json.loads(lines[1]))) + "\n"
    edited = [lines[0], lines[1], lines[3], inserted, lines[2], lines[4], lines[5]]  # 4 moved up, one inserted
    linked = relink(original, edited)
    assert len(linked) == len(edited)
    recs = [json.loads(x) for x in linked]
    chain = [r for r in recs if r["uuid"] != "old"]
    assert [r["parentUuid"] for r in chain] == [None] + [r["uuid"] for r in chain[:-1]]
    assert linked[5] == edited[5] and linked[0] == edited[0] and linked[1] == edited[1]  # untouched lines stay byte for byte
    assert relink(original, linked) == linked and relink("".join(linked), linked) == linked
    imp = load_text("".join(linked))
    assert [type(e).__name__ for e in imp.log[3:6]] == ["Assistant", "ToolResult", "ToolResult"]


def test_relink_keeps_a_boundary_a_root_and_extension_records_side_leaves() -> None:
    original = transcript(
        prompt("p", None, "go"),
        entry(EXTENSION, "e", "p", event={"type": "resume"}),
        entry("system", "cb", None, subtype="compact_boundary", logicalParentUuid="p"),
        prompt("s", "cb", "S", isCompactSummary=True),
        prompt("q", "s", "next"),
    )
    lines = physical(original)
    moved = [lines[2], lines[3], lines[0], lines[1], lines[4]]  # the compaction moved to the top
    recs = [json.loads(x) for x in relink(original, moved)]
    assert [(r["uuid"], r["parentUuid"], r.get("logicalParentUuid")) for r in recs] == [
        ("cb", None, None),
        ("s", "cb", None),
        ("p", "s", None),
        ("e", "p", None),
        ("q", "p", None),
    ]


# ---------------------------------------------------------------------------
# Fuzz: random and mutated input raises only InvalidLog.
# ---------------------------------------------------------------------------

EXAMPLE_LINES = {name: (EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8").split("\n")[:-1] for name in NAMES}
ODD = st.sampled_from([None, 0, 7, False, "", "z", [], [0], {}, {"type": None}, {"type": "text"}, 2.5])


def change(obj: object, path: list[int], value: object, delete: bool) -> object:
    """``obj`` with one nested field (chosen by ``path``) deleted or set to ``value``."""
    if isinstance(obj, dict) and obj:
        keys = sorted(obj)
        key = keys[path[0] % len(keys)] if path else keys[-1]
        inner = obj[key]
        if len(path) > 1 and isinstance(inner, (dict, list)) and inner:
            return {**obj, key: change(inner, path[1:], value, delete)}
        return {k: v for k, v in obj.items() if k != key} if delete else {**obj, key: value}
    if isinstance(obj, list) and obj:
        i = path[0] % len(obj) if path else 0
        return obj[:i] + [change(obj[i], path[1:], value, delete)] + obj[i + 1 :]
    return value


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    lines = list(EXAMPLE_LINES[draw(st.sampled_from(NAMES))])
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "retype", "kind", "cut", "junk", "swap"]))
        if how == "cut":
            lines[k] = lines[k][: draw(st.integers(0, len(lines[k])))]
        elif how == "junk":
            lines[k] = draw(st.sampled_from(["{", "[]", "null", '"s"', "{}", "\ufffd", "  "]))
        elif how == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[k], lines[j] = lines[j], lines[k]
        else:
            try:
                obj = json.loads(lines[k])
            except ValueError:
                continue  # an earlier mutation already broke this line
            if how == "kind" and isinstance(obj, dict):
                lines[k] = json.dumps({**obj, "type": draw(st.sampled_from(["user", "assistant", "system", EXTENSION, "mystery", "attachment"]))})
            else:
                path = draw(st.lists(st.integers(0, 12), min_size=1, max_size=5))
                lines[k] = json.dumps(change(obj, path, draw(ODD), how == "delete"))
    data = "\n".join(lines).encode("utf-8") + draw(st.sampled_from([b"\n", b""]))
    if draw(st.booleans()):
        k = draw(st.integers(0, len(data)))
        data = data[:k] + draw(st.sampled_from([b"\xff", b"\xe2\x82", b"\x00", b"\r\n", b"\n"])) + data[k:]
    return data


def import_strict_and_lenient(data: bytes) -> None:
    strict: Imported | None = None
    try:
        strict = load(scratch("fuzz.jsonl", data), format="claude")
    except InvalidLog as exc:
        assert "\n" not in str(exc)
    try:
        lenient = load(scratch("fuzz.jsonl", data), format="claude", lenient=True)
    except InvalidLog as exc:  # only when nothing at all was usable
        assert "nothing" in str(exc) or "empty file" in str(exc)
        assert strict is None
        return
    if strict is not None:
        assert lenient.log == strict.log


@given(damaged())
def test_damaged_examples_raise_only_invalid_log(data: bytes) -> None:
    import_strict_and_lenient(data)


@given(st.one_of(st.binary(max_size=300), st.lists(st.text(max_size=40), max_size=6).map(lambda ls: "\n".join(ls).encode("utf-8"))))
def test_random_bytes_raise_only_invalid_log(data: bytes) -> None:
    for lenient in (False, True):
        try:
            load(scratch("random.jsonl", data), format="claude", lenient=lenient)
        except InvalidLog as exc:
            assert "\n" not in str(exc)


# ---------------------------------------------------------------------------
# Hostile files.
# ---------------------------------------------------------------------------

GOOD = transcript(prompt("p", None, "go"), line("a", "p", "m", use("A"), stop="tool_use"), results("r", "a", ("A", "ok")))


@pytest.mark.parametrize(
    "name, data, at, words",
    [
        ("empty.jsonl", b"", None, "empty file"),
        ("blank.jsonl", b"\n \n\t\n", None, "empty file"),
        ("bad-json.jsonl", (GOOD.splitlines()[0] + "\n{nope\n").encode(), 2, "malformed JSON"),
        ("latin1.jsonl", GOOD.encode() + b'{"type":"summary","summary":"caf\xe9","leafUuid":"r"}\n', 4, "not UTF-8"),
        ("array.jsonl", GOOD.encode() + b"[1]\n", 4, "expected a JSON object"),
    ],
)
def test_hostile_files_are_one_line_errors(name: str, data: bytes, at: int | None, words: str) -> None:
    path = scratch(name, data)
    with pytest.raises(InvalidLog) as exc:
        load(path, format="claude")
    assert "\n" not in str(exc.value) and path in str(exc.value) and words in str(exc.value)
    assert exc.value.line == at


def test_a_directory_is_refused() -> None:
    with pytest.raises(InvalidLog, match="is a directory"):
        load(str(SCRATCH), format="claude")


def test_a_torn_last_line_is_skipped_and_noted() -> None:
    imp = load(scratch("torn.jsonl", GOOD + GOOD.splitlines()[1][:40]))
    assert imp.log == load_text(GOOD).log and [n.line for n in imp.report.notes] == [4]


def test_a_huge_line_is_refused_without_reading_it_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "MAX_LINE_BYTES", 300)
    huge = json.dumps(results("h", "r", ("A", "x" * 4000)))
    path = scratch("huge.jsonl", GOOD + huge + "\n" + json.dumps(prompt("q", "r", "next")) + "\n")
    with pytest.raises(InvalidLog) as exc:
        load(path, format="claude")
    assert exc.value.line == 4 and "longer than" in exc.value.message and path in str(exc.value)
    imp = load(path, format="claude", lenient=True)
    assert [b.line for b in imp.report.unreadable] == [4] and imp.log[-1] == TurnPrompt(text="next")


def test_detection_and_nothing_usable() -> None:
    assert EVENT_FORMATS["claude"] is CLAUDE
    for first in (
        {"type": "summary", "summary": "x", "leafUuid": "u"},
        {"type": "file-history-snapshot", "messageId": "u", "snapshot": {}},
        {"type": "queue-operation", "operation": "enqueue"},
        prompt("p", None, "go"),
    ):
        assert detect(base.Record(1, first)) == "claude"
    for other in ({"type": "session.meta", "version": 1}, {"type": "user", "message": {}}, {"role": "user", "content": "x"}):
        assert not CLAUDE.sniff(base.Record(1, other))
    with pytest.raises(InvalidLog, match="nothing"):
        load_text("{x\n[\n", format="claude", lenient=True)
    assert load_text('{"type":"summary","summary":"only a title","leafUuid":"u"}\n').log == (SessionMeta(),)


# ---------------------------------------------------------------------------
# The examples.
# ---------------------------------------------------------------------------

#: For each example: the canonical events as (type, original lines), then the
#: reference projector's repairs as (kind, original line).
EXPECTED: dict[str, tuple[list[tuple[str, tuple[int, ...]]], list[tuple[RepairKind, int]]]] = {
    "todolist3": (
        [
            ("session.meta", ()),
            ("turn.prompt", (2,)),
            ("step.begin", (3, 4, 5)),
            ("assistant", (3, 4, 5)),
            ("step.end", (6,)),
            ("step.begin", (6,)),
            ("assistant", (6,)),
            ("tool.result", (7,)),
            ("step.end", (8,)),
            ("turn.end", (8,)),
            ("turn.prompt", (8,)),
        ],
        [(RepairKind.SYNTHETIC_RESULT, 6), (RepairKind.LATE_NOTE, 7)],
    ),
    "crash-mid-parallel": (
        [
            ("session.meta", ()),
            ("turn.prompt", (1,)),
            ("step.begin", (2, 3, 4)),
            ("assistant", (2, 3, 4)),
            ("tool.result", (5,)),
            ("step.end", (7,)),
            ("turn.end", (7,)),
            ("turn.prompt", (7,)),
            ("step.begin", (8,)),
            ("assistant", (8,)),
        ],
        [(RepairKind.SYNTHETIC_RESULT, 8), (RepairKind.INPUT_HELD, 7)],
    ),
    "steer-during-parallel": (
        [
            ("session.meta", ()),
            ("turn.prompt", (1,)),
            ("step.begin", (2, 3)),
            ("assistant", (2, 3)),
            ("tool.result", (4,)),
            ("turn.steer", (6,)),
            ("tool.result", (7,)),
            ("step.end", (8,)),
            ("step.begin", (8,)),
            ("assistant", (8,)),
        ],
        [(RepairKind.RESULTS_REORDERED, 2), (RepairKind.INPUT_HELD, 6)],
    ),
    "compaction-cut": (
        [
            ("session.meta", ()),
            ("turn.prompt", (1,)),
            ("step.begin", (2,)),
            ("assistant", (2,)),
            ("compaction", (3, 4)),
            ("tool.result", (5,)),
            ("step.end", (6,)),
            ("step.begin", (6,)),
            ("assistant", (6,)),
        ],
        [(RepairKind.EXCHANGE_KEPT_WHOLE, 3)],
    ),
}


@pytest.mark.parametrize("name", NAMES)
def test_example_imports_as_expected(name: str) -> None:
    imp = load(str(EXAMPLES / f"{name}.jsonl"))
    events, repairs = EXPECTED[name]
    assert imp.format == "claude" and not imp.report.unreadable and not imp.report.notes
    assert kinds(imp) == events
    assert all(s.native for s in imp.sources)
    _, found, _ = project_with_repairs(imp.log)
    assert [(r.kind, imp.origin(r.line)) for r in found] == repairs


def test_example_details() -> None:
    todo = load(str(EXAMPLES / "todolist3.jsonl"))
    plan = todo.log[3]
    assert isinstance(plan, Assistant) and plan.text == "I'll write a plan first."
    assert [(c.id, c.name) for c in plan.calls] == [("toolu_01TodoWrite3xQ7", "TodoWrite")]
    assert json.loads(plan.calls[0].args)["todos"][1]["content"] == "Add tests for each command"
    assert todo.report.skipped == {"file-history-snapshot": 1, "thinking block": 1}
    cut = load(str(EXAMPLES / "compaction-cut.jsonl"))
    summary = cut.log[4]
    assert isinstance(summary, Compaction) and summary.upto == 4 and summary.summary.startswith("This session is being continued")
    steer = load(str(EXAMPLES / "steer-during-parallel.jsonl"))
    assert steer.report.skipped == {"queue-operation": 1}


def test_examples_readme_names_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in (*NAMES, "sidechain-in-session", "agent-a3f91c2e", "compact-boundary"):
        assert f"`{name}.jsonl`" in readme


# ---------------------------------------------------------------------------
# Repair (the engine is ctxref.formats.repair; these check the Claude side).
# ---------------------------------------------------------------------------


def chain_in_file_order(text: str) -> bool:
    """Whether every conversation entry's parent is the conversation entry before it."""
    prev = None
    for rec in records(text):
        if rec.get("type") not in ("user", "assistant", "system", "attachment", EXTENSION) or "uuid" not in rec:
            continue
        if rec.get("subtype") not in (None, "compact_boundary"):
            continue  # skipped system entries are side leaves
        link = rec.get("logicalParentUuid") if rec.get("subtype") == "compact_boundary" else rec.get("parentUuid")
        if link != prev:
            return False
        if rec["type"] != EXTENSION:
            prev = rec["uuid"]
    return True


@pytest.mark.parametrize("name", NAMES)
def test_repair_output_reimports_and_is_a_fixed_point(name: str) -> None:
    from ctxref.formats.repair import repair_text

    text = (EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8")
    once = repair_text(text, "claude")
    assert once.changes or once.remaining  # every example has something wrong
    again = load_text(once.text, format="claude")  # strict: every line still reads
    assert not again.report.unreadable and not again.report.notes
    twice = repair_text(once.text, "claude")
    assert twice.changes == () and twice.text == once.text


@pytest.mark.parametrize("name", NAMES)
def test_repair_leaves_no_hazard(name: str) -> None:
    from ctxref.formats.repair import repair_text

    once = repair_text((EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8"), "claude")
    assert once.remaining == ()




@pytest.mark.parametrize("name", NAMES)
def test_repaired_conversation_is_one_chain_the_runtime_follows(name: str) -> None:
    """Claude Code follows parents, not lines: the repaired order must be the chain's order."""
    from ctxref.formats.repair import repair_text

    text = (EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8")
    once = repair_text(text, "claude")
    assert once.changes and chain_in_file_order(once.text)
    assert load_text(once.text).log == load_text("".join(relink(once.text, physical(once.text)))).log


def test_each_call_has_the_line_of_its_tool_use_entry() -> None:
    """One content block per line: a call is declared on its own tool_use line, not on the message's first."""
    from ctxref.formats.verdict import check_file

    imp = load(str(EXAMPLES / "crash-mid-parallel.jsonl"))
    (reply,) = [s for s in imp.sources if isinstance(s.event, Assistant) and s.event.calls]
    assert reply.lines == (2, 3, 4) and reply.calls == (3, 4)
    (hazard,) = [h for h in check_file(str(EXAMPLES / "crash-mid-parallel.jsonl")).hazards if h.rule == "C5"]
    assert "toolu_01PytestRun8kQ (declared at line 3)" in hazard.what


# ---------------------------------------------------------------------------
# Sidechains and compact boundaries.
# ---------------------------------------------------------------------------

#: Example: (hazards, skipped kinds) of each.
SIDE_EXAMPLES: dict[str, tuple[list[tuple[str, int]], dict[str, int]]] = {
    "sidechain-in-session": ([], {"sidechain entry": 4}),
    "agent-a3f91c2e": ([], {}),
    "compact-boundary": ([], {"system microcompact_boundary": 1}),
}


@pytest.mark.parametrize("name", sorted(SIDE_EXAMPLES))
def test_sidechain_and_boundary_examples_check_and_round_trip(name: str) -> None:
    from ctxref.formats.verdict import check_file

    hazards, skipped = SIDE_EXAMPLES[name]
    verdict = check_file(str(EXAMPLES / f"{name}.jsonl"))
    assert verdict.format == "claude" and not verdict.report.unreadable
    assert [(h.rule, h.line) for h in verdict.hazards] == hazards
    assert dict(verdict.report.skipped) == skipped
    imp = load(str(EXAMPLES / f"{name}.jsonl"))
    assert load_text(export_text(imp.log, "claude"), format="claude").log == imp.log


def test_a_subagents_entries_in_the_session_are_not_its_context() -> None:
    """isSidechain entries (the subagent's prompt, call and result) are the subagent's, not the session's."""
    imp = load(str(EXAMPLES / "sidechain-in-session.jsonl"))
    assert sorted({line for s in imp.sources for line in s.lines}) == [1, 2, 3, 8, 9]
    calls = [c.id for e in imp.log if isinstance(e, Assistant) for c in e.calls]
    assert calls == ["toolu_01TaskExplore4Qz"]


def test_a_subagents_own_file_is_read_on_its_own() -> None:
    """In agent-<id>.jsonl every entry is a sidechain: the last one is the leaf."""
    imp = load(str(EXAMPLES / "agent-a3f91c2e.jsonl"))
    assert [type(e).__name__ for e in imp.log] == ["SessionMeta", "TurnPrompt", "StepBegin", "Assistant", "ToolResult", "StepEnd", "StepBegin", "Assistant"]
    assert imp.log[1] == TurnPrompt(text="Find where discounts are applied in the cart.")


def test_a_manual_compact_boundary_covers_everything_before_it() -> None:
    imp = load(str(EXAMPLES / "compact-boundary.jsonl"))
    (i,) = [i for i, e in enumerate(imp.log) if isinstance(e, Compaction)]
    c = imp.log[i]
    assert isinstance(c, Compaction) and imp.sources[i].lines == (6, 7)
    assert c.summary.endswith("tests/test_cart.py::test_empty was added.")
    assert imp.sources[c.upto - 1].line == 5  # the /compact command entry, reached through logicalParentUuid
    assert isinstance(imp.log[c.upto - 1], Notification)
