"""The real Vercel AI SDK (npm ``ai``) checked over the projector protocol: examples/adapters/vercel-ai/.

The adapter is a chat application built on the SDK: its client is the SDK's
own ``AbstractChat``, its requests go through ``convertToModelMessages``,
``pruneMessages`` and ``streamText`` with the OpenAI chat provider, whose
``fetch`` keeps the request body instead of sending it. This test installs
the pinned packages with ``npm ci`` (skipped only when npm or node is
missing), then asserts what the README's table says ``verify`` found: one
small session for each finding, run through ``check``, and a bounded
``verify`` whose findings are all of those kinds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
HERE = ROOT / "examples" / "adapters" / "vercel-ai"
ADAPTER = ["node", str(HERE / "adapter.mjs")]

#: The sessions ``verify`` generates, bounded: the ci profile is derandomized, so this is one fixed search.
PROGRAMS = 30

#: One canonical event, as a JSON object.
Event = dict[str, object]


def _installed_for_this_run() -> str:
    """What the marker in node_modules says: the lock file installed, and by which test run."""
    lock = hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()
    return f"{lock} {os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}\n"


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """The pinned packages, installed once per test run (the workers of one run share the install)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm and node are needed to install and run the Vercel AI SDK adapter (examples/adapters/vercel-ai)")
    marker = HERE / "node_modules" / ".ctxcontract-test-install"
    guard = Path(tempfile.gettempdir()) / f"ctxcontract-vercel-ai-{hashlib.sha256(str(HERE).encode()).hexdigest()[:12]}.lock"
    with guard.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        want = _installed_for_this_run()
        if not (marker.exists() and marker.read_text() == want):
            done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
            marker.write_text(want)
    yield HERE


def ctxcontract(*args: str, cwd: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "ctxcontract", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), f"exit {done.returncode}:\n{done.stderr}"
    out: dict[str, object] = json.loads(done.stdout)
    assert out["exit_code"] == done.returncode
    return out


def check(tmp_path: Path, log: list[Event], *flags: str) -> list[tuple[str, str, str]]:
    """``check`` of one session through the adapter under the vercel-ai policy: (rule, level, message) of each finding."""
    path = tmp_path / "session.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in log), encoding="utf-8")
    out = ctxcontract("check", str(path), "--policy", "vercel-ai", "--json", "--projector-cmd", *ADAPTER, *flags, cwd=tmp_path)
    findings = out["findings"]
    assert isinstance(findings, list)
    return sorted((f["rule"], f["level"], f["message"]) for f in findings)


META: Event = {"type": "session.meta", "version": 1, "system": "You are a coding agent."}
STEP: Event = {"type": "step.begin"}


def prompt(text: str) -> Event:
    return {"type": "turn.prompt", "text": text}


def reply(*calls: tuple[str, str, str], text: str = "", complete: bool = True) -> Event:
    return {"type": "assistant", "text": text, "calls": [{"id": i, "name": n, "args": a} for i, n, a in calls], "complete": complete}


def result(call_id: str, output: str, is_error: bool = False) -> Event:
    return {"type": "tool.result", "call_id": call_id, "output": output, "is_error": is_error}


def end(reason: str) -> Event:
    return {"type": "step.end", "finish_reason": reason}


@pytest.mark.parametrize("name", ["clean", "todolist3", "crash-mid-parallel", "steer-during-parallel", "compaction-cut"])
def test_the_examples_are_clean(installed: Path, tmp_path: Path, name: str) -> None:
    out = ctxcontract("check", str(ROOT / "examples" / f"{name}.jsonl"), "--policy", "vercel-ai", "--json", "--projector-cmd", *ADAPTER, cwd=tmp_path)
    assert out["findings"] == []


def test_a_cancel_a_crash_and_a_cut_stream_are_what_the_preset_declares(installed: Path, tmp_path: Path) -> None:
    log: list[Event] = [
        META,
        prompt("p1"),
        STEP,
        reply(("c1", "Shell", '{"cmd": "pytest"}'), ("c2", "Grep", '{"q": "x"}')),
        result("c2", "found"),
        {"type": "turn.cancel"},  # c1 is left out (unanswered = drop)
        prompt("p2"),
        STEP,
        reply(("c3", "ReadFile", '{"path": "a"}'), ("c4", "ReadFile", '{"path": "b"}'), text="reading", complete=False),
        {"type": "step.error", "message": "stream cut", "retryable": True},  # both calls dropped, the text kept
        STEP,
        reply(("c5", "Shell", '{"cmd": "ls"}')),
        {"type": "resume"},  # c5 lost at the crash: dropped
        result("c5", "late"),  # and its result comes late: dropped
        prompt("p3"),
        STEP,
    ]
    assert check(tmp_path, log) == []


def test_an_error_result_is_sent_as_json(installed: Path, tmp_path: Path) -> None:
    """The OpenAI chat provider sends an ``output-error`` part as ``{"error": text}``: not the logged output."""
    log: list[Event] = [META, prompt("p1"), STEP, reply(("c1", "Shell", '{"cmd": "false"}')), result("c1", "exit 1", is_error=True), end("tool_calls"), STEP]
    assert check(tmp_path, log) == [("C4", "loss", """result of 'c1' altered: sent '{"error":"exit 1"}', logged 'exit 1'""")]


