"""``ctxcontract show`` and the ``--picture`` option of ``check``, ``verify`` and ``counterexample``.

The command line's side of the pictures: which builder a command line asks
for, where the file goes (atomically, never over a file without
``--force``), and what is printed.  The parser itself stays in ``cli.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from ctxspec.contract import Violation
from ctxspec.events import Event
from ctxspec.messages import Message
from ctxspec.policy import Policy
from ctxspec.rules import Level

from .. import STDIN
from . import Picture, kind_of, of_messages, of_projector, of_request, of_session, render

ProjectorFn = Callable[[Sequence[Event]], Sequence[Message]]


def picture_of_file(args: argparse.Namespace, fmt: str, *, keep: Callable[[Violation], bool] | None = None) -> Picture:
    """The picture ``show`` (or ``check --picture``) draws of ``args.log`` read as ``fmt``.

    ``args`` carries what ``check`` takes: ``lenient``, ``policy``,
    ``request``, ``projector``/``projector_cmd``, ``at``; ``keep`` selects the
    findings (``--rules``, ``--fail-on``).
    """
    from ..cli import _fail, _policy, _under_test
    from ..formats import load
    from ..formats.messages import MESSAGE_FORMATS, check_messages_file, runtime_reads_leniently

    at = getattr(args, "at", None)
    request = getattr(args, "request", None)
    projector_given = bool(getattr(args, "projector", None) or getattr(args, "projector_cmd", None))
    if fmt in MESSAGE_FORMATS:
        if at is not None or request or projector_given:
            _fail(f"{_name(args.log)}: {fmt} stores one message list: --at, --request, --projector and --projector-cmd take a session log")
        from ..formats.loadable import refusals

        loaded, violations = check_messages_file(args.log, fmt, lenient=args.lenient or runtime_reads_leniently(fmt))
        stops = {r.line for r in refusals(args.log, fmt)}  # as check: a line the loader stops at is not also a C8 loss
        kept = [v for v in violations if (keep is None or keep(v)) and not (v.rule == "C8" and v.line in stops)]
        picture = of_messages(loaded, kept, title=_name(args.log))
        if stops:
            from dataclasses import replace

            picture = replace(picture, notes=picture.notes + (f"the runtime's own loader stops at line(s) {', '.join(map(str, sorted(stops)))}: it cannot resume this session",))
        return picture
    if at is not None and (request or projector_given):
        _fail("--at picks the projection point of a session; with --request or --projector the point is the request that is judged")
    if request and projector_given:
        _fail("--request judges the request your runtime sent; --projector and --projector-cmd judge a projector: give one of them")
    policy = _policy(args)
    imp = load(args.log, format=fmt, lenient=args.lenient)
    if request:
        from ctxspec.captured import judge_request

        from ..formats.messages import load_messages

        captured = load_messages(request)
        judged = judge_request(imp.log, captured.messages, policy, declared=bool(getattr(args, "policy", None)), origin=imp.origin, call_origin=imp.call_origin)
        if keep is not None:
            from dataclasses import replace

            judged = replace(judged, findings=tuple(f for f in judged.findings if keep(Violation(f.rule, f.what, level=f.level))))
        return of_request(imp, captured, judged, policy=policy, title=_name(args.log), request_name=_name(request))
    if projector_given:
        from ctxspec.contract import check_session

        with _under_test(args) as (projector, other, label):
            violations = check_session(imp.log, projector, policy=policy, elsewhere=other)
            found = [v for v in violations if keep is None or keep(v)]
            return of_projector(imp.log, [s.line for s in imp.sources], projector, found, label=label, policy=policy, title=_name(args.log), subtitle=f"{imp.format}, {len(imp.log)} events; projector {label}, policy {policy.name}")
    return of_session(imp, policy=policy, at=at, title=_name(args.log), keep=None if keep is None else lambda rule, level, why: keep(Violation(rule, why, level=Level(level))))


def _name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


def default_output(path: str) -> str:
    """``NAME.html`` in the working folder for ``NAME.jsonl`` (``NAME-1.html``, ... if it exists)."""
    from ..cli import free_name

    stem = "session" if path == STDIN else os.path.splitext(os.path.basename(path))[0] or "session"
    return free_name(stem, ".html")


def write_picture(path: str, picture: Picture, *, force: bool, out: TextIO) -> None:
    """Write ``picture`` to ``path`` (``.svg``: SVG, else HTML; ``-``: standard output, HTML)."""
    from ..cli import _write

    _write(path, render(picture, "html" if path == STDIN else kind_of(path)), force=force, purpose="picture", stdout=out)


def picture_files(first: str, n: int) -> list[str]:
    """Where ``n`` pictures go: ``first``, then ``first-2``, ``first-3``, ... (never an existing file)."""
    from ..cli import free_name

    if n == 0:
        return []
    stem, ext = os.path.splitext(first)
    return [first] + [free_name(f"{stem}-{k}", ext or ".html") for k in range(2, n + 1)]


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    from ..cli import _fail, _format_of
    from ..output import check_output

    output = args.output or default_output(args.log)
    if output != STDIN:
        check_output(output, force=args.force)
    if args.log == STDIN and getattr(args, "request", None) == STDIN:
        _fail("the session and --request cannot both be standard input")
    fmt = _format_of(args.log, args.format)
    picture = picture_of_file(args, fmt)
    write_picture(output, picture, force=args.force, out=out)
    report = sys.stderr if output == STDIN else out
    where = "<stdout>" if output == STDIN else output
    calls = len(picture.bars)
    print(f"{_name(args.log)}: {fmt}, {len(picture.rows)} rows, {calls} call(s), {len(picture.findings)} finding(s); wrote {where} ({'svg' if output != STDIN and kind_of(output) == 'svg' else 'html'})", file=report)
    return 0


def projector_pictures(
    paths: Sequence[str],
    sessions: Sequence[tuple[Sequence[Event], Sequence[Violation], str]],
    projector: ProjectorFn,
    *,
    label: str,
    policy: Policy | None,
    force: bool,
    out: TextIO,
) -> None:
    """One picture per ``(log, violations, title)``: the projector's output beside the reference's."""
    for path, (log, violations, title) in zip(paths, sessions):
        picture = of_projector(log, list(range(1, len(log) + 1)), projector, violations, label=label, policy=policy, title=title, subtitle=f"{len(log) - 1} events after session.meta; projector {label}; lines are the canonical log's")
        write_picture(path, picture, force=force and path == paths[0], out=out)
