"""Message-list formats: Kimi CLI context.jsonl, captured OpenAI and Anthropic requests."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ctxref.formats.base as base
from ctxref.formats.messages import (
    ITEMS_KEY,
    MERGE_SEPARATOR,
    MESSAGE_FORMATS,
    SYNTHETIC_TEXT,
    check_loaded,
    check_messages_file,
    export_anthropic,
    export_kimi_context,
    export_messages,
    export_openai,
    load_messages,
    load_messages_text,
    repair_messages_file,
    repair_messages_text,
    sniff_messages,
)
from ctxspec.contract import REASON_WORDS, check_messages
from ctxspec.errors import InvalidLog
from ctxspec.events import ToolCall
from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage
from ctxspec.state import Reason

EXAMPLES = Path(__file__).parent.parent / "examples"
KIMI = EXAMPLES / "kimi-context"
REQUESTS = EXAMPLES / "requests"
SCRATCH = Path(tempfile.mkdtemp(prefix="ctx-messages-"))
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)


def scratch(name: str, data: bytes | str) -> str:
    path = SCRATCH / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


# ---------------------------------------------------------------------------
# Strategies: message lists each format can hold.
# ---------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=8)
IDS = st.sampled_from(["call_1", "call_2", "call_3", "TodoList:3", "toolu_01é"])
NAMES = st.sampled_from(["Shell", "ReadFile", "TodoList"])
JSON_ARGS = st.dictionaries(st.text(max_size=4), st.one_of(st.integers(), TEXT, st.booleans()), max_size=3).map(lambda d: json.dumps(d, ensure_ascii=False))


def calls(args: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[ToolCall, ...]]:
    return st.lists(st.builds(ToolCall, id=IDS, name=NAMES, args=args), max_size=3).map(tuple)


def _message(fmt: str) -> st.SearchStrategy[Message]:
    args = JSON_ARGS if fmt in ("anthropic", "gemini") else TEXT
    return st.one_of(
        st.builds(UserMessage, text=TEXT),
        st.builds(AssistantMessage, text=TEXT, calls=calls(args)),
        st.builds(ToolMessage, call_id=IDS, content=TEXT, is_error=st.booleans(), synthetic=st.booleans() if fmt == "openai" else st.just(False)),
        *([st.builds(SystemMessage, text=TEXT)] if fmt not in ("anthropic", "gemini") else []),
    )


MESSAGE = {fmt: _message(fmt) for fmt in MESSAGE_FORMATS}
LISTS = {fmt: st.lists(MESSAGE[fmt], min_size=1, max_size=10) for fmt in MESSAGE_FORMATS}


@st.composite
def message_lists(draw: st.DrawFn, fmt: str, adjacent_users: bool = False) -> list[Message]:
    msgs = draw(LISTS[fmt])
    if fmt in ("anthropic", "gemini") and draw(st.booleans()):
        msgs.insert(0, SystemMessage(text=draw(TEXT)))
    if fmt == "kimi-context" and not adjacent_users:
        msgs = [m for k, m in enumerate(msgs) if not (k and isinstance(m, UserMessage) and isinstance(msgs[k - 1], UserMessage))]
    return msgs


def merged(msgs: list[Message]) -> list[Message]:
    """What Kimi CLI sends for ``msgs``: adjacent user messages as one (a system message first)."""
    out: list[Message] = []
    for m in msgs:
        if isinstance(m, UserMessage) and out and isinstance(out[-1], UserMessage):
            out[-1] = UserMessage(text=out[-1].text + MERGE_SEPARATOR + m.text)
        else:
            out.append(m)
    return out


# ---------------------------------------------------------------------------
# Round trip.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", MESSAGE_FORMATS)
@settings(max_examples=400)  # per format: seven formats (the suite's 10 minutes)
@given(data=st.data())
def test_export_then_load_gives_the_same_messages(fmt: str, data: st.DataObject) -> None:
    """Kimi CLI lists are drawn without adjacent user messages (the next test covers those)."""
    msgs = data.draw(message_lists(fmt))
    text = export_messages(msgs, fmt)
    assert export_messages(msgs, fmt) == text  # deterministic
    loaded = load_messages_text(text, fmt)
    assert list(loaded.messages) == msgs
    assert len(loaded.lines) == len(msgs)
    assert all(line >= 1 for line in loaded.lines)


@given(message_lists("kimi-context", adjacent_users=True))
def test_kimi_context_sends_adjacent_user_messages_as_one(msgs: list[Message]) -> None:
    text = export_kimi_context(msgs)
    loaded = load_messages_text(text, "kimi-context")
    assert list(loaded.messages) == merged(msgs)
    # Each message starts on the line of its first record (system prompt first).
    physical = text.split("\n")
    for m, line in zip(loaded.messages, loaded.lines):
        role = json.loads(physical[line - 1])["role"]
        assert role == ("_system_prompt" if line == 1 and isinstance(m, SystemMessage) and isinstance(msgs[0], SystemMessage) else m.role)


def test_json_document_lines_are_where_each_message_object_begins() -> None:
    msgs: list[Message] = [SystemMessage(text="s"), UserMessage(text="u"), AssistantMessage(calls=(ToolCall(id="a", name="Shell"),)), ToolMessage(call_id="a", content="x\ny")]
    text = export_openai(msgs)
    loaded = load_messages_text(text, "openai")
    physical = text.split("\n")
    assert [physical[n - 1].strip() for n in loaded.lines] == ["{"] * 4
    for n, m in zip(loaded.lines, msgs):
        assert f'"role": "{m.role}"' in physical[n]


def test_anthropic_user_message_maps_results_first_then_text() -> None:
    doc = {
        "system": "s",
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "t1", "name": "ReadFile", "input": {"path": "a"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "A"}], "is_error": True}, {"type": "text", "text": "next"}]},
        ],
    }
    loaded = load_messages_text(json.dumps(doc, indent=1), "anthropic")
    assert loaded.messages == (
        SystemMessage(text="s"),
        UserMessage(text="go"),
        AssistantMessage(text="ok", calls=(ToolCall(id="t1", name="ReadFile", args='{"path": "a"}'),)),
        ToolMessage(call_id="t1", content="A", is_error=True),
        UserMessage(text="next"),
    )
    assert check_loaded(loaded) == []


def test_anthropic_export_refuses_what_it_cannot_hold() -> None:
    with pytest.raises(ValueError, match="system message"):
        export_anthropic([UserMessage(text="u"), SystemMessage(text="s")])
    with pytest.raises(ValueError, match="JSON object"):
        export_anthropic([AssistantMessage(calls=(ToolCall(id="a", name="Shell", args="ls"),))])


def test_kimi_error_results_use_kimi_clis_own_form() -> None:
    """Kimi CLI 1.52 writes ``<system>ERROR: message</system>`` (one text part, dumped as a string)."""
    line = export_kimi_context([ToolMessage(call_id="a", content="boom", is_error=True)])
    assert json.loads(line)["content"] == "<system>ERROR: boom</system>"
    assert load_messages_text(line, "kimi-context").messages == (ToolMessage(call_id="a", content="boom", is_error=True),)


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("<system>ERROR: no such file\nThis is an unexpected error.</system>", "no such file\nThis is an unexpected error."),  # 1.52, no output
        ([{"type": "text", "text": "<system>ERROR: exit 1</system>"}, {"type": "text", "text": "stderr"}], "exit 1stderr"),  # 1.52, with output
        ([{"type": "text", "text": "<system>ERROR</system>"}, {"type": "text", "text": "<system>boom</system>"}], "<system>boom</system>"),  # older builds
    ],
)
def test_kimi_error_forms_are_read_as_errors(content: object, text: str) -> None:
    line = json.dumps({"role": "tool", "content": content, "tool_call_id": "a"})
    assert load_messages_text(line, "kimi-context").messages == (ToolMessage(call_id="a", content=text, is_error=True),)


def test_kimi_non_error_system_text_is_no_error() -> None:
    for content in ("<system>Tool output is empty.</system>", [{"type": "text", "text": "<system>ERROR</system>"}], "ERROR: x"):
        line = json.dumps({"role": "tool", "content": content, "tool_call_id": "a"})
        assert not load_messages_text(line, "kimi-context").messages[0].is_error  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
# Examples: check names the rule and the original line; repair fixes them.
# ---------------------------------------------------------------------------

EXPECTED: dict[str, tuple[str, set[tuple[str, int]], set[int]]] = {
    # file: (format, {(rule, line)} from check, original lines named by repair)
    "kimi-context/todolist3.jsonl": ("kimi-context", {("C1", 5)}, {10}),  # the result on line 10 is misplaced, not an orphan
    "kimi-context/crash-mid-parallel.jsonl": ("kimi-context", {("C1", 5)}, {5, 7}),
    "kimi-context/steer-during-parallel.jsonl": ("kimi-context", {("C1", 5)}, {7, 9}),
    "kimi-context/compaction-cut.jsonl": ("kimi-context", {("C2", 4)}, {4}),
    "kimi-context/error-results.jsonl": ("kimi-context", {("C1", 8)}, {8}),  # both errors are Kimi CLI's own forms
    "requests/openai-todolist3.json": ("openai", {("C1", 13)}, {13}),
    "requests/openai-clean.json": ("openai", set(), set()),
    "requests/anthropic-todolist3.json": ("anthropic", {("C1", 10)}, {10}),
    "requests/anthropic-clean.json": ("anthropic", set(), set()),
    "requests/anthropic-text-before-result.json": ("anthropic", {("C1", 43)}, {43}),
    "requests/gemini-clean.json": ("gemini", set(), set()),
    "requests/gemini-split-responses.json": ("gemini", {("C1", 55)}, {52, 55}),  # the second response content is merged into the first
    "requests/gemini-signature-missing.json": ("gemini", set(), set()),  # a provider rule only (GE7)
    "requests/openai-responses-todolist3.json": ("openai-responses", {("C1", 15)}, {15}),
    "requests/openai-responses-clean.json": ("openai-responses", set(), set()),
    "requests/openai-responses-reasoning-dropped.json": ("openai-responses", set(), set()),  # a provider rule only (OR3)
    "requests/openai-responses-steer-between.json": ("openai-responses", {("C1", 15)}, {32}),  # the provider accepts it
    "requests/deepseek-reasoning-missing.json": ("openai", set(), set()),  # a provider rule only (DS3)
    "requests/deepseek-thinking.json": ("openai", set(), set()),
    "requests/moonshot-interleaved.json": ("openai", {("C1", 13)}, {45}),
    "requests/moonshot-clean.json": ("openai", set(), set()),
    "requests/mistral-user-after-tool.json": ("openai", set(), set()),  # a provider rule only (MI1)
    "requests/mistral-clean.json": ("openai", set(), set()),
}


def test_every_example_is_listed() -> None:
    found = {f"{p.parent.name}/{p.name}" for d in (KIMI, REQUESTS) for p in d.iterdir() if p.suffix in (".json", ".jsonl")}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_check_names_rule_and_original_line(name: str) -> None:
    fmt, expected, _ = EXPECTED[name]
    path = str(EXAMPLES / name)
    assert sniff_messages(path) == fmt
    loaded, violations = check_messages_file(path)
    assert loaded.format == fmt
    assert {(v.rule, v.line) for v in violations} == expected
    physical = Path(path).read_text().splitlines()
    for v in violations:  # the named line is where a message object or block starts
        assert v.line is not None and physical[v.line - 1].strip().startswith("{")


def test_todolist3_names_the_line_of_the_late_result() -> None:
    _, violations = check_messages_file(str(KIMI / "todolist3.jsonl"))
    c1 = next(v for v in violations if v.rule == "C1")
    assert "TodoList:3" in c1.message and "result is on line 10" in c1.message


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_repair_passes_check_and_is_idempotent(name: str) -> None:
    fmt, expected, lines = EXPECTED[name]
    path = str(EXAMPLES / name)
    before = Path(path).read_bytes()
    text, changes, remaining = repair_messages_file(path)
    assert Path(path).read_bytes() == before  # the input is not touched
    assert remaining == []
    assert {int(c.split(":")[0].removeprefix("line ")) for c in changes} == lines
    if not expected:
        assert changes == [] and text == before.decode("utf-8")
    out = scratch("repaired-" + Path(name).name, text)
    assert sniff_messages(out) == fmt
    assert check_loaded(load_messages(out, fmt)) == []
    again, changes2, remaining2 = repair_messages_file(out, fmt)
    assert (again, changes2, remaining2) == (text, [], [])


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("kimi")))
def test_kimi_repair_keeps_or_lists_every_line(name: str) -> None:
    original = (EXAMPLES / name).read_text().splitlines()
    text, changes, _ = repair_messages_file(str(EXAMPLES / name))
    out = text.splitlines()
    listed = {int(c.split(":")[0].removeprefix("line ")) for c in changes if "removed" in c}
    for number, line in enumerate(original, start=1):
        assert (line in out) != (number in listed), (number, line)
    added = [line for line in out if line not in original]
    assert all(SYNTHETIC_TEXT in line for line in added)
    # Lines the model never sees keep their order.
    invisible = [line for line in original if '"_' in line.split(",")[0]]
    assert [line for line in out if line in invisible] == invisible


def test_synthetic_result_says_why() -> None:
    assert any(word in SYNTHETIC_TEXT.lower() for word in REASON_WORDS[Reason.NEVER_ANSWERED])


def test_repair_never_puts_results_after_the_next_checkpoint() -> None:
    """Kimi CLI reverts to a checkpoint by cutting the file there: results stay before it."""
    text, _, _ = repair_messages_file(str(KIMI / "todolist3.jsonl"))
    lines = text.splitlines()
    tool = next(k for k, line in enumerate(lines) if '"role":"tool"' in line)
    assert lines[tool - 1].startswith('{"role": "_usage"') and lines[tool + 1].startswith('{"role": "_checkpoint"')


# ---------------------------------------------------------------------------
# Repair on generated lists, broken ones included.
# ---------------------------------------------------------------------------


@given(data=st.data())
def test_repair_leaves_only_what_it_cannot_fix(data: st.DataObject) -> None:
    """One test for the three formats (drawn), to keep the suite's time down."""
    fmt = data.draw(st.sampled_from(MESSAGE_FORMATS))
    msgs = data.draw(message_lists(fmt, adjacent_users=True))
    original = export_messages(msgs, fmt)
    text, changes, remaining = repair_messages_text(original, fmt)
    ids = [c.id for m in msgs if isinstance(m, AssistantMessage) for c in m.calls]
    fixable = {"C10"} if len(ids) == len(set(ids)) else {"C2", "C3", "C10"}
    assert {v.rule for v in remaining} <= fixable
    if not text.strip():  # every line was an orphan: Kimi CLI starts an empty file afresh
        assert fmt == "kimi-context" and all(isinstance(m, ToolMessage) for m in msgs)
        return
    loaded = load_messages_text(text, fmt)
    assert check_loaded(loaded) == remaining
    if not changes:
        assert text == original
    # Every result that answers a call of an earlier assistant message survives.
    kept = [m for m in loaded.messages if isinstance(m, ToolMessage) and SYNTHETIC_TEXT not in m.content]
    assert len(kept) <= sum(isinstance(m, ToolMessage) for m in msgs)
    assert repair_messages_text(text, fmt) == (text, [], remaining)


