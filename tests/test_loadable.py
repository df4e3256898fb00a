"""Will the runtime load it: the model of Kimi CLI's restore (ctxref.formats.loadable), and check/repair on it.

The model is held to Kimi CLI's own loader in tests/test_kimi_cli_loads.py;
here it is checked fast, in process, line by line and through the CLI.
"""

from __future__ import annotations

import io
from collections.abc import Callable
import json
from pathlib import Path

import jsonschema
import pytest

from ctxref.cli import main
from ctxref.formats.loadable import KOSONG_PART_TYPES, MODELLED, fix_kimi_context, kimi_refusal, refusals
from ctxref.formats.messages import check_messages_file, repair_messages_file, repair_messages_text

ROOT = Path(__file__).parent.parent
UNLOADABLE = ROOT / "examples" / "kimi-context" / "unloadable"
VALIDATOR = jsonschema.Draft202012Validator(json.loads((ROOT / "docs" / "cli-output.schema.json").read_text(encoding="utf-8")))


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.mark.parametrize(
    ("line", "raised"),
    [
        ({"role": "user", "content": [{"type": "image", "source": {}}]}, "KeyError"),
        ({"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": "x"}, {"type": "input_audio"}]}, "KeyError"),
        ({"role": "developer", "content": [{"type": "file"}]}, "KeyError"),  # a bad role does not stop the part lookup
        ({"role": "assistant", "tool_calls": []}, "TypeError"),
        ({"role": "_title", "title": "x"}, "TypeError"),  # not a special record Kimi CLI knows, and no content
        ({"role": "user", "content": "x", "self": 1}, "TypeError"),
        # what it gets past: kosong's parts, skipped lines, special records of the wrong type
        ({"role": "user", "content": [{"type": t, f"{t}": {"url": "u"}} for t in sorted(KOSONG_PART_TYPES - {"text", "think"})]}, None),
        ({"role": "user", "content": [{"type": 3}, {"text": "no type"}, "str"]}, None),
        ({"role": "developer", "content": "x"}, None),
        ({"content": "no role"}, None),
        ({"role": "_checkpoint", "id": "x"}, None),
        ({"role": "_title", "content": "x"}, None),
        ([1, 2], None),
    ],
)
def test_kimi_refusal_of_one_line(line: object, raised: str | None) -> None:
    refusal = kimi_refusal(7, json.dumps(line).encode())
    if raised is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.line == 7 and raised in refusal.why and "cannot be resumed" in refusal.why


def test_lines_kimi_cli_skips_are_no_refusals() -> None:
    for raw in (b"", b"  \r", b"not json", b'{"role":"user","content":"cut', b"\xff\xfe", b'{"role":"user","content":"a\x01b"}'):
        assert kimi_refusal(1, raw) is None


def test_other_formats_have_no_model_yet(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"role":"user","content":[{"type":"image"}]}\n')
    assert refusals(str(path), "kimi-context") and refusals(str(path), "claude") == refusals(str(path), "openai") == []
    assert set(MODELLED) == {"kimi-context", "kimi-wire", "codex"}


@pytest.mark.parametrize("name", ["image-part.jsonl", "audio-part.jsonl", "no-content.jsonl"])
def test_check_and_repair_agree_on_an_unloadable_file(name: str, tmp_path: Path) -> None:
    path = UNLOADABLE / name
    refused = refusals(str(path), "kimi-context")
    assert len(refused) == 1
    # check: a finding of its own, in text and JSON, and the verdict and exit code say so
    code, text = run("check", str(path))
    assert code == 1
    assert f"line {refused[0].line}: {refused[0].why}" in text
    assert text.splitlines()[-1].startswith("verdict: unloadable: Kimi CLI 1.52.0 cannot resume this session")
    code, out = run("check", str(path), "--json")
    doc = json.loads(out)
    VALIDATOR.validate(doc)
    assert (doc["exit_code"], code, doc["verdict"]) == (1, 1, "unloadable")
    assert doc["refusals"] == [{"line": refused[0].line, "why": refused[0].why}]
    # repair: fixes the refused line in place, and check finds the repaired file clean
    target = tmp_path / name
    code, report = run("repair", str(path), "-o", str(target))
    assert code == 0, report
    assert f"line {refused[0].line}: Kimi CLI 1.52.0 could not load it" in report
    assert refusals(str(target), "kimi-context") == []
    code, out = run("check", str(target), "--json")
    assert (code, json.loads(out)["verdict"], json.loads(out)["refusals"]) == (0, "clean", [])
    assert run("repair", str(target), "-o", str(tmp_path / "again.jsonl"))[0] == 0
    assert (tmp_path / "again.jsonl").read_bytes() == target.read_bytes()


