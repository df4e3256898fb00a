"""The command line on the runtimes' own files: check, check --request, repair, counterexample --format."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from ctxref.cli import main
from ctxref.formats import load
from ctxref.formats.messages import check_messages_file
from ctxref.mutants import MUTANTS
from ctxspec.contract import check_session
from ctxspec.events import load_log

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
FORMAT_DIRS = {"kimi-wire": "kimi-wire", "codex": "codex", "claude": "claude", "kimi-context": "kimi-context"}
NAMES = ("todolist3", "crash-mid-parallel", "steer-during-parallel", "compaction-cut")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def findings(out: str) -> set[tuple[str, int]]:
    """``(rule, line)`` of every finding ``check`` printed under a rule."""
    rows, rule = set(), ""
    for row in out.splitlines():
        words = row.split()
        if row.startswith("  C") and len(words) > 1:
            rule = words[0]
        elif row.strip().startswith("- "):
            text = row.strip()[2:].split("] ", 1)[-1]  # after the level: "- [reject] ..."
            if text.startswith("line "):
                rows.add((rule, int(text[5:].split(":")[0])))
            elif "line " in text:  # message formats: "... (message i, line N)"
                rows.add((rule, int(text.rsplit("line ", 1)[1].rstrip(")"))))
    return rows


@pytest.mark.parametrize(
    "path, fmt, expected",
    [
        ("kimi-wire/todolist3.jsonl", "kimi-wire", {("C6", 12)}),
        ("kimi-wire/crash-mid-parallel.jsonl", "kimi-wire", {("C5", 12), ("C6", 10)}),
        ("kimi-wire/steer-during-parallel.jsonl", "kimi-wire", {("C6", 8)}),
        ("kimi-wire/compaction-cut.jsonl", "kimi-wire", {("C7", 8)}),
        ("codex/todolist3.jsonl", "codex", {("C6", 13)}),
        ("codex/crash-mid-parallel.jsonl", "codex", {("C6", 12), ("C5", 14)}),
        ("codex/steer-during-parallel.jsonl", "codex", {("C6", 11)}),
        ("kimi-context/todolist3.jsonl", "kimi-context", {("C1", 5)}),  # its answer on line 10 is misplaced, not an orphan
        ("kimi-context/compaction-cut.jsonl", "kimi-context", {("C2", 4)}),
    ],
)
def test_check_detects_the_format_and_names_rule_and_line(path: str, fmt: str, expected: set[tuple[str, int]]) -> None:
    code, out = run("check", "--brief", str(EXAMPLES / path))
    assert code == 1
    assert out.split("\n")[0].split(": ")[1].startswith(fmt), out
    assert findings(out) == expected, out


@pytest.mark.parametrize("fmt", ["kimi-wire", "codex", "claude", "kimi-context"])
@pytest.mark.parametrize("name", NAMES)
def test_repair_then_check_is_clean(fmt: str, name: str, tmp_path: Path) -> None:
    src = EXAMPLES / FORMAT_DIRS[fmt] / f"{name}.jsonl"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "fixed.jsonl"
    code, report = run("repair", str(src), "-o", str(out))
    assert code == 0, report
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest  # the input is never modified
    assert run("check", "--brief", str(out), "--format", fmt)[0] == 0
    again = tmp_path / "again.jsonl"
    assert run("repair", str(out), "-o", str(again))[0] == 0
    assert again.read_bytes() == out.read_bytes()  # repairing a repaired file changes nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.jsonl", "fixed.jsonl"]  # no temporary file left


def test_repair_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "wire.jsonl"
    src.write_bytes((EXAMPLES / "kimi-wire" / "crash-mid-parallel.jsonl").read_bytes())
    before = src.read_bytes()
    assert run("repair", str(src), "-o", str(src), "--force")[0] == 2
    assert "is the input" in capsys.readouterr().err and src.read_bytes() == before
    out = tmp_path / "out.jsonl"
    out.write_text("mine", encoding="utf-8")
    assert run("repair", str(src), "-o", str(out))[0] == 2
    assert "already exists" in capsys.readouterr().err and out.read_text(encoding="utf-8") == "mine"
    assert run("repair", str(src), "-o", str(out), "--force")[0] == 0
    assert "Shell:2" in out.read_text(encoding="utf-8")


def test_request_lacking_the_tool_message_is_one_finding_with_its_log_line() -> None:
    """The seed's session: the request the runtime sent also has its own system prompt and compact arguments."""
    code, out = run("check", "--brief", str(EXAMPLES / "kimi-wire" / "todolist3.jsonl"), "--request", str(EXAMPLES / "kimi-wire" / "todolist3-request.json"))
    findings = [line for line in out.splitlines() if line.startswith("  C")]
    assert findings == ["  C1 pairing [reject, also C4]: the request lacks the tool message for TodoList:3 (TodoList); its result is on line 14 (request message 3)"], out
    assert "judged as the request built at line 15 (step.begin)" in out
    assert "note: the request's system prompt differs from the one the log records; it is not judged" in out
    assert out.splitlines()[-1] == "verdict: the provider would reject this request: 1 finding(s)" and code == 1