# ---------------------------------------------------------------------------
# Bad and hostile input: one-line InvalidLog naming the file and the line.
# ---------------------------------------------------------------------------


def _only_invalid_log(path: str, fmt: str | None, lenient: bool) -> InvalidLog | None:
    try:
        load_messages(path, fmt, lenient=lenient)
    except InvalidLog as exc:
        assert "\n" not in str(exc) and str(exc).startswith(path)
        return exc
    return None


@given(st.sampled_from([*MESSAGE_FORMATS, None]), st.binary(max_size=200))
def test_random_bytes_raise_only_invalid_log(fmt: str | None, data: bytes) -> None:
    path = scratch("random.bin", data)
    _only_invalid_log(path, fmt, False)
    _only_invalid_log(path, fmt, True)


def _mutations(obj: object) -> Iterator[object]:
    """``obj`` with one field deleted, retyped or replaced, one at a time (recursively)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield {kk: vv for kk, vv in obj.items() if kk != k}
            bad_values: tuple[object, ...] = (None, 7, "x", [], {}, True)
            for bad in bad_values:
                yield {**obj, k: bad}
            for sub in _mutations(v):
                yield {**obj, k: sub}
    elif isinstance(obj, list):
        for j, v in enumerate(obj):
            yield obj[:j] + obj[j + 1 :]
            for sub in _mutations(v):
                yield obj[:j] + [sub] + obj[j + 1 :]
            yield obj[:j] + [{"type": "mystery"}] + obj[j + 1 :]


def _kimi_variants() -> Iterator[tuple[str, bytes]]:
    for path in sorted(KIMI.glob("*.jsonl")):
        lines = path.read_bytes().splitlines(keepends=True)
        for k, line in enumerate(lines):
            obj = json.loads(line)
            edits: list[bytes] = [line[: len(line) // 2], b"\xff\xfe" + line, b"[1, 2]\n", b'{"role": "martian"}\n']
            edits.extend(json.dumps(m).encode() + b"\n" for m in _mutations(obj))
            for edit in edits:
                yield f"{path.name}:{k + 1}", b"".join(lines[:k] + [edit] + lines[k + 1 :])


KIMI_VARIANTS = list(_kimi_variants())


def test_mutated_kimi_lines_raise_only_invalid_log_and_repair_in_lenient_mode() -> None:
    assert len(KIMI_VARIANTS) > 500
    for name, data in KIMI_VARIANTS:
        path = scratch("mutant.jsonl", data)
        strict = _only_invalid_log(path, "kimi-context", False)
        lenient = _only_invalid_log(path, "kimi-context", True)
        if strict is not None:
            assert strict.line is not None, name
        if lenient is not None:
            assert "nothing usable" in str(lenient) or "empty" in str(lenient), name
            continue
        text, changes, remaining = repair_messages_file(path, "kimi-context", lenient=True)
        assert not {v.rule for v in remaining} & {"C1", "C2"}, (name, remaining)
        loaded = load_messages_text(text, "kimi-context")  # strict: nothing unreadable is left
        assert check_loaded(loaded) == remaining
        if strict is not None:
            assert any(f"line {strict.line}:" in c for c in changes), (name, changes)


REQUEST_DOCS = {n: json.loads((EXAMPLES / n).read_text()) for n in sorted(EXPECTED) if n.startswith("requests")}
REQUEST_VARIANTS = {n: list(_mutations(doc[ITEMS_KEY[EXPECTED[n][0]]])) for n, doc in REQUEST_DOCS.items()}


@given(data=st.data())
def test_mutated_requests_raise_only_invalid_log(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(REQUEST_DOCS)))
    fmt = EXPECTED[name][0]
    doc = REQUEST_DOCS[name]
    variants = REQUEST_VARIANTS[name]
    mutated = {**doc, ITEMS_KEY[fmt]: data.draw(st.sampled_from(variants))}
    text = json.dumps(mutated, indent=data.draw(st.sampled_from([None, 1, 2])))
    cut = data.draw(st.integers(0, len(text)))
    for variant in (text, text[:cut]):
        path = scratch("mutant.json", variant)
        for lenient in (False, True):
            err = _only_invalid_log(path, fmt, lenient)
            if err is None:
                loaded = load_messages(path, fmt, lenient=lenient)
                check_loaded(loaded)
                fixed, _, remaining = repair_messages_file(path, fmt, lenient=lenient)
                ids = [c.id for m in loaded.messages if isinstance(m, AssistantMessage) for c in m.calls]
                assert "C1" not in {v.rule for v in remaining}
                if len(ids) == len(set(ids)):
                    assert {v.rule for v in remaining} <= {"C10"}
                assert repair_messages_text(fixed, fmt)[1] == []


@pytest.mark.parametrize("fmt", MESSAGE_FORMATS)
def test_empty_and_blank_files(fmt: str) -> None:
    for data in (b"", b"\n\n  \n"):
        err = _only_invalid_log(scratch("empty", data), fmt, False)
        assert err is not None and "empty" in err.message


@pytest.mark.parametrize("fmt", MESSAGE_FORMATS)
def test_a_directory_is_refused(fmt: str) -> None:
    err = _only_invalid_log(str(SCRATCH), fmt, False)
    assert err is not None and "directory" in err.message
    with pytest.raises(InvalidLog, match="directory"):
        sniff_messages(str(SCRATCH))
    with pytest.raises(InvalidLog, match="no such file"):
        repair_messages_file(str(SCRATCH / "missing.json"), fmt)


def test_kimi_truncated_last_line_is_skipped_and_noted() -> None:
    data = (KIMI / "crash-mid-parallel.jsonl").read_bytes() + b'{"role":"tool","content":"12 pas'
    path = scratch("torn.jsonl", data)
    loaded = load_messages(path)
    assert any(n.line == 13 and "truncated" in n.why for n in loaded.report.notes)
    text, changes, _ = repair_messages_file(path)
    assert any(c.startswith("line 13: removed the truncated last line") for c in changes)
    assert "12 pas" not in text


def test_truncated_request_names_a_line() -> None:
    text = (REQUESTS / "openai-clean.json").read_text()
    err = _only_invalid_log(scratch("torn.json", text[: len(text) // 2]), "openai", False)
    assert err is not None and err.line is not None and "malformed JSON" in err.message


@pytest.mark.parametrize("name", ["kimi-context/todolist3.jsonl", "requests/anthropic-clean.json"])
def test_huge_input_is_refused(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "MAX_LINE_BYTES", 100)
    fmt = EXPECTED[name][0]
    err = _only_invalid_log(str(EXAMPLES / name), fmt, False)
    assert err is not None and ("longer than" in err.message or "too big" in err.message)
    if fmt == "kimi-context":
        assert err.line == 1  # the system prompt line is the first one over 100 bytes


@pytest.mark.parametrize("fmt", MESSAGE_FORMATS)
def test_non_utf8_names_the_line(fmt: str) -> None:
    source = (KIMI / "todolist3.jsonl") if fmt == "kimi-context" else (REQUESTS / f"{fmt}-clean.json")
    lines = source.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"e", b"\xe9", 1)
    err = _only_invalid_log(scratch("latin1", b"".join(lines)), fmt, False)
    assert err is not None and err.line == 3 and "UTF-8" in err.message


def test_kimi_lenient_mode_skips_and_counts_unreadable_lines() -> None:
    lines = (KIMI / "compaction-cut.jsonl").read_text().splitlines(keepends=True)
    lines.insert(4, '{"role":"assistant","content":42}\n')
    path = scratch("bad.jsonl", "".join(lines))
    with pytest.raises(InvalidLog) as info:
        load_messages(path)
    assert info.value.line == 5
    loaded = load_messages(path, lenient=True)
    assert [s.line for s in loaded.report.unreadable] == [5]
    assert loaded.report.skipped == {"_checkpoint": 2, "_usage": 1}
    assert "unreadable" in loaded.report.summary()


# ---------------------------------------------------------------------------
# Detection and provider specifics.
# ---------------------------------------------------------------------------


def test_sniff_tells_the_formats_apart() -> None:
    assert sniff_messages(scratch("bare.json", "[]")) == "openai"
    assert sniff_messages(scratch("one-line.json", '{"model":"m","messages":[]}')) == "openai"
    assert sniff_messages(scratch("sys.json", '{"system":"s","messages":[]}')) == "anthropic"
    assert sniff_messages(scratch("wire.jsonl", '{"type":"metadata","protocol_version":"1.4"}\n{"type":"turn.prompt"}\n')) is None
    assert sniff_messages(scratch("meta.jsonl", '{"type":"session.meta","version":1}\n')) is None
    assert sniff_messages(scratch("kimi.jsonl", '\n{"role": "_checkpoint", "id": 0}\n')) == "kimi-context"
    assert sniff_messages(scratch("bad.json", "{\n nope")) is None


def test_anthropic_results_after_text_are_reported_once_per_message() -> None:
    loaded, violations = check_messages_file(str(REQUESTS / "anthropic-text-before-result.json"))
    assert [v.rule for v in violations] == ["C1"]
    assert "Anthropic" in violations[0].message
    # Our own rules see the results first and find nothing else wrong.
    assert check_messages(loaded.messages) == []


def test_openai_developer_role_and_parts() -> None:
    doc = {"messages": [{"role": "developer", "content": [{"type": "text", "text": "be brief"}]}, {"role": "user", "content": [{"type": "text", "text": "see "}, {"type": "image_url", "image_url": {"url": "x"}}]}]}
    loaded = load_messages_text(json.dumps(doc), "openai")
    assert loaded.messages == (SystemMessage(text="be brief"), UserMessage(text="see [image_url]"))


def test_unknown_format_is_invalid_log() -> None:
    with pytest.raises(InvalidLog, match="unknown message format"):
        load_messages(str(KIMI / "todolist3.jsonl"), "yaml")
