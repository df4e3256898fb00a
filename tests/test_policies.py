"""Declared policies, consequence levels and the search that keeps going.

* Every knob has a mutant that breaks it, and it dies under the preset that
  declares the knob (``KNOB_MUTANTS``); the session it dies on passes the
  reference projector following that preset, so the finding is the mutant's.
* ``--fail-on`` and ``--rules`` filter: a mutant that breaks only ``policy``
  passes ``fail_on=reject``; one that breaks ``reject`` never does.
* The search keeps going: distinct findings, each shrunk on its own and still
  failing; accepted findings are set aside; a flaky projector is a C11
  finding; ``seed`` starts another search.
* Policies load from presets and TOML, and refuse values that cause a 400.
"""

from __future__ import annotations

import itertools
import textwrap
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from ctxref.mutants import KNOB_MUTANTS, MUTANTS
from ctxref.projector import project, project_json
from ctxspec.checker import search
from ctxspec.contract import Selection, check_projection, check_session, json_projector
from ctxspec.errors import InvalidLog
from ctxspec.events import Event, events_from_dicts, load_log
from ctxspec.findings import Accepted, AcceptError, load_accepted, signature
from ctxspec.messages import Message, ToolMessage, messages_from_openai, messages_to_openai
from ctxspec.policy import KNOBS, PRESETS, REFUSED, PolicyError, load_policy
from ctxspec.rules import Level

ROOT = Path(__file__).parent.parent
DROP = MUTANTS["drop_last_step_result"]


# -- knob mutants ------------------------------------------------------------------


def test_every_knob_has_a_mutant() -> None:
    assert set(KNOB_MUTANTS) == {k.name for k in KNOBS}


@pytest.mark.parametrize("knob", sorted(KNOB_MUTANTS))
def test_knob_mutant_dies_under_its_preset(knob: str) -> None:
    mutant = KNOB_MUTANTS[knob]
    policy = PRESETS[mutant.declared]
    found = search(mutant.project, policy=policy, profile="ci", max_examples=300)
    assert found.findings, f"{knob}: the mutant survived under {mutant.declared}"
    # the docs' rule x knob table is data (Knob.rules): the knob's mutant must break a rule it lists
    assert found.findings[0].rule in next(k for k in KNOBS if k.name == knob).rules
    log = found.findings[0].log
    assert check_session(log, lambda lg: project(lg, policy), policy=policy) == [], "the reference following the preset passes the same session"


# -- --fail-on and --rules ---------------------------------------------------------


def test_a_policy_only_mutant_passes_fail_on_reject() -> None:
    mutant = KNOB_MUTANTS["block_order"]  # arrival order declared, call order sent: costs nothing else
    policy = PRESETS[mutant.declared]
    assert search(mutant.project, policy=policy, select=Selection(fail_on=Level.POLICY), max_examples=150).findings
    assert not search(mutant.project, policy=policy, select=Selection(fail_on=Level.REJECT), max_examples=100).findings


def test_a_reject_mutant_never_passes_fail_on_reject() -> None:
    found = search(DROP.project, incremental=DROP.cls, select=Selection(fail_on=Level.REJECT), max_examples=300)
    assert found.findings and all(v.level is Level.REJECT for f in found.findings for v in f.violations)


def test_rules_filter_what_counts() -> None:
    only_c4 = search(DROP.project, incremental=DROP.cls, select=Selection(rules=frozenset({"C4"})), max_examples=300)
    assert only_c4.findings and {v.rule for f in only_c4.findings for v in f.violations} == {"C4"}
    assert not search(DROP.project, incremental=DROP.cls, select=Selection(rules=frozenset({"C7", "C10"})), max_examples=100).findings


# -- the search that keeps going ---------------------------------------------------


@pytest.mark.parametrize("name", ["steer_inside_block", "late_result_moved_up"])
def test_keep_going_lists_each_distinct_finding_once(name: str) -> None:
    mutant = MUTANTS[name]
    found = search(mutant.project, incremental=mutant.cls, limit=5, max_examples=250)
    keys = [f.key for f in found.findings]
    assert len(keys) >= 2 and len(set(keys)) == len(keys), keys
    for f in found.findings:  # each shrunk on its own, and still failing its own way
        again = check_session(f.log, mutant.project, incremental=mutant.cls)
        assert (f.rule, f.level) in {(v.rule, v.level) for v in again}
        assert f.signature == signature(f.log)


