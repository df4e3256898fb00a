"""``ctxcontract scan``: a generated home folder holding every runtime's layout, each status found, text and JSON.

The sessions are built from our own examples/ and our exporters.  No network;
each test scans a few dozen small files.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import shlex
import sys
import time
import types
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from ctxref import scan
from ctxref.cli import main
from ctxref.formats import export_text, load
from ctxref.formats.messages import export_kimi_context
from ctxref.projector import project
from ctxspec.rules import Level
from terminal import on_a_terminal

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
SCHEMA = json.loads((ROOT / "docs" / "cli-output.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
ENV_VARS = ("KIMI_CODE_HOME", "KIMI_SHARE_DIR", "CODEX_HOME", "CLAUDE_CONFIG_DIR")


def clean_text(fmt: str) -> str:
    log = load(str(EXAMPLES / "clean.jsonl")).log
    if fmt == "kimi-context":
        return export_kimi_context(project(log))
    return export_text(log, fmt)


def with_bad_line(text: str, at: int) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:at] + ['{"type": "broken\n'] + lines[at:])


def put(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


@dataclass
class Home:
    home: Path
    expected: dict[str, tuple[str, str]]  # file -> (runtime, status)
    ignored: list[str]  # files in the runtimes' folders that are no sessions


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """Every runtime's layout under a fake $HOME (Codex's under $CODEX_HOME, to show it is honoured)."""
    h = tmp_path / "home"
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(h))
    codex_home = tmp_path / "elsewhere" / "codex"
    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    put(h / ".codex" / "sessions" / "2026" / "01" / "01" / "rollout-not-here.jsonl", clean_text("codex"))  # $CODEX_HOME wins
    expected: dict[str, tuple[str, str]] = {}
    ignored: list[str] = []

    def add(runtime: str, status: str, path: Path, text: str) -> None:
        expected[put(path, text)] = (runtime, status)

    kimi_code = h / ".kimi-code" / "sessions" / "wd_proj_0123456789ab"
    add("Kimi Code", "clean", kimi_code / "s-clean" / "agents" / "main" / "wire.jsonl", clean_text("kimi-wire"))
    add("Kimi Code", "clean", kimi_code / "s-clean" / "agents" / "agent-0" / "wire.jsonl", clean_text("kimi-wire"))
    add("Kimi Code", "bricked", kimi_code / "s-todo" / "agents" / "main" / "wire.jsonl", (EXAMPLES / "kimi-wire" / "todolist3.jsonl").read_text(encoding="utf-8"))
    # A line JSON.parse rejects stops Kimi Code's reader: the session cannot be resumed.
    add("Kimi Code", "unloadable", kimi_code / "s-bad" / "agents" / "main" / "wire.jsonl", with_bad_line(clean_text("kimi-wire"), 4))
    ignored.append(put(kimi_code / "s-clean" / "state.json", "{}"))

    kimi_cli = h / ".kimi" / "sessions" / "0123456789abcdef0123456789abcdef"
    add("Kimi CLI", "clean", kimi_cli / "s-clean" / "context.jsonl", clean_text("kimi-context"))
    add("Kimi CLI", "bricked", kimi_cli / "s-todo" / "context.jsonl", (EXAMPLES / "kimi-context" / "todolist3.jsonl").read_text(encoding="utf-8"))
    add("Kimi CLI", "clean", kimi_cli / "legacy-session.jsonl", clean_text("kimi-context"))  # the older layout
    # A line cut short by a crash: Kimi CLI skips it, and the user message it held is never sent.
    add("Kimi CLI", "at risk", kimi_cli / "s-cut" / "context.jsonl", clean_text("kimi-context") + '{"role": "user", "content": "and keep the public API unch\n')
    ignored.append(put(kimi_cli / "s-clean" / "wire.jsonl", '{"timestamp": 1, "message": {"type": "TurnBegin"}}\n'))  # a UI log

    codex = codex_home / "sessions" / "2026" / "12" / "03"
    add("Codex", "clean", codex / "rollout-2026-12-03T10-00-00-clean.jsonl", clean_text("codex"))
    add("Codex", "bricked", codex / "rollout-2026-12-03T11-00-00-crash.jsonl", (EXAMPLES / "codex" / "crash-mid-parallel.jsonl").read_text(encoding="utf-8"))
    add("Codex", "clean", codex_home / "archived_sessions" / "rollout-2026-11-01T09-00-00-old.jsonl", clean_text("codex"))
    ignored.append(put(codex_home / "history.jsonl", '{"session_id": "x", "ts": 1, "text": "hi"}\n'))

    claude = h / ".claude" / "projects" / "-home-me-proj"
    add("Claude Code", "clean", claude / "11111111-clean.jsonl", clean_text("claude"))
    add("Claude Code", "bricked", claude / "22222222-cut.jsonl", (EXAMPLES / "claude" / "compaction-cut.jsonl").read_text(encoding="utf-8"))
    add("Claude Code", "unreadable", claude / "33333333-garbage.jsonl", "not json at all\n")
    add("Claude Code", "clean", claude / "agent-1234.jsonl", clean_text("claude"))  # a sub-agent's transcript, the older layout
    add("Claude Code", "bricked", claude / "11111111-clean" / "subagents" / "agent-1.jsonl", (EXAMPLES / "claude" / "todolist3.jsonl").read_text(encoding="utf-8"))
    ignored.append(put(claude / "11111111-clean" / "tool-results" / "toolu_1.txt", "a large output"))
    return Home(h, expected, ignored)


def scan_json(*argv: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main(["scan", *argv, "--json"], out=out)
    doc = json.loads(out.getvalue())
    VALIDATOR.validate(doc)
    assert doc["exit_code"] == code
    return code, doc


def statuses(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {f["file"]: (f["runtime"], f["status"]) for f in doc["files"]}


def test_every_runtime_layout_and_status_in_json(home: Home) -> None:
    code, doc = scan_json("--workers", "1")
    assert code == 1
    assert statuses(doc) == home.expected
    roots = {r["runtime"]: r for r in doc["roots"]}
    assert roots["Codex"]["from"] == "$CODEX_HOME" and roots["Claude Code"]["from"] == "default"
    assert roots["Kimi Code"]["path"] == str(home.home / ".kimi-code")
    assert doc["counts"] == {"unloadable": 1, "unreadable": 1, "bricked": 5, "at risk": 1, "clean": 8}
    for f in doc["files"]:
        if f["status"] == "bricked":
            assert f["first"]["level"] == "reject" and f["first"]["rule"].startswith("C") and f["findings"] >= 1
            assert f["repair"] == shlex.join(["ctxcontract", "repair", "--in-place", f["file"]])
        elif f["status"] == "clean":
            assert f["first"] is None and f["repair"] is None
        elif f["status"] in ("unreadable", "unloadable"):  # a file and a line, never a traceback
            assert f["first"]["rule"] is None and f["first"]["line"] is not None and "Traceback" not in f["first"]["message"]
    [cut] = [f for f in doc["files"] if f["file"].endswith("s-cut/context.jsonl")]
    assert (cut["first"]["rule"], cut["first"]["level"], cut["first"]["line"]) == ("C8", "loss", len(clean_text("kimi-context").splitlines()) + 1)


def test_text_one_line_per_file(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["scan", "--workers", "1"], out=out) == 1
    lines = out.getvalue().splitlines()
    for path, (runtime, status) in home.expected.items():
        [line] = [x for x in lines if path + ":" in x or x.endswith(path)]
        assert line.startswith(f"{status:<10} {runtime:<12} {path}")
        if status == "bricked":
            assert "[reject]" in line and line.endswith("; repair: " + shlex.join(["ctxcontract", "repair", "--in-place", path]))
    assert lines[-1].startswith("scanned 16 session file(s)") and "1 unloadable, 1 unreadable, 5 bricked, 1 at risk, 8 clean" in lines[-1]
    for path in home.ignored:
        assert path not in out.getvalue()
    assert capsys.readouterr().err == ""  # no progress bar: stderr is not a terminal


def test_workers_give_the_same_result_as_one_process(home: Home) -> None:
    _, one = scan_json("--workers", "1")
    _, many = scan_json("--workers", "3")
    assert many["workers"] == 3
    assert one["files"] == many["files"] and one["counts"] == many["counts"]


def test_all_clean_exits_0_and_nothing_found_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    code, doc = scan_json()
    assert code == 0 and doc["files"] == [] and not any(r["exists"] for r in doc["roots"])
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-work"))
    put(tmp_path / "claude-work" / "projects" / "-p" / "s.jsonl", clean_text("claude"))
    code, doc = scan_json()
    assert code == 0 and statuses(doc) == {str(tmp_path / "claude-work" / "projects" / "-p" / "s.jsonl"): ("Claude Code", "clean")}


def test_folders_given_tell_the_runtime_by_the_format(home: Home, tmp_path: Path) -> None:
    code, doc = scan_json(str(home.home / ".claude"), str(tmp_path / "elsewhere"), "--workers", "2")
    assert code == 1
    found = statuses(doc)
    assert found[str(home.home / ".claude" / "projects" / "-home-me-proj" / "22222222-cut.jsonl")] == ("Claude Code", "bricked")
    assert found[str(home.home / ".claude" / "projects" / "-home-me-proj" / "agent-1234.jsonl")] == ("Claude Code", "clean")  # every *.jsonl under a DIR
    assert found[str(home.home / ".claude" / "projects" / "-home-me-proj" / "33333333-garbage.jsonl")][1] == "unreadable"
    assert found[str(tmp_path / "elsewhere" / "codex" / "sessions" / "2026" / "12" / "03" / "rollout-2026-12-03T11-00-00-crash.jsonl")] == ("Codex", "bricked")
    skipped = {s["file"] for s in doc["skipped"]}
    assert skipped == {str(tmp_path / "elsewhere" / "codex" / "history.jsonl")}  # a JSON Lines file no format claims
    assert [r["from"] for r in doc["roots"]] == ["argument", "argument"]


def test_a_kimi_cli_ui_log_under_a_folder_is_no_session(home: Home) -> None:
    code, doc = scan_json(str(home.home / ".kimi"))
    assert statuses(doc) == {p: s for p, s in home.expected.items() if s[0] == "Kimi CLI"}
    assert [s["file"] for s in doc["skipped"]] == [p for p in home.ignored if p.endswith("wire.jsonl") and "/.kimi/" in p]


def test_a_missing_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "nope")], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope: no such file or folder" in err


def test_the_repair_command_it_prints_repairs_and_keeps_a_backup(home: Home) -> None:
    _, doc = scan_json("--workers", "1")
    bricked = [f for f in doc["files"] if f["status"] == "bricked"]
    for f in bricked:
        before = Path(f["file"]).read_bytes()
        argv = shlex.split(f["repair"])
        assert argv[:2] == ["ctxcontract", "repair"]
        assert main(argv[1:], out=io.StringIO()) == 0
        assert Path(f["file"] + ".bak").read_bytes() == before  # nothing the user gave is lost
    _, again = scan_json("--workers", "1")
    assert all(statuses(again)[f["file"]][1] == "clean" for f in bricked)
    # a second repair would need a free backup name: the command names one
    path = bricked[0]["file"]
    assert scan.repair_command(path) == shlex.join(["ctxcontract", "repair", "--in-place", "--backup", ".bak.1", path])


def test_a_line_kimi_code_cannot_parse_offers_the_lenient_repair(home: Home) -> None:
    _, doc = scan_json("--workers", "1")
    [bad] = [f for f in doc["files"] if f["file"].endswith("s-bad/agents/main/wire.jsonl")]
    assert bad["first"]["line"] == 5 and bad["repair"] == shlex.join(["ctxcontract", "repair", "--in-place", "--lenient", bad["file"]])
    assert main(shlex.split(bad["repair"])[1:], out=io.StringIO()) == 0
    _, again = scan_json("--workers", "1")
    assert statuses(again)[bad["file"]] == ("Kimi Code", "clean")


def test_status_order_and_policy_findings_do_not_count() -> None:
    f = scan.Finding(3, "x", "C1", "policy")
    assert scan._status([(Level.POLICY, 3, f)]) == ("clean", None, 0)
    g = scan.Finding(9, "y", "C9", "cache")
    h = scan.Finding(None, "z", "C5", "reject")
    assert scan._status([(Level.CACHE, 9, g), (Level.POLICY, 3, f)]) == ("at risk", g, 1)
    assert scan._status([(Level.REJECT, None, h), (Level.CACHE, 9, g)]) == ("bricked", h, 2)


@dataclass(frozen=True)
class FakeRefusal:
    line: int
    why: str


def test_unloadable_when_the_runtimes_loader_refuses(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through ``ctxref.formats.loadable.refusals(path, format)``, whatever module provides it (a stand-in here)."""
    [target] = [p for p, (rt, st) in home.expected.items() if rt == "Kimi CLI" and st == "clean" and p.endswith("context.jsonl")]
    module = types.ModuleType("ctxref.formats.loadable")
    module.refusals = lambda path, fmt: [FakeRefusal(2, "Kimi CLI cannot load this line")] if path == target else []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ctxref.formats.loadable", module)
    _, doc = scan_json("--workers", "1")
    [f] = [f for f in doc["files"] if f["file"] == target]
    assert f["status"] == "unloadable" and f["first"] == {"rule": None, "level": None, "line": 2, "message": "Kimi CLI cannot load this line"}
    assert f["repair"] == shlex.join(["ctxcontract", "repair", "--in-place", target])


