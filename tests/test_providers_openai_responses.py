"""The OpenAI Responses API: its rules, its renderer, the reader of its captured requests.

* Each rule on hand-built ``input`` arrays: the exact error and path, and a
  near miss the provider accepts (a false alarm is as bad as a miss): above
  all, a message between a call and its output is accepted (inferred).
* The bundled ``examples/requests/openai-responses-*.json``: the messages
  and lines the reader gives, the error the rules give, and the judge
  turning the contract's C1 into ``policy`` for the steer between a call
  and its output.
* The renderer's adaptations and the exporter's round trip with reasoning.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxref.cli import main
from ctxref.formats.messages import export_messages, load_messages, load_messages_text, repair_messages_file
from ctxref.render import render
from ctxspec.events import ToolCall
from ctxspec.messages import AssistantMessage, Message, Reasoning, SystemMessage, ToolMessage, UserMessage
from ctxspec.providers import PROVIDERS, Rejection

P = PROVIDERS["openai-responses"]
REQUESTS = Path(__file__).parent.parent / "examples" / "requests"
ON = {"effort": "medium", "summary": "auto"}


def user(t: str = "go") -> dict[str, object]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": t}]}


def call(cid: str = "call_1", iid: str | None = None) -> dict[str, object]:
    item: dict[str, object] = {"type": "function_call", "call_id": cid, "name": "shell", "arguments": "{}"}
    return {"id": iid, **item} if iid else item


def output(cid: str = "call_1") -> dict[str, object]:
    return {"type": "function_call_output", "call_id": cid, "output": "ok"}


def reasoning(iid: str | None = "rs_1") -> dict[str, object]:
    item: dict[str, object] = {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"}
    return {"id": iid, **item} if iid else item


def said(iid: str | None = None) -> dict[str, object]:
    item: dict[str, object] = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}
    return {"id": iid, **item} if iid else item


def check(*items: object, **payload: object) -> list[tuple[str, str, str, int | None]]:
    return [(r.rule, r.error, r.path, r.item) for r in P.check({"model": "gpt-5", **payload, "input": list(items)})]


# ---------------------------------------------------------------------------
# Each rule: the exact error, and a near miss that is accepted.
# ---------------------------------------------------------------------------


def test_or1_a_call_without_output() -> None:
    assert check(user(), call("call_1"), user("continue")) == [("OR1", "No tool output found for function call call_1.", "input", 1)]


def test_or1_or2_a_message_between_call_and_output_is_accepted() -> None:
    """Pairing is by call_id wherever the output sits (inferred, research §2.8): no adjacency rule."""
    between = {"type": "message", "role": "developer", "content": "hook: sandboxed"}
    assert check(user(), call("a"), call("b"), user("steer"), between, output("b"), said(), output("a")) == []
    assert set(P.accepts) == {"C1", "C6"} and "inferred" in P.accepts["C1"]


def test_or2_an_output_without_call() -> None:
    assert check(user(), output("call_9")) == [("OR2", "No tool call found for function call output with call_id call_9.", "input", 1)]


def test_or2_is_not_judged_where_earlier_items_are_stored() -> None:
    assert check(output("call_9"), previous_response_id="resp_1") == []
    assert check(output("call_9"), conversation="conv_1") == []
    assert check({"type": "item_reference", "id": "fc_1"}, output("call_9")) == []
    assert check({"type": "function_call_output", "output": "context"}) == []  # no call_id: nothing to pair
    assert check({"type": "local_shell_call", "call_id": "s1", "action": {}}, output("s1")) == []  # Codex answers one with a function_call_output


def test_or3_an_item_replayed_with_its_id_needs_its_reasoning() -> None:
    fc = "fc_0a038568becf80fb0068e9630e5fd081978df905e0edaed49a"
    assert check(user(), call("call_1", fc), output(), reasoning=ON) == [
        ("OR3", f"Item '{fc}' of type 'function_call' was provided without its required 'reasoning' item: 'rs_…'.", "input", 1)
    ]
    assert check(user(), said("msg_1"), reasoning=ON) == [("OR3", "Item 'msg_1' of type 'message' was provided without its required 'reasoning' item: 'rs_…'.", "input", 1)]


def test_or3_near_misses() -> None:
    assert check(user(), call("call_1", "fc_1"), output()) == []  # reasoning off: a model that does not reason
    assert check(user(), call("call_1", "fc_1"), output(), reasoning={"effort": "none"}) == []
    assert check(user(), call("call_1"), output(), reasoning=ON) == []  # no id: nothing ties it (the fix in the threads)
    assert check(user(), reasoning("rs_1"), said("msg_1"), call("call_1", "fc_1"), output(), reasoning=ON) == []
    assert check(user(), reasoning(None), call("call_1", "fc_1"), output(), reasoning=ON) == []  # reasoning without its id still there


def test_or4_a_reasoning_item_with_nothing_of_its_reply_after_it() -> None:
    alone = "Item 'rs_1' of type 'reasoning' was provided without its required following item."
    assert check(user(), reasoning("rs_1")) == [("OR4", alone, "input", 1)]
    assert check(user(), reasoning("rs_1"), user("again")) == [("OR4", alone, "input", 1)]
    assert check(user(), reasoning("rs_1"), output("x"), previous_response_id="resp_1") == [("OR4", alone, "input", 1)]


def test_or4_near_misses() -> None:
    assert check(user(), reasoning("rs_1"), reasoning("rs_2"), call("c", "fc_1"), output("c")) == []  # more reasoning counts
    assert check(user(), reasoning("rs_1"), {"type": "web_search_call", "id": "ws_1", "status": "completed"}, said("msg_1")) == []
    assert check(user(), reasoning(None)) == []  # no id: Codex's store=false replay, not judged


def test_or5_the_item_after_a_reasoning_item_keeps_its_id() -> None:
    alone = "Item 'rs_1' of type 'reasoning' was provided without its required following item."
    assert check(user(), reasoning("rs_1"), call("c"), output("c")) == [("OR5", alone, "input", 1)]
    assert check(user(), reasoning("rs_1"), said()) == [("OR5", alone, "input", 1)]


def test_or5_near_misses() -> None:
    assert check(user(), reasoning("rs_1"), call("c", "fc_1"), output("c")) == []
    assert check(user(), reasoning(None), call("c"), output("c")) == []  # Codex sends no item ids at all
    assert check(user(), reasoning("rs_1"), said("msg_1"), call("c"), output("c")) == []  # only the item right after


def test_or6_a_duplicate_item_id() -> None:
    error = "Duplicate item found with id fc_1. Remove duplicate items from your input and try again."
    assert check(user(), call("a", "fc_1"), call("b", "fc_1"), output("a"), output("b")) == [("OR6", error, "input", 2)]


def test_or6_near_misses() -> None:
    assert check(user(), call("a", "fc_1"), output("a")) == []  # a call and its output share a call_id, not an id
    assert check(user(), call("a"), call("a"), output("a")) == []  # the same call twice without ids: not known to be refused


def test_or7_a_call_id_past_64() -> None:
    long = "x" * 65
    error = "Invalid 'input[1].call_id': string too long. Expected a string with maximum length 64, but got a string with length 65 instead."
    assert check(user(), call(long), output(long))[0] == ("OR7", error, "input[1].call_id", 1)
    assert [r[3] for r in check(user(), call(long), output(long))] == [1, 2]
    body = P.envelope(Rejection("OR7", error, "input[1].call_id", 1))
    assert body == {"error": {"message": error, "type": "invalid_request_error", "param": "input[1].call_id", "code": "string_above_max_length"}}


def test_or7_near_misses() -> None:
    exact = "functions.Bash:0/" + "y" * 47  # 64 characters, ':' '/' and '.' included: only the length is checked
    assert len(exact) == 64 and check(user(), call(exact), output(exact)) == []


def test_or8_an_id_of_the_wrong_prefix() -> None:
    assert check(user(), reasoning("reasoning-1"), call("c", "fc_1"), output("c")) == [
        ("OR8", "Invalid 'input[1].id': 'reasoning-1'. Expected an ID that begins with 'rs'.", "input[1].id", 1)
    ]
    assert check(user(), call("c", "call_c"), output("c")) == [("OR8", "Invalid 'input[1].id': 'call_c'. Expected an ID that begins with 'fc'.", "input[1].id", 1)]


def test_or8_near_misses() -> None:
    assert check(user(), reasoning("rs_1"), said("msg_1"), {"type": "web_search_call", "id": "ws_1"}) == []


def test_the_error_answered_is_the_first_by_position() -> None:
    error = P.error({"input": [user(), output("z"), call("a")]})
    assert error is not None and (error.rule, error.item) == ("OR2", 1)
    assert P.envelope(error)["error"] == {"message": error.error, "type": "invalid_request_error", "param": "input", "code": None}


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["type", "id", "call_id", "role", "summary"]), c, max_size=3), max_leaves=8)


@given(st.dictionaries(st.sampled_from(["input", "reasoning", "previous_response_id"]), JSONISH | st.lists(JSONISH, max_size=4)))
def test_a_malformed_payload_never_raises(payload: dict[str, object]) -> None:
    P.check(payload)


# ---------------------------------------------------------------------------
# The bundled requests: what the reader gives, what the rules say.
# ---------------------------------------------------------------------------

TEST_RUN = ToolCall(id="call_k2Vd8Qm1TestRun", name="shell", args='{"command": ["pytest", "-q"]}')
INSTRUCTIONS = SystemMessage(text="You are a coding agent. Run commands with the shell tool.")


def test_the_reader_on_the_clean_request() -> None:
    loaded = load_messages(str(REQUESTS / "openai-responses-clean.json"))
    assert loaded.format == "openai-responses"
    assert loaded.messages == (
        INSTRUCTIONS,
        UserMessage(text="Run the tests and tell me what fails."),
        AssistantMessage(calls=(TEST_RUN,)),
        ToolMessage(call_id=TEST_RUN.id, content="F..\nFAILED tests/test_parse.py::test_empty - IndexError\n1 failed, 2 passed"),
        AssistantMessage(text="One test fails: test_empty, an IndexError on empty input."),
        UserMessage(text="Fix it."),
    )
    assert loaded.lines == (3, 12, 33, 41, 57, 69)  # an assistant message is on the line of its first item that is not reasoning
    first, second = (m.reasoning for m in loaded.messages if isinstance(m, AssistantMessage))
    assert first == Reasoning(text="**Running the suite**\n\nI'll run pytest quietly first.", signature="gAAAAABo6WMKx1q9", id="rs_0a038568becf80fb0068e9630ad5248197a0938f405d5fad2e")
    assert second is not None and second.id.startswith("rs_")
    assert [o.items for o in loaded.origins] == [(), (0,), (1, 2), (3,), (4, 5), (6,)]


def test_the_reader_on_the_other_requests() -> None:
    steer = load_messages(str(REQUESTS / "openai-responses-steer-between.json"))
    assert [type(m).__name__ for m in steer.messages] == ["SystemMessage", "UserMessage", "AssistantMessage", "UserMessage", "ToolMessage"]
    assert steer.lines == (3, 5, 15, 22, 32)
    todo = load_messages(str(REQUESTS / "openai-responses-todolist3.json"))
    assert todo.messages[2] == AssistantMessage(text="I'll write a plan first.", calls=(ToolCall(id="call_TodoList3", name="TodoList", args='{"todos": ["split module", "add tests"]}'),))
    assert todo.lines == (3, 5, 15, 32)


@pytest.mark.parametrize(
    ("name", "error", "line"),
    [
        ("openai-responses-clean.json", None, None),
        ("openai-responses-steer-between.json", None, None),
        ("openai-responses-todolist3.json", "No tool output found for function call call_TodoList3.", 25),
        (
            "openai-responses-reasoning-dropped.json",
            "Item 'fc_0a038568becf80fb0068e9630e5fd081978df905e0edaed49a' of type 'function_call' was provided without its required 'reasoning' item: 'rs_…'.",
            19,
        ),
    ],
)
def test_the_rules_on_the_bundled_requests(name: str, error: str | None, line: int | None) -> None:
    path = REQUESTS / name
    found = P.check(json.loads(path.read_text(encoding="utf-8")))
    assert [r.error for r in found] == ([error] if error else [])
    if found:
        assert found[0].item is not None and load_messages(str(path)).source.message_lines[found[0].item] == line  # type: ignore[union-attr]
    out = io.StringIO()
    code = main(["check", str(path), "--provider", "openai-responses", "--brief"], out=out)
    last = out.getvalue().splitlines()[-1]
    assert last.startswith(f"verdict: openai-responses would answer 400: {error}" if error else "verdict: openai-responses would accept it")
    assert code == (0 if "clean" in name else 1)  # the steer is still a finding, of level policy


def test_the_steer_between_call_and_output_is_policy_under_this_provider() -> None:
    out = io.StringIO()
    main(["check", str(REQUESTS / "openai-responses-steer-between.json"), "--provider", "openai-responses", "--json"], out=out)
    doc = json.loads(out.getvalue())
    assert doc["provider"]["accepted"] is True
    (finding,) = doc["findings"]
    assert (finding["rule"], finding["level"], finding["line"]) == ("C1", "policy", 15)
    assert "OpenAI Responses accepts it: it pairs an output with its call by call_id" in finding["message"]


def test_repair_closes_the_todolist3_call_right_after_it() -> None:
    text, changes, remaining = repair_messages_file(str(REQUESTS / "openai-responses-todolist3.json"))
    assert remaining == [] and changes == ["line 15: call 'call_TodoList3' (TodoList) has no result: added a synthetic error result after its assistant message"]
    items = json.loads(text)["input"]
    assert [i["type"] for i in items] == ["message", "message", "function_call", "function_call_output", "message"]
    assert P.check(json.loads(text)) == []


def test_reader_groups_items_into_messages() -> None:
    doc = {
        "input": [
            {"role": "user", "content": "short form"},
            said(),
            call("a"),
            call("b"),
            output("a"),
            output("b"),
            call("c"),
            reasoning("rs_9"),
            call("d", "fc_d"),
            output("c"),
            output("d"),
            reasoning("rs_lost"),
            {"type": "web_search_call", "id": "ws_1"},
            user("bye"),
        ]
    }
    loaded = load_messages_text(json.dumps(doc, indent=1), "openai-responses")
    shape = [(type(m).__name__, getattr(m, "text", None), [c.id for c in getattr(m, "calls", ())]) for m in loaded.messages]
    assert shape == [
        ("UserMessage", "short form", []),
        ("AssistantMessage", "done", ["a", "b"]),
        ("ToolMessage", None, []),
        ("ToolMessage", None, []),
        ("AssistantMessage", "", ["c"]),  # a call after an output starts a reply
        ("AssistantMessage", "", ["d"]),  # a reasoning item starts another one
        ("ToolMessage", None, []),
        ("ToolMessage", None, []),
        ("UserMessage", "bye", []),
    ]
    assert loaded.messages[5].reasoning == Reasoning(signature="gAAA", id="rs_9")  # type: ignore[union-attr]
    assert loaded.report.skipped == {"openai-responses reasoning item with no reply after it": 1, "openai-responses web_search_call item": 1}


def test_an_unreadable_item_names_its_line() -> None:
    text = json.dumps({"input": [user(), {"type": "function_call", "name": "shell"}]}, indent=2)
    with pytest.raises(Exception, match="input\\[1\\]") as info:
        load_messages_text(text, "openai-responses")
    assert getattr(info.value, "line", None) == 13
    lenient = load_messages_text(text, "openai-responses", lenient=True)
    assert [s.line for s in lenient.report.unreadable] == [13]


# ---------------------------------------------------------------------------
# The renderer's adaptations, and the exporter.
# ---------------------------------------------------------------------------

CALL = ToolCall(id="k" * 70, name="Shell", args='{"command": "ls"}')
SESSION: list[Message] = [
    SystemMessage(text="be brief"),
    UserMessage(text="list"),
    AssistantMessage(text="Listing.", calls=(CALL,), reasoning=Reasoning(text="plan", signature="sig", id="opaque-1")),
    ToolMessage(call_id=CALL.id, content="boom", is_error=True),
    SystemMessage(text="later note"),
]


def test_render_plain() -> None:
    body = render(SESSION, "openai-responses")
    assert body["instructions"] == "be brief" and "reasoning" not in body
    items = body["input"]
    assert isinstance(items, list)
    assert [i.get("type") for i in items] == ["message", "message", "function_call", "function_call_output", "message"]
    assert items[2]["call_id"] == items[3]["call_id"] != CALL.id and len(items[2]["call_id"]) == 64  # mapped, call and output alike
    assert "id" not in items[1] and "id" not in items[2]  # no reasoning sent: no item ids
    assert items[3]["output"] == "boom" and set(items[3]) == {"type", "call_id", "output"}  # the error flag has no field: lost
    assert items[4]["role"] == "developer"
    assert P.check(body) == []


def test_render_thinking_sends_reasoning_first_and_ids_after_it() -> None:
    body = render(SESSION, "openai-responses", thinking=True)
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    items = body["input"]
    assert isinstance(items, list)
    rs, msg, fc = items[1], items[2], items[3]
    assert rs["type"] == "reasoning" and rs["id"].startswith("rs_") and rs["id"] != "opaque-1"  # an id without the prefix is replaced
    assert rs["summary"] == [{"type": "summary_text", "text": "plan"}] and rs["encrypted_content"] == "sig"
    assert msg["id"].startswith("msg_") and fc["id"].startswith("fc_")
    assert render(SESSION, "openai-responses", thinking=True) == body  # the same ids every time
    assert P.check(body) == []


def test_export_round_trips_with_reasoning() -> None:
    msgs: list[Message] = [
        UserMessage(text="u"),
        AssistantMessage(text="a", reasoning=Reasoning(text="r", signature="s", id="rs_kept")),
        AssistantMessage(calls=(ToolCall(id="c1", name="Shell"),)),  # would read as the calls of the one before without a message item
        ToolMessage(call_id="c1", content="x", is_error=True, synthetic=True),
    ]
    text = export_messages(msgs, "openai-responses")
    loaded = load_messages_text(text, "openai-responses")
    assert list(loaded.messages) == msgs
    assert loaded.messages[1].reasoning == Reasoning(text="r", signature="s", id="rs_kept")  # type: ignore[union-attr]
