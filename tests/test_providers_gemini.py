"""Gemini ``generateContent``: its rules on hand-built payloads, the reference renderer, the reader of captured requests.

Each rule gets the exact error and path on a payload that breaks it, and a
near miss the provider accepts (a false alarm is as bad as a miss).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxref.formats.messages import check_loaded, load_messages, load_messages_text, sniff_messages
from ctxref.render import render
from ctxref.render.gemini import UNSIGNED
from ctxspec.errors import InvalidLog
from ctxspec.events import ToolCall
from ctxspec.messages import AssistantMessage, Message, Reasoning, SystemMessage, ToolMessage, UserMessage
from ctxspec.providers import PROVIDERS, Rejection
from ctxspec.providers.gemini import CALL_PLACE, COUNT, MIXED, RESPONSE_PLACE

GEMINI = PROVIDERS["gemini"]
REQUESTS = Path(__file__).parent.parent / "examples" / "requests"


def user(*parts: dict[str, object]) -> dict[str, object]:
    return {"role": "user", "parts": list(parts)}


def model(*parts: dict[str, object]) -> dict[str, object]:
    return {"role": "model", "parts": list(parts)}


def text(t: str) -> dict[str, object]:
    return {"text": t}


def call(name: str, signature: str | None = None) -> dict[str, object]:
    part: dict[str, object] = {"functionCall": {"name": name, "args": {}}}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def answer(name: str) -> dict[str, object]:
    return {"functionResponse": {"name": name, "response": {"output": "ok"}}}


def judged(*contents: dict[str, object], **extra: object) -> list[tuple[str, str, str, int | None, int | None]]:
    return [(r.rule, r.error, r.path, r.item, r.block) for r in GEMINI.check({"contents": list(contents), **extra})]


def rules(*contents: dict[str, object], **extra: object) -> list[str]:
    return [r[0] for r in judged(*contents, **extra)]


# ---------------------------------------------------------------------------
# The rules, each with a near miss.
# ---------------------------------------------------------------------------


def test_ge1_each_call_has_one_response_in_the_next_content() -> None:
    assert judged(user(text("go")), model(call("A"), call("B")), user(answer("A"))) == [("GE1", COUNT, "contents", 1, None)]
    assert rules(user(text("go")), model(call("A")), user(text("continue"))) == ["GE1"]  # the TodoList:3 bug
    assert rules(user(text("go")), model(call("A"))) == ["GE1"]  # nothing after the call turn
    assert rules(user(text("go")), model(call("A")), user(answer("A"), answer("A"))) == ["GE1"]
    # Near miss: as many responses as calls, whatever else the content holds.
    assert rules(user(text("go")), model(text("on it"), call("A"), call("B")), user(answer("A"), answer("B"), text("thanks"))) == []


def test_ge1_responses_split_over_two_contents() -> None:
    """The second content is no response turn of a call turn either (GE3); GE1 comes first by position."""
    found = judged(user(text("go")), model(call("A"), call("B")), user(answer("A")), user(answer("B")))
    assert [(r[0], r[3]) for r in found] == [("GE1", 1), ("GE3", 3)]
    error = GEMINI.error({"contents": [user(text("go")), model(call("A"), call("B")), user(answer("A")), user(answer("B"))]})
    assert error is not None and error.error == COUNT


def test_ge2_a_call_turn_follows_a_user_content() -> None:
    assert judged(model(call("A")), user(answer("A"))) == [("GE2", CALL_PLACE, "contents", 0, None)]  # history starting with a call
    assert rules(user(text("go")), model(text("thinking aloud")), model(call("A")), user(answer("A"))) == ["GE2"]
    # Near misses: after a user text, after a function response turn.
    assert rules(user(text("go")), model(call("A")), user(answer("A")), model(call("B")), user(answer("B"))) == []


def test_ge3_a_response_turn_follows_a_call_turn() -> None:
    assert judged(user(text("go")), model(text("hi")), user(answer("A"))) == [("GE3", RESPONSE_PLACE, "contents", 2, None)]
    assert rules(user(answer("A"))) == ["GE3"]
    assert rules(user(text("go")), model(call("A")), user(text("wait")), user(answer("A"))) == ["GE1", "GE3"]
    assert rules(user(text("go")), model(call("A")), user(answer("A"))) == []


def test_ge4_calls_and_responses_never_share_a_content() -> None:
    found = judged(user(text("go")), model(call("A"), answer("A")))
    assert ("GE4", MIXED, "contents", 1, None) in found
    # Near miss: responses and text may share a content.
    assert rules(user(text("go")), model(call("A")), user(text("before"), answer("A"))) == []


def test_ge5_every_content_has_a_part() -> None:
    assert judged(user(text("go")), model(), user(text("again"))) == [
        ("GE5", "* GenerateContentRequest.contents[1].parts: contents.parts must not be empty.", "contents[1].parts", 1, None)
    ]
    assert rules({"role": "user"}) == ["GE5"]
    # Near miss: an empty text part is a part (whether Gemini takes it is not a rule here).
    assert rules(user(text(""))) == []


def test_ge6_function_names_are_not_empty() -> None:
    found = judged(user(text("go")), model(call("A")), user(answer("")))
    assert found == [
        (
            "GE6",
            "* GenerateContentRequest.contents[2].parts[0].function_response.name: Name cannot be empty.",
            "contents[2].parts[0].function_response.name",
            2,
            0,
        )
    ]
    assert [r[1] for r in judged(user(text("go")), model(call("")), user(answer("")))][0].endswith("parts[0].function_call.name: Name cannot be empty.")
    assert rules(user(text("go")), model(call("A")), user(answer("A"))) == []


THINKING = {"generationConfig": {"thinkingConfig": {"thinkingLevel": "high"}}}


def signature_error(name: str, position: int) -> str:
    return (
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, "
        "and missing thought_signature may lead to degraded model performance. Additional data, function call "
        f"`default_api:{name}` , position {position}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
    )


def test_ge7_the_current_turns_calls_carry_their_signature() -> None:
    history = [user(text("go")), model(call("A", "s1")), user(answer("A")), model(call("B"), call("C")), user(answer("B"), answer("C"))]
    assert judged(*history, **THINKING) == [("GE7", signature_error("B", 3), "contents[3].parts[0].thought_signature", 3, 0)]
    assert rules(*history, model="models/gemini-3-pro-preview") == ["GE7"]
    assert GEMINI.rule("GE7").error.format(name="B", n=3) == signature_error("B", 3)


def test_ge7_near_misses() -> None:
    signed = [user(text("go")), model(call("A", "s1")), user(answer("A")), model(call("B", "s2"), call("C")), user(answer("B"), answer("C"))]
    assert rules(*signed, **THINKING) == []  # only the first call part of a step needs one
    earlier = [user(text("go")), model(call("A")), user(answer("A")), model(text("done")), user(text("next")), model(call("B", "s")), user(answer("B"))]
    assert rules(*earlier, **THINKING) == []  # an unsigned call of an earlier turn
    unsigned = [user(text("go")), model(call("A")), user(answer("A"))]
    assert rules(*unsigned) == []  # no thinking model in sight
    assert rules(*unsigned, model="gemini-2.5-pro", **THINKING) == []  # Gemini 2.5 does not require them
    assert rules(*unsigned, model="gemini-3-flash-preview") == ["GE7"]


def test_the_error_body_is_geminis() -> None:
    r = Rejection("GE1", COUNT, "contents", 1)
    assert GEMINI.envelope(r) == {"error": {"code": 400, "message": COUNT, "status": "INVALID_ARGUMENT"}}


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3) | st.sampled_from(["user", "model", "functionCall", "functionResponse", "parts"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["role", "parts", "text", "functionCall", "functionResponse", "name", "thoughtSignature"]), inner, max_size=4),
    max_leaves=12,
)


@given(contents=JSONISH, config=JSONISH)
def test_the_rules_never_raise_on_a_malformed_body(contents: object, config: object) -> None:
    GEMINI.check({"contents": contents, "generationConfig": config, "model": "gemini-3-pro"})


# ---------------------------------------------------------------------------
# The reference renderer.
# ---------------------------------------------------------------------------

A = ToolCall(id="call_a", name="ReadFile", args='{"path": "a"}')
B = ToolCall(id="TodoList:3", name="TodoList", args="[1, 2]")
C = ToolCall(id="call_c", name="Shell", args="")


def test_responses_follow_their_call_turn_in_call_order_then_the_users_text() -> None:
    msgs: list[Message] = [
        SystemMessage(text="be brief"),
        UserMessage(text="go"),
        AssistantMessage(text="on it", calls=(A, B, C)),
        ToolMessage(call_id="call_c", content="ls output"),
        ToolMessage(call_id="TodoList:3", content="boom", is_error=True),
        ToolMessage(call_id="call_a", content="A"),
        UserMessage(text="and then?"),
        UserMessage(text="quickly"),
    ]
    body = render(msgs, "gemini")
    assert body == {
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "on it"},
                    {"functionCall": {"name": "ReadFile", "args": {"path": "a"}}},
                    {"functionCall": {"name": "TodoList", "args": {"value": [1, 2]}}},
                    {"functionCall": {"name": "Shell", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "ReadFile", "response": {"output": "A"}}},
                    {"functionResponse": {"name": "TodoList", "response": {"error": "boom"}}},
                    {"functionResponse": {"name": "Shell", "response": {"output": "ls output"}}},
                    {"text": "and then?"},
                    {"text": "quickly"},
                ],
            },
        ],
    }
    assert GEMINI.check(body) == []
    assert '"id"' not in json.dumps(body)  # no ids: some endpoints refuse them


def test_thinking_mode_sends_each_signature_back_on_the_first_call() -> None:
    msgs: list[Message] = [
        UserMessage(text="go"),
        AssistantMessage(calls=(A, C), reasoning=Reasoning(text="plan", signature="sigA")),
        ToolMessage(call_id="call_a", content="A"),
        ToolMessage(call_id="call_c", content="C"),
        AssistantMessage(calls=(B,)),  # kept without its reasoning
        ToolMessage(call_id="TodoList:3", content="B"),
        AssistantMessage(text="done", reasoning=Reasoning(text="wrap up", signature="sigD")),
        UserMessage(text="next"),
    ]
    body = render(msgs, "gemini", thinking=True)
    assert body["generationConfig"] == {"thinkingConfig": {"includeThoughts": True}}
    models = [c["parts"] for c in body["contents"] if c["role"] == "model"]  # type: ignore[attr-defined,index]
    assert [[p.get("thoughtSignature") for p in parts] for parts in models] == [["sigA", None], [UNSIGNED], ["sigD"]]
    assert "plan" not in json.dumps(body)  # reasoning text is not sent back
    assert GEMINI.check(body) == []
    gemini3 = render(msgs, "gemini", model="gemini-3-pro-preview")  # Gemini 3 always thinks: the same without thinking mode
    assert gemini3 == body and "model" not in gemini3  # the model goes in the URL


def test_input_inside_a_tool_block_splits_the_responses() -> None:
    """The reference projection never sends this (C6); a projector that does gets Gemini's 400."""
    msgs: list[Message] = [UserMessage(text="go"), AssistantMessage(calls=(A, C)), ToolMessage(call_id="call_a", content="A"), UserMessage(text="wait"), ToolMessage(call_id="call_c", content="C")]
    body = render(msgs, "gemini")
    assert [[next(iter(p)) for p in c["parts"]] for c in body["contents"]] == [["text"], ["functionCall", "functionCall"], ["functionResponse", "text"], ["functionResponse"]]  # type: ignore[attr-defined,index]
    assert [r.rule for r in GEMINI.check(body)] == ["GE1", "GE3"]


