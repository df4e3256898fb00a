"""The wheel users get: built from the checkout, installed into a fresh venv outside it, used from there.

The rest of the suite runs against the editable install, which sees every
file of the checkout; only this test notices a package or data file the
wheel leaves out.  It needs the package registry (the build backend, and the
runtime dependencies of the fresh venv), like the test command itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "kimi-wire" / "todolist3.jsonl"
FENCE = re.compile(r"```python pytest\n(.*?)```", re.S)


def _env() -> dict[str, str]:
    """The environment without anything that points back into the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith(("HYPOTHESIS", "PYTEST"))}


def _run(argv: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(bin folder of a fresh venv with the wheel installed, a work folder outside the checkout)``."""
    base = tmp_path_factory.mktemp("wheel")
    dist, env_dir, work = base / "dist", base / "venv", base / "project"
    work.mkdir()
    quiet = ["--quiet", "--disable-pip-version-check"]
    built = _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(dist), *quiet], cwd=base)
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(dist.glob("ctxcontract-*.whl"))
    assert len(wheels) == 1, wheels
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    done = _run([str(bin_dir / "python"), "-m", "pip", "install", *quiet, str(wheels[0]), "pytest"], cwd=base)
    assert done.returncode == 0, done.stdout + done.stderr
    return bin_dir, work


def test_the_wheel_holds_every_package(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    probe = "import ctxcontract, ctxref.formats, ctxspec, sys; print(ctxcontract.__file__); print(sorted(set(ctxcontract.__all__) - set(dir(ctxcontract))))"
    proc = _run([str(bin_dir / "python"), "-c", probe], cwd=work)
    assert proc.returncode == 0, proc.stderr
    where, missing = proc.stdout.splitlines()
    assert not Path(where).is_relative_to(ROOT) and "site-packages" in where  # the wheel, not the checkout
    assert missing == "[]"
    names = "import ctxcontract as c; [getattr(c, n) for n in c.__all__]; print(c.session_logs, c.prove_report)"
    assert _run([str(bin_dir / "python"), "-c", names], cwd=work).returncode == 0


def test_the_installed_command(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    from ctxcontract import __version__

    version = _run([str(bin_dir / "ctxcontract"), "--version"], cwd=work)
    assert version.returncode == 0 and version.stdout == f"ctxcontract {__version__}\n"
    shutil.copy(EXAMPLE, work / "session.jsonl")
    check = _run([str(bin_dir / "ctxcontract"), "check", "session.jsonl", "--json"], cwd=work)
    assert check.returncode == 1, check.stderr
    doc = json.loads(check.stdout)
    assert doc["format"] == "kimi-wire" and doc["verdict"] == "findings"
    assert {(f["rule"], f["line"]) for f in doc["findings"]} >= {("C6", 12)}
    rules = _run([str(bin_dir / "python"), "-m", "ctxcontract", "rules"], cwd=work)
    assert rules.returncode == 0 and [line.split()[0] for line in rules.stdout.splitlines()] == [f"C{i}" for i in range(1, 13)]
    repaired = _run([str(bin_dir / "ctxcontract"), "repair", "session.jsonl", "-o", "repaired.jsonl"], cwd=work)
    assert repaired.returncode == 0, repaired.stderr
    assert _run([str(bin_dir / "ctxcontract"), "check", "repaired.jsonl", "--brief"], cwd=work).returncode == 0
    # a provider's own rules, and the request body the reference sends it
    shutil.copy(ROOT / "examples" / "requests" / "gemini-split-responses.json", work / "request.json")
    judged = _run([str(bin_dir / "ctxcontract"), "check", "request.json", "--provider", "gemini", "--json"], cwd=work)
    assert judged.returncode == 1, judged.stderr
    assert json.loads(judged.stdout)["provider"]["rejections"][0]["rule"] == "GE1"
    body = _run([str(bin_dir / "ctxcontract"), "project", "repaired.jsonl", "--to", "anthropic"], cwd=work)
    assert body.returncode == 0 and json.loads(body.stdout)["messages"], body.stderr


def test_the_docs_pytest_example_under_plain_pytest(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    bodies = FENCE.findall((ROOT / "docs" / "verify-your-runtime.md").read_text(encoding="utf-8"))
    assert bodies
    for i, body in enumerate(bodies):
        (work / f"test_docs_example_{i}.py").write_text(body, encoding="utf-8")
    proc = _run([str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(rf"\b{2 * len(bodies)} passed\b", proc.stdout), proc.stdout


def test_the_pytest_plugin_with_only_the_wheel(installed: tuple[Path, Path]) -> None:
    """A runtime team's test file, in a project that has only the installed wheel (and pytest)."""
    from test_protocol import plugin_project

    bin_dir, work = installed
    project = plugin_project(work.parent / "plugin-project")
    proc = _run([str(bin_dir / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-rf"], cwd=project)
    assert "1 failed, 3 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "FAILED test_projector.py::test_a_broken_projector_fails" in proc.stdout
    assert "ProjectorFindings: dropping broke the context contract under policy reference" in proc.stdout
    assert str(ROOT) not in proc.stdout.replace(str(project), "")  # nothing came from the checkout


def test_the_javascript_kit_comes_with_the_wheel(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    where = _run([str(bin_dir / "python"), "-m", "ctxcontract.adapter", "--js"], cwd=work)
    assert where.returncode == 0, where.stderr
    kit = Path(where.stdout.strip())
    assert "site-packages" in str(kit) and kit.read_bytes() == (ROOT / "adapters" / "js" / "ctxcontract-adapter.mjs").read_bytes()
    (work / "toy.mjs").write_text('import { serve, PROTOCOL } from "./ctxcontract-adapter.mjs";\nconsole.error(PROTOCOL);\n', encoding="utf-8")
    shutil.copy(kit, work / "ctxcontract-adapter.mjs")
    ran = _run(["node", str(work / "toy.mjs")], cwd=work)
    assert ran.returncode == 0 and ran.stderr.strip() == "1", ran.stderr
