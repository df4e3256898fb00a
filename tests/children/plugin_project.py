"""A runtime team's test file, as they would write it: run by tests/test_protocol.py and tests/test_wheel.py.

The one with the broken projector must fail, with the finding in its report;
the others must pass.
"""

import sys
from pathlib import Path

import pytest

from ctxcontract import project_json
from ctxcontract.testing import ProjectorFindings, check_projector

HERE = Path(__file__).parent


@pytest.mark.ctxcontract(policy="reference", max_examples=100)
def test_a_python_projector(ctxcontract_check):
    ctxcontract_check(project_json)


def dropping(events):
    return [m for m in project_json(events) if m["role"] != "tool"]


@pytest.mark.ctxcontract(fail_on="reject", max_examples=200)
def test_a_broken_projector_fails(ctxcontract_check):
    ctxcontract_check(dropping)


@pytest.mark.ctxcontract(fail_on="loss", max_examples=100)
def test_a_command(ctxcontract_check):
    found = ctxcontract_check([sys.executable, str(HERE / "child.py")])
    assert found.findings == []


def test_the_helper_raises_with_each_finding(tmp_path):
    with pytest.raises(ProjectorFindings) as caught:
        check_projector([sys.executable, str(HERE / "toy.py")], keep_going=2, save_to=tmp_path, max_examples=200)
    assert [f.rule for f in caught.value.findings] == ["C2", "C1"]
    assert "C1 pairing [reject]" in str(caught.value) and (tmp_path / "finding-2.jsonl").exists()
