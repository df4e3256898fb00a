"""The command line: exit codes, one-line errors, atomic writes, and the four jobs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ctxref.cli import main
from ctxref.mutants import MUTANTS
from ctxspec.contract import check_session
from ctxspec.events import load_log

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_check_clean_log() -> None:
    code, out = run("check", str(EXAMPLES / "clean.jsonl"))
    assert code == 0 and "verdict: clean" in out


@pytest.mark.parametrize(
    "example, rule, line",
    [
        ("crash-mid-parallel.jsonl", "C5", 6),
        ("crash-mid-parallel.jsonl", "C8", 9),
        ("steer-during-parallel.jsonl", "C6", 6),
        ("compaction-cut.jsonl", "C7", 6),
    ],
)
def test_check_names_rule_and_line(example: str, rule: str, line: int) -> None:
    code, out = run("check", str(EXAMPLES / example))
    assert code == 1
    assert (rule, line) in verdict_rows(out), out


def findings(out: str) -> set[tuple[str, str]]:
    """``(rule, text)`` of every finding printed under a rule (text up to ' in order', if any)."""
    rows, rule = set(), ""
    for row in out.splitlines():
        words = row.split()
        if row.startswith("  C") and len(words) > 1:
            rule = words[0]
        elif row.strip().startswith("- "):
            text = row.strip()[2:].split("] ", 1)[-1]  # after the level: "- [reject] ..."
            rows.add((rule, text.split(" in order")[0]))
    return rows


def verdict_rows(out: str) -> set[tuple[str, int]]:
    """``(rule, line)`` of every finding ``check`` printed under a rule."""
    rows, rule = set(), ""
    for row in out.splitlines():
        words = row.split()
        if row.startswith("  C") and len(words) > 1:
            rule = words[0]
        elif row.strip().startswith("- ["):
            text = row.strip().split("] ", 1)[1]  # after the level: "- [loss] line 9: ..."
            if text.startswith("line "):
                rows.add((rule, int(text[len("line ") :].split(":")[0])))
    return rows


def test_check_a_projector_on_a_log() -> None:
    code, out = run("check", str(EXAMPLES / "todolist3.jsonl"), "--projector", str(EXAMPLES / "todolist_bug.py") + ":project")
    assert code == 1
    assert ("C1", "call 'TodoList:3' (TodoList) is not answered: its block of tool messages ends at the end of the request (message 2)") in findings(out)
    assert ("C4", "result of 'TodoList:3' is in the log but not sent (message 2, line 6)") in findings(out)
    code, out = run("check", str(EXAMPLES / "todolist3.jsonl"), "--projector", "ctxref.projector:project_json")
    assert code == 0, out


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type":"session.meta","version":1}\n{"type":"turn.prompt","text":5}\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "ctxref.cli", "check", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == f"ctxcontract: error: {bad}:2: turn.prompt.text: expected a string, got an integer\n"
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("", "bad.jsonl: empty file"),
        ('{"type":"session.meta","version":1}\n{"type":"step.end"}\n', "bad.jsonl:2: step.end cannot happen in phase idle"),
    ],
)
def test_bad_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    code, _ = run("project", str(bad))
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_a_torn_last_line_is_skipped_as_runtimes_do_and_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torn = tmp_path / "torn.jsonl"
    torn.write_text('{"type":"session.meta","version":1}\n{"type":"turn.prompt","text":"x"', encoding="utf-8")
    code, out = run("project", str(torn))
    assert code == 0 and json.loads(out) == []
    assert capsys.readouterr().err == f"ctxcontract: note: {torn}: line 2: truncated last line skipped (the writer stopped mid-line)\n"


def test_project_writes_atomically_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.json"
    code, _ = run("project", str(EXAMPLES / "todolist3.jsonl"), "-o", str(target))
    assert code == 0
    messages = json.loads(target.read_text(encoding="utf-8"))
    assert messages[-1] == {"role": "tool", "tool_call_id": "TodoList:3", "content": "2 todos saved"}
    target.write_text("mine", encoding="utf-8")
    code, _ = run("project", str(EXAMPLES / "todolist3.jsonl"), "-o", str(target))
    assert code == 2 and "already exists" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "mine"
    assert run("project", str(EXAMPLES / "todolist3.jsonl"), "-o", str(target), "--force")[0] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left behind


def test_counterexample_for_a_mutant(tmp_path: Path) -> None:
    target = tmp_path / "cx.jsonl"
    code, out = run("counterexample", "--mutant", "duplicate_id_kept", "-o", str(target))
    assert code == 0 and "C3 unique ids" in out
    log = load_log(str(target))
    mutant = MUTANTS["duplicate_id_kept"]
    assert "C3" in {v.rule for v in check_session(log, mutant.project)}


def test_counterexample_unknown_mutant(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("counterexample", "--mutant", "nope")[0] == 2
    assert "unknown mutant 'nope'" in capsys.readouterr().err
    code, out = run("counterexample", "--list")
    assert code == 0 and set(MUTANTS) == {line.split()[0] for line in out.splitlines()}


@pytest.mark.parametrize("spec", [str(EXAMPLES / "todolist_bug.py") + ":project", "examples.todolist_bug:project"])
def test_verify_finds_the_todolist_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.chdir(ROOT)
    target = tmp_path / "cx.jsonl"
    code, out = run("verify", "--projector", spec, "-o", str(target))
    assert code == 1
    assert "C1 pairing" in out and "C4 fidelity" in out
    assert "beside the reference projection under policy reference" in out and ">> [" in out and "projector: (nothing)" in out
    log = load_log(str(target))
    assert [e.type for e in log] == ["session.meta", "turn.prompt", "step.begin", "assistant", "step.end", "tool.result", "step.begin"]


def test_verify_passes_the_reference() -> None:
    code, out = run("verify", "--projector", "ctxref.projector:project_json", "--max-examples", "20")
    assert code == 0 and "no counterexample found" in out


INVERTED_ERROR_FLAG = """
from ctxref.projector import project_json