def test_a_reused_id_takes_the_output_of_the_new_call(installed: Path, tmp_path: Path) -> None:
    """``addToolOutput`` writes into the first message that has a part with the id: the old call's output is replaced."""
    log: list[Event] = [
        META,
        prompt("p1"),
        STEP,
        reply(("X", "Shell", '{"n": 1}')),
        result("X", "first"),
        end("tool_calls"),
        STEP,
        reply(text="done"),
        end("stop"),
        {"type": "turn.end"},
        prompt("p2"),
        STEP,
        reply(("X", "Grep", '{"n": 2}')),
        result("X", "second"),
        end("tool_calls"),
        STEP,
    ]
    assert check(tmp_path, log) == [
        ("C4", "loss", "result of 'X' altered: sent 'second', logged 'first'"),
        ("C8", "loss", "exchange with calls [X:Grep] is missing"),
        ("C9", "cache", "the previous request is not a prefix of this one"),
    ]


def test_a_reused_id_revives_a_half_streamed_call(installed: Path, tmp_path: Path) -> None:
    """In the same message, ``addToolOutput`` answers every part with the id, even one whose stream broke."""
    log: list[Event] = [
        META,
        prompt("p1"),
        STEP,
        reply(("X", "Grep", '{"n": 1}'), complete=False),
        end("length"),
        STEP,
        reply(("X", "TodoList", '{"n": 2}')),
        result("X", "out"),
        end("tool_calls"),
        STEP,
    ]
    assert check(tmp_path, log) == [
        ("C10", "reject", "half-streamed call 'X' (Grep) is sent"),
        ("C3", "reject", "call id 'X' already used by message 2"),
    ]


def test_an_id_repeated_in_one_reply_gets_a_random_one(installed: Path, tmp_path: Path) -> None:
    """The OpenAI provider's stream parser renames a repeated id with a random one: another process, another id."""
    log: list[Event] = [META, prompt("p1"), STEP, reply(("c1", "Shell", '{"n": 1}'), ("c1", "Grep", '{"n": 2}')), result("c1", "out1"), result("c1", "out2"), end("tool_calls"), STEP]
    (found,) = check(tmp_path, log)
    assert found[:2] == ("C11", "cache")
    assert found[2].startswith("projecting the same log in another process (another hash seed) gave different messages")


def test_input_during_a_step_comes_after_its_reply(installed: Path, tmp_path: Path) -> None:
    """A step continues the turn's assistant message in place, so a steer typed during it ends up after the reply."""
    log: list[Event] = [
        META,
        prompt("p1"),
        STEP,
        reply(("c1", "Shell", '{"n": 1}')),
        result("c1", "out1"),
        end("tool_calls"),
        STEP,
        {"type": "turn.steer", "text": "steer1"},
        reply(text="reply2"),
        end("stop"),
        STEP,
    ]
    assert check(tmp_path, log) == [("C6", "policy", "steer 'steer1' is deferred past a later assistant message")]


def test_without_ignore_incomplete_tool_calls_a_cancel_bricks_the_session(installed: Path, tmp_path: Path) -> None:
    """The SDK's default: an unanswered call makes every later request throw MissingToolResultsError."""
    log: list[Event] = [META, prompt("p1"), STEP, reply(("X", "Shell", '{"n": 1}')), {"type": "turn.cancel"}, prompt("p2"), STEP]
    assert check(tmp_path, log, "--strict") == [("C12", "reject", "the projector raised AI_MissingToolResultsError: Tool result is missing for tool call X.")]
    assert check(tmp_path, log) == []


#: What each kind of finding in the README says, as the messages of a finding's violations.
KNOWN = {
    "error result sent as JSON": r"result of '.*' altered: sent '\{\"error\":",
    "reused id": r"call id '.*' already used|half-streamed call|result of '.*' altered|exchange with calls .* is missing"
    r"|assistant message with calls .* is not accounted for|sends .*, which the policy drops|is not a prefix"
    r"|removing a resume at which nothing was in flight",
    "random id": r"projecting the same log in another process",
    "input after the reply": r"is deferred past a later assistant message",
}


def test_verify_finds_only_what_the_readme_lists(installed: Path, tmp_path: Path) -> None:
    out = ctxcontract(
        "verify", "--policy", "vercel-ai", "--max-examples", str(PROGRAMS), "--keep-going", "5", "--json", "--projector-cmd", *ADAPTER, cwd=tmp_path
    )
    results = out["results"]
    assert isinstance(results, list) and results, "the search found nothing: the README's table is out of date"
    unexplained = [
        (f["rule"], f["level"], f["message"])
        for r in results
        for f in r["findings"]
        if not any(re.search(pattern, f["message"]) for pattern in KNOWN.values())
    ]
    assert unexplained == []
    # the first thing it finds: a failed tool's output, wrapped in JSON
    assert any(r["rule"] == "C4" and r["level"] == "loss" and re.search(KNOWN["error result sent as JSON"], r["findings"][0]["message"]) for r in results)


def test_verify_finds_no_unpaired_call_no_orphan_and_no_crash(installed: Path, tmp_path: Path) -> None:
    out = ctxcontract(
        "verify", "--policy", "vercel-ai", "--rules", "C1,C2,C12", "--fail-on", "reject", "--max-examples", str(PROGRAMS), "--json",
        "--projector-cmd", *ADAPTER, cwd=tmp_path,
    )  # fmt: skip
    assert out["exit_code"] == 0 and out["results"] == []
