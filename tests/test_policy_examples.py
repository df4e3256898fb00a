"""The example projectors in examples/policies/: each satisfies its own preset and differs from the reference's.

Each example is loaded by its file path, as ``ctxcontract verify --projector
examples/policies/<file>.py:project`` loads it (its folder on ``sys.path``, so
it imports the shared ``_log`` beside it).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import pytest

from ctxspec.checker import find_counterexample
from ctxspec.contract import JsonProjector, Projector, check_session, json_projector
from ctxspec.errors import ContractViolation
from ctxspec.events import event_to_dict, parse_log
from ctxspec.policy import PRESETS

POLICIES = Path(__file__).parent.parent / "examples" / "policies"

#: Preset name -> its example's file.
FILES = {
    "reference": "reference.py",
    "codex": "codex.py",
    "claude-code": "claude_code.py",
    "kimi-code": "kimi_code.py",
    "openai-agents": "openai_agents.py",
    "vercel-ai": "vercel_ai.py",
}

#: Programs per search: the ci profile (derandomized), with 120 of its 1,000 programs to keep
#: the suite fast (the full profile takes about a minute per preset; ``verify`` runs it).
PROGRAMS = 120

OTHERS = [name for name in FILES if name != "reference"]


@functools.cache
def example(name: str) -> JsonProjector:
    path = POLICIES / FILES[name]
    sys.path.insert(0, str(POLICIES))
    try:
        spec = importlib.util.spec_from_file_location(f"_policy_example_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(POLICIES))
    project: JsonProjector = module.project
    return project


def shown(found: ContractViolation) -> str:
    """The findings and the log, for a failure message."""
    lines = [str(v) for v in found.violations]
    lines += [str(event_to_dict(e)) for e in found.log]
    return "\n".join(lines)


def test_every_preset_has_an_example() -> None:
    assert set(FILES) == set(PRESETS)
    assert {p.name for p in POLICIES.glob("*.py")} == set(FILES.values()) | {"_log.py"}


@pytest.mark.parametrize("name", FILES)
def test_example_satisfies_its_own_policy(name: str) -> None:
    found = find_counterexample(json_projector(example(name)), policy=PRESETS[name], profile="ci", max_examples=PROGRAMS)
    assert found is None, shown(found)


def todolist_bug(project: JsonProjector) -> Projector:
    """The example with the TodoList:3 bug: the last result of a request is left out."""

    def broken(events: list[dict[str, object]]) -> object:
        out = project(events)
        assert isinstance(out, list)
        return out[:-1] if out and out[-1]["role"] == "tool" else out

    return json_projector(broken)


@pytest.mark.parametrize("name", FILES)
def test_the_check_can_fail(name: str) -> None:
    found = find_counterexample(todolist_bug(example(name)), policy=PRESETS[name], profile="ci", max_examples=PROGRAMS)
    assert found is not None
    assert any(v.rule == "C1" and v.level.value == "reject" for v in found.violations), shown(found)


@functools.cache
def under_reference(name: str) -> ContractViolation | None:
    return find_counterexample(json_projector(example(name)), policy=PRESETS["reference"], profile="ci", max_examples=PROGRAMS)


@pytest.mark.parametrize("name", OTHERS)
def test_example_breaks_the_reference_policy_without_a_rejected_request(name: str) -> None:
    found = under_reference(name)
    assert found is not None, f"{name} passes under the reference policy: the presets do not differ"
    assert all(v.level.value != "reject" for v in found.violations), shown(found)


#: For each preset, a session on which it differs from the reference by a choice the policies
#: leave open: the reference policy reports it, at the level "policy" and no other.
DIFFERENCES = {
    # a call lost at crash is closed with "aborted", which does not say why
    "codex": """
{"type":"session.meta","version":1}
{"type":"turn.prompt","text":"run the tests"}
{"type":"step.begin"}
{"type":"assistant","calls":[{"id":"a","name":"Shell","args":"{}"}]}
{"type":"step.end","finish_reason":"tool_calls"}
{"type":"resume"}
{"type":"turn.prompt","text":"continue"}
{"type":"step.begin"}
""",
    # results in the order they arrived; a steer and a notification in one user message
    "claude-code": """
{"type":"session.meta","version":1}
{"type":"turn.prompt","text":"read both files"}
{"type":"step.begin"}
{"type":"assistant","calls":[{"id":"a","name":"ReadFile","args":"{}"},{"id":"b","name":"ReadFile","args":"{}"}]}
{"type":"step.end","finish_reason":"tool_calls"}
{"type":"tool.result","call_id":"b","output":"second"}
{"type":"tool.result","call_id":"a","output":"first"}
{"type":"turn.steer","text":"then run the tests"}
{"type":"notification","text":"the build finished"}
{"type":"step.begin"}
""",
    # a call never answered is left out; the reply's text is still sent
    "openai-agents": """
{"type":"session.meta","version":1}
{"type":"turn.prompt","text":"look around"}
{"type":"step.begin"}
{"type":"assistant","text":"Listing the files.","calls":[{"id":"a","name":"Shell","args":"{}"}]}
{"type":"step.end","finish_reason":"tool_calls"}
{"type":"step.begin"}
""",
}
DIFFERENCES["kimi-code"] = DIFFERENCES["claude-code"]
DIFFERENCES["vercel-ai"] = DIFFERENCES["openai-agents"]


@pytest.mark.parametrize("name", OTHERS)
def test_example_differs_from_the_reference_by_policy_only(name: str) -> None:
    log = parse_log(DIFFERENCES[name].strip())
    project = json_projector(example(name))
    assert check_session(log, project, policy=PRESETS[name]) == []
    found = check_session(log, project, policy=PRESETS["reference"])
    assert found, f"{name} sends what the reference policy asks for"
    assert {v.level.value for v in found} == {"policy"}, "\n".join(map(str, found))