def project(events):
    out = project_json(events)
    for m in out:
        if m["role"] == "tool":
            if m.pop("x_is_error", None) is None:
                m["x_is_error"] = True
    return out
"""


def test_verify_checks_the_error_flag_a_projection_carries(tmp_path: Path) -> None:
    (tmp_path / "inverted.py").write_text(INVERTED_ERROR_FLAG, encoding="utf-8")
    code, out = run("verify", "--projector", str(tmp_path / "inverted.py") + ":project", "-o", str(tmp_path / "cx.jsonl"), "--max-examples", "200")
    assert code == 1 and ("wrong error or synthetic flag" in out or "not flagged as a synthetic error" in out)


SALTED = """
from ctxref.projector import project_json


def project(events):
    print("a projector that prints does not disturb the answers")
    out = project_json(events)
    for m in out:
        if m["role"] == "tool" and m.get("x_synthetic"):
            m["content"] += f" [{hash(m['tool_call_id']) % 1000}]"  # salted per process
    return out
"""


def test_verify_projects_in_another_process_too(tmp_path: Path) -> None:
    # deterministic in one process, so only the other process (another hash seed) tells
    (tmp_path / "salted.py").write_text(SALTED, encoding="utf-8")
    code, out = run("verify", "--projector", str(tmp_path / "salted.py") + ":project", "-o", str(tmp_path / "cx.jsonl"), "--max-examples", "300")
    assert code == 1 and "C11 determinism and replay [cache]: projecting the same log in another process" in out
    log = load_log(str(tmp_path / "cx.jsonl"))
    assert any(e.type == "assistant" for e in log) and log[-1].type == "step.begin"


def test_another_process_answers_like_this_one() -> None:
    from ctxref.elsewhere import other_hash_seed, other_process
    from ctxref.projector import project

    assert other_hash_seed({"PYTHONHASHSEED": "7"}) == "8" and other_hash_seed({}) == "0"
    assert other_hash_seed({"PYTHONHASHSEED": str(2**32 - 1)}) == "0"
    log = load_log(str(EXAMPLES / "crash-mid-parallel.jsonl"))
    other = other_process("ctxref.projector:project_json")
    try:
        assert list(other(log)) == project(log) and list(other(log[:3])) == project(log[:3])
    finally:
        other.close()
    failing = other_process("ctxref.projector:nope")
    try:
        with pytest.raises(RuntimeError, match="loading ctxref.projector:nope in another process failed: .*has no callable 'nope'"):
            failing(log)
    finally:
        failing.close()


@pytest.mark.parametrize(
    "spec, fragment",
    [("nocolon", "expected module:function"), ("no_such_module_xyz:f", "importing no_such_module_xyz failed"), ("ctxref.projector:nope", "has no callable 'nope'")],
)
def test_verify_bad_projector(capsys: pytest.CaptureFixture[str], spec: str, fragment: str) -> None:
    assert run("verify", "--projector", spec)[0] == 2
    assert fragment in capsys.readouterr().err


def test_rules_lists_every_rule() -> None:
    code, out = run("rules")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == [f"C{i}" for i in range(1, 13)]


def test_verify_writes_the_counterexample_without_overwriting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = str(EXAMPLES / "todolist_bug.py") + ":project"
    assert run("verify", "--projector", spec)[0] == 1
    first = (tmp_path / "counterexample.jsonl").read_text(encoding="utf-8")
    (tmp_path / "counterexample.jsonl").write_text(first + "# mine\n", encoding="utf-8")
    assert run("verify", "--projector", spec)[0] == 1
    assert (tmp_path / "counterexample.jsonl").read_text(encoding="utf-8") == first + "# mine\n"
    assert (tmp_path / "counterexample-1.jsonl").read_text(encoding="utf-8") == first


def test_prove_prints_the_invariant() -> None:
    code, out = run("prove", "--slots", "2", "--depth", "8")
    assert code == 0
    assert "no violation within 8 events" in out
    assert "proved: no fault is reachable, at any depth" in out
    assert "inductive invariant" in out and "status0 = open -> where0 = exchange" in out


def test_explore_counts_sessions() -> None:
    code, out = run("explore", "--length", "3")
    assert code == 0
    # 1 + 7 + 50 + 365 sessions of length 0..3, as tests/test_abstract.py cross-checks with Z3
    assert "reference projector, every abstract session: 423 sessions of <= 3 events (2 slots)" in out
    assert "no violation" in out


def test_shortest_counterexample_for_a_mutant(tmp_path: Path) -> None:
    target = tmp_path / "short.jsonl"
    code, out = run("counterexample", "--mutant", "duplicate_id_kept", "--shortest", "-o", str(target))
    assert code == 0 and "shortest: 5 events after session.meta" in out
    assert len(load_log(str(target))) == 6
