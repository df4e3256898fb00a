"""The reference projector, or one of the catalogue mutants, as a child process.

A stateful child of the projector protocol (docs/protocol.md), served with
the Python kit: each canonical record is fed once to an incremental
projector, and every request reads its messages.

    ctxcontract verify --projector-cmd python3 examples/adapters/python/child.py
    ctxcontract verify --projector-cmd python3 examples/adapters/python/child.py steer_inside_block
    ctxcontract verify --projector-cmd python3 examples/adapters/python/child.py --stateless

The first passes; the second is found (``ctxcontract counterexample --list``
names every mutant); the third gets the whole session with every request.
"""

from __future__ import annotations

import sys
from typing import Any

from ctxcontract.adapter import serve
from ctxref.mutants import MUTANTS
from ctxref.projector import Projector, project
from ctxspec.events import event_from_dict, events_from_dicts
from ctxspec.messages import messages_to_openai


class Session:
    """One session: the records fed to an incremental projector."""

    cls: type[Projector] = Projector

    def __init__(self) -> None:
        self.projector = self.cls()

    def record(self, record: dict[str, Any], line: int) -> None:
        self.projector.feed(event_from_dict(record))

    def request(self) -> list[dict[str, Any]]:
        return messages_to_openai(self.projector.messages())


def stateless(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return messages_to_openai(project(events_from_dicts(records)))


def main(argv: list[str]) -> int:
    if argv == ["--stateless"]:
        serve(stateless, name="reference projector, stateless")
        return 0
    if argv and argv[0] not in MUTANTS:
        print(f"child.py: no mutant {argv[0]!r} (known: {', '.join(MUTANTS)})", file=sys.stderr)
        return 2
    if argv:
        Session.cls = MUTANTS[argv[0]].cls
    serve(session=Session, name=f"mutant {argv[0]}" if argv else "reference projector")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
