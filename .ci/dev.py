#!/usr/bin/env python3
"""Bootstrap and run: ``python3 .ci/dev.py demo`` or ``python3 .ci/dev.py test``.

Needs only python3.  Creates ``.venv`` beside the project, installs the
project and its development dependencies into it, at the versions in
``.ci/constraints.txt`` (again whenever either file changes), then runs the job.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
BIN = os.path.join(VENV, "Scripts" if os.name == "nt" else "bin")
PY = os.path.join(BIN, "python")
STAMP = os.path.join(VENV, ".ctxcontract-installed")
CONSTRAINTS = os.path.join(ROOT, ".ci", "constraints.txt")


def run(*cmd: str) -> int:
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def ensure_env() -> None:
    digest = hashlib.sha256()
    for path in (os.path.join(ROOT, "pyproject.toml"), CONSTRAINTS):
        with open(path, "rb") as handle:
            digest.update(handle.read())
    want = digest.hexdigest()
    if os.path.exists(STAMP) and open(STAMP).read() == want:
        return
    if not os.path.exists(PY):
        print(f"+ python3 -m venv .venv", flush=True)
        venv.create(VENV, with_pip=True)
    quiet = ["--quiet", "--disable-pip-version-check"]
    if run(PY, "-m", "pip", "install", *quiet, "-c", CONSTRAINTS, "-e", ".[dev]") != 0:
        sys.exit("installing ctxcontract into .venv failed")
    with open(STAMP, "w") as handle:
        handle.write(want)


def demo() -> int:
    out = os.path.join(ROOT, "out")
    os.makedirs(out, exist_ok=True)
    cli = os.path.join(BIN, "ctxcontract")
    # 1. The stateful checker finds the TodoList:3 bug in a bundled projector.
    found = run(cli, "verify", "--projector", "examples/todolist_bug.py:project", "-o", os.path.join("out", "todolist-counterexample.jsonl"), "--force")
    # 2. The same bug in a Kimi Code session file: the request the runtime sent,
    #    judged as a projection of the log: the tool message it lacks, by line.
    wire = os.path.join("examples", "kimi-wire", "todolist3.jsonl")
    checked = run(cli, "check", wire, "--request", os.path.join("examples", "kimi-wire", "todolist3-request.json"))
    # 3. A repaired copy the runtime can load.
    repaired = run(cli, "repair", wire, "-o", os.path.join("out", "todolist3-repaired.wire.jsonl"), "--force")
    # verify and check exit 1 when they find something, which is what the demo shows.
    return 0 if (found, checked, repaired) == (1, 1, 0) else 1


def test() -> int:
    if run(PY, "-m", "mypy") != 0:
        return 1
    # one worker per core (-n 0 after it runs in one process); a worker that is done takes
    # tests queued for the other, so the long searches do not leave one core idle at the end
    code = run(PY, "-m", "pytest", "-n", "auto", "--dist", "worksteal", *sys.argv[2:])
    if code == 5:
        print("pytest collected no tests: that is a failure", flush=True)
        return 1
    return code


def main() -> int:
    jobs = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in jobs:
        print("usage: python3 .ci/dev.py demo|test [pytest args]", file=sys.stderr)
        return 2
    ensure_env()
    return jobs[sys.argv[1]]()


if __name__ == "__main__":
    sys.exit(main())
