"""The OpenAI Agents SDK, checked through the projector protocol (examples/adapters/openai_agents/).

The SDK runs in a venv of its own, made here on first use under
``examples/adapters/openai_agents/.venv`` (ignored by git) with the pinned
``openai-agents`` from the package registry and this project installed
``--no-deps`` for the kit.  The checker runs as ``sys.executable -m
ctxcontract``, and talks to the adapter only over the protocol.  What the
searches find is what the README beside the adapter reports: a change in the
SDK or the adapter that changes a finding fails here.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
HERE = ROOT / "examples" / "adapters" / "openai_agents"
VENV = HERE / ".venv"
PIN = "0.24.0"
KIT = ROOT / "reference" / "ctxcontract"


def _env(**extra: str) -> dict[str, str]:
    """The environment without anything that points into the checkout: the kit must come from the venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith(("HYPOTHESIS", "PYTEST", "CTXCONTRACT_OA"))}
    env.update(extra)
    return env


def _run(argv: list[str], *, cwd: Path, timeout: int = 900, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(**extra), capture_output=True, text=True, timeout=timeout)


def _pip(python: Path, *args: str) -> None:
    done = _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args], cwd=HERE)
    assert done.returncode == 0, done.stdout + done.stderr


def _kit_is_current(python: Path) -> bool:
    """Whether the venv's ``ctxcontract`` package holds the checkout's files (else it is reinstalled)."""
    probe = "import importlib.util as u; s = u.find_spec('ctxcontract'); print(s.submodule_search_locations[0] if s else '')"
    where = _run([str(python), "-c", probe], cwd=HERE).stdout.strip()
    if not where:
        return False
    return all((Path(where) / f.name).is_file() and (Path(where) / f.name).read_bytes() == f.read_bytes() for f in KIT.glob("*.py"))


@pytest.fixture(scope="module")
def adapter() -> Iterator[list[str]]:
    """The adapter's command line: the venv's python and adapter.py (the venv is made or updated first)."""
    python = VENV / "bin" / "python"
    with open(HERE / ".venv.lock", "w") as lock:  # pytest-xdist workers share the venv
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        if not python.exists():
            venv.create(VENV, with_pip=True)
        version = _run([str(python), "-c", "import importlib.metadata as m; print(m.version('openai-agents'))"], cwd=HERE)
        if version.stdout.strip() != PIN:
            _pip(python, f"openai-agents=={PIN}")
        if not _kit_is_current(python):
            _pip(python, "--no-deps", "--force-reinstall", str(ROOT))
        print(f"adapter venv ready in {time.monotonic() - started:.1f} s")
    yield [str(python), str(HERE / "adapter.py")]


def _verify(adapter: list[str], tmp_path: Path, policy: str, **extra: str) -> dict[str, object]:
    # seed 4: the plain ci search reaches the reused-id defect only after 40 programs (README beside the adapter)
    argv = [sys.executable, "-m", "ctxcontract", "verify", "--policy", policy, "--keep-going", "5", "--seed", "4", "--max-examples", "40"]
    argv += ["--json", "-o", str(tmp_path / "cx.jsonl"), "--projector-cmd", *adapter]
    proc = _run(argv, cwd=tmp_path, **extra)
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == proc.returncode
    return doc


def _found(doc: dict[str, object]) -> set[tuple[str, str, str]]:
    results = doc["results"]
    assert isinstance(results, list)
    return {(r["rule"], r["level"], r["signature"]) for r in results}


def test_the_pinned_sdk_and_the_kit_are_what_runs(adapter: list[str]) -> None:
    probe = "import agents, ctxcontract.adapter, sys; print(agents.__version__); print(sorted(m for m in sys.modules if m.split('.')[0] in ('ctxspec', 'ctxref', 'hypothesis', 'z3')))"
    proc = _run([adapter[0], "-c", probe], cwd=HERE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [PIN, "[]"]  # the kit pulls in nothing of the checker


def test_verify_with_the_openai_agents_preset(adapter: list[str], tmp_path: Path) -> None:
    """Cancel = cancel the run: the unfinished step is lost, and a reused call id is a 400."""
    doc = _verify(adapter, tmp_path, "openai-agents")
    assert doc["exit_code"] == 1
    assert _found(doc) == {
        ("C8", "loss", "prompt step reply/1 resume prompt step"),  # crash: the step in flight is gone
        ("C8", "loss", "prompt step reply/1 cancel prompt step"),  # cancel: gone too
        ("C8", "loss", "prompt step reply/2 result step-end step"),  # a call never answered: the app cancels
        ("C8", "loss", "prompt step reply/0-cut step-end step"),  # a reply cut off: its text is gone too
        # the defect: the prompt after the cancel starts a new run, whose history holds the reused id twice
        ("C1", "reject", "prompt step reply/1 result cancel prompt step reply/1 result step-end step"),
    }
    for result in doc["results"]:  # type: ignore[union-attr]
        first = result["findings"][0]
        if result["rule"] == "C8":
            assert [f["rule"] for f in result["findings"]] == ["C8"] and first["message"].endswith("is missing")
        else:
            assert first["rule"] == "C1" and "answered out of place" in first["message"]


def test_verify_when_the_app_cancels_the_tools(adapter: list[str], tmp_path: Path) -> None:
    """Cancel = cancel the tools: the SDK closes them itself, as cancel-tools.toml declares."""
    doc = _verify(adapter, tmp_path, str(HERE / "cancel-tools.toml"), CTXCONTRACT_OA_CANCEL="tools")
    assert doc["exit_code"] == 1
    assert _found(doc) == {
        ("C8", "loss", "prompt step reply/0-cut cancel prompt step"),  # a reply cut off: no app code keeps it
        ("C8", "loss", "prompt step reply/0-cut step-end step"),
        # the defect again: the prompt after the cancel makes the app start a new run
        ("C1", "reject", "prompt step reply/1 cancel prompt step reply/1 step-end step"),
    }


def test_a_call_id_reused_in_a_later_turn_is_a_400(adapter: list[str], tmp_path: Path) -> None:
    """The library defect on a plain two-turn log: the second turn's call_0 is merged into the first's."""
    argv = [sys.executable, "-m", "ctxcontract", "check", str(HERE / "reused-call-id.jsonl"), "--policy", "openai-agents", "--json", "--projector-cmd", *adapter]
    proc = _run(argv, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert [(f["rule"], f["level"], f["line"], f["index"]) for f in doc["findings"]] == [
        ("C1", "reject", None, 3),  # call_0's tool message comes after the user's second prompt
        ("C8", "loss", 4, None),  # the first exchange is not sent as it was
        ("C8", "loss", 8, None),  # its "done" reply is not sent on its own
        ("C8", "loss", 13, None),  # nor is the second
        ("C8", "loss", None, 2),  # the merged message: first position, second call
        ("C9", "cache", 16, 2),  # the history before it was rewritten
    ]
    assert "answered out of place" in doc["findings"][0]["message"]
