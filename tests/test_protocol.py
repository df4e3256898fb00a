"""The projector protocol: a projector in a child process, in any language (docs/protocol.md).

The harness (:mod:`ctxref.protocol`) must send a runtime's records so that
its own reader rebuilds the session, feed a stateful child each record once,
turn every way a child fails into a one-line C12 finding, and never hang or
leave a process behind.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from ctxcontract.adapter import serve
from ctxref.cli import main
from ctxref.formats import EVENT_FORMATS
from ctxref.mutants import MUTANTS
from ctxref.protocol import ChildProjector, ProtocolError
from ctxref.projector import project
from ctxspec.checker import search
from ctxspec.contract import check_session, same_messages
from ctxspec.errors import ProjectorFailed
from ctxspec.events import load_log
from ctxspec.strategies import session_logs

ROOT = Path(__file__).resolve().parent.parent
CHILDREN = Path(__file__).resolve().parent / "children"
CHILD = [sys.executable, str(ROOT / "examples" / "adapters" / "python" / "child.py")]
EXAMPLES = sorted((ROOT / "examples").glob("*.jsonl"))


def verify(*argv: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["verify", "--json", *argv], out=out)
    return code, json.loads(out.getvalue())


def schema_check(trace: list[tuple[str, str]]) -> int:
    """Validate every line of a conversation against docs/protocol.schema.json; the number checked."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "protocol.schema.json").read_text())
    sides = {side: jsonschema.Draft202012Validator({**schema, "oneOf": [{"$ref": f"#/$defs/{name}"}]}) for side, name in (("to", "ToChild"), ("from", "FromChild"))}
    for side, line in trace:
        sides[side].validate(json.loads(line))
    return len(trace)


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a parent that is not us counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def left_behind(piddir: Path) -> list[int]:
    """The children and grandchildren that still run a moment after the harness let them go."""
    started = pids(piddir)
    for _ in range(100):
        alive = [p for p in started if running(p)]
        if not alive:
            return []
        time.sleep(0.03)  # a SIGKILL is delivered, not awaited
    return alive


def pids(piddir: Path) -> list[int]:
    return [int(p) for f in piddir.iterdir() for p in f.read_text().split()]


# -- the reference and the mutants through a child -------------------------------------------


def test_the_reference_passes_through_a_stateful_child() -> None:
    code, doc = verify("--max-examples", "250", "--projector-cmd", *CHILD)
    assert code == 0 and doc["results"] == [] and doc["programs"] >= 250, doc["findings"]
    assert doc["projector"].startswith("reference projector (")


def test_the_reference_passes_through_a_stateless_child() -> None:
    code, doc = verify("--max-examples", "200", "--projector-cmd", *CHILD, "--stateless")
    assert code == 0 and doc["results"] == [], doc["findings"]


#: The mutants whose search takes hundreds of programs (about 450 for compaction_splits_exchange):
#: through a child they are checked on their kept counterexample, and searched for in process
#: by tests/test_mutants.py.  The others are searched for through the child too.
SLOW_TO_FIND = {"compaction_splits_exchange", "first_parallel_result_only_on_resume", "late_result_after_compaction_dropped", "prompt_deferred_forever"}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_catalogue_mutant_dies_through_a_child(name: str, tmp_path: Path) -> None:
    out = io.StringIO()
    kept = ROOT / "tests" / "regressions" / f"{name}.jsonl"
    assert main(["check", str(kept), "--json", "--projector-cmd", *CHILD, name], out=out) == 1, f"{name} passed its own counterexample"
    assert {f["rule"] for f in json.loads(out.getvalue())["findings"]} & MUTANTS[name].rules
    if name in SLOW_TO_FIND:
        return
    code, doc = verify("-o", str(tmp_path / "cx.jsonl"), "--projector-cmd", *CHILD, name)
    assert code == 1, f"{name} survived the protocol"
    assert {f["rule"] for f in doc["findings"]} & MUTANTS[name].rules, doc["findings"]
    assert load_log(str(tmp_path / "cx.jsonl"))[-1].type == "step.begin"