def test_an_orphan_result_has_no_name_to_send() -> None:
    body = render([UserMessage(text="go"), AssistantMessage(text="hi"), ToolMessage(call_id="ghost", content="x")], "gemini")
    assert [r.rule for r in GEMINI.check(body)] == ["GE3", "GE6"]


def _same_up_to_ids(messages: Sequence[Message]) -> list[Message]:
    """``messages`` with each call id replaced by its place, results by their call's, adjacent user texts joined
    (Gemini's one content), ``synthetic`` unstated: what a read of the rendering can give back."""
    place: dict[str, str] = {}
    out: list[Message] = []
    for m in messages:
        if isinstance(m, AssistantMessage):
            calls = []
            for c in m.calls:
                place.setdefault(c.id, f"c{len(place)}")
                calls.append(ToolCall(id=place[c.id], name=c.name, args=c.args))
            out.append(AssistantMessage(text=m.text, calls=tuple(calls)))
        elif isinstance(m, ToolMessage):
            out.append(ToolMessage(call_id=place.get(m.call_id, "?"), content=m.content, is_error=bool(m.is_error)))
        elif isinstance(m, UserMessage) and out and isinstance(out[-1], UserMessage):
            out[-1] = UserMessage(text=out[-1].text + m.text)
        else:
            out.append(m)
    return out