def test_a_loadable_file_says_so() -> None:
    code, text = run("check", str(ROOT / "examples" / "kimi-context" / "todolist3.jsonl"), "--brief")
    assert code == 1 and "will Kimi CLI 1.52.0 load it? (its own loader, before any request)\n  yes" in text


def test_fix_keeps_every_line_number_and_every_other_byte() -> None:
    data = b'{"role": "_checkpoint", "id": 0}\r\n{"role":"user","content":[{"type":"image"}]}\r\n\n{"role":"assistant","tool_calls":[]}'
    fixed, changes = fix_kimi_context(data)
    before, after = data.split(b"\n"), fixed.split(b"\n")
    assert len(before) == len(after) and [c[0] for c in changes] == [2, 4]
    assert [a for a, b in zip(after, before) if a != b] == [after[1], after[3]]
    assert after[1].endswith(b"\r") and b"'image'" in after[1] and json.loads(after[3])["content"] == []


def test_strict_repair_reads_a_refused_line_once_it_is_fixed() -> None:
    """Strict mode used to stop at the unknown part (``check`` skipped it): now both see the fixed line."""
    with pytest.raises(Exception, match="unknown part type 'image'"):
        check_messages_file(str(UNLOADABLE / "image-part.jsonl"), "kimi-context")
    text, changes, remaining = repair_messages_file(str(UNLOADABLE / "image-part.jsonl"), "kimi-context")
    assert changes[0].startswith("line 3: Kimi CLI 1.52.0 could not load it") and remaining == []


def test_a_boolean_checkpoint_id_is_read_as_kimi_cli_reads_it() -> None:
    """``isinstance(True, int)``: Kimi CLI counts the checkpoint, so repair must not remove the line."""
    text = '{"role": "_checkpoint", "id": true}\n{"role":"user","content":"go"}\n'
    assert repair_messages_text(text, "kimi-context", lenient=True) == (text, [], [])


# -- Kimi Code wire.jsonl and Codex rollouts: the loaders read in their source ----------------------

WIRE = ROOT / "examples" / "kimi-wire" / "todolist3.jsonl"
ROLLOUT = ROOT / "examples" / "codex" / "todolist3.jsonl"


def _wire(tmp_path: Path, edit: Callable[[list[bytes]], list[bytes]], *, ended: bool = True) -> str:
    lines = edit(WIRE.read_bytes().splitlines())
    path = tmp_path / "wire.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if ended else b""))
    return str(path)


def _loop(event: dict[str, object]) -> bytes:
    return json.dumps({"type": "context.append_loop_event", "event": event}).encode()