def test_unloadable_through_the_kimi_cli_loader_model(home: Home) -> None:
    """A Kimi CLI context.jsonl whose restore stops (``ctxref.formats.loadable``): a message line with no content, a part type kosong lacks."""
    folder = home.home / ".kimi" / "sessions" / "0123456789abcdef0123456789abcdef"
    lines = clean_text("kimi-context").splitlines(keepends=True)
    no_content = put(folder / "s-nocontent" / "context.jsonl", "".join(lines[:2] + ['{"role": "user"}\n'] + lines[2:]))
    image = '{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}\n'
    foreign = put(folder / "s-image" / "context.jsonl", "".join(lines + [image]))
    _, doc = scan_json("--workers", "2")
    files = {f["file"]: f for f in doc["files"]}
    assert files[no_content]["status"] == "unloadable" and files[no_content]["first"]["line"] == 3
    assert files[foreign]["status"] == "unloadable" and files[foreign]["first"]["line"] == len(lines) + 1
    assert "KeyError" in files[foreign]["first"]["message"] and files[foreign]["repair"] == shlex.join(["ctxcontract", "repair", "--in-place", foreign])
    for f in (no_content, foreign):
        assert statuses(doc)[f] == ("Kimi CLI", "unloadable")
    assert {p: s for p, s in statuses(doc).items() if p not in (no_content, foreign)} == home.expected