def test_the_reader_gives_back_what_the_renderer_sent() -> None:
    """Over every short session: the reference rendering reads back as the projection, and the contract finds nothing."""
    import test_providers

    for _log, messages in test_providers.projections():
        body = render(messages, "gemini", thinking=True)
        loaded = load_messages_text(json.dumps(body, indent=1), "gemini")
        assert _same_up_to_ids(loaded.messages) == _same_up_to_ids(messages)
        assert check_loaded(loaded) == []


# ---------------------------------------------------------------------------
# The reader, on the bundled requests and on hand-built ones.
# ---------------------------------------------------------------------------


def test_bundled_requests_get_exactly_their_error() -> None:
    assert GEMINI.error(json.loads((REQUESTS / "gemini-clean.json").read_text())) is None
    split = GEMINI.check(json.loads((REQUESTS / "gemini-split-responses.json").read_text()))
    assert [(r.rule, r.error, r.item) for r in split] == [("GE1", COUNT, 1), ("GE3", RESPONSE_PLACE, 3)]
    signature = GEMINI.check(json.loads((REQUESTS / "gemini-signature-missing.json").read_text()))
    assert [(r.rule, r.error, r.item, r.block) for r in signature] == [("GE7", signature_error("ReadFile", 3), 3, 1)]


def test_reader_on_the_clean_request() -> None:
    path = str(REQUESTS / "gemini-clean.json")
    assert sniff_messages(path) == "gemini"
    loaded = load_messages(path)
    read = ToolCall(id="ReadFile#1.0", name="ReadFile", args='{"path": "README.md"}')
    shell = ToolCall(id="Shell#1.1", name="Shell", args='{"command": "pytest -q"}')
    assert loaded.messages == (
        SystemMessage(text="You are a coding agent."),
        UserMessage(text="What is in the README, and do the tests pass?"),
        AssistantMessage(text="I'll read it and run the tests.", calls=(read, shell)),
        ToolMessage(call_id="ReadFile#1.0", content="# demo\nA demo project."),
        ToolMessage(call_id="Shell#1.1", content="exit status 1: 2 failed, 40 passed", is_error=True),
        UserMessage(text="Summarise both in one line."),
        AssistantMessage(text="A demo project; 2 of its 42 tests fail."),
        UserMessage(text="Fix the failing tests."),
    )
    assert loaded.lines == (6, 17, 22, 49, 57, 65, 70, 81)
    physical = Path(path).read_text().splitlines()
    assert all(physical[n - 1].strip().startswith("{") for n in loaded.lines[1:])
    assert check_loaded(loaded) == []


