"""Serve a projector over the projector protocol (docs/protocol.md).

A process that runs :func:`serve` can be checked with
``ctxcontract verify --projector-cmd python3 my_adapter.py``.  You write the
mapping from the session's records to your runtime's own types; this module
does the protocol.  It needs nothing but the standard library, so it runs
in your runtime's own environment.

Stateless, the whole session with every request::

    def project(records: list[dict]) -> list[dict]: ...
    serve(project)

Stateful, each record once::

    class Session:
        def record(self, record: dict, line: int) -> None: ...
        def moment(self, moment: str, line: int) -> None: ...   # optional
        def request(self) -> list[dict]: ...
    serve(session=Session, format="kimi-wire")
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = ["PROTOCOL", "FORMATS", "Session", "js_kit", "serve"]

#: The protocol version this kit speaks.
PROTOCOL = 1
#: The session formats a child may ask for.
FORMATS = ("canonical", "kimi-wire", "codex", "claude")


class Session(Protocol):
    """One session of a stateful projector (``moment`` is optional)."""

    def record(self, record: dict[str, Any], line: int) -> None: ...

    def request(self) -> list[dict[str, Any]]: ...


Project = Callable[[list[dict[str, Any]]], Iterable[dict[str, Any]]]


class _Failed(Exception):
    """An error met while appending, answered at the next request."""


def _error(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, _Failed) and exc.__cause__ is not None:
        exc = exc.__cause__
    return {"message": str(exc) or type(exc).__name__, "kind": type(exc).__name__}


def serve(
    project: Project | None = None,
    *,
    session: Callable[[], Session] | None = None,
    format: str = "canonical",
    name: str | None = None,
    requests: IO[str] | None = None,
    answers: IO[str] | None = None,
) -> None:
    """Answer the harness until its input ends.

    Give ``project`` (stateless) or ``session`` (stateful: a class or any
    factory).  ``requests`` and ``answers`` default to standard input and
    output; when they do, whatever the projector prints goes to standard
    error instead.
    """
    if (project is None) == (session is None):
        raise TypeError("serve() takes a stateless project function or a session factory, not both")
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}: one of {', '.join(FORMATS)}")
    if answers is None:
        answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
        sys.stdout = sys.stderr  # a stray print must not reach the answers
    if requests is None:
        requests = sys.stdin
    sessions: dict[str, Session] = {}
    failed: dict[str, BaseException] = {}

    def say(obj: dict[str, Any]) -> None:
        answers.write(json.dumps(obj, ensure_ascii=False) + "\n")
        answers.flush()

    def messages(id_: object, make: Callable[[], Iterable[dict[str, Any]]]) -> None:
        try:
            out = list(make())
            text = json.dumps({"type": "messages", "id": id_, "messages": out}, ensure_ascii=False)
        except Exception as exc:  # the projector's failure is an answer, not the end of the child
            say({"type": "error", "id": id_, "error": _error(exc)})
            return
        answers.write(text + "\n")
        answers.flush()

    for line in requests:
        if not line.strip():
            continue
        msg = json.loads(line)
        kind, sid = msg.get("type"), msg.get("session")
        if kind == "hello":
            say({"type": "hello", "protocol": PROTOCOL, "format": format, "shape": "openai-chat", "mode": "stateless" if project else "stateful", **({"name": name} if name else {})})
        elif kind == "project" and project is not None:
            records = [e["record"] for e in msg["entries"] if "record" in e]
            messages(msg.get("id"), lambda: project(records))
        elif kind == "open" and session is not None:
            failed.pop(sid, None)
            try:
                sessions[sid] = session()
            except Exception as exc:
                failed[sid] = exc
        elif kind == "append" and session is not None:
            if sid in failed:
                continue
            try:
                s = sessions[sid]
                for entry in msg["entries"]:
                    if "record" in entry:
                        s.record(entry["record"], entry["line"])
                    else:
                        moment = getattr(s, "moment", None)
                        if moment is not None:
                            moment(entry["moment"], entry["line"])
            except Exception as exc:
                failed[sid] = exc
        elif kind == "request" and session is not None:

            def build() -> Iterable[dict[str, Any]]:
                if sid in failed:
                    raise _Failed() from failed[sid]
                return sessions[sid].request()

            messages(msg.get("id"), build)
        elif kind == "close":
            sessions.pop(sid, None)
            failed.pop(sid, None)
        elif "id" in msg:
            say({"type": "error", "id": msg["id"], "error": {"message": f"this child does not take {kind!r} messages", "kind": "protocol"}})


def js_kit() -> Path:
    """The JavaScript kit (one ESM file, no dependency) that comes with the package: copy it next to your adapter."""
    return Path(__file__).with_name("ctxcontract-adapter.mjs")


def main(argv: Sequence[str]) -> int:
    """``python -m ctxcontract.adapter --js``: where the JavaScript kit is (``cp "$(...)" .``)."""
    if list(argv) == ["--js"]:
        print(js_kit())
        return 0
    print("usage: python -m ctxcontract.adapter --js   (prints the path of the JavaScript kit)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