@pytest.mark.parametrize(
    ("edit", "line", "words"),
    [
        (lambda ls: ls[:3] + [b'{"type":"turn.prompt",'] + ls[3:], 4, "corrupted line 4"),
        (lambda ls: ls[:3] + [b"   "] + ls[3:], 4, "corrupted line 4"),  # JSON.parse("   ") throws
        (lambda ls: ls + [b'{"type":"usage.record","usage":NaN}'], 0, "corrupted line"),  # a last line with its newline
        (lambda ls: ls[1:], 1, "expected metadata as the first record"),
        (lambda ls: [b"\xef\xbb\xbf" + ls[0]] + ls[1:], 1, "corrupted line 1"),  # a byte order mark (Node keeps it)
        (lambda ls: ls + [_loop({"type": "tool.call", "stepUuid": "s1", "toolCallId": "x", "name": "Shell"})], 0, "unknown step_uuid"),  # s1 has ended
        (lambda ls: ls[:6] + [b'{"type":"context.clear"}'] + ls[6:], 8, "Received content_part for unknown step_uuid"),
        (lambda ls: ls + [_loop({"type": "tool.result", "toolCallId": "x"})], 0, "no result object"),
        (lambda ls: ls + [b'{"type":"context.append_message"}'], 0, "no message object"),
    ],
)
def test_kimi_code_refuses(edit: Callable[[list[bytes]], list[bytes]], line: int, words: str, tmp_path: Path) -> None:
    path = _wire(tmp_path, edit)
    refused = refusals(path, "kimi-wire")
    total = len(Path(path).read_bytes().splitlines())
    assert [r.line for r in refused] == [line or total] and words in refused[0].why, refused


def test_kimi_code_forgives_a_torn_last_line_and_unknown_records(tmp_path: Path) -> None:
    assert refusals(str(WIRE), "kimi-wire") == []
    assert refusals(_wire(tmp_path, lambda ls: ls + [b'{"type":"context.append_mess'], ended=False), "kimi-wire") == []
    assert refusals(_wire(tmp_path, lambda ls: ls + [b'{"type":"goal.someday"}', b"", b"[1]"]), "kimi-wire") == []


def test_codex_refuses(tmp_path: Path) -> None:
    lines = ROLLOUT.read_bytes().splitlines(keepends=True)
    assert refusals(str(ROLLOUT), "codex") == []
    cases = {
        "not-utf8": (lines[:2] + [lines[2].replace(b'"', b'"\xff', 1)] + lines[3:], 3, "valid UTF-8"),
        "no-meta": (lines[1:], 1, "failed to parse thread ID"),
        "bad-id": ([lines[0].replace(b'"id":"', b'"id":"x', 1)] + lines[1:], 1, "failed to parse thread ID"),
        "blank": ([b"\n", b"  \n"], 1, "empty session file"),
    }
    for name, (body, line, words) in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"".join(body))
        refused = refusals(str(path), "codex")
        assert [r.line for r in refused] == [line] and words in refused[0].why, (name, refused)
    # a line it cannot read is skipped, not a refusal
    path = tmp_path / "skipped.jsonl"
    path.write_bytes(b"".join(lines[:3] + [b"not json\n", b'{"type":"future_kind"}\n'] + lines[3:]))
    assert refusals(str(path), "codex") == []


def test_check_reports_an_event_log_its_runtime_cannot_load(tmp_path: Path) -> None:
    """A corrupted line in the middle: Kimi Code throws there; --lenient judges the rest, and repair drops it."""
    path = _wire(tmp_path, lambda ls: ls[:3] + [b'{"type":"turn.prompt",'] + ls[3:])
    code, text = run("check", path, "--brief", "--lenient")
    assert code == 1 and "will Kimi Code load it?" in text and "line 4: Kimi Code throws 'wire.jsonl: corrupted line 4'" in text
    assert text.splitlines()[-1].startswith("verdict: unloadable: Kimi Code cannot resume this session")
    code, out = run("check", path, "--json", "--lenient")
    doc = json.loads(out)
    VALIDATOR.validate(doc)
    assert (code, doc["exit_code"], doc["verdict"], [r["line"] for r in doc["refusals"]]) == (1, 1, "unloadable", [4])
    assert run("repair", path, "--lenient", "-o", str(tmp_path / "fixed.jsonl"))[0] == 0
    assert refusals(str(tmp_path / "fixed.jsonl"), "kimi-wire") == []