def test_request_that_matches_the_reference(tmp_path: Path) -> None:
    clean = tmp_path / "request.json"
    code, out = run("project", str(EXAMPLES / "todolist3.jsonl"), "-o", str(clean))
    assert code == 0
    code, out = run("check", "--brief", str(EXAMPLES / "todolist3.jsonl"), "--request", str(clean))
    assert code == 0 and out.splitlines()[-1] == "verdict: the request is a projection of the log: nothing missing, extra or misplaced"


@pytest.mark.parametrize("fmt", ["kimi-wire", "codex", "claude"])
def test_counterexample_in_a_runtime_format_loads_back_to_the_same_session(fmt: str, tmp_path: Path) -> None:
    canonical, native = tmp_path / "cx.jsonl", tmp_path / f"cx.{fmt}.jsonl"
    assert run("counterexample", "--mutant", "duplicate_id_kept", "--shortest", "-o", str(canonical))[0] == 0
    code, out = run("counterexample", "--mutant", "duplicate_id_kept", "--shortest", "-o", str(native), "--format", fmt)
    assert code == 0 and f"({fmt})" in out
    imported = load(str(native))
    assert imported.format == fmt
    assert imported.log == load_log(str(canonical))
    assert "C3" in {v.rule for v in check_session(imported.log, MUTANTS["duplicate_id_kept"].project)}


def test_counterexample_as_a_kimi_cli_context_is_the_request_that_fails(tmp_path: Path) -> None:
    target = tmp_path / "context.jsonl"
    assert run("counterexample", "--mutant", "duplicate_id_kept", "--shortest", "-o", str(target), "--format", "kimi-context")[0] == 0
    loaded, violations = check_messages_file(str(target))
    assert loaded.format == "kimi-context"
    assert "C3" in {v.rule for v in violations}


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "empty file"),
        (b'{"type":"metadata","protocol_version":"1.4","created_at":1}\n{"type":"turn.prompt","input":7}\n', ":2: turn.prompt"),
        (b'{"type":"metadata","protocol_version":"1.4","created_at":1}\n\xff\xfe\n', ":2: not UTF-8"),
        (b'{"what":"is this"}\n', ":1: cannot tell the format"),
    ],
)
def test_bad_runtime_files_are_one_line_exit_2(tmp_path: Path, content: bytes, fragment: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    for command in (["check"], ["repair", "-o", str(tmp_path / "out.jsonl")]):
        proc = subprocess.run([sys.executable, "-m", "ctxref.cli", *command[:1], str(bad), *command[1:]], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"ctxcontract: error: {bad}") and fragment in proc.stderr and proc.stderr.count("\n") == 1
        assert proc.stdout == ""
    assert not (tmp_path / "out.jsonl").exists()


def test_lenient_check_skips_and_counts(tmp_path: Path) -> None:
    text = (EXAMPLES / "kimi-wire" / "steer-during-parallel.jsonl").read_text(encoding="utf-8").split("\n")
    text.insert(3, "{broken")
    bad = tmp_path / "wire.jsonl"
    bad.write_text("\n".join(text), encoding="utf-8")
    assert run("check", str(bad))[0] == 2
    code, out = run("check", "--brief", "--lenient", str(bad))
    assert code == 1 and "skipped unreadable line 4: malformed JSON" in out
    fixed = tmp_path / "fixed.jsonl"
    code, out = run("repair", "--lenient", str(bad), "-o", str(fixed))
    assert code == 0 and "line 4: dropped: unreadable" in out
    assert run("check", "--brief", str(fixed))[0] == 0


def test_a_directory_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("check", str(tmp_path))[0] == 2
    err = capsys.readouterr().err
    assert "directory" in err and err.count("\n") == 1