def test_a_stateful_child_gets_each_record_once() -> None:
    trace: list[tuple[str, str]] = []
    log = load_log(str(ROOT / "examples" / "crash-mid-parallel.jsonl"))
    with ChildProjector(CHILD, trace=trace) as child:
        assert check_session(log, child) == []
    sent = [json.loads(text) for side, text in trace if side == "to"]
    lines = [e["line"] for m in sent if m["type"] == "append" for e in m["entries"] if "record" in e]
    last = max(i + 1 for i, e in enumerate(log) if e.type == "step.begin")
    assert lines == list(range(1, last + 1)), "each record up to the last request, once"
    requests = [m for m in sent if m["type"] == "request"]
    assert len(requests) >= 2 * sum(e.type == "step.begin" for e in log)  # C11: every request asked twice
    assert [m["type"] for m in sent].count("open") == 1
    assert schema_check(trace) > 10


# -- the runtimes' formats -------------------------------------------------------------


@settings(max_examples=60)
@given(session_logs())
def test_the_records_at_a_request_are_a_prefix_of_the_records_at_the_next(log: list[Any]) -> None:
    """What makes a stateful child possible: records once sent are never taken back."""
    requests = [i + 1 for i, e in enumerate(log) if e.type == "step.begin"]
    for fmt in ("ctxcontract", "kimi-wire", "codex", "claude"):
        before: list[tuple[int, str]] = []
        for n in requests:
            now = list(EVENT_FORMATS[fmt].export_sourced(log[:n], final=False))
            assert now[: len(before)] == before, f"{fmt}: records sent at an earlier request changed"
            assert [line for line, _ in now] == sorted(line for line, _ in now) and all(1 <= line <= n for line, _ in now)
            before = now


@pytest.mark.parametrize("fmt", ["kimi-wire", "codex", "claude"])
def test_a_runtime_reader_rebuilds_the_session_from_the_records(fmt: str) -> None:
    """A child that reads the records with our own importer keeps every rule: the records are the file."""
    trace: list[tuple[str, str]] = []
    with ChildProjector([sys.executable, str(CHILDREN / "reimport.py"), fmt, "stateful"], timeout=30, trace=trace) as child:
        found = search(child, max_examples=40)
        assert found.findings == [], [str(v) for f in found.findings for v in f.violations]
        for example in EXAMPLES:
            assert check_session(load_log(str(example)), child) == [], example.name
    assert schema_check(trace) > 100


# -- a child that misbehaves -----------------------------------------------------------------


MISBEHAVIOURS = {
    "crash": "the projector's process exited with code 3 before answering the request (its stderr: about to misbehave: crash | Traceback",
    "hang": "the projector's process gave no answer within 0.5 s to the request (its stderr: about to misbehave: hang)",
    "garbage": "the projector's process answered the request with a line that is not JSON: 'Loading model weights... done'",
    "wrongid": "the projector's process answered the request with something other than the protocol",
    "malformed": "the projector returned a malformed message list: message 0: tool message needs a string tool_call_id",
    "error": "the projector raised LookupError: no call for this result",
}
#: The ones that end the child (a new one is started for the next request).
KILLED = {"crash", "hang", "garbage", "wrongid"}


@pytest.mark.parametrize("kind", ["crash", "hang"])
def test_a_child_that_dies_or_hangs_is_a_shrunk_finding_and_is_replaced(kind: str, tmp_path: Path) -> None:
    """Through verify: the search, the shrinking (a new child for every failing candidate), the report."""
    piddir = tmp_path / "pids"
    code, doc = verify("--timeout", "0.5", "-o", str(tmp_path / "cx.jsonl"), "--projector-cmd", sys.executable, str(CHILDREN / "misbehave.py"), kind, str(piddir))
    assert code == 1
    [finding] = doc["findings"]
    assert finding["rule"] == "C12" and finding["level"] == "reject" and MISBEHAVIOURS[kind] in finding["message"], finding
    assert "\n" not in finding["message"]
    log = load_log(str(tmp_path / "cx.jsonl"))
    assert any(e.type == "tool.result" for e in log), "the session that made it misbehave"
    assert len(pids(piddir)) >= 2 * 2  # each new child and its grandchild
    assert not left_behind(piddir), "a child or grandchild was left behind"


