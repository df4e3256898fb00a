"""DeepSeek, Moonshot and Mistral: their rules on hand-built payloads, their renderers, their bundled requests.

Each rule is shown firing with its exact text, path and item, and staying
quiet on a near miss the provider accepts.  The generic properties (the
reference accepted on every short session, a mutant per rule) are in
``tests/test_providers.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxref.formats.messages import load_messages
from ctxref.render import render
from ctxref.render.chat import MISTRAL_BRIDGE
from ctxspec.events import ToolCall
from ctxspec.messages import AssistantMessage, Message, Reasoning, SystemMessage, ToolMessage, UserMessage
from ctxspec.providers import PROVIDERS, Rejection
from ctxspec.providers import deepseek, moonshot

REQUESTS = Path(__file__).parent.parent / "examples" / "requests"

JSON = dict[str, object]


def call(cid: str, name: str = "Shell") -> JSON:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": "{}"}}


def calls(*ids: str, text: str | None = None, **extra: object) -> JSON:
    return {"role": "assistant", "content": text, "tool_calls": [call(i) for i in ids], **extra}


def tool(cid: str, content: str = "ok") -> JSON:
    return {"role": "tool", "tool_call_id": cid, "content": content}


def user(text: str = "go") -> JSON:
    return {"role": "user", "content": text}


def reply(text: str = "done", **extra: object) -> JSON:
    return {"role": "assistant", "content": text, **extra}


def check(provider: str, messages: list[JSON], **top: object) -> list[Rejection]:
    return PROVIDERS[provider].check({**top, "messages": messages})


def only(provider: str, messages: list[JSON], **top: object) -> tuple[str, str, str, int | None]:
    found = check(provider, messages, **top)
    assert len(found) == 1, found
    r = found[0]
    return r.rule, r.error, r.path, r.item


# -- DeepSeek ----------------------------------------------------------------------

DS_UNANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
    "(insufficient tool messages following tool_calls message)"
)
DS_ORPHAN = "Messages with role 'tool' must be a response to a preceding message with 'tool_calls'"


def ds_reasoning(i: int) -> str:
    return (
        f"Missing `reasoning_content` field in the assistant message at message index {i}. "
        "For more information, please refer to https://api-docs.deepseek.com/guides/thinking_mode#tool-calls"
    )


def test_deepseek_unanswered_call() -> None:
    assert only("deepseek", [user(), calls("call_a", "call_b"), tool("call_a"), user()]) == ("DS1", DS_UNANSWERED, "messages", 1)
    assert check("deepseek", [user(), calls("call_a", "call_b"), tool("call_b"), tool("call_a"), user()]) == []  # any order


def test_deepseek_orphan_tool_message() -> None:
    assert only("deepseek", [user(), tool("call_x"), user()]) == ("DS2", DS_ORPHAN, "messages", 1)
    assert check("deepseek", [user(), calls("call_x"), tool("call_x")]) == []


THINKING = {"thinking": {"type": "enabled"}}


def test_deepseek_reasoning_in_thinking_mode() -> None:
    history = [{"role": "system", "content": "s"}, user(), calls("call_a"), tool("call_a"), reply(), user()]
    assert only("deepseek", history, **THINKING) == ("DS3", ds_reasoning(2), "messages[2].reasoning_content", 2)
    assert only("deepseek", history, model="deepseek-reasoner")[0] == "DS3"
    assert only("deepseek", history, model="deepseek-chat", **THINKING)[0] == "DS3"  # the switch decides, whatever the model
    # near misses: thinking off, or said off; the reasoning sent (empty too); a reply without calls needs none
    assert check("deepseek", history) == []
    assert check("deepseek", history, model="deepseek-chat") == []
    assert check("deepseek", history, model="deepseek-reasoner", thinking={"type": "disabled"}) == []
    sent = [user(), calls("call_a", reasoning_content="why"), tool("call_a"), reply(), user()]
    assert check("deepseek", sent, **THINKING) == []
    assert check("deepseek", [user(), calls("call_a", reasoning_content=""), tool("call_a"), user()], **THINKING) == []
    assert only("deepseek", [user(), calls("call_a", reasoning_content=None), tool("call_a")], **THINKING)[0] == "DS3"


def test_deepseek_thinking_switch() -> None:
    assert deepseek.thinking_enabled({"thinking": {"type": "enabled"}})
    assert deepseek.thinking_enabled({"model": "deepseek-reasoner"})
    assert not deepseek.thinking_enabled({"model": "deepseek-reasoner", "thinking": {"type": "disabled"}})
    assert not deepseek.thinking_enabled({"model": "deepseek-v4-pro"})  # the default, with a text we do not model: not judged
    assert not deepseek.thinking_enabled({})


# -- Moonshot ----------------------------------------------------------------------


def ms_unanswered(ids: str) -> str:
    return (
        "Invalid request: an assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
        f"The following tool_call_ids did not have response messages: {ids}"
    )


def test_moonshot_results_are_one_unbroken_run() -> None:
    a, b, c = "functions.view:0", "functions.view:1", "functions.view:2"
    split = [user(), calls(a, b, c), tool(a), user("[image]"), tool(b), tool(c), user("[image]")]
    assert only("moonshot", split) == ("MS1", ms_unanswered(f"{b}, {c}"), "messages", 1)
    assert check("moonshot", [user(), calls(a, b, c), tool(c), tool(a), tool(b), user("[image]")]) == []


def test_moonshot_duplicate_call_id() -> None:
    again = [user(), calls("functions.Shell:0"), tool("functions.Shell:0"), reply(), user(), calls("functions.Shell:0"), tool("functions.Shell:0")]
    found = check("moonshot", again)
    assert [(r.rule, r.error, r.item) for r in found] == [("MS2", "Invalid request: tool call id functions.Shell:0 is duplicated", 5)]
    fresh = [user(), calls("functions.Shell:0"), tool("functions.Shell:0"), reply(), user(), calls("functions.Shell:1"), tool("functions.Shell:1")]
    assert check("moonshot", fresh) == []


def test_moonshot_unknown_id() -> None:
    found = check("moonshot", [user(), calls("Shell:58"), tool("")])
    assert [(r.rule, r.error, r.item) for r in found] == [("MS1", ms_unanswered("Shell:58"), 1), ("MS3", "Invalid request: tool_call_id  is not found", 2)]
    # an id some call of the request has is not "not found", even outside its run
    late = [user(), calls("Shell:1"), user("wait"), tool("Shell:1")]
    assert [r.rule for r in check("moonshot", late)] == ["MS1"]


def ms_reasoning(i: int) -> str:
    return f"thinking is enabled but reasoning_content is missing in assistant tool call message at index {i}"


def test_moonshot_reasoning_in_thinking_mode() -> None:
    history = [{"role": "system", "content": "s"}, user(), calls("functions.Shell:0", text=""), tool("functions.Shell:0"), reply(), user()]
    assert only("moonshot", history, model="kimi-k2.6") == ("MS4", ms_reasoning(2), "messages[2].reasoning_content", 2)
    assert only("moonshot", history, model="kimi-k2-thinking", thinking={"type": "disabled"})[0] == "MS4"
    assert only("moonshot", history, model="moonshot-v1-8k", **THINKING)[0] == "MS4"
    assert check("moonshot", history, model="kimi-k2-0905-preview") == []
    assert check("moonshot", history, model="kimi-k2.6", thinking={"type": "disabled"}) == []
    sent = [user(), calls("functions.Shell:0", reasoning_content=""), tool("functions.Shell:0"), reply(), user()]
    assert check("moonshot", sent, model="kimi-k2.6") == []


def test_moonshot_thinking_switch() -> None:
    assert moonshot.thinking_enabled({"model": "kimi-k2.5"})
    assert moonshot.thinking_enabled({"model": "moonshotai/kimi-k2.6"})
    assert moonshot.thinking_enabled({"model": "kimi-k3"})
    assert moonshot.thinking_enabled({"model": "kimi-k2-thinking-turbo"})
    assert not moonshot.thinking_enabled({"model": "kimi-k2-turbo-preview"})
    assert not moonshot.thinking_enabled({})


# -- Mistral -----------------------------------------------------------------------

COUNT = "Not the same number of function calls and responses"
LAST = "Expected last role User or Tool (or Assistant with prefix True) for serving but got assistant"


def test_mistral_user_after_tool() -> None:
    assert only("mistral", [user(), calls("a12345678"), tool("a12345678"), user()]) == ("MI1", "Unexpected role 'user' after role 'tool'", "messages", 3)
    assert check("mistral", [user(), calls("a12345678"), tool("a12345678"), reply("Noted."), user()]) == []


def test_mistral_id_format() -> None:
    found = check("mistral", [user(), calls("call_1"), tool("call_1")])
    expected = "Tool call id was call_1 but must be a-z, A-Z, 0-9, with a length of 9."
    assert [(r.rule, r.error, r.item) for r in found] == [("MI2", expected, 1), ("MI2", expected, 2)]
    assert check("mistral", [user(), calls("D681PevKs"), tool("D681PevKs")]) == []
    assert [r.rule for r in check("mistral", [user(), calls("D681PevK"), tool("D681PevK")])] == ["MI2", "MI2"]  # eight characters


def test_mistral_call_count() -> None:
    short = [user(), calls("a12345678", "b12345678"), tool("a12345678"), reply("x"), user()]
    assert only("mistral", short) == ("MI3", COUNT, "messages", 1)
    assert only("mistral", [user(), calls("a12345678"), tool("a12345678"), tool("a12345678")]) == ("MI3", COUNT, "messages", 1)
    # Mistral counts; it does not match ids
    assert check("mistral", [user(), calls("a12345678"), tool("z12345678")]) == []


def test_mistral_last_role() -> None:
    assert only("mistral", [user(), reply()]) == ("MI4", LAST, "messages", 1)
    assert check("mistral", [user(), reply(prefix=True)]) == []
    assert check("mistral", [user(), calls("a12345678"), tool("a12345678")]) == []


def test_mistral_tool_after_user() -> None:
    assert only("mistral", [user(), calls("a12345678"), user("wait"), tool("a12345678")]) == ("MI5", "Unexpected role 'tool' after role 'user'", "messages", 3)


@pytest.mark.parametrize("provider", ["deepseek", "moonshot", "mistral"])
@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"messages": "no"},
        {"messages": [1, None, "x", []]},
        {"messages": [{"role": 3}, {"role": "assistant", "tool_calls": "x"}, {"role": "tool", "tool_call_id": 7}]},
        {"messages": [{"role": "assistant", "tool_calls": [1, {"id": None}]}], "thinking": "on", "model": 4},
    ],
)
def test_rules_never_raise_on_a_malformed_body(provider: str, payload: JSON) -> None:
    PROVIDERS[provider].check(payload)


def test_envelopes() -> None:
    r = Rejection("DS1", "e", "messages", 1)
    assert PROVIDERS["deepseek"].envelope(r) == {"error": {"message": "e", "type": "invalid_request_error", "param": None, "code": "invalid_request_error"}}
    assert PROVIDERS["moonshot"].envelope(Rejection("MS1", "e", "messages")) == {"error": {"message": "e", "type": "invalid_request_error"}}
    assert PROVIDERS["mistral"].envelope(Rejection("MI1", "e", "messages")) == {"object": "error", "message": "e", "type": "invalid_request_message_order", "param": None, "code": "3230"}
    assert PROVIDERS["mistral"].envelope(Rejection("MI2", "e", "messages"))["code"] == "3280"


# -- renderers ---------------------------------------------------------------------

SESSION: tuple[Message, ...] = (
    SystemMessage(text="s"),
    UserMessage(text="go"),
    AssistantMessage(text="", calls=(ToolCall(id="Shell:1", name="Shell", args="{}"),), reasoning=Reasoning(text="because")),
    ToolMessage(call_id="Shell:1", content="ok"),
    UserMessage(text="and?"),
    AssistantMessage(text="", calls=(ToolCall(id="call_2", name="Shell", args="{}"),)),
    ToolMessage(call_id="call_2", content="ok"),
    AssistantMessage(text="done"),
)


def test_deepseek_and_moonshot_send_reasoning_in_thinking_mode() -> None:
    for provider in ("deepseek", "moonshot"):
        plain = render(SESSION, provider)
        assert plain["thinking"] == {"type": "disabled"}
        assert all("reasoning_content" not in m for m in plain["messages"])  # type: ignore[attr-defined]
        thinking = render(SESSION, provider, thinking=True)
        assert thinking["thinking"] == {"type": "enabled"}
        sent = thinking["messages"]
        assert isinstance(sent, list)
        assert [m.get("reasoning_content") for m in sent if m["role"] == "assistant"] == ["because", "", None]  # no reasoning kept: "" on a call
        assert [c["id"] for m in sent for c in m.get("tool_calls", [])] == ["Shell:1", "call_2"]  # ids as they are
        assert PROVIDERS[provider].check(thinking) == [] and PROVIDERS[provider].check(plain) == []


def test_mistral_rendering() -> None:
    body = render(SESSION, "mistral")
    sent = body["messages"]
    assert isinstance(sent, list)
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user", "assistant", "tool", "assistant"]
    assert sent[4] == {"role": "assistant", "content": MISTRAL_BRIDGE}
    assert sent[-1] == {"role": "assistant", "content": "done", "prefix": True}
    ids = [c["id"] for m in sent for c in m.get("tool_calls", [])]
    assert all(len(i) == 9 and i.isalnum() and i.isascii() for i in ids) and len(set(ids)) == 2
    assert sent[3]["tool_call_id"] == ids[0] and sent[7]["tool_call_id"] == ids[1]
    # the same call keeps its id in a later request
    later = render((*SESSION, UserMessage(text="more")), "mistral")["messages"]
    assert isinstance(later, list) and later[2]["tool_calls"][0]["id"] == ids[0]
    assert "prefix" not in later[-3]
    assert PROVIDERS["mistral"].check(body) == []


# -- bundled requests --------------------------------------------------------------

BUNDLED = {
    "deepseek-reasoning-missing.json": ("deepseek", [("DS3", ds_reasoning(2), 16)]),
    "deepseek-thinking.json": ("deepseek", []),
    "moonshot-interleaved.json": ("moonshot", [("MS1", ms_unanswered("functions.view:1"), 13)]),
    "moonshot-clean.json": ("moonshot", []),
    "mistral-user-after-tool.json": ("mistral", [("MI1", "Unexpected role 'user' after role 'tool'", 31)]),
    "mistral-clean.json": ("mistral", []),
}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_request_gets_exactly_its_error(name: str) -> None:
    provider, expected = BUNDLED[name]
    loaded = load_messages(str(REQUESTS / name))
    assert loaded.format == "openai"
    found = PROVIDERS[provider].check(json.loads((REQUESTS / name).read_text(encoding="utf-8")))
    assert [(r.rule, r.error, None if r.item is None else loaded.source.message_lines[r.item]) for r in found] == expected  # type: ignore[union-attr]
    assert name in (REQUESTS / "README.md").read_text(encoding="utf-8")


def test_reader_reads_reasoning_content_and_lines() -> None:
    loaded = load_messages(str(REQUESTS / "deepseek-thinking.json"))
    kinds = [type(m).__name__ for m in loaded.messages]
    assert kinds == ["SystemMessage", "UserMessage", "AssistantMessage", "ToolMessage", "AssistantMessage", "UserMessage"]
    assert loaded.lines == (8, 12, 16, 31, 36, 41)
    first, second = loaded.messages[2], loaded.messages[4]
    assert isinstance(first, AssistantMessage) and first.reasoning is not None
    assert first.reasoning.text.startswith("The user wants the README") and first.calls[0].id == "call_00_kX3vQ9tBz1mLpR7sYw2NcD4e"
    assert isinstance(second, AssistantMessage) and second.reasoning == Reasoning(text="The file is short; summarize it.")
    missing = load_messages(str(REQUESTS / "deepseek-reasoning-missing.json")).messages[2]
    assert isinstance(missing, AssistantMessage) and missing.reasoning is None


def test_reader_keeps_kimi_ids_and_mistral_lines() -> None:
    kimi = load_messages(str(REQUESTS / "moonshot-interleaved.json"))
    assert [type(m).__name__ for m in kimi.messages] == ["SystemMessage", "UserMessage", "AssistantMessage", "ToolMessage", "UserMessage", "ToolMessage", "UserMessage"]
    assert kimi.lines == (5, 9, 13, 36, 41, 45, 50)
    call_ids = [c.id for c in kimi.messages[2].calls]  # type: ignore[union-attr]
    assert call_ids == ["functions.view:0", "functions.view:1"]
    mistral = load_messages(str(REQUESTS / "mistral-clean.json"))
    assert [type(m).__name__ for m in mistral.messages][-3:] == ["ToolMessage", "AssistantMessage", "UserMessage"]
    assert mistral.messages[4] == AssistantMessage(text=MISTRAL_BRIDGE)
