"""The projector under test, run again in another process with another hash seed.

A projector whose output hangs on ``hash()`` of a string (salted per
process), on ``id()`` or on the order of a set of strings gives the same
messages twice in one process and other messages after a restart: a
resumed session then misses the provider's prompt cache, and a session file
replays differently.  ``verify`` and ``check --projector`` project each
program's last request in a child process too and compare (C11).

The child speaks JSON lines on its standard input and output: one array of
event dicts in, one ``{"messages": [...]}`` or ``{"error": "..."}`` out.
Whatever the projector prints goes to standard error, away from the answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO

from ctxspec.events import Event, event_to_dict
from ctxspec.messages import Message, messages_from_openai

#: Hash seeds are 0 .. 2**32 - 1.
_SEEDS = 2**32


def other_hash_seed(environ: Mapping[str, str] = os.environ) -> str:
    """A ``PYTHONHASHSEED`` other than this process's.

    With no seed set this process's seed is random, and ``0`` (no salt) differs
    from it but for a chance of one in 2**32.
    """
    mine = environ.get("PYTHONHASHSEED", "random")
    return str((int(mine) + 1) % _SEEDS) if mine.isdigit() else "0"


class OtherProcess:
    """``--projector SPEC`` loaded in a child process; call it like a projector.

    The child starts on the first call and stops with :meth:`close`.  A
    projector that raises in the child, or cannot be loaded there, raises
    ``RuntimeError`` here.
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._child: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONHASHSEED=other_hash_seed())
        return subprocess.Popen(
            [sys.executable, "-m", "ctxref.elsewhere", self.spec],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env=env,
        )

    def __call__(self, log: Sequence[Event]) -> Sequence[Message]:
        if self._child is None:
            self._child = self._start()
        child = self._child
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(json.dumps([event_to_dict(e) for e in log]) + "\n")
            child.stdin.flush()
            line = child.stdout.readline()
        except OSError:
            line = ""
        if not line:
            self._child = None
            raise RuntimeError(f"the projector's process ended (exit code {child.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return messages_from_openai(answer["messages"])

    def close(self) -> None:
        if self._child is not None:
            assert self._child.stdin is not None
            self._child.stdin.close()
            self._child.wait()
            self._child = None


def serve(spec: str, requests: IO[str], answers: IO[str]) -> None:
    """Load ``spec`` and answer each request line until the input ends.

    A projector that cannot be loaded gets every request answered with why.
    """
    from .cli import load_callable  # the same loader as the parent's, so the same module

    try:
        fn = load_callable(spec)
    except Exception as exc:  # a usage error in the parent; here, an answer
        fn, failed = None, f"loading {spec} in another process failed: {exc}"
    for line in requests:
        try:
            if fn is None:
                raise RuntimeError(failed)
            text = json.dumps({"messages": fn(json.loads(line))})
        except Exception as exc:  # the projector under test is not ours to trust
            text = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        answers.write(text + "\n")
        answers.flush()


def main(argv: Sequence[str]) -> int:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr  # what the projector prints must not reach the answers
    serve(argv[0], sys.stdin, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