@pytest.mark.parametrize("kind", sorted(MISBEHAVIOURS))
def test_a_misbehaving_child_is_a_finding_and_is_replaced(kind: str, tmp_path: Path) -> None:
    piddir = tmp_path / "pids"
    log = load_log(str(ROOT / "examples" / "todolist3.jsonl"))
    trace: list[tuple[str, str]] = []
    with ChildProjector([sys.executable, str(CHILDREN / "misbehave.py"), kind, str(piddir)], timeout=0.5, startup_timeout=30, trace=trace) as child:
        for _ in range(2):  # the second time on a new child if the first was killed
            found = check_session(log, child)
            assert [v.rule for v in found] == ["C12"] and MISBEHAVIOURS[kind] in found[0].message and "\n" not in found[0].message, found
        assert child.starts == (2 if kind in KILLED else 1)
    assert not left_behind(piddir), "a child or grandchild was left behind"
    if kind not in ("garbage", "wrongid"):
        assert schema_check(trace) > 4


def test_the_search_goes_on_past_a_failing_child(tmp_path: Path) -> None:
    """An error answer keeps the child; the search collects distinct findings past it.

    (A crash is a restart per failing session, and the shrinker runs many:
    the crash test above shows the restarts; this one the search going on.)
    """
    piddir = tmp_path / "pids"
    with ChildProjector([sys.executable, str(CHILDREN / "misbehave.py"), "error", str(piddir)], timeout=5) as child:
        found = search(child, limit=2, max_examples=300)
    assert len(found.findings) == 2 and all(f.rule == "C12" for f in found.findings)
    assert {f.signature for f in found.findings} == {"result? prompt step", "prompt result? step"}
    assert found.seen > 2 and child.starts == 1
    assert not left_behind(piddir)


@pytest.mark.parametrize(
    "kind, says",
    [("badhello", "it speaks protocol 2; this harness speaks 1"), ("nohello", "gave no answer within 1 s to hello")],
)
def test_a_child_that_does_not_speak_the_protocol_is_refused_at_once(kind: str, says: str, tmp_path: Path) -> None:
    child = ChildProjector([sys.executable, str(CHILDREN / "misbehave.py"), kind, str(tmp_path)], timeout=1, startup_timeout=1)
    with pytest.raises(ProtocolError, match=says):
        child.start()
    child.close()
    assert not left_behind(tmp_path)


def test_a_command_that_does_not_speak_the_protocol_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--projector-cmd", sys.executable, str(CHILDREN / "misbehave.py"), "badhello", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctxcontract: error: --projector-cmd ") and err.endswith("it speaks protocol 2; this harness speaks 1") and "\n" not in err
    assert main(["verify", "--projector-cmd", str(tmp_path / "no-such-program")]) == 2
    assert "cannot start it" in capsys.readouterr().err


def test_another_process_that_answers_otherwise_is_a_cache_finding(tmp_path: Path) -> None:
    code, doc = verify("--max-examples", "50", "-o", str(tmp_path / "cx.jsonl"), "--projector-cmd", sys.executable, str(CHILDREN / "misbehave.py"), "pid", str(tmp_path / "p"))
    assert code == 1
    [finding] = doc["findings"]
    assert finding["rule"] == "C11" and "in another process" in finding["message"]


def test_check_takes_a_command_too(capsys: pytest.CaptureFixture[str]) -> None:
    wire = str(ROOT / "examples" / "kimi-wire" / "todolist3.jsonl")
    assert main(["check", wire, "--projector-cmd", *CHILD]) == 0
    assert main(["check", wire, "--projector-cmd", *CHILD, "drop_last_step_result"]) == 1
    out = capsys.readouterr().out
    assert "projector mutant drop_last_step_result (" in out and "C1 " in out


# -- the Python kit ---------------------------------------------------------------------


def converse(lines: list[dict[str, Any]], **kit: Any) -> list[dict[str, Any]]:
    answers = io.StringIO()
    serve(requests=io.StringIO("".join(json.dumps(x) + "\n" for x in lines)), answers=answers, **kit)
    return [json.loads(line) for line in answers.getvalue().splitlines()]


