"""``ctxcontract show`` and ``--picture``: the picture's structure, as a reader would check it.

Each picture is parsed back (the HTML with ``html.parser``, the SVG with
``xml.etree``) and held to what the issue asks: every call of the log drawn
as a bar, every finding ``check`` reports present and marked on both sides
(the timeline and the projection), every link pointing at something, and
nothing fetched from anywhere.  The counts come from ``check --json`` and
from the log itself, not from the code that draws.  The real-browser test is
``tests/test_show_browser.py``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ctxref.cli import main
from ctxref.formats import load
from ctxref.formats.messages import MESSAGE_FORMATS, load_messages, sniff_messages
from ctxref.mutants import MUTANTS
from ctxref.show import of_projector, of_session, render
from ctxspec.contract import check_session
from ctxspec.events import Assistant, events_from_dicts, parse_log
from ctxspec.messages import AssistantMessage

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
WIRE = EXAMPLES / "kimi-wire"
#: Files under examples/ that are not session files.
NOT_SESSIONS = ("adapters", "policies")
#: A file check refuses with one line (a Kimi CLI UI log): show refuses it the same way.
REFUSED = {EXAMPLES / "kimi-cli-wire" / "session" / "wire.jsonl"}


def example_files() -> list[Path]:
    out = []
    for path in sorted(EXAMPLES.rglob("*")):
        if path.suffix in (".jsonl", ".json") and not any(part in NOT_SESSIONS for part in path.relative_to(EXAMPLES).parts):
            out.append(path)
    return out


def kept_counterexamples() -> list[Path]:
    return sorted((ROOT / "tests" / "regressions").glob("*.jsonl")) + sorted((ROOT / "tests" / "shortest").glob("*.jsonl"))


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


# -- reading a picture back ----------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    inside: tuple[str, ...] = ()  # the ids of the sections around it


@dataclass
class Page:
    elements: list[Element] = field(default_factory=list)

    def ids(self) -> set[str]:
        return {e.attrs["id"] for e in self.elements if "id" in e.attrs}

    def with_class(self, name: str) -> list[Element]:
        return [e for e in self.elements if name in e.attrs.get("class", "").split()]

    def marked(self, key: str, section: str) -> list[Element]:
        """Elements inside ``section`` that a finding marks."""
        return [e for e in self.elements if section in e.inside and key in e.attrs.get("data-findings", "").split()]

    def bars(self) -> list[Element]:
        return [e for e in self.elements if "data-bar" in e.attrs]

    def findings(self) -> list[Element]:
        return self.with_class("finding")


class _Reader(HTMLParser):
    VOID = {"meta", "br", "img", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self.stack: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        inside = tuple(e.attrs["id"] for e in self.stack if e.tag == "section" and "id" in e.attrs)
        el = Element(tag, {k: v or "" for k, v in attrs}, inside=inside)
        self.page.elements.append(el)
        if tag not in self.VOID:
            self.stack.append(el)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for el in self.stack:
            el.text += data


def read_html(text: str) -> Page:
    reader = _Reader()
    reader.feed(text)
    reader.close()
    return reader.page


def problems(page: Page, *, findings: int | None = None, calls: int | None = None) -> list[str]:
    """What is wrong with a picture: an empty list when it holds what the issue asks."""
    out: list[str] = []
    ids = page.ids()
    for e in page.elements:
        href = e.attrs.get("href", "")
        if href.startswith("#") and href[1:] not in ids:
            out.append(f"a link to {href} points at nothing")
        if href and not href.startswith("#"):
            out.append(f"a link leaves the page: {href}")
        if e.tag in ("script", "img", "link", "iframe") and ("src" in e.attrs or "href" in e.attrs):
            out.append(f"<{e.tag}> loads something: {e.attrs}")
    cards = page.findings()
    if findings is not None and len(cards) != findings:
        out.append(f"{len(cards)} finding(s) drawn, {findings} found")
    for card in cards:
        key = card.attrs["id"]
        if not page.marked(key, "timeline"):
            out.append(f"finding {key} is not marked on the timeline")
        if not page.marked(key, "projection"):
            out.append(f"finding {key} is not marked in the projection")
        if not card.attrs.get("data-rule") or card.attrs.get("data-level") not in ("reject", "loss", "cache", "policy"):
            out.append(f"finding {key} has no rule or level")
        if len(" ".join(card.text.split())) < 20:
            out.append(f"finding {key} says nothing of why")
    if calls is not None and len(page.bars()) != calls:
        out.append(f"{len(page.bars())} call bar(s) drawn, the log declares {calls}")
    for m in page.elements:
        if "data-from" in m.attrs and f"r{m.attrs['data-from']}" not in ids:
            out.append(f"message {m.attrs.get('id')} comes from a row that is not drawn")
    return out


def svg_problems(text: str, *, findings: int, calls: int) -> list[str]:
    root = ET.fromstring(text)  # well-formed, or this raises
    out: list[str] = []
    found = {key for e in root.iter() for key in (e.get("data-findings") or "").split()}
    if len(found) != findings:
        out.append(f"{len(found)} finding(s) drawn, {findings} found")
    bars = [e for e in root.iter() if e.get("data-bar")]
    if len(bars) != calls:
        out.append(f"{len(bars)} call bar(s) drawn, the log declares {calls}")
    for key in found:
        marked = [e for e in root.iter() if key in (e.get("data-findings") or "").split() and e.get("id") != key]
        rows = [e for e in marked if e.get("data-row")]
        messages = [e for e in marked if (e.get("id") or "").startswith("m")]
        if not rows or not messages:
            out.append(f"finding {key}: {len(rows)} row(s), {len(messages)} message(s) marked")
    if "http://" in text.replace('xmlns="http://www.w3.org/2000/svg"', "") or "https://" in text:
        out.append("the SVG refers to the network")
    return out


def declared_calls(path: Path) -> int:
    """The calls the file declares, counted from the file as check reads it."""
    fmt = sniff_messages(str(path))
    if fmt in MESSAGE_FORMATS:
        loaded = load_messages(str(path), fmt, lenient=True)
        return sum(len(m.calls) for m in loaded.messages if isinstance(m, AssistantMessage))
    return sum(len(e.calls) for e in load(str(path)).log if isinstance(e, Assistant))


def check_findings(path: Path, *extra: str) -> int:
    """How many findings ``check --json`` reports for the file."""
    code, out = run("check", str(path), "--json", *extra)
    doc = json.loads(out)
    return len(doc["findings"])


# -- the structure tests --------------------------------------------------------------------


def test_the_structure_check_can_fail(tmp_path: Path) -> None:
    """The checks below are not vacuous: a picture with a finding on one side only, a dead link or a lost bar fails them."""
    run("show", str(WIRE / "todolist3.jsonl"), "-o", str(tmp_path / "p.html"))
    text = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert problems(read_html(text), findings=1, calls=1) == []
    one_side = text.replace('data-findings="f1" data-call', 'data-call')  # the projection's tool message no longer marked ...
    one_side = one_side.replace('id="m0-2" data-role="assistant" data-from="4" data-findings="f1"', 'id="m0-2" data-role="assistant" data-from="4"')
    one_side = one_side.replace('data-role="missing" data-findings="f1"', 'data-role="missing"')
    one_side = one_side.replace('data-from="6" data-findings="f1"', 'data-from="6"')
    assert "finding f1 is not marked in the projection" in problems(read_html(one_side))
    assert any("points at nothing" in p for p in problems(read_html(text.replace('id="r4"', 'id="x4"'))))
    assert problems(read_html(text), calls=2) == ["1 call bar(s) drawn, the log declares 2"]
    assert problems(read_html(text), findings=2) == ["1 finding(s) drawn, 2 found"]
    assert any("leaves the page" in p for p in problems(read_html(text.replace("</body>", '<a href="https://example.org/x">x</a></body>'))))


@pytest.mark.parametrize("path", example_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_bundled_example_renders_with_every_call_and_finding(path: Path, tmp_path: Path) -> None:
    html, svg = tmp_path / "p.html", tmp_path / "p.svg"
    if path in REFUSED:
        code, _ = run("show", str(path), "-o", str(html))
        assert code == 2 and not html.exists()
        return
    findings = check_findings(path)
    calls = declared_calls(path)
    assert run("show", str(path), "-o", str(html)) == (0, run("show", str(path), "-o", str(svg))[1].replace("p.svg (svg)", "p.html (html)"))
    assert problems(read_html(html.read_text(encoding="utf-8")), findings=findings, calls=calls) == []
    assert svg_problems(svg.read_text(encoding="utf-8"), findings=findings, calls=calls) == []


def test_every_example_is_covered_in_every_runtime_format() -> None:
    """The list above holds the examples in each format check reads, so none is skipped by accident."""
    formats = set()
    for path in example_files():
        if path not in REFUSED:
            fmt = sniff_messages(str(path)) or load(str(path), lenient=True).format
            formats.add(fmt)
    assert formats >= {"ctxcontract", "kimi-wire", "codex", "claude", "kimi-context", "openai", "anthropic", "gemini", "openai-responses"}


@pytest.mark.parametrize("path", kept_counterexamples(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_kept_counterexample_renders_with_its_mutant(path: Path, tmp_path: Path) -> None:
    """A kept session, drawn with the mutant it breaks beside the reference: its findings on both sides."""
    mutant = MUTANTS[path.stem]
    log = parse_log(path.read_text(encoding="utf-8"))
    violations = check_session(log, mutant.project)
    assert violations
    picture = of_projector(log, list(range(1, len(log) + 1)), mutant.project, violations, label=f"mutant {path.stem}", title=path.name)
    assert {f.rule for f in picture.findings} & mutant.rules
    calls = sum(len(e.calls) for e in log if isinstance(e, Assistant))
    assert problems(read_html(render(picture)), findings=len(violations), calls=calls) == []
    assert svg_problems(render(picture, "svg"), findings=len(violations), calls=calls) == []
    assert len(picture.columns) == 2 and picture.columns[0].title.startswith("projector under test")
    code, _ = run("show", str(path), "-o", str(tmp_path / "reference.html"))  # and with the reference, as any session
    assert code == 0


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "provider_regressions").glob("*.jsonl")), ids=lambda p: p.stem)
def test_every_provider_regression_renders(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.html"
    assert run("show", str(path), "-o", str(out))[0] == 0
    assert problems(read_html(out.read_text(encoding="utf-8")), findings=check_findings(path), calls=declared_calls(path)) == []


# -- TodoList:3: the missing tool message, on both sides ------------------------------------------


def test_todolist3_marks_the_missing_tool_message_on_both_sides(tmp_path: Path) -> None:
    out = tmp_path / "todolist3.html"
    assert run("show", str(WIRE / "todolist3.jsonl"), "-o", str(out))[0] == 0
    page = read_html(out.read_text(encoding="utf-8"))
    (card,) = page.findings()
    key = card.attrs["id"]
    assert card.attrs["data-rule"] == "C6" and card.attrs["data-level"] == "reject"
    # the projection: a ghost where the tool message for TodoList:3 is missing in log order
    (ghost,) = page.with_class("ghost")
    assert "projection" in ghost.inside and key in ghost.attrs["data-findings"].split()
    assert "tool message for TodoList:3" in ghost.text and "missing" in ghost.text
    # the timeline: the call's bar, the steer that arrives inside it, and why, on its row
    (bar,) = page.bars()
    assert bar.attrs["data-call"] == "TodoList:3" and bar.attrs["data-fate"] == "answered" and "hit" in bar.attrs["class"].split()
    steer = [e for e in page.elements if e.attrs.get("data-kind") == "steer"]
    assert [s.attrs["data-line"] for s in steer] == ["12"] and key in steer[0].attrs["data-findings"].split()
    assert any("TodoList:3" in n.text and "missing" in n.text for n in page.with_class("fnote"))


def test_todolist3_with_the_captured_request_shows_the_tool_message_it_lacks(tmp_path: Path) -> None:
    out = tmp_path / "sent.html"
    code, _ = run("show", str(WIRE / "todolist3.jsonl"), "--request", str(WIRE / "todolist3-request.json"), "-o", str(out))
    assert code == 0
    page = read_html(out.read_text(encoding="utf-8"))
    (card,) = page.findings()
    assert card.attrs["data-rule"] == "C1" and "lacks the tool message for TodoList:3" in card.text
    (ghost,) = page.with_class("ghost")
    assert "tool message for TodoList:3" in ghost.text and ghost.attrs["id"].startswith("m0-")  # in the captured request's column
    result = next(e for e in page.elements if e.attrs.get("data-kind") == "result")
    assert result.attrs["data-line"] == "14" and card.attrs["id"] in result.attrs["data-findings"].split()
    assert problems(page, findings=check_findings(WIRE / "todolist3.jsonl", "--request", str(WIRE / "todolist3-request.json")), calls=1) == []


@pytest.mark.parametrize("name", ["requests/openai-todolist3.json", "requests/anthropic-todolist3.json", "requests/openai-responses-todolist3.json", "kimi-context/todolist3.jsonl"])
def test_a_stored_todolist3_request_shows_the_missing_tool_message(name: str, tmp_path: Path) -> None:
    """A message list whose call has no tool message right after it (none at all, or one further down)."""
    out = tmp_path / "p.html"
    assert run("show", str(EXAMPLES / name), "-o", str(out))[0] == 0
    page = read_html(out.read_text(encoding="utf-8"))
    (bar,) = page.bars()
    assert bar.attrs["data-fate"] == "unanswered" and "TodoList" in bar.attrs["data-call"] and "hit" in bar.attrs["class"].split()
    (ghost,) = page.with_class("ghost")
    assert f"missing: the tool message for {bar.attrs['data-call']}" in ghost.text and ghost.attrs["data-findings"] == "f1"


# -- the timeline's vocabulary --------------------------------------------------------------------

EVERYTHING = [
    {"type": "session.meta", "version": 1, "system": "s"},
    {"type": "turn.prompt", "text": "p1"},
    {"type": "step.begin"},
    {"type": "assistant", "text": "", "calls": [{"id": "a", "name": "Shell", "args": "{}"}, {"id": "b", "name": "Shell", "args": "{}"}], "complete": True},
    {"type": "step.end", "finish_reason": "tool_calls"},
    {"type": "tool.result", "call_id": "a", "output": "ok"},
    {"type": "turn.steer", "text": "hurry"},
    {"type": "turn.cancel"},
    {"type": "tool.result", "call_id": "b", "output": "late"},
    {"type": "turn.prompt", "text": "p2"},
    {"type": "step.begin"},
    {"type": "assistant", "text": "", "calls": [{"id": "c", "name": "Read", "args": "{}"}], "complete": True},
    {"type": "step.end", "finish_reason": "tool_calls"},
    {"type": "resume"},
    {"type": "turn.prompt", "text": "p3"},
    {"type": "step.begin"},
    {"type": "assistant", "text": "done", "calls": [{"id": "d", "name": "Grep", "args": "{\"q"}], "complete": False},
    {"type": "step.error", "message": "stream cut"},
    {"type": "turn.end"},
    {"type": "compaction", "summary": "earlier work", "upto": 9},
    {"type": "notification", "text": "job done"},
    {"type": "turn.prompt", "text": "p4"},
    {"type": "step.begin"},
    {"type": "assistant", "text": "ok", "calls": [], "complete": True},
    {"type": "step.end", "finish_reason": "stop"},
    {"type": "turn.end"},
    {"type": "undo", "count": 1},
    {"type": "clear"},
]


def _jsonl(events: list[dict[str, object]]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def test_each_fate_marker_and_span_is_drawn(tmp_path: Path) -> None:
    path = tmp_path / "everything.jsonl"
    path.write_text(_jsonl(EVERYTHING), encoding="utf-8")
    imp = load(str(path))
    picture = of_session(imp)
    fates = {b.id: (b.fate.value, b.reason, b.later.value) for b in picture.bars}
    assert fates == {
        "a": ("answered", "", "summarized"),
        "b": ("closed", "cancelled", "late note"),
        "c": ("closed", "lost at crash", "cleared"),
        "d": ("dropped", "", ""),  # never sent: nothing to clear
    }
    assert picture.point == 11  # by default, the first request after the first place a projection in log order breaks
    (compaction,) = [s for s in picture.spans if s.kind == "compaction"]
    assert (compaction.start, compaction.end, compaction.by) == (1, 9, 20)
    page = read_html(render(picture))
    kinds = {e.attrs.get("data-kind") for e in page.elements}
    assert {"steer", "cancel", "crash / resume", "compaction", "notification", "undo", "clear", "step error"} <= kinds
    assert {b.attrs["data-fate"] for b in page.bars()} == {"answered", "closed", "dropped"}
    late = [e for e in page.elements if "xe" in e.attrs.get("class", "").split()]
    assert len(late) == 1  # b's late result: the dashed extension ends on its row
    assert problems(page, findings=check_findings(path), calls=4) == []


def test_a_long_session_collapses_its_clean_turns_and_links_to_its_findings(tmp_path: Path) -> None:
    events: list[dict[str, object]] = [{"type": "session.meta", "version": 1, "system": "s"}]
    for k in range(30):
        events += [
            {"type": "turn.prompt", "text": f"p{k}"},
            {"type": "step.begin"},
            {"type": "assistant", "text": "", "calls": [{"id": f"t{k}", "name": "Shell", "args": "{}"}], "complete": True},
            {"type": "step.end", "finish_reason": "tool_calls"},
        ]
        if k == 17:  # the one broken turn: a steer before the result
            events.append({"type": "turn.steer", "text": "wait"})
        events += [
            {"type": "tool.result", "call_id": f"t{k}", "output": "ok"},
            {"type": "step.begin"},
            {"type": "assistant", "text": "done", "calls": [], "complete": True},
            {"type": "step.end", "finish_reason": "stop"},
            {"type": "turn.end"},
        ]
    path = tmp_path / "long.jsonl"
    path.write_text(_jsonl(events), encoding="utf-8")
    out = tmp_path / "long.html"
    assert run("show", str(path), "-o", str(out), "--at", "20")[0] == 0
    page = read_html(out.read_text(encoding="utf-8"))
    turns = [e for e in page.elements if e.tag == "details"]
    opened = [t for t in turns if "open" in t.attrs]
    assert len(turns) == 31 and len(opened) == 2  # the broken turn (p17), and the one --at 20 is in (p2); the rest collapsed
    assert all("hashit" in t.attrs["class"] or "20" in t.text for t in opened)
    (card,) = page.findings()
    assert any(e.attrs.get("href") == f"#{card.attrs['id']}" for e in page.elements)  # a badge links back to the finding
    point = page.with_class("point")
    assert [p.attrs["data-line"] for p in point] == ["20"]
    assert problems(page, findings=1, calls=30) == []


def test_show_and_check_agree_on_the_findings_under_a_policy(tmp_path: Path) -> None:
    path = EXAMPLES / "codex" / "todolist3.jsonl"
    out = tmp_path / "p.html"
    for policy in ("reference", "codex"):
        assert run("show", str(path), "--policy", policy, "-o", str(out), "--force")[0] == 0
        assert problems(read_html(out.read_text(encoding="utf-8")), findings=check_findings(path, "--policy", policy)) == []


# -- the command line ---------------------------------------------------------------------------------


def cli(*argv: str, cwd: Path = ROOT, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "ctxcontract", *argv], capture_output=True, cwd=cwd, timeout=300, input=stdin)


def test_show_never_replaces_a_file_without_force(tmp_path: Path) -> None:
    out = tmp_path / "p.html"
    out.write_text("mine", encoding="utf-8")
    proc = cli("show", str(WIRE / "todolist3.jsonl"), "-o", str(out))
    assert proc.returncode == 2 and proc.stderr.decode() == f"ctxcontract: error: {out}: already exists (use --force to replace it)\n"
    assert out.read_text(encoding="utf-8") == "mine"
    assert cli("show", str(WIRE / "todolist3.jsonl"), "-o", str(out), "--force").returncode == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["p.html"]  # no temporary file left


def test_show_writes_name_html_in_the_working_folder_and_never_over_it(tmp_path: Path) -> None:
    for expected in ("todolist3.html", "todolist3-1.html"):
        proc = cli("show", str(WIRE / "todolist3.jsonl"), cwd=tmp_path)
        assert proc.returncode == 0 and f"wrote {expected} (html)" in proc.stdout.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["todolist3-1.html", "todolist3.html"]


def test_show_reads_standard_input_and_writes_standard_output() -> None:
    proc = cli("show", "-", "-o", "-", stdin=(WIRE / "todolist3.jsonl").read_bytes())
    assert proc.returncode == 0 and proc.stdout.decode().startswith("<!DOCTYPE html>")
    assert "wrote <stdout>" in proc.stderr.decode()
    assert problems(read_html(proc.stdout.decode()), findings=1, calls=1) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["show", "no/such.jsonl"], "ctxcontract: error: no/such.jsonl: no such file\n"),
        (["show", "BAD", "-o", "-"], "ctxcontract: error: BAD:2: "),
        (["show", str(EXAMPLES / "requests" / "openai-todolist3.json"), "--at", "3", "-o", "-"], "--at, --request, --projector and --projector-cmd take a session log"),
        (["show", str(WIRE / "todolist3.jsonl"), "--at", "0"], "argument --at: 0 is less than 1"),
        (["show", str(WIRE / "todolist3.jsonl"), "--at", "3", "--request", str(WIRE / "todolist3-request.json")], "--at picks the projection point"),
        (["check", str(WIRE / "todolist3.jsonl"), "--picture", "-"], "--picture needs a file name"),
        (["check", "-", "--picture", "p.html"], "--picture reads <stdin> again"),
    ],
)
def test_bad_input_is_one_line_naming_the_file_and_line(argv: list[str], message: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type":"session.meta","version":1,"system":""}\n{"type":"turn.prompt","text":""}\n', encoding="utf-8")
    argv = [str(bad) if a == "BAD" else a for a in argv]
    message = message.replace("BAD", str(bad))
    proc = cli(*argv, cwd=tmp_path, stdin=b"")
    err = proc.stderr.decode()
    last = err.splitlines()[-1] if err else ""
    assert proc.returncode == 2 and message.strip() in last and "Traceback" not in err, err
    assert err.count("\n") == 1 or err.startswith("usage:")  # one line; argparse's own errors come after the usage, as for every command
    assert list(tmp_path.iterdir()) == [bad]  # nothing written


# -- --picture on check, verify and counterexample ---------------------------------------------------------


def test_check_picture_draws_what_check_found(tmp_path: Path) -> None:
    out = tmp_path / "crash.svg"
    path = EXAMPLES / "codex" / "crash-mid-parallel.jsonl"
    code, text = run("check", str(path), "--picture", str(out), "--brief")
    assert code == 1 and f"picture: {out}" in text
    assert svg_problems(out.read_text(encoding="utf-8"), findings=check_findings(path), calls=declared_calls(path)) == []
    code, _ = run("check", str(path), "--picture", str(out), "--rules", "C6", "--force")  # the selection applies to the picture too
    assert svg_problems(out.read_text(encoding="utf-8"), findings=check_findings(path, "--rules", "C6"), calls=declared_calls(path)) == []
    assert run("check", str(path), "--picture", str(out))[0] == 2  # it exists: not replaced without --force


def test_check_picture_of_a_projector(tmp_path: Path) -> None:
    out = tmp_path / "p.html"
    path = ROOT / "tests" / "regressions" / "drop_last_step_result.jsonl"
    code, _ = run("check", str(path), "--projector", f"{EXAMPLES / 'mutants.py'}:drop_last_step_result", "--picture", str(out))
    assert code == 1
    page = read_html(out.read_text(encoding="utf-8"))
    assert len([e for e in page.elements if "data-column" in e.attrs]) == 2
    assert any("missing: the tool message for" in g.text for g in page.with_class("ghost"))
    assert problems(page, findings=check_findings(path, "--projector", f"{EXAMPLES / 'mutants.py'}:drop_last_step_result")) == []


def test_verify_picture_shows_the_projector_beside_the_reference(tmp_path: Path) -> None:
    cx, pic = tmp_path / "cx.jsonl", tmp_path / "cx.html"
    proc = cli("verify", "--projector", "examples/todolist_bug.py:project", "-o", str(cx), "--picture", str(pic))
    assert proc.returncode == 1 and f"picture of finding 1: {pic}" in proc.stdout.decode()
    page = read_html(pic.read_text(encoding="utf-8"))
    titles = [e.text for e in page.with_class("coltitle")]
    assert titles[0].startswith("projector under test: examples/todolist_bug.py:project") and titles[1].startswith("reference projection")
    (ghost,) = page.with_class("ghost")
    assert "missing: the tool message for" in ghost.text and "diff" in ghost.attrs["class"].split()  # the first difference
    log = parse_log(cx.read_text(encoding="utf-8"))
    assert problems(page, calls=sum(len(e.calls) for e in log if isinstance(e, Assistant))) == []


def test_verify_picture_is_checked_before_the_search(tmp_path: Path) -> None:
    pic = tmp_path / "p.html"
    pic.write_text("mine", encoding="utf-8")
    proc = cli("verify", "--projector", "examples/todolist_bug.py:project", "-o", str(tmp_path / "cx.jsonl"), "--picture", str(pic))
    assert proc.returncode == 2 and "already exists" in proc.stderr.decode() and not (tmp_path / "cx.jsonl").exists()


def test_counterexample_picture(tmp_path: Path) -> None:
    pic = tmp_path / "half.svg"
    code, text = run("counterexample", "--mutant", "half_call_sent", "--shortest", "--max-length", "5", "-o", str(tmp_path / "half.jsonl"), "--picture", str(pic))
    assert code == 0 and f"picture: {pic}" in text
    svg = pic.read_text(encoding="utf-8")
    log = parse_log((tmp_path / "half.jsonl").read_text(encoding="utf-8"))
    violations = check_session(log, MUTANTS["half_call_sent"].project)
    assert svg_problems(svg, findings=len(violations), calls=sum(len(e.calls) for e in log if isinstance(e, Assistant))) == []
    assert "projector under test: mutant half_call_sent" in svg


def test_the_page_is_self_contained() -> None:
    text = render(of_session(load(str(WIRE / "todolist3.jsonl"))))
    assert "http://" not in text and "https://" not in text and "<link" not in text and " src=" not in text
    assert "<style>" in text and "<script>" in text


def test_texts_from_the_file_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    evil = '<script>alert(1)</script>"&'
    path.write_text(_jsonl([{"type": "session.meta", "version": 1, "system": evil}, {"type": "turn.prompt", "text": evil}]), encoding="utf-8")
    text = render(of_session(load(str(path))))
    assert evil not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    ET.fromstring(render(of_session(load(str(path))), "svg"))


def test_the_docs_legend_names_every_colour_the_picture_uses() -> None:
    from ctxref.show.page import FATE_COLOURS, LEVEL_WORDS, MARKER_STYLE

    doc = (ROOT / "docs" / "show.md").read_text(encoding="utf-8")
    for fate in FATE_COLOURS:
        assert fate in doc, fate
    for kind, (_colour, icon, _words) in MARKER_STYLE.items():
        assert f"`{icon} {kind.value}`" in doc, kind
    for level, words in LEVEL_WORDS.items():
        assert f"`{level}`" in doc and words in doc, level
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/show-todolist3.png)" in readme and "(show-todolist3.png)" in doc and (ROOT / "docs" / "show-todolist3.png").is_file()


def test_show_a_projector_in_another_process(tmp_path: Path) -> None:
    out = tmp_path / "p.html"
    path = ROOT / "tests" / "regressions" / "steer_inside_block.jsonl"
    child = [sys.executable, str(EXAMPLES / "adapters" / "python" / "child.py"), "steer_inside_block"]
    code, _ = run("show", str(path), "-o", str(out), "--projector-cmd", *child)
    assert code == 0
    page = read_html(out.read_text(encoding="utf-8"))
    titles = [e.text for e in page.with_class("coltitle")]
    assert len(titles) == 2 and "child.py steer_inside_block" in titles[0]
    expected = check_findings(path, "--projector-cmd", *child)
    assert expected and problems(page, findings=expected, calls=1) == []
