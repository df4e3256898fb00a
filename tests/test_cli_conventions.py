"""Command-line conventions: help, --version, exit codes, '-', --json, signals, input hygiene, start-up imports."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

import ctxcontract
from ctxref.cli import build_parser, main
from terminal import on_a_terminal

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
WIRE = EXAMPLES / "kimi-wire"
SCHEMA = json.loads((ROOT / "docs" / "cli-output.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
CLI = [sys.executable, "-m", "ctxcontract"]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def cli(*argv: str, stdin: bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *argv], input=stdin, capture_output=True, cwd=cwd, timeout=600)


def document(*argv: str) -> dict[str, object]:
    """``ctxcontract ... --json``, parsed and validated against docs/cli-output.schema.json."""
    code, out = run(*argv, "--json")
    doc = json.loads(out)
    VALIDATOR.validate(doc)
    assert doc["exit_code"] == code
    return doc  # type: ignore[no-any-return]


# -- help, version, exit codes -----------------------------------------------------


def subparsers() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def test_every_command_and_option_has_help_an_example_and_the_exit_codes() -> None:
    parser = build_parser()
    assert "exit codes:" in (parser.epilog or "") and "130" in (parser.epilog or "")
    commands = subparsers()
    assert set(commands) == {"check", "repair", "project", "show", "counterexample", "verify", "prove", "explore", "rules", "scan"}
    for name, sub in commands.items():
        assert sub.description, name
        epilog = sub.epilog or ""
        assert f"ctxcontract {name}" in epilog.split("exit codes:")[0], name  # an example of this command
        assert "exit codes:" in epilog and "  2 " in epilog, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_version() -> None:
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.decode() == f"ctxcontract {ctxcontract.__version__}\n"


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["verify", "--projector", "x:y", "--max-examples", "-1"], "argument --max-examples: -1 is less than 1"),
        (["explore", "--length", "many"], "argument --length: 'many' is not a whole number"),
        (["prove", "--slots", "0"], "argument --slots: 0 is less than 1"),
        (["check"], "the following arguments are required: FILE"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_bad_option_values_are_usage_errors(argv: list[str], fragment: str) -> None:
    proc = cli(*argv)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and fragment in err and "Traceback" not in err


def test_exit_codes() -> None:
    assert cli("check", str(EXAMPLES / "clean.jsonl")).returncode == 0
    assert cli("check", str(WIRE / "todolist3.jsonl")).returncode == 1
    missing = cli("check", "no/such/file.jsonl")
    assert missing.returncode == 2 and missing.stderr.decode() == "ctxcontract: error: no/such/file.jsonl: no such file\n"


# -- standard input and output ------------------------------------------------------


def test_stdin_is_read_once_from_a_pipe() -> None:
    path = WIRE / "todolist3.jsonl"
    by_path = json.loads(cli("check", str(path), "--json").stdout)
    piped = subprocess.run(f"cat {path} | {sys.executable} -m ctxcontract check - --json", shell=True, capture_output=True, cwd=ROOT)
    by_pipe = json.loads(piped.stdout)
    assert by_pipe["file"] == "-" and by_pipe["format"] == "kimi-wire"
    assert {**by_pipe, "file": str(path)} == by_path
    VALIDATOR.validate(by_pipe)


def test_inputs_that_read_once_are_read_once() -> None:
    path = WIRE / "todolist3.jsonl"
    by_path = json.loads(cli("check", str(path), "--json").stdout)
    for command in (f"cat {path} | {sys.executable} -m ctxcontract check /dev/stdin --json", f"{sys.executable} -m ctxcontract check <(cat {path}) --json"):
        proc = subprocess.run(["bash", "-c", command], capture_output=True, cwd=ROOT)
        assert proc.returncode == 1, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["findings"] == by_path["findings"] and doc["projection"] == by_path["projection"], command


def test_stdin_errors_name_stdin() -> None:
    proc = cli("check", "-", stdin=b'{"type":"session.meta","version":1}\n{"type":"turn.prompt","text":5}\n')
    assert proc.returncode == 2
    assert proc.stderr.decode() == "ctxcontract: error: <stdin>:2: turn.prompt.text: expected a string, got an integer\n"


def test_repair_from_stdin_to_stdout(tmp_path: Path) -> None:
    source = WIRE / "crash-mid-parallel.jsonl"
    assert cli("repair", str(source), "-o", str(tmp_path / "r.jsonl")).returncode == 0
    proc = cli("repair", "-", "-o", "-", stdin=source.read_bytes())
    assert proc.returncode == 0
    assert proc.stdout == (tmp_path / "r.jsonl").read_bytes()
    assert b"change(s); wrote <stdout>" in proc.stderr  # the report goes to stderr, the data to stdout


def test_project_to_stdout_and_counterexample_to_stdout() -> None:
    proc = cli("project", "-", stdin=(EXAMPLES / "todolist3.jsonl").read_bytes())
    assert proc.returncode == 0 and json.loads(proc.stdout)[-1]["tool_call_id"] == "TodoList:3"
    proc = cli("counterexample", "--mutant", "duplicate_id_kept", "--shortest", "-o", "-")
    assert proc.returncode == 0
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["type"] == "session.meta"
    assert "shortest: 5 events" in proc.stderr.decode()


# -- --json ------------------------------------------------------------------------------


def test_json_documents_follow_the_schema(tmp_path: Path) -> None:
    doc = document("check", str(WIRE / "todolist3.jsonl"), "--request", str(WIRE / "todolist3-request.json"))
    assert doc["kind"] == "request" and doc["verdict"] == "findings" and doc["exit_code"] == 1
    assert [(f["rule"], f["line"], f["index"], f["call"]) for f in doc["findings"]] == [("C1", 14, 3, "TodoList:3")]  # type: ignore[index, union-attr]
    request = doc["request"]
    assert isinstance(request, dict) and request["point"] == {"events": 8, "line": 15} and request["policy"] == {"name": "reference", "declared": False}
    doc = document("check", str(WIRE / "todolist3.jsonl"))
    assert doc["kind"] == "events" and ("C6", 12, "reject") in {(f["rule"], f["line"], f["level"]) for f in doc["findings"]}  # type: ignore[index, union-attr]
    assert document("check", str(EXAMPLES / "clean.jsonl"))["verdict"] == "clean"
    assert document("check", str(EXAMPLES / "requests" / "openai-todolist3.json"))["kind"] == "messages"
    doc = document("check", str(EXAMPLES / "todolist3.jsonl"), "--projector", str(EXAMPLES / "todolist_bug.py") + ":project")
    assert doc["kind"] == "projector" and {f["rule"] for f in doc["findings"]} >= {"C1", "C4"}  # type: ignore[index, union-attr]
    doc = document("repair", str(WIRE / "crash-mid-parallel.jsonl"), "-o", str(tmp_path / "r.jsonl"))
    assert doc["wrote"] is True and doc["changes"] and doc["remaining"] == []
    doc = document("rules")
    assert [r["code"] for r in doc["rules"]] == list(ctxcontract.RULES)  # type: ignore[union-attr, index]
    doc = document("prove", "--slots", "2", "--depth", "6")
    assert doc["proved"] is True
    doc = document("explore", "--length", "2")
    assert doc["sessions"] == 58 and doc["failed"] == 0
    doc = document("verify", "--projector", "ctxref.projector:project_json", "--max-examples", "5")
    assert doc["counterexample"] is None and doc["programs"] >= 5
    doc = document("verify", "--projector", str(EXAMPLES / "todolist_bug.py") + ":project", "-o", str(tmp_path / "cx.jsonl"))
    cx = doc["counterexample"]
    assert isinstance(cx, dict) and cx["projection"] != cx["reference"]
    assert (tmp_path / "cx.jsonl").read_text(encoding="utf-8").count("\n") == len(cx["events"])
    doc = document("verify", "--projector", str(EXAMPLES / "mutants.py") + ":late_result_moved_up", "--keep-going", "3", "--max-examples", "300", "-o", str(tmp_path / "k.jsonl"), "--policy", "codex")
    results = doc["results"]
    assert isinstance(results, list) and len(results) >= 2 and doc["policy"]["name"] == "codex"  # type: ignore[index]
    assert len({(r["rule"], r["level"], r["signature"]) for r in results}) == len(results)
    for r in results:
        assert r["counterexample"]["first_difference"] is not None and Path(r["counterexample"]["file"]).exists()


def test_the_schema_can_fail() -> None:
    _, out = run("rules", "--json")
    doc = json.loads(out)
    VALIDATOR.validate(doc)
    for broken in ({**doc, "rules": [{"code": "C1"}]}, {k: v for k, v in doc.items() if k != "exit_code"}, {**doc, "command": "check"}):
        assert not VALIDATOR.is_valid(broken)


# -- signals and the example database ----------------------------------------------------------

SLOW = """
import time
from ctxref.projector import project_json
def project(events):
    time.sleep(0.02)
    return project_json(events)