def test_an_accepted_finding_is_set_aside_and_the_search_goes_on() -> None:
    # the same budget: Hypothesis shapes its programs by max_examples, so equal budgets draw the same ones
    first = search(DROP.project, incremental=DROP.cls, limit=1, max_examples=200).findings[0]
    judged = Accepted(first.rule, "we know", first.level, first.signature)
    found = search(DROP.project, incremental=DROP.cls, limit=1, accepted=[judged], max_examples=200)
    assert first.key in {f.key for f in found.judged} and first.key not in {f.key for f in found.findings}
    assert [f.accepted for f in found.judged if f.key == first.key] == ["we know"]


def test_a_flaky_projector_is_a_c11_finding_not_a_crash() -> None:
    calls = itertools.count()

    def flaky(log: Sequence[Event]) -> list[Message]:
        out = project(log)
        # every third projection loses its last tool message
        return out[:-1] if next(calls) % 3 == 0 and out and isinstance(out[-1], ToolMessage) else out

    found = search(flaky, limit=3, max_examples=200)
    assert "C11" in {v.rule for f in found.findings for v in f.violations}


def test_a_seed_starts_another_search() -> None:
    def lengths(seed: int | None) -> list[int]:
        seen: list[int] = []
        search(project, seed=seed, on_program=seen.append, max_examples=15)
        return seen

    assert lengths(None) == lengths(None)  # the ci profile is derandomized
    assert lengths(1) == lengths(1) and lengths(1) != lengths(2)


def test_signature_is_the_shape_of_the_session() -> None:
    log = load_log(str(ROOT / "examples" / "todolist3.jsonl"))
    assert signature(log) == "prompt step reply/1 step-end result step"


# -- loading policies and accept files ---------------------------------------------


def test_every_preset_loads_by_name_and_refused_values_stay_out_of_every_knob() -> None:
    assert all(load_policy(name) is PRESETS[name] for name in PRESETS)
    for knob, value in REFUSED:
        declared = {k.name: {v.value for v in k.values} for k in KNOBS}
        assert value not in declared.get(knob, set()), f"{knob} = {value} is refused yet declarable"


def test_a_toml_policy(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[policy]\nbase = "codex"\nblock_order = "arrival"\n\n[policy.words]\ncancelled = ["stopped by the user"]\n')
    policy = load_policy(str(path))
    assert policy.name == "mine" and policy.block_order.value == "arrival" and policy.late_result.value == "drop"
    assert policy.says_why(next(r for r in policy.words if r.value == "cancelled"), "Stopped by the user.")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('[policy]\nbase = "codex"\nunanswered = "leave-open"\n', "mine.toml:3: unanswered = 'leave-open' cannot be declared"),
        ('[policy]\nblock_order = "sorted"\n', "mine.toml:2: block_order must be one of"),
        ('[policy]\n\nspeed = "fast"\n', "mine.toml:3: unknown key 'speed'"),
        ("[policy\n", "mine.toml:1: not valid TOML"),
        ('[policy]\nsynthetic_text = "own"\n', "mine.toml:2: synthetic_text = 'own' needs a [words] table"),
    ],
)
def test_a_bad_policy_names_the_file_and_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))
    assert fragment in str(caught.value).replace(str(tmp_path) + "/", "")


def test_accept_file(tmp_path: Path) -> None:
    path = tmp_path / "judged.toml"
    path.write_text('[[accept]]\nrule = "C5"\nreason = "our words"\n\n[[accept]]\nrule = "C1"\nlevel = "policy"\nsignature = "prompt  step reply/2"\nreason = "arrival order"\n')
    assert load_accepted(str(path)) == (Accepted("C5", "our words"), Accepted("C1", "arrival order", Level.POLICY, "prompt step reply/2"))
    path.write_text('[[accept]]\nrule = "C5"\nreason = "ok"\n\n[[accept]]\nrule = "C99"\nreason = "x"\n')
    with pytest.raises(AcceptError, match=r"judged.toml:5: rule must be one of"):
        load_accepted(str(path))
    path.write_text('[[accept]]\nrule = "C5"\n')
    with pytest.raises(AcceptError, match=r"judged.toml:1: every accepted finding needs a reason"):
        load_accepted(str(path))


def test_presets_document_their_knobs() -> None:
    """docs/policies.md has a section per preset that states every knob's value."""
    text = (ROOT / "docs" / "policies.md").read_text()
    for name, policy in PRESETS.items():
        section = text.split(f"\n## `{name}`", 1)[1].split("\n## ", 1)[0]
        for knob, value in policy.knobs().items():
            assert f"`{knob} = {json.dumps(value)}`" in section, f"{name}: {knob}"