def test_the_python_kit_answers_an_error_met_while_appending_at_the_next_request() -> None:
    class Picky:
        def __init__(self) -> None:
            self.n = 0

        def record(self, record: dict[str, Any], line: int) -> None:
            if record["type"] == "resume":
                raise ValueError(f"cannot resume at line {line}")
            self.n += 1

        def request(self) -> list[dict[str, Any]]:
            return [{"role": "user", "content": str(self.n)}]

    rec = lambda line, kind: {"line": line, "record": {"type": kind}}  # noqa: E731
    answers = converse(
        [
            {"type": "hello", "protocol": 1, "formats": ["canonical"], "shapes": ["openai-chat"]},
            {"type": "open", "session": "a"},
            {"type": "append", "session": "a", "entries": [rec(1, "session.meta"), {"line": 1, "moment": "resume"}]},
            {"type": "request", "id": 1, "session": "a"},
            {"type": "append", "session": "a", "entries": [rec(2, "resume"), rec(3, "turn.prompt")]},
            {"type": "request", "id": 2, "session": "a"},
            {"type": "close", "session": "a"},
            {"type": "open", "session": "b"},
            {"type": "request", "id": 3, "session": "b"},
            {"type": "project", "id": 4, "entries": []},
        ],
        session=Picky,
        name="picky",
    )
    assert answers == [
        {"type": "hello", "protocol": 1, "format": "canonical", "shape": "openai-chat", "mode": "stateful", "name": "picky"},
        {"type": "messages", "id": 1, "messages": [{"role": "user", "content": "1"}]},  # no moment(): moments skipped
        {"type": "error", "id": 2, "error": {"message": "cannot resume at line 2", "kind": "ValueError"}},
        {"type": "messages", "id": 3, "messages": [{"role": "user", "content": "0"}]},
        {"type": "error", "id": 4, "error": {"message": "this child does not take 'project' messages", "kind": "protocol"}},
    ]
    assert schema_check([("from", json.dumps(a)) for a in answers]) == 5


def test_the_python_kit_sends_prints_to_stderr(tmp_path: Path) -> None:
    code, doc = verify("--max-examples", "30", "--projector-cmd", sys.executable, str(CHILDREN / "misbehave.py"), "chatty", str(tmp_path))
    assert code == 0, doc["findings"]


def test_the_kits_refuse_what_they_cannot_serve() -> None:
    with pytest.raises(TypeError):
        serve()
    with pytest.raises(ValueError, match="unknown format 'openai'"):
        serve(lambda records: [], format="openai")


def test_projecting_through_a_child_is_projecting() -> None:
    for example in EXAMPLES:
        log = load_log(str(example))
        with ChildProjector(CHILD) as stateful, ChildProjector([*CHILD, "--stateless"]) as stateless:
            for n in range(1, len(log) + 1):
                if log[n - 1].type == "step.begin":
                    want = project(log[:n])
                    assert same_messages(stateful(log[:n]), want) and same_messages(stateless(log[:n]), want)
        assert stateful.starts == stateless.starts == 1


def test_a_failure_is_a_projector_failure() -> None:
    with ChildProjector([sys.executable, "-c", "import sys; sys.stdin.readline(); sys.exit(4)"], startup_timeout=5) as child:
        with pytest.raises(ProtocolError, match="exited with code 4 before answering hello"):
            child.start()
        with pytest.raises(ProjectorFailed, match="did not start again"):
            child(load_log(str(EXAMPLES[0])))


# -- JavaScript: the kit, a port of the reference, its mutants, and the docs' examples ----------

JS = ROOT / "examples" / "adapters" / "js"
JS_MUTANTS = ["drop_last_step_result", "steer_inside_block", "orphan_result_kept_after_trim", "half_call_sent", "duplicate_id_kept"]


def test_the_javascript_reference_passes() -> None:
    code, doc = verify("--max-examples", "200", "--projector-cmd", "node", str(JS / "reference.mjs"))
    assert code == 0 and doc["results"] == [], doc["findings"]
    assert doc["programs"] >= 200