"""


def _started(proc: subprocess.Popen[bytes], marker: bytes) -> bytes:
    """Read the child's stdout until ``marker`` (the child is then at work)."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + 120
    while marker not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    assert marker in seen, seen
    return seen


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_is_one_line_and_its_exit_code(tmp_path: Path, sig: signal.Signals, code: int, word: str) -> None:
    (tmp_path / "slow.py").write_text(SLOW, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "spec"), str(ROOT / "reference")])}
    proc = subprocess.Popen([*CLI, "verify", "--projector", "slow.py:project", "--profile", "fuzz"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _started(proc, b"verifying")
    time.sleep(1.0)  # inside Hypothesis's run
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == code, text
    assert "Traceback" not in text and text.rstrip().splitlines()[-1] == f"ctxcontract: {word}"
    assert list(tmp_path.iterdir()) == [tmp_path / "slow.py"] or sorted(p.name for p in tmp_path.iterdir()) == ["__pycache__", "slow.py"]


HANGS = """
import time
def project(events):
    time.sleep(600)
"""


def test_a_second_signal_stops_a_projector_that_hangs(tmp_path: Path) -> None:
    (tmp_path / "hangs.py").write_text(HANGS, encoding="utf-8")
    proc = subprocess.Popen([*CLI, "verify", "--projector", "hangs.py:project"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _started(proc, b"verifying")
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)  # acted on at the end of the program: never, here
    time.sleep(1.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)  # the second acts at once
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.decode().rstrip().splitlines()[-1] == "ctxcontract: terminated"


def test_verify_leaves_no_example_database(tmp_path: Path) -> None:
    proc = cli("verify", "--projector", "ctxref.projector:project_json", "--profile", "dev", "--max-examples", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / ".hypothesis").exists()
    assert "tried " in proc.stdout.decode() and " programs (" in proc.stdout.decode()  # always a count line


def test_verify_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "spec"), str(ROOT / "reference")])}
    code, text, out = on_a_terminal([*CLI, "verify", "--projector", "slow.py:project", "--max-examples", "30"], cwd=tmp_path, env=env)
    assert code == 0
    assert "\r" in text and " programs (" in text and "/s, 0 finding(s)" in text, text
    assert "tried " in out


