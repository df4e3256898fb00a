"""A child that reads the records in a runtime's format back with our own importer.

``reimport.py FORMAT [stateful]``: the records the harness sends, read by
``ctxref.formats`` into a canonical log, projected by the reference
projector.  A request is built at a step.begin, so one is added where the
format has not written it yet.  If the harness sent the records of a
runtime's file faithfully, this child keeps every rule.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ctxcontract.adapter import serve
from ctxref.formats import load_text
from ctxref.projector import project
from ctxspec.events import StepBegin
from ctxspec.messages import messages_to_openai

FORMAT = sys.argv[1]


def reference(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    text = "".join(json.dumps(r) + "\n" for r in records)
    log = list(load_text(text, format=FORMAT).log)
    if log[-1].type != "step.begin":
        log.append(StepBegin())
    return messages_to_openai(project(log))


class Session:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.moments: list[tuple[str, int]] = []

    def record(self, record: dict[str, Any], line: int) -> None:
        self.records.append(record)

    def moment(self, moment: str, line: int) -> None:
        self.moments.append((moment, line))

    def request(self) -> list[dict[str, Any]]:
        return reference(self.records)


if len(sys.argv) > 2 and sys.argv[2] == "stateful":
    serve(session=Session, format=FORMAT)
else:
    serve(reference, format=FORMAT)