@pytest.mark.parametrize("name", JS_MUTANTS)
def test_every_javascript_mutant_dies(name: str, tmp_path: Path) -> None:
    code, doc = verify("-o", str(tmp_path / "cx.jsonl"), "--projector-cmd", "node", str(JS / "mutants.mjs"), name)
    assert code == 1, f"the JavaScript {name} survived"
    assert {f["rule"] for f in doc["findings"]} & MUTANTS[name].rules, doc["findings"]


def test_the_kits_and_the_schema_agree_on_the_protocol() -> None:
    """The JavaScript kit and the schema restate the Python kit's version and formats: they must not drift."""
    import subprocess

    from ctxcontract.adapter import FORMATS, PROTOCOL

    probe = 'import("./ctxcontract-adapter.mjs").then((m) => console.log(JSON.stringify([m.PROTOCOL, m.FORMATS])))'
    js = subprocess.run(["node", "--input-type=module", "-e", probe], cwd=ROOT / "adapters" / "js", capture_output=True, text=True, timeout=60)
    assert json.loads(js.stdout) == [PROTOCOL, list(FORMATS)], js.stderr
    schema = json.loads((ROOT / "docs" / "protocol.schema.json").read_text())
    assert schema["$defs"]["Format"]["enum"] == list(FORMATS)
    assert schema["$defs"]["FromChild"]["oneOf"][0]["properties"]["protocol"]["const"] == PROTOCOL


def test_an_unknown_javascript_mutant_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--projector-cmd", "node", str(JS / "mutants.mjs"), "no_such_mutant"]) == 2
    assert "no_such_mutant" in capsys.readouterr().err


def test_the_docs_adapters_find_the_same_in_both_languages(tmp_path: Path) -> None:
    """docs/protocol.md: the toy runtime in Python and in JavaScript, each run as its docs say."""
    import re

    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    blocks = dict((m.group(1).strip(), m.group(2)) for m in re.finditer(r"```([^\n]*)\n(.*?)```", text, re.S))
    (tmp_path / "toy.py").write_text(blocks["python adapter"], encoding="utf-8")
    (tmp_path / "toy.mjs").write_text(blocks["js adapter"], encoding="utf-8")
    (tmp_path / "ctxcontract-adapter.mjs").write_bytes((ROOT / "adapters" / "js" / "ctxcontract-adapter.mjs").read_bytes())
    assert all(len(body.splitlines()) <= 30 for body in (blocks["python adapter"], blocks["js adapter"]))
    found: dict[str, list[object]] = {}
    for lang, cmd in (("python", [sys.executable, str(tmp_path / "toy.py")]), ("js", ["node", str(tmp_path / "toy.mjs")])):
        for options in (["--keep-going", "3"], ["--rules", "C1"]):
            code, doc = verify(*options, "-o", str(tmp_path / f"{lang}.jsonl"), "--force", "--projector-cmd", *cmd)
            assert code == 1
            found.setdefault(lang, []).append([(r["rule"], r["signature"], [f["message"] for f in r["findings"]]) for r in doc["results"]])
    assert found["python"] == found["js"], found
    every, ones = found["js"]
    assert "C2" in {rule for rule, _, _ in every} and [rule for rule, _, _ in ones] == ["C1"]  # type: ignore[misc]


# -- the pytest plugin ------------------------------------------------------------------


def plugin_project(folder: Path) -> Path:
    """A runtime team's project: their test file, a reference child, the docs' toy adapter."""
    import re
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CHILDREN / "plugin_project.py", folder / "test_projector.py")
    shutil.copy(ROOT / "examples" / "adapters" / "python" / "child.py", folder / "child.py")
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    (folder / "toy.py").write_text(re.search(r"```python adapter\n(.*?)```", text, re.S).group(1), encoding="utf-8")  # type: ignore[union-attr]
    return folder


def test_the_pytest_plugin_in_a_project_of_its_own(tmp_path: Path) -> None:
    import subprocess

    project = plugin_project(tmp_path / "project")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "HYPOTHESIS"))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-rf"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert "1 failed, 3 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "FAILED test_projector.py::test_a_broken_projector_fails" in proc.stdout
    assert "ProjectorFindings: dropping broke the context contract under policy reference" in proc.stdout
    assert "C1 pairing [reject]" in proc.stdout and '{"type":"step.begin"}' in proc.stdout
