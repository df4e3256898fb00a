"""``--provider``: whose 400 the ``reject`` level is (``ctxspec.providers.judge``), and the commands that take it.

* :func:`relevel` on hand-built findings and rejections: confirmed, accepted
  (by the provider's ``accepts`` table), unknown (stays ``reject``, even when
  a rule of the provider covers the contract rule and does not fire), and a
  rejection no finding explains.
* A projector that puts a steer inside a tool block, checked under each
  provider: the finding is the provider's 400, with its error text.
* ``project --to P`` prints what the reference renderer makes, and P accepts
  the reference projection of every bundled log.
* ``check REQUEST --provider P`` on the bundled captured requests: the verdict
  line and the exit status.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctxref.cli import PROVIDER_NAMES, main
from ctxref.formats import load
from ctxref.mutants import MUTANTS
from ctxref.projector import project
from ctxref.provider_check import judge
from ctxref.render import render
from ctxspec.contract import Selection, Violation, check_session
from ctxspec.events import load_log
from ctxspec.providers import PROVIDERS, Evidence, Provider, ProviderRule, Rejection
from ctxspec.providers.base import openai_envelope
from ctxspec.providers.judge import relevel
from ctxspec.rules import Level

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def _never(payload: object) -> Iterator[Rejection]:
    return iter(())


TOY = Provider(
    name="toy",
    title="Toy",
    format="openai",
    items="messages",
    envelope=openai_envelope(),
    rules=(
        ProviderRule("TY1", "answered", "calls answered", "unanswered {id}", Evidence.VERIFIED, (), _never, ("C1",)),
        ProviderRule("TY2", "order", "nothing but tool messages after calls", "Unexpected role", Evidence.VERIFIED, (), _never),
    ),
    accepts={"C6": "it pairs by id wherever the result sits"},
)


def test_relevel_confirmed_accepted_unknown_and_provider_only() -> None:
    found = [
        Violation("C1", "call 'a' is not answered"),
        Violation("C6", "a steer inside the block", level=Level.REJECT),
        Violation("C3", "id 'a' used twice"),
        Violation("C8", "a prompt is missing"),
    ]
    rejections = [Rejection("TY1", "unanswered a", "messages", 2), Rejection("TY2", "Unexpected role", "", 4)]
    out = relevel(found, rejections, TOY)
    assert [(v.rule, v.level) for v in out] == [
        ("C1", Level.REJECT),  # confirmed: TY1 is an instance of C1
        ("C6", Level.POLICY),  # accepted: in the provider's accepts table
        ("C3", Level.REJECT),  # unknown: no rule of the provider covers C3
        ("C8", Level.LOSS),  # not a reject: untouched
        ("C10", Level.REJECT),  # TY2 explains no finding: a finding of its own
    ]
    assert "Toy answers 400 (TY1): unanswered a" in out[0].message
    assert "Toy accepts it: it pairs by id" in out[1].message
    assert "not known" in out[2].message
    assert out[4].message == "Toy answers 400 (TY2): Unexpected role"


def test_relevel_does_not_take_silence_for_acceptance() -> None:
    """TY1 covers C1 and does not fire: that is no evidence the provider accepts the finding."""
    (v,) = relevel([Violation("C1", "call 'a' is answered twice")], [], TOY)
    assert v.level is Level.REJECT and "Toy's own error for this is not known" in v.message


STEER = ROOT / "tests" / "shortest" / "steer_inside_block.jsonl"


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_steer_inside_the_block_is_the_providers_400_but_not_for_responses(provider: str) -> None:
    """Chat-shaped, Anthropic and Gemini requests cannot hold a user message inside a tool block; the Responses API pairs by call_id."""
    log = load_log(str(STEER))
    found = check_session(log, MUTANTS["steer_inside_block"].project, select=Selection(provider=judge(provider)))
    title = PROVIDERS[provider].title
    assert {v.rule for v in found} >= {"C1", "C6"}, found
    if provider == "openai-responses":
        assert all(v.level is Level.POLICY and f"{title} accepts it" in v.message for v in found), found
    else:
        assert all(v.level is Level.REJECT and f"{title} answers 400" in v.message for v in found), found


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_the_provider_names_are_the_registry(provider: str) -> None:
    assert set(PROVIDER_NAMES) == set(PROVIDERS)


LOGS = sorted(p for d in ("", "kimi-wire", "codex", "claude") for p in (EXAMPLES / d).glob("*.jsonl") if p.is_file())


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_project_to_prints_the_rendering_and_the_provider_takes_it(provider: str, tmp_path: Path) -> None:
    for path in LOGS:
        out = tmp_path / f"{path.parent.name}-{path.stem}-{provider}.json"
        code, _ = run("project", str(path), "--to", provider, "-o", str(out))
        assert code == 0
        body = json.loads(out.read_text(encoding="utf-8"))
        assert body == render(project(load(str(path)).log), provider)
        assert PROVIDERS[provider].check(body) == [], path


def test_check_log_provider_judges_the_reference_projection() -> None:
    code, out = run("check", str(EXAMPLES / "kimi-wire" / "todolist3.jsonl"), "--provider", "anthropic", "--brief")
    assert "Anthropic Messages (anthropic) rules on the reference projection at the end of the file, rendered by the reference renderer:" in out
    assert "  anthropic would accept it" in out


REQUESTS = EXAMPLES / "requests"


@pytest.mark.parametrize(
    ("name", "provider", "error"),
    [
        ("anthropic-clean.json", "anthropic", None),
        ("anthropic-text-before-result.json", "anthropic", "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_01Tox. Each `tool_use` block must have a corresponding `tool_result` block in the next message."),
        ("anthropic-todolist3.json", "anthropic", "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_01TodoList3. Each `tool_use` block must have a corresponding `tool_result` block in the next message."),
        ("deepseek-reasoning-missing.json", "deepseek", "Missing `reasoning_content` field in the assistant message at message index 2. For more information, please refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls"),
        ("deepseek-thinking.json", "deepseek", None),
        ("gemini-clean.json", "gemini", None),
        ("gemini-signature-missing.json", "gemini", "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:ReadFile` , position 3. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."),
        ("gemini-split-responses.json", "gemini", "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn."),
        ("mistral-clean.json", "mistral", None),
        ("mistral-user-after-tool.json", "mistral", "Unexpected role 'user' after role 'tool'"),
        ("moonshot-clean.json", "moonshot", None),
        ("moonshot-interleaved.json", "moonshot", "Invalid request: an assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: functions.view:1"),
        ("openai-clean.json", "openai", None),
        ("openai-responses-clean.json", "openai-responses", None),
        ("openai-responses-reasoning-dropped.json", "openai-responses", "Item 'fc_0a038568becf80fb0068e9630e5fd081978df905e0edaed49a' of type 'function_call' was provided without its required 'reasoning' item: 'rs_…'."),
        ("openai-responses-steer-between.json", "openai-responses", None),
        ("openai-responses-todolist3.json", "openai-responses", "No tool output found for function call call_TodoList3."),
        ("openai-todolist3.json", "openai", "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: TodoList:3"),
    ],
)
def test_check_request_provider_prints_the_error_or_accepted(name: str, provider: str, error: str | None) -> None:
    code, out = run("check", str(REQUESTS / name), "--provider", provider, "--brief", "--fail-on", "reject")
    last = out.splitlines()[-1]
    if error is None:
        assert (code, last) == (0, f"verdict: {provider} would accept it")
    else:
        assert (code, last) == (1, f"verdict: {provider} would answer 400: {error}")
    code, text = run("check", str(REQUESTS / name), "--provider", provider, "--json")
    doc = json.loads(text)["provider"]
    assert doc["accepted"] is (error is None)
    assert (doc["rejections"][0]["error"] if doc["rejections"] else None) == error


def test_verify_provider_counts_only_what_that_provider_rejects(tmp_path: Path) -> None:
    """The steer-inside-block mutant under --fail-on reject: a finding for OpenAI Chat, none for the Responses API."""
    common = ["verify", "--projector", f"{EXAMPLES / 'mutants.py'}:steer_inside_block", "--fail-on", "reject", "--max-examples", "60", "--json"]
    code, out = run(*common, "--provider", "openai", "-o", str(tmp_path / "chat.jsonl"))
    findings = json.loads(out)["findings"]
    assert code == 1 and findings and findings[0]["level"] == "reject"
    assert any("OpenAI Chat Completions answers 400 (OC1)" in f["message"] for f in findings)
    code, out = run(*common, "--provider", "openai-responses", "-o", str(tmp_path / "responses.jsonl"))
    assert (code, json.loads(out)["findings"]) == (0, [])