def test_the_toml_example_in_the_docs_loads(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "policies.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my-runtime.toml"
    path.write_text(example)
    policy = load_policy(str(path))
    assert policy.block_order.value == "arrival" and policy.compaction.value == "user-then-summary"
    assert all(policy.words[r] for r in policy.words) and "aborted by user" in next(iter(policy.words.values()))


def test_the_accept_example_in_the_docs_loads(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "verify-your-runtime.md").read_text()
    example = textwrap.dedent(text.split("```toml\n", 1)[1].split("```", 1)[0])
    path = tmp_path / "judged.toml"
    path.write_text(example)
    (entry,) = load_accepted(str(path))
    assert entry.rule == "C5" and entry.level is Level.POLICY and entry.signature == "prompt step reply/1 cancel prompt step"


def test_shrunk_texts_are_printable_unless_the_failure_needs_otherwise() -> None:
    from ctxspec.events import SessionMeta, StepBegin, TurnPrompt
    from ctxspec.findings import plain_texts

    log = [SessionMeta(), TurnPrompt(text="<prompt 1> \x85é"), TurnPrompt(text="<prompt 2> \u200b"), StepBegin()]
    needs_the_nel = plain_texts(log, lambda lg: any("\x85" in getattr(e, "text", "") for e in lg))
    assert [getattr(e, "text", None) for e in needs_the_nel][1:3] == ["<prompt 1> \x85é", "<prompt 2>"]
    plain = plain_texts(log, lambda lg: True)
    assert [getattr(e, "text", None) for e in plain][1:3] == ["<prompt 1>", "<prompt 2>"]


# -- error and synthetic flags over JSON -------------------------------------------


def _flags_json(transform: Callable[[dict[str, object]], None]) -> Callable[[list[dict[str, object]]], list[dict[str, object]]]:
    """The reference projector over JSON, each tool message passed through ``transform``."""

    def fn(events: list[dict[str, object]]) -> list[dict[str, object]]:
        out = messages_to_openai(project(events_from_dicts(events)))
        for m in out:
            if m["role"] == "tool":
                transform(m)
        return out

    return fn


def _invert_error(m: dict[str, object]) -> None:
    if m.pop("x_is_error", None) is None:
        m["x_is_error"] = True


def _no_flags(m: dict[str, object]) -> None:
    m.pop("x_is_error", None)
    m.pop("x_synthetic", None)


def test_a_json_projection_that_carries_flags_is_checked_on_them() -> None:
    # the mutant a flags=False verify let through: it inverts every error flag
    found = search(json_projector(_flags_json(_invert_error)), max_examples=200).findings
    assert found and {v.rule for v in found[0].violations} <= {"C4", "C5"}
    assert any("flag" in v.message for v in found[0].violations)


def test_a_json_projection_without_flags_is_not_judged_on_them() -> None:
    assert not search(json_projector(_flags_json(_no_flags)), max_examples=200).findings


def test_a_flag_must_be_a_boolean() -> None:
    with pytest.raises(InvalidLog, match="message 1: 'x_is_error' must be true or false"):
        messages_from_openai([{"role": "user", "content": "u"}, {"role": "tool", "tool_call_id": "a", "content": "", "x_is_error": "yes"}])


def test_a_key_on_one_tool_message_states_the_flag_for_all() -> None:
    one, two = messages_from_openai([
        {"role": "tool", "tool_call_id": "a", "content": "", "x_is_error": True},
        {"role": "tool", "tool_call_id": "b", "content": ""},
    ])
    assert isinstance(one, ToolMessage) and isinstance(two, ToolMessage)
    assert (one.is_error, two.is_error, one.synthetic, two.synthetic) == (True, False, None, None)


def test_a_flag_stated_only_in_a_later_request_is_no_prefix_change() -> None:
    # request 1 has no error result, so its list carries no x_is_error key; request 2 does
    log = events_from_dicts([
        {"type": "session.meta", "version": 1, "system": "s"},
        {"type": "turn.prompt", "text": "go"},
        {"type": "step.begin"},
        {"type": "assistant", "text": "", "calls": [{"id": "a", "name": "Shell", "args": "{}"}], "complete": True},
        {"type": "tool.result", "call_id": "a", "output": "ok", "is_error": False},
        {"type": "step.end", "finish_reason": "tool_calls"},
        {"type": "step.begin"},
        {"type": "assistant", "text": "", "calls": [{"id": "b", "name": "Shell", "args": "{}"}], "complete": True},
        {"type": "tool.result", "call_id": "b", "output": "boom", "is_error": True},
        {"type": "step.end", "finish_reason": "tool_calls"},
        {"type": "step.begin"},
    ])
    assert not check_session(log, json_projector(project_json))
    # inverted, the last request: 'a' says error, and 'b', without the key in a list that carries it, says not
    inverted = json_projector(_flags_json(_invert_error))(log)
    assert [(v.rule, "flag" in v.message) for v in check_projection(log, inverted)] == [("C4", True), ("C4", True)]
