"""The public API is completely typed: no ``Any`` leaks out of it.

mypy --strict checks the packages themselves (the test command runs it).
This test checks what a user of the library sees: the revealed types of the
public entry points must name our classes and contain no ``Any``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

USAGE = """
from ctxspec.events import parse_log, load_log, event_from_dict
from ctxspec.messages import messages_from_openai, to_openai
from ctxspec.contract import check_session, check_projection, check_messages
from ctxspec.ledger import ledger_of
from ctxspec.strategies import session_logs
from ctxspec.checker import contract_machine, find_counterexample, json_projector
from ctxspec.z3model import prove_report
from ctxspec.exhaustive import explore_contract, shortest_counterexample
from ctxref.projector import Projector, project, project_with_repairs, project_json
from ctxref.mutants import MUTANTS
import ctxcontract

log = parse_log("")
reveal_type(log)
reveal_type(load_log("x"))
reveal_type(event_from_dict({}))
reveal_type(messages_from_openai([]))
reveal_type(project(log))
reveal_type(project_with_repairs(log))
reveal_type(project_json([]))
reveal_type(Projector().messages())
reveal_type(Projector().fates())
reveal_type(check_session(log, project))
reveal_type(check_projection(log, project(log)))
reveal_type(ledger_of(log).context())
reveal_type(session_logs())
reveal_type(find_counterexample(project))
reveal_type(prove_report(2, 4).proved)
reveal_type(explore_contract(1, project))
reveal_type(MUTANTS["half_call_sent"].project(log))
reveal_type(ctxcontract.check_file("x").hazards)
reveal_type(ctxcontract.load("x").log)
reveal_type(ctxcontract.project(log))
reveal_type(ctxcontract.session_logs())
reveal_type(ctxcontract.find_counterexample(ctxcontract.project))
reveal_type(ctxcontract.RULES)
reveal_type(ctxcontract.__version__)
"""


def revealed(tmp_path: Path, usage: str) -> list[str]:
    path = tmp_path / "usage.py"
    path.write_text(usage, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "Success: no issues found" in proc.stdout, proc.stdout + proc.stderr
    found = re.findall(r'note: Revealed type is "(.*)"', proc.stdout)
    assert len(found) == usage.count("reveal_type("), proc.stdout
    return found


def test_public_api_reveals_no_any(tmp_path: Path) -> None:
    for line in revealed(tmp_path, USAGE):
        assert "Any" not in line, line


def test_an_untyped_entry_point_would_be_caught(tmp_path: Path) -> None:
    assert any("Any" in line for line in revealed(tmp_path, USAGE + "import json\nreveal_type(json.loads('1'))\n"))