# -- input hygiene --------------------------------------------------------------------------------


def test_a_bom_is_accepted_and_noted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (WIRE / "todolist3.jsonl").read_bytes())
    doc = document("check", str(path))
    # read here, and noted; Kimi Code's own reader (JSON.parse on each line) throws on it
    assert doc["format"] == "kimi-wire" and doc["verdict"] == "unloadable" and doc["refusals"][0]["line"] == 1  # type: ignore[index]
    assert any("byte order mark" in n["why"] for n in doc["read"]["notes"])  # type: ignore[index, union-attr]
    request = tmp_path / "bom.json"
    request.write_bytes(b"\xef\xbb\xbf" + (EXAMPLES / "requests" / "openai-clean.json").read_bytes())
    assert document("check", str(request))["verdict"] == "clean"


def test_gzip_is_named_with_the_pipe_that_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl.gz"
    path.write_bytes(gzip.compress((WIRE / "todolist3.jsonl").read_bytes()))
    proc = cli("check", str(path))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1
    assert f"{path}:1: gzip-compressed" in err and f"gunzip -c {path} | ctxcontract check -" in err
    piped = subprocess.run(f"gunzip -c {path} | {sys.executable} -m ctxcontract check - --brief", shell=True, capture_output=True, cwd=ROOT)
    assert piped.returncode == 1 and b"kimi-wire" in piped.stdout


