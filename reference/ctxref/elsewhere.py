"""The projector under test, run again in another process with another hash seed.

A projector whose output hangs on ``hash()`` of a string (salted per
process), on ``id()`` or on the order of a set of strings gives the same
messages twice in one process and other messages after a restart: a
resumed session then misses the provider's prompt cache, and a session file
replays differently.  ``verify`` and ``check --projector`` project each
program's last request in a child process too and compare (C11).

The child is served by the Python kit (:mod:`ctxcontract.adapter`) and
speaks the projector protocol (docs/protocol.md), like any child of
``--projector-cmd``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .protocol import ChildProjector

#: Hash seeds are 0 .. 2**32 - 1.
_SEEDS = 2**32


def other_hash_seed(environ: Mapping[str, str] = os.environ) -> str:
    """A ``PYTHONHASHSEED`` other than this process's.

    With no seed set this process's seed is random, and ``0`` (no salt) differs
    from it but for a chance of one in 2**32.
    """
    mine = environ.get("PYTHONHASHSEED", "random")
    return str((int(mine) + 1) % _SEEDS) if mine.isdigit() else "0"


#: Seconds the other process may take to answer: its first answer waits for the projector's import.
TIMEOUT: Final = 120.0


def other_process(spec: str) -> ChildProjector:
    """``--projector SPEC`` loaded in a child process with another hash seed; call it like a projector.

    It speaks the projector protocol (docs/protocol.md) through the Python
    kit, stateless, in the canonical format.  A projector that raises there,
    or cannot be loaded there, raises :class:`~ctxspec.errors.ProjectorFailed`
    here.  Call ``close()`` at the end.
    """
    env = dict(os.environ, PYTHONHASHSEED=other_hash_seed())
    return ChildProjector([sys.executable, "-m", "ctxref.elsewhere", spec], env=env, timeout=TIMEOUT)


def main(argv: Sequence[str]) -> int:
    """Load the projector ``argv[0]`` and serve it until the input ends.

    A projector that cannot be loaded has every request answered with why.
    """
    from ctxcontract.adapter import serve

    from .cli import load_callable  # the same loader as the parent's, so the same module

    spec = argv[0]
    try:
        fn = load_callable(spec)
        failed = ""
    except (Exception, SystemExit) as exc:  # a usage error in the parent; here, an answer
        fn, failed = None, f"loading {spec} in another process failed: {exc}"

    def project(records: list[dict[str, Any]]) -> Any:
        if fn is None:
            raise RuntimeError(failed)
        return fn(records)

    serve(project, format="canonical")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