def test_a_progress_bar_on_a_terminal_only(home: Home) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "spec"), str(ROOT / "reference")])}
    code, text, out = on_a_terminal([sys.executable, "-m", "ctxcontract", "scan", "--workers", "2"], env=env)
    assert code == 1
    assert "\r[" in text and "16/16 sessions" in text, text
    assert "16/16" not in out and out.splitlines()[-1].startswith("scanned 16 session file(s)")


def test_the_repair_command_makes_an_unloadable_file_loadable(home: Home) -> None:
    folder = home.home / ".kimi" / "sessions" / "0123456789abcdef0123456789abcdef"
    image = '{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}\n'
    path = put(folder / "s-image" / "context.jsonl", clean_text("kimi-context") + image)
    _, doc = scan_json("--workers", "1")
    [f] = [f for f in doc["files"] if f["file"] == path]
    assert f["status"] == "unloadable"
    assert main(shlex.split(f["repair"])[1:], out=io.StringIO()) == 0
    _, again = scan_json("--workers", "1")
    assert statuses(again)[path][1] != "unloadable"


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_stops_every_worker_in_one_line(tmp_path: Path, sig: int, code: int, word: str) -> None:
    """Many hard links to one session, so the scan is still running when the signal comes (the progress bar says when)."""
    one = put(tmp_path / "one.jsonl", (EXAMPLES / "codex" / "crash-mid-parallel.jsonl").read_text(encoding="utf-8"))
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(4000):
        os.link(one, folder / f"rollout-{i:05d}.jsonl")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "spec"), str(ROOT / "reference")])}
    master, slave = pty.openpty()
    # As from a terminal: Ctrl-C's default action (a test runner's worker may ignore SIGINT, and a child inherits that).
    restore = (lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if sig == signal.SIGINT else None
    proc = subprocess.Popen([sys.executable, "-m", "ctxcontract", "scan", str(folder), "--workers", "2"], stdout=subprocess.PIPE, stderr=slave, env=env, preexec_fn=restore)
    os.close(slave)
    screen = b""
    while not re.search(rb"\] [1-9][0-9,]*/4,000 sessions", screen):  # some files judged, not all
        ready, _, _ = select.select([master], [], [], 60)
        assert ready, screen
        screen += os.read(master, 4096)
    proc.send_signal(sig)
    rest = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        rest += chunk
    proc.communicate(timeout=60)
    os.close(master)
    text = rest.decode(errors="replace")
    assert proc.returncode == code and text.rstrip().endswith(f"ctxcontract: {word}") and "Traceback" not in text, text
    time.sleep(0.2)
    left = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and str(folder).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                left.append(pid)
        except OSError:
            pass
    assert left == []  # no worker outlives the scan