def test_lenient_check_says_what_it_skipped(tmp_path: Path) -> None:
    lines = (EXAMPLES / "clean.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "corrupt.jsonl"
    path.write_text("".join(lines[:3] + ["{not json\n"] + lines[3:]), encoding="utf-8")
    assert run("check", str(path))[0] == 2
    code, out = run("check", str(path), "--lenient")
    verdict = [line for line in out.splitlines() if line.startswith("verdict:")]
    assert code == 0 and verdict == ["verdict: clean; 1 unreadable line skipped, not judged (--lenient)"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ('{"model": "m", "messages": [{"role": "user", "content": "hi"}', ":1: truncated JSON: the document ends before it is complete"),
        ('{"model": "m", "prompt": "hi"}', "got an object with no 'messages' or 'contents' or 'input' array (keys: 'model', 'prompt')"),
        ('"just a string"', "got a string"),
    ],
)
def test_request_errors_name_the_real_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str) -> None:
    request = tmp_path / "request.json"
    request.write_text(content, encoding="utf-8")
    code, _ = run("check", str(WIRE / "todolist3.jsonl"), "--request", str(request))
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.count("\n") == 1, err


def test_project_reads_every_format_check_reads() -> None:
    for path in (EXAMPLES / "todolist3.jsonl", WIRE / "todolist3.jsonl", EXAMPLES / "codex" / "todolist3.jsonl", EXAMPLES / "claude" / "todolist3.jsonl"):
        code, out = run("project", str(path))
        assert code == 0, path
        checked = document("check", str(path))["projection"]  # the streaming verdict's projection
        assert json.loads(out) == [p["message"] for p in checked], path  # type: ignore[union-attr, index]
    code, out = run("project", str(EXAMPLES / "requests" / "openai-todolist3.json"))
    assert code == 0 and json.loads(out)[0]["role"] in ("system", "user")


# -- start-up: the file commands import neither Hypothesis nor Z3 -------------------------------------