def test_reader_on_split_responses_pairs_them_and_reports_the_split() -> None:
    loaded = load_messages(str(REQUESTS / "gemini-split-responses.json"))
    assert [m.call_id for m in loaded.messages if isinstance(m, ToolMessage)] == ["ReadFile#1.0", "Shell#1.1"]
    assert loaded.lines[-2:] == (42, 55)
    assert [(v.rule, v.line) for v in check_loaded(loaded)] == [("C1", 55)]
    assert "Gemini wants every response to a call turn in that one content" in check_loaded(loaded)[0].message


def test_reader_keeps_the_signature_as_reasoning() -> None:
    loaded = load_messages(str(REQUESTS / "gemini-signature-missing.json"))
    first = loaded.messages[2]
    assert isinstance(first, AssistantMessage) and first.reasoning is not None
    assert first.reasoning.signature.startswith("CiQB")


def test_reader_pairs_by_id_then_by_name_and_names_the_rest() -> None:
    doc = {
        "contents": [
            user(text("go"), {"inlineData": {"mimeType": "image/png", "data": "AA=="}}),
            model(
                {"text": "weighing it", "thought": True},
                {"functionCall": {"id": "x1", "name": "A", "args": {"k": 1}}, "thoughtSignature": "sig"},
                {"functionCall": {"name": "A"}},
                {"functionCall": {"id": "x3", "name": "B", "args": {}}},
            ),
            user(
                {"functionResponse": {"name": "B", "id": "x3", "response": {"result": 7}}},
                {"functionResponse": {"name": "A", "response": {"output": {"n": 1}}}},
                {"functionResponse": {"name": "A", "id": "x1", "response": {"error": "no"}}},
                {"functionResponse": {"name": "Z", "response": {}}},
            ),
        ]
    }
    loaded = load_messages_text(json.dumps(doc, indent=1), "gemini")
    assert loaded.messages == (
        UserMessage(text="go[inlineData]"),
        AssistantMessage(calls=(ToolCall(id="x1", name="A", args='{"k": 1}'), ToolCall(id="A#1.1", name="A", args="{}"), ToolCall(id="x3", name="B", args="{}"))),
        ToolMessage(call_id="x3", content='{"result": 7}'),
        ToolMessage(call_id="A#1.1", content='{"n": 1}'),
        ToolMessage(call_id="x1", content="no", is_error=True),
        ToolMessage(call_id="Z#2.3", content=""),
    )
    reply = loaded.messages[1]
    assert isinstance(reply, AssistantMessage) and reply.reasoning == Reasoning(text="weighing it", signature="sig")
    assert [v.rule for v in check_loaded(loaded)] == ["C1", "C2"]  # out of call order; 'Z' answers nothing


def test_reader_refuses_what_it_cannot_read() -> None:
    for bad in ([{"role": "user", "parts": [{"functionCall": {"name": "A"}}]}], [{"role": "tool", "parts": []}], [{"role": "model", "parts": [{"functionCall": {"name": "A", "args": "x"}}]}]):
        with pytest.raises(InvalidLog, match="contents\\[0\\]"):
            load_messages_text(json.dumps({"contents": bad}), "gemini")
    lenient = load_messages_text(json.dumps({"contents": [{"role": "tool", "parts": []}, user(text("hi"))]}), "gemini", lenient=True)
    assert lenient.messages == (UserMessage(text="hi"),) and len(lenient.report.unreadable) == 1
