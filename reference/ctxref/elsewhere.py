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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Union

from ctxspec.contract import Projector, json_projector

from .protocol import DEFAULT_TIMEOUT, ChildProjector

#: What names a projector under test: a Python JSON projector (event dicts in,
#: OpenAI chat dicts out), its ``"module:function"`` name, or a command (argv)
#: that speaks the projector protocol.
ProjectorSpec = Union[Callable[[list[dict[str, Any]]], Any], str, Sequence[str]]

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


@contextmanager
def under_test(spec: ProjectorSpec, *, timeout: float = DEFAULT_TIMEOUT, elsewhere: bool = True) -> Iterator[tuple[Projector, Projector | None, str]]:
    """The projector ``spec`` names, the same in another process (``None`` where there is none), and its name.

    A command is started and greeted here: one that does not speak the
    protocol raises :class:`~ctxref.protocol.ProtocolError` before any work.
    A ``"module:function"`` that cannot be loaded raises the loader's usage
    error.  A bare function has no other process.  Every child is stopped on
    the way out.
    """
    children: list[ChildProjector] = []

    def started(child: ChildProjector) -> ChildProjector:
        children.append(child)
        return child

    try:
        there: Projector | None = None
        if isinstance(spec, str):
            from .cli import load_callable

            projector, name = json_projector(load_callable(spec)), spec
            if elsewhere:
                there = started(other_process(spec))
        elif callable(spec):
            projector, name = json_projector(spec), getattr(spec, "__qualname__", repr(spec))
        else:
            argv = list(spec)
            child = started(ChildProjector(argv, timeout=timeout))
            hello = child.start()
            projector, name = child, f"{hello.name} ({' '.join(argv)})" if hello.name else " ".join(argv)
            if elsewhere:
                there = started(ChildProjector(argv, timeout=timeout, env=dict(os.environ, PYTHONHASHSEED=other_hash_seed())))
        yield projector, there, name
    finally:
        for child in children:
            child.close()


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