PROBE = """
import io, sys
from ctxref.cli import main
main(sys.argv[1:], out=io.StringIO())
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'hypothesis', 'z3'})
print(','.join(heavy))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "examples/kimi-wire/todolist3.jsonl"],
        ["check", "examples/requests/openai-todolist3.json"],
        ["repair", "examples/kimi-wire/crash-mid-parallel.jsonl", "-o", "-"],
        ["project", "examples/todolist3.jsonl"],
        ["rules"],
    ],
)
def test_file_commands_import_neither_hypothesis_nor_z3(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, cwd=ROOT, timeout=120)
    assert proc.stdout.decode().splitlines()[-1] == "", proc.stdout + proc.stderr


def test_the_import_probe_can_fail() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE, "prove", "--slots", "1", "--depth", "2"], capture_output=True, cwd=ROOT, timeout=120)
    assert proc.stdout.decode().splitlines()[-1] == "z3"


def test_the_cli_format_list_is_the_registries() -> None:
    from ctxref.cli import FORMATS
    from ctxref.formats import EVENT_FORMATS
    from ctxref.formats.messages import MESSAGE_FORMATS

    assert FORMATS == (*EVENT_FORMATS, *MESSAGE_FORMATS)


def test_the_facade_names_everything_it_exports() -> None:
    import ctxcontract as facade

    assert set(facade._HOME) == set(facade.__all__) - {"__version__"}
    for name in facade.__all__:
        assert getattr(facade, name) is not None, name
    with pytest.raises(AttributeError):
        facade.no_such_name  # noqa: B018


# -- repair you can trust with the only copy (the module's own tests: tests/test_output.py) ------------


def test_repair_in_place_keeps_a_backup(tmp_path: Path) -> None:
    session = tmp_path / "wire.jsonl"
    original = (WIRE / "crash-mid-parallel.jsonl").read_bytes()
    session.write_bytes(original)
    session.chmod(0o640)
    assert cli("repair", "--in-place", str(session)).returncode == 0
    assert (tmp_path / "wire.jsonl.bak").read_bytes() == original
    assert session.read_bytes() != original and session.stat().st_mode & 0o777 == 0o640
    assert cli("check", str(session)).returncode == 0  # repaired where the runtime reads it
    session.write_bytes(original)
    refused = cli("repair", "--in-place", str(session))  # the backup is checked before any work
    assert refused.returncode == 2 and b"wire.jsonl.bak: already exists" in refused.stderr
    assert session.read_bytes() == original
    assert cli("repair", "--in-place", str(session), "--backup", ".orig").returncode == 0
    assert (tmp_path / "wire.jsonl.orig").read_bytes() == original


def test_repair_in_place_with_nothing_to_repair_touches_nothing(tmp_path: Path) -> None:
    session = tmp_path / "clean.jsonl"
    session.write_bytes((EXAMPLES / "clean.jsonl").read_bytes())
    before = session.stat()
    proc = cli("repair", "--in-place", str(session))
    assert proc.returncode == 0 and b"no change; " in proc.stdout
    after = session.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.jsonl"]  # no backup, no temporary file


def test_repair_output_checks_come_before_the_work(tmp_path: Path) -> None:
    source = str(WIRE / "crash-mid-parallel.jsonl")
    missing = cli("repair", source, "-o", str(tmp_path / "no" / "out.jsonl"))
    assert missing.returncode == 2 and missing.stderr.decode().startswith(f"ctxcontract: error: {tmp_path / 'no' / 'out.jsonl'}: ")
    link = tmp_path / "link.jsonl"
    link.symlink_to(tmp_path / "nowhere.jsonl")  # dangling: still something at OUT
    refused = cli("repair", source, "-o", str(link))
    assert refused.returncode == 2 and b"already exists" in refused.stderr
    assert link.is_symlink() and not (tmp_path / "nowhere.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.jsonl"]  # no temporary file left


def test_repair_output_mode_follows_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(f"umask 027 && {sys.executable} -m ctxcontract repair {WIRE / 'crash-mid-parallel.jsonl'} -o {out}", shell=True, cwd=ROOT, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_mode & 0o777 == 0o640


def test_two_repairs_racing_to_one_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sources = [WIRE / "crash-mid-parallel.jsonl", WIRE / "steer-during-parallel.jsonl"]
    for _ in range(3):
        procs = [subprocess.Popen([*CLI, "repair", str(s), "-o", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for s in sources]
        results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else b"") for p in procs]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], results
        loser = next(err for code, err in results if code == 2)
        assert b"already exists" in loser
        winner = sources[[code for code, _ in results].index(0)]
        expected = tmp_path / "expected.jsonl"
        assert cli("repair", str(winner), "-o", str(expected)).returncode == 0
        assert out.read_bytes() == expected.read_bytes()  # the winner's whole file, nobody's half
        out.unlink()
        expected.unlink()


def _big_session(path: Path, turns: int) -> None:
    """A canonical log of ``turns`` turns, each with a call left unanswered (so repair has work everywhere)."""
    pad = "x" * 2000
    with path.open("w", encoding="utf-8") as out:
        out.write('{"type":"session.meta","version":1,"system":""}\n')
        for i in range(turns):
            call = json.dumps({"type": "assistant", "text": "", "calls": [{"id": f"c{i}", "name": "Shell", "args": "{}"}, {"id": f"d{i}", "name": "Shell", "args": "{}"}], "complete": True})
            out.write(f'{{"type":"turn.prompt","text":"turn {i}"}}\n{{"type":"step.begin"}}\n{call}\n')
            out.write(json.dumps({"type": "tool.result", "call_id": f"d{i}", "output": pad, "is_error": False}) + "\n")
            out.write('{"type":"step.end","finish_reason":"tool_calls"}\n{"type":"turn.end"}\n')


def test_sigterm_during_repair_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "big.jsonl"
    _big_session(source, 5_000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen([*CLI, "repair", str(source), "-o", str(out_dir / "repaired.jsonl")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out_dir.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    temp = list(out_dir.iterdir())
    assert len(temp) == 1 and "ctxcontract-repair" in temp[0].name, temp  # its name says what it is
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.decode().splitlines()[-1] == "ctxcontract: terminated"
    assert list(out_dir.iterdir()) == []  # no temporary file, no OUT


def test_a_projector_file_imports_its_neighbours(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "my_runtime.py").write_text("from ctxref.projector import project_json as project\n", encoding="utf-8")
    (adapter / "entry.py").write_text("from my_runtime import project\n", encoding="utf-8")
    proc = cli("check", str(EXAMPLES / "todolist3.jsonl"), "--projector", str(adapter / "entry.py") + ":project", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_verify_refuses_its_output_before_the_search(tmp_path: Path) -> None:
    (tmp_path / "hangs.py").write_text(HANGS, encoding="utf-8")  # a search would never end
    proc = subprocess.run([*CLI, "verify", "--projector", "hangs.py:project", "-o", "no/cx.jsonl"], cwd=tmp_path, capture_output=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.decode() == "ctxcontract: error: no/cx.jsonl: folder no does not exist\n"
