"""The docs are generated from, or checked against, the code.

* the state diagram and the schema equal what the tables and classes give now;
* every ``jsonl example`` block in docs/ parses, validates, and projects to
  the ``json projection`` block that follows it;
* every ``python test`` block runs;
* every test docs/contract.md cites exists, and every rule has a section;
* the doctests in the spec modules and the public facade pass.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ctxcontract
import ctxspec.events
import ctxspec.state
from ctxref.projector import project
from ctxspec.contract import RULES
from ctxspec.diagram import schema_json, state_diagram_markdown, with_levels_table, with_providers_table
from ctxspec.events import parse_log
from ctxspec.messages import messages_to_openai
from ctxspec.state import validate_log

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"```([^\n]*)\n(.*?)```", re.S)


def blocks(info: str) -> list[tuple[Path, str, int]]:
    out = []
    for path in sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]:
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1).strip() == info:
                out.append((path, m.group(2), m.end()))
    return out


def test_generated_docs_are_current() -> None:
    assert (DOCS / "state-diagram.md").read_text(encoding="utf-8") == state_diagram_markdown()
    assert (DOCS / "session.schema.json").read_text(encoding="utf-8") == schema_json()
    contract = (DOCS / "contract.md").read_text(encoding="utf-8")
    assert with_levels_table(contract) == contract
    providers = (DOCS / "providers.md").read_text(encoding="utf-8")
    assert with_providers_table(providers) == providers


EXAMPLES = blocks("jsonl example")


def test_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path, body, end", EXAMPLES, ids=[f"{p.name}:{e}" for p, _, e in EXAMPLES])
def test_jsonl_examples_project_as_documented(path: Path, body: str, end: int) -> None:
    log = parse_log(body)
    validate_log(log)
    rest = path.read_text(encoding="utf-8")[end:]
    m = FENCE.search(rest)
    if m is not None and m.group(1).strip() == "json projection":
        assert messages_to_openai(project(log)) == json.loads(m.group(2))


@pytest.mark.parametrize("path, body, end", blocks("python test"))
def test_python_examples_run(path: Path, body: str, end: int) -> None:
    exec(compile(body, f"{path.name}@{end}", "exec"), {"__name__": "docs_example"})


PYTEST_FILES = blocks("python pytest")


def test_docs_have_a_pytest_file() -> None:
    assert PYTEST_FILES


@pytest.mark.parametrize("path, body, end", PYTEST_FILES, ids=[f"{p.name}:{e}" for p, _, e in PYTEST_FILES])
def test_pytest_examples_pass_under_plain_pytest(path: Path, body: str, end: int, tmp_path: Path) -> None:
    """Run as a user runs it: its own folder, no conftest of ours, plain pytest.

    (tests/test_wheel.py runs the same file against the installed wheel.)
    """
    (tmp_path / "test_example.py").write_text(body, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPOTHESIS", "PYTEST"))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b2 passed\b", proc.stdout), proc.stdout


CLI_OUTPUT = blocks("json cli-output")


@pytest.mark.parametrize("path, body, end", CLI_OUTPUT, ids=[f"{p.name}:{e}" for p, _, e in CLI_OUTPUT])
def test_json_output_examples_follow_the_schema(path: Path, body: str, end: int) -> None:
    import jsonschema

    schema = json.loads((DOCS / "cli-output.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(json.loads(body))


def test_docs_have_a_json_output_example() -> None:
    assert CLI_OUTPUT


CONSOLE = blocks("console")


def test_docs_have_a_console_example() -> None:
    assert CONSOLE


@pytest.mark.parametrize(("path", "body", "end"), CONSOLE, ids=[f"{p.name}:{e}" for p, _, e in CONSOLE])
def test_console_examples_print_what_they_show(path: Path, body: str, end: int) -> None:
    """A ``console`` block: ``$ ctxcontract ...`` lines, each followed by exactly what it prints, from the repository's root."""
    runs: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:], []))
        else:
            runs[-1][1].append(line)
    for command, shown in runs:
        argv = command.split()
        assert argv[0] == "ctxcontract"
        done = subprocess.run([sys.executable, "-m", "ctxcontract", *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.stdout.splitlines() == shown, done.stdout + done.stderr


def test_contract_doc_has_every_rule_and_cites_real_tests() -> None:
    text = (DOCS / "contract.md").read_text(encoding="utf-8")
    for code, rule in RULES.items():
        assert f"## {code} {rule.title}" in text
    cited = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(cited) >= len(RULES)
    for file, name in cited:
        source = (ROOT / file).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}\(|^    def {name}\(|^{name} = ", source, re.M), f"{file}::{name} is cited but does not exist"
    from ctxref.mutants import MUTANTS

    named = set()
    for group in re.findall(r"mutants?\s+((?:`\w+`(?:,\s*|\s+)?)+)", text):
        named.update(re.findall(r"`(\w+)`", group))
    assert named <= set(MUTANTS), named - set(MUTANTS)
    assert set(MUTANTS) <= named, f"mutants missing from contract.md: {set(MUTANTS) - named}"


@pytest.mark.parametrize("module", [ctxspec.events, ctxspec.state, ctxcontract])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0
