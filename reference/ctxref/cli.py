"""The ``ctxcontract`` command: a thin shell over the library.

Exit codes (also in ``--help``): 0 clean or done, 1 findings, 2 a usage
error or unusable input, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
Every error the user can cause prints one line naming the file and line;
nothing the user gave is modified (``repair --in-place`` keeps a backup), and
every file written is created atomically and exclusively
(:mod:`ctxref.output`).  ``-`` is standard input or output wherever a file
is read or written.  ``--json`` prints one JSON document whose schema is
``docs/cli-output.schema.json``.

The file commands (``check``, ``repair``, ``project``, ``rules``) import
neither Hypothesis nor Z3: the commands that need them import them when run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, BinaryIO, Final, NoReturn, TextIO

from ctxcontract import __version__
from ctxspec.errors import CtxError, InvalidLog
from ctxspec.profiles import PROFILES
from ctxspec.rules import RULES

from . import STDIN
from .output import Terminated

if TYPE_CHECKING:  # the commands import what they run, so that each starts fast
    from distributed import Client

    from ctxref.distributed import OnCluster
    from ctxref.formats.base import ImportReport
    from ctxref.formats.loadable import Refusal
    from ctxref.formats.verdict import Verdict
    from ctxref.mutants import Mutant
    from ctxref.provider_check import ProviderVerdict
    from ctxspec.captured import RequestFinding
    from ctxspec.contract import Selection, Violation
    from ctxspec.errors import ContractViolation
    from ctxspec.findings import Finding
    from ctxspec.policy import Policy
    from ctxspec.events import Event
    from ctxspec.messages import Message

    ProjectorFn = Callable[[Sequence[Event]], Sequence[Message]]
#: The formats ``check`` reads: the event formats, then the message formats
#: (their registries, ``formats.EVENT_FORMATS`` and ``MESSAGE_FORMATS``, import
#: every reader; a test keeps this list equal to them).
FORMATS: Final = ("ctxcontract", "kimi-wire", "codex", "claude", "kimi-context", "openai", "anthropic", "gemini", "openai-responses")
#: The providers ``--provider`` and ``project --to`` take (``ctxspec.providers.PROVIDERS``; a test keeps them equal).
PROVIDER_NAMES: Final = ("openai", "anthropic", "deepseek", "moonshot", "mistral", "openai-responses", "gemini")
#: Formats a counterexample can be written in.
EXPORT_FORMATS: Final = ("ctxcontract", "kimi-wire", "codex", "claude", "kimi-context")
#: The version of the ``--json`` documents (``docs/cli-output.schema.json``).
JSON_SCHEMA_VERSION: Final = 1

EXIT_CODES: Final = """exit codes:
  0    clean, nothing found, done, proved
  1    findings: a rule broken, a counterexample found, a repair left unfinished, not proved,
       a scanned file that is not clean
  2    a usage error or unusable input (one line on stderr naming the file and line)
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM)"""


class UsageError(CtxError):
    """A bad command line (exit 2)."""


def _fail(message: str) -> NoReturn:
    raise UsageError(message)


# -- argument types: a bad value is a usage error (exit 2), never a traceback --


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


# -- writing: '-' is standard output, anything else a file created atomically --


def _write(path: str, data: str, *, force: bool, purpose: str, stdout: TextIO) -> None:
    from .output import atomic_output

    if path == STDIN:
        stdout.write(data)
        stdout.flush()
        return
    with atomic_output(path, force=force, purpose=purpose) as sink:
        sink.write(data.encode("utf-8", "surrogateescape"))


def _report_stream(output: str | None, out: TextIO) -> TextIO:
    """Where the human report goes: stderr when the data itself goes to stdout."""
    return sys.stderr if output == STDIN else out


def _emit_json(doc: dict[str, object], out: TextIO) -> None:
    out.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")


def _doc(command: str, code: int, **fields: object) -> dict[str, object]:
    return {"schema_version": JSON_SCHEMA_VERSION, "ctxcontract": __version__, "command": command, "exit_code": code, **fields}


def _finding(rule: str, message: str, *, line: int | None = None, index: int | None = None, level: str | None = None) -> dict[str, object]:
    return {"rule": rule, "title": RULES[rule].title, "level": level or RULES[rule].level.value, "line": line, "index": index, "message": message}


def _violation(v: Violation, line: int | None = None) -> dict[str, object]:
    return _finding(v.rule, v.message, line=v.line if line is None else line, index=v.index, level=v.level.value)


# -- what is judged: --policy, --fail-on, --rules ------------------------------------


def _policy(args: argparse.Namespace) -> Policy:
    from ctxspec.policy import load_policy

    return load_policy(getattr(args, "policy", None) or "reference")


def _selection(args: argparse.Namespace) -> Selection:
    from ctxspec.contract import Selection
    from ctxspec.rules import Level

    rules = frozenset(RULES)
    if getattr(args, "rules", None):
        asked = [r.strip().upper() for r in args.rules.split(",") if r.strip()]
        unknown = [r for r in asked if r not in RULES]
        if unknown or not asked:
            _fail(f"--rules {args.rules!r}: expected a comma-separated list of {', '.join(RULES)}")
        rules = frozenset(asked)
    provider = None
    if getattr(args, "provider", None):
        from .provider_check import judge

        provider = judge(args.provider)
    return Selection(rules, Level(getattr(args, "fail_on", None) or "policy"), provider)


def _report_json(report: ImportReport) -> dict[str, object]:
    return {
        "lines": report.lines,
        "skipped": dict(sorted(report.skipped.items())),
        "unreadable": [{"line": s.line, "why": s.why} for s in report.unreadable],
        "notes": [{"line": s.line, "why": s.why} for s in report.notes],
    }


def load_callable(spec: str) -> Callable[..., object]:
    """``module:function`` or ``path/to/file.py:function``."""
    if ":" not in spec:
        _fail(f"--projector {spec!r}: expected module:function or file.py:function")
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            if not os.path.isfile(module_name):
                _fail(f"{module_name}: no such file")
            folder = os.path.dirname(os.path.abspath(module_name))
            if folder not in sys.path:  # the adapter's own modules beside it import as they would in its project
                sys.path.insert(0, folder)
            name = "_ctxcontract_user_" + os.path.splitext(os.path.basename(module_name))[0]
            loader_spec = importlib.util.spec_from_file_location(name, module_name)
            if loader_spec is None or loader_spec.loader is None:
                _fail(f"{module_name}: cannot be imported")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except UsageError:
        raise
    except Exception as exc:  # the user's module failed to import: say so in one line
        _fail(f"--projector {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}")
    fn = getattr(module, attr, None)
    if not callable(fn):
        _fail(f"--projector {spec!r}: {module_name} has no callable {attr!r}")
    return fn  # type: ignore[no-any-return]


@contextmanager
def _under_test(args: argparse.Namespace) -> Iterator[tuple[ProjectorFn, ProjectorFn | None, str]]:
    """The projector ``--projector`` or ``--projector-cmd`` names (:func:`ctxref.elsewhere.under_test`).

    A command that does not speak the protocol is a usage error before any work.
    """
    from .elsewhere import under_test
    from .protocol import ProtocolError

    spec = args.projector_cmd or args.projector
    try:
        with under_test(spec, timeout=args.timeout) as found:
            yield found
    except ProtocolError as exc:
        _fail(f"--projector-cmd {shlex.join(args.projector_cmd)}: {exc}")


def _print_messages(messages: Sequence[Message], out: TextIO) -> None:
    from ctxspec.messages import messages_to_openai

    for i, m in enumerate(messages_to_openai(messages)):
        print(f"  [{i}] {json.dumps(m, ensure_ascii=False)}", file=out)


def _print_rules(violations: Sequence[Violation], where: Callable[[Violation], str], out: TextIO, codes: Sequence[str] = tuple(RULES)) -> None:
    shown = {*codes, *(v.rule for v in violations)}  # never hide a finding
    for code in (c for c in RULES if c in shown):
        rule = RULES[code]
        found = [v for v in violations if v.rule == code]
        status = "ok" if not found else f"{len(found)} violation(s)"
        print(f"  {code:<4} {rule.title:<24} {status}", file=out)
        for v in found:
            print(f"         - [{v.level.value}] {where(v)}", file=out)


def _print_report(report: ImportReport, out: TextIO) -> None:
    for note in report.notes:
        print(f"  note: {note}", file=out)
    for bad in report.unreadable:
        print(f"  skipped unreadable {bad}", file=out)


def _skipped(report: ImportReport) -> str:
    """The verdict's word on lines it did not judge (empty when there are none)."""
    n = len(report.unreadable)
    return f"; {n} unreadable line{'s' if n != 1 else ''} skipped, not judged (--lenient)" if n else ""


def _format_of(path: str, forced: str | None) -> str:
    """``--format`` or the detected format of ``path`` (message formats first)."""
    from .formats import detect_format

    return forced or detect_format(path)


# -- check ---------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    """``check``, then, with ``--picture``, its picture (:mod:`ctxref.show`)."""
    if args.picture:
        _picture_target(args.picture, args.force)
        if args.log == STDIN or not os.path.isfile(args.log):
            _fail(f"--picture reads {_name(args.log)} again after the check: give a regular file")
    code = _check(args, out)
    if args.picture:
        from .show.command import picture_of_file, write_picture

        write_picture(args.picture, picture_of_file(args, _format_of(args.log, args.format), keep=_selection(args)), force=args.force, out=out)
        if not args.json:
            print(f"picture: {args.picture}", file=out)
    return code


def _picture_target(path: str, force: bool) -> None:
    """``--picture PATH``: a file, refused now (not after the work) if it cannot be written."""
    from .output import check_output

    if path == STDIN:
        _fail("--picture needs a file name (.html or .svg), not standard output")
    check_output(path, force=force)


def _check(args: argparse.Namespace, out: TextIO) -> int:
    from ctxspec.contract import Violation
    from ctxspec.messages import to_openai

    from .formats.loadable import refusals
    from .formats.messages import MESSAGE_FORMATS
    from .formats.verdict import check_file

    fmt = _format_of(args.log, args.format)
    if fmt in MESSAGE_FORMATS:
        return _check_messages(args, fmt, out)
    if args.request and (args.projector or args.projector_cmd):
        _fail("--request judges the request your runtime sent; --projector and --projector-cmd judge a projector: give one of them")
    if args.projector or args.projector_cmd:
        return _check_projector(args, fmt, out)
    if args.request:
        return _check_request(args, fmt, out)
    verdict = check_file(args.log, format=fmt, lenient=args.lenient, policy=_policy(args))
    select = _selection(args)
    hazards = tuple(h for h in verdict.hazards if h.rule in select.rules and h.level.at_least(select.fail_on))
    refused = refusals(args.log, verdict.format)  # lines the runtime's own loader stops at
    sent = None
    if args.provider:  # the reference projection, rendered for the provider: would it take it?
        from .provider_check import verdict as provider_verdict

        sent = provider_verdict(args.provider, [m for m, _line in verdict.messages])
    code = 1 if hazards or refused or (sent is not None and not sent.accepted) else 0
    if args.json:
        findings = [_finding(h.rule, h.what, line=h.line or None, level=h.level.value) for h in hazards]
        projection = [{"line": line or None, "message": to_openai(m)} for m, line in verdict.messages]
        doc = _check_doc(args, code, verdict.format, "events", verdict.report, RULES, findings, projection, None, events=verdict.events, refusals=[{"line": r.line, "why": r.why} for r in refused])
        if sent is not None:
            doc["provider"] = sent.to_json()
        if refused:
            doc["verdict"] = "unloadable"
        _emit_json(doc, out)
        return code
    print(f"{_name(args.log)}: {verdict.format}, {verdict.events} events ({verdict.report.summary()})", file=out)
    _print_report(verdict.report, out)
    _print_loadable(verdict.format, refused, out)
    if not args.brief:
        print(f"projection at the end of the file ({len(verdict.messages)} messages; line = where it comes from):", file=out)
        _print_placed(verdict.messages, out)
    print("rules a naive projection of this log breaks (each repaired by the reference projector):", file=out)
    _print_rules([Violation(h.rule, str(h), level=h.level) for h in hazards], lambda v: v.message, out, codes=[c for c in RULES if c in select.rules])
    if sent is not None:
        from .provider_check import print_verdict, verdict_line as provider_line

        print_verdict(sent, out, "the reference projection at the end of the file")
        print(f"  {provider_line(sent)}", file=out)
    verdict_line = "clean" if not hazards else f"{len(hazards)} place(s) need a repair (ctxcontract repair)"
    print("verdict: " + _unloadable(verdict.format, refused) + verdict_line + _skipped(verdict.report), file=out)
    return code


def _print_loadable(fmt: str, refused: Sequence[Refusal], out: TextIO) -> None:
    """Will the runtime's own loader get through the file (only for a format whose loader is modelled)?"""
    from .formats.loadable import MODELLED

    if fmt not in MODELLED:
        return
    print(f"will {MODELLED[fmt]} load it? (its own loader, before any request)", file=out)
    print("  yes" if not refused else f"  no: {len(refused)} line(s) stop it (below: what it would send without them)", file=out)
    for r in refused:
        print(f"    - line {r.line}: {r.why}", file=out)


def _unloadable(fmt: str, refused: Sequence[Refusal]) -> str:
    """The start of the verdict line when the runtime cannot load the file at all."""
    from .formats.loadable import MODELLED

    if not refused:
        return ""
    return f"unloadable: {MODELLED[fmt]} cannot resume this session ({len(refused)} line(s) stop its loader); without those lines, "


def _print_placed(messages: Sequence[tuple[Message, int]], out: TextIO) -> None:
    from ctxspec.messages import to_openai

    for i, (m, line) in enumerate(messages):
        print(f"  [{i}] line {line}: {json.dumps(to_openai(m), ensure_ascii=False)}", file=out)


#: What a request's worst finding costs, in the verdict line.
_COSTS: Final = {
    "reject": "the provider would reject this request",
    "loss": "the model misses what the log holds, or sees what it does not",
    "cache": "the request is sendable but breaks the cache",
    "policy": "the request departs from the declared policy",
}


def _check_request(args: argparse.Namespace, fmt: str, out: TextIO) -> int:
    """``check LOG --request CAPTURED``: the captured request judged as a projection of the log."""
    from ctxspec.captured import judge_request
    from ctxspec.messages import to_openai

    from .formats import load
    from .formats.messages import load_messages
    from .projector import Projector

    imp = load(args.log, format=fmt, lenient=args.lenient)
    captured = load_messages(args.request)
    policy = _policy(args)
    declared = bool(getattr(args, "policy", None))
    judged = judge_request(imp.log, captured.messages, policy, declared=declared, origin=imp.origin, call_origin=imp.call_origin)
    select = _selection(args)
    sent = None
    facts = list(judged.findings)
    if args.provider:  # that provider's rules decide which findings are its 400
        from .provider_check import verdict as provider_verdict

        sent = provider_verdict(args.provider, captured.messages, captured)
        facts = judged_by_provider(facts, sent)
    findings = [f for f in facts if any(r in select.rules for r in f.rules) and f.level.at_least(select.fail_on)]
    code = 1 if findings else 0
    reference = Projector(policy=policy)
    for event in imp.log[: judged.point]:
        reference.feed(event)
    projection = [(m, imp.origin(line) if line else 0) for m, line in reference.sourced_messages()]
    where = f"the request built at line {judged.step_line} (step.begin)" if judged.step_line else "the request after the last line"
    worst = max(findings, key=lambda f: f.level.severity) if findings else None
    verdict = f"{_COSTS[worst.level.value]}: {len(findings)} finding(s)" if worst else "the request is a projection of the log: nothing missing, extra or misplaced"
    if args.json:
        request: dict[str, object] = {
            "file": args.request,
            "format": captured.format,
            "messages": len(captured.messages),
            "point": {"events": judged.point, "line": judged.step_line},
            "policy": {"name": policy.name, "declared": declared},
            "notes": list(judged.notes),
        }
        found = [
            {**_finding(f.rule, f.what, line=f.line, index=f.index, level=f.level.value), "rules": list(f.rules), "call": f.call}
            for f in findings
        ]
        placed = [{"line": line or None, "message": to_openai(m)} for m, line in projection]
        doc = _check_doc(args, code, imp.format, "request", imp.report, RULES, found, placed, request, events=len(imp.log))
        if sent is not None:
            doc["provider"] = sent.to_json()
        _emit_json(doc, out)
        return code
    print(f"{_name(args.log)}: {imp.format}, {len(imp.log)} events ({imp.report.summary()})", file=out)
    _print_report(imp.report, out)
    declared_text = "declared" if declared else "not declared: policy differences are notes, not findings"
    print(
        f"captured request {_name(args.request)} ({captured.format}, {len(captured.messages)} messages), judged as {where}; "
        f"policy {policy.name} ({declared_text}); arguments compared as JSON values",
        file=out,
    )
    for note in judged.notes:
        print(f"  note: {note}", file=out)
    if not args.brief:
        print(f"the reference projection there ({len(projection)} messages; line = where it comes from):", file=out)
        _print_placed(projection, out)
    print(f"findings ({len(findings)}):", file=out)
    for f in findings:
        at = f" (request message {f.index})" if f.index is not None else ""
        also = f", also {', '.join(f.rules[1:])}" if len(f.rules) > 1 else ""
        print(f"  {f.rule} {RULES[f.rule].title} [{f.level.value}{also}]: {f.what}{at}", file=out)
    if sent is not None:
        from .provider_check import print_verdict, verdict_line as provider_line

        print_verdict(sent, out, "the captured request")
        verdict = provider_line(sent) + ("; " + verdict if findings and sent.accepted else "")
    print("verdict: " + verdict + _skipped(imp.report), file=out)
    return code


def judged_by_provider(findings: Sequence[RequestFinding], sent: ProviderVerdict) -> list[RequestFinding]:
    """Request findings with the reject level decided by the provider's verdict (``ctxspec.providers.judge``).

    :func:`~ctxspec.providers.judge.relevel` keeps the findings in order and
    appends one finding per rejection no finding explains.
    """
    from dataclasses import replace

    from ctxspec.captured import RequestFinding
    from ctxspec.contract import Violation

    judged = sent.relevel([Violation(f.rule, f.what, level=f.level) for f in findings])
    out = [replace(f, level=v.level, what=v.message) for f, v in zip(findings, judged)]
    out.extend(RequestFinding(v.rule, v.level, v.message, None, None, (v.rule,)) for v in judged[len(findings) :])
    return out


def _name(path: str) -> str:
    return "<stdin>" if path == STDIN else path


def _check_doc(
    args: argparse.Namespace,
    code: int,
    format: str,
    kind: str,
    report: ImportReport,
    rules: Iterable[str],
    findings: list[dict[str, object]],
    projection: Sequence[Mapping[str, object]] | None,
    request: dict[str, object] | None,
    **counts: object,
) -> dict[str, object]:
    """The ``check --json`` document, for each ``kind`` of verdict."""
    return _doc(
        "check",
        code,
        file=args.log,
        format=format,
        kind=kind,
        **counts,
        read=_report_json(report),
        rules=list(rules),
        findings=findings,
        projection=projection,
        request=request,
        verdict="clean" if not findings else "findings",
    )


def _where(v: Violation, line_of: Callable[[int], int]) -> str:
    """A violation with its message index and its line in the file (``line_of`` maps the violation's line there)."""
    parts = [f"message {v.index}"] if v.index is not None else []
    if v.line is not None:
        parts.append(f"line {line_of(v.line)}")
    return f"{v.message} ({', '.join(parts)})" if parts else v.message


def _check_messages(args: argparse.Namespace, fmt: str, out: TextIO) -> int:
    from ctxspec.contract import MESSAGE_RULES
    from ctxspec.rules import Level
    from ctxspec.messages import to_openai

    from .formats.loadable import refusals
    from .formats.messages import check_messages_file, runtime_reads_leniently

    if args.projector or args.projector_cmd or args.request:
        _fail(f"{_name(args.log)}: {fmt} stores the message list itself; --projector, --projector-cmd and --request take a session log")
    # Kimi CLI skips lines it cannot read before sending: judge what it sends.
    runtime_skips = runtime_reads_leniently(fmt)
    loaded, violations = check_messages_file(args.log, fmt, lenient=args.lenient or runtime_skips)
    refused = refusals(args.log, fmt)  # lines the runtime's own loader stops at: the session cannot be resumed
    stops = {r.line for r in refused}
    judged = None
    if args.provider:  # that provider's rules decide what is a 400
        from .provider_check import verdict

        judged = verdict(args.provider, loaded.messages, loaded)
        violations = judged.relevel(violations)
    violations = [v for v in _selection(args).keep(violations) if not (v.rule == "C8" and v.line in stops)]
    rules = MESSAGE_RULES + (("C8",) if runtime_skips else ())
    code = 1 if violations or refused else 0
    if args.json:
        findings = [_violation(v) for v in violations]
        projection = [{"line": line, "message": to_openai(m)} for m, line in zip(loaded.messages, loaded.lines)]
        doc = _check_doc(args, code, fmt, "messages", loaded.report, rules, findings, projection, None, messages=len(loaded.messages), refusals=[{"line": r.line, "why": r.why} for r in refused])
        if judged is not None:
            doc["provider"] = judged.to_json()
        if refused:
            doc["verdict"] = "unloadable"
        _emit_json(doc, out)
        return code
    print(f"{_name(args.log)}: {fmt}, {len(loaded.messages)} messages as the runtime sends them ({loaded.report.summary()})", file=out)
    if runtime_skips and loaded.report.unreadable:
        print("  Kimi CLI skips unreadable lines when it loads this file; so does this verdict", file=out)
    _print_report(loaded.report, out)
    _print_loadable(fmt, refused, out)
    if not args.brief:
        for i, (m, line) in enumerate(zip(loaded.messages, loaded.lines)):
            print(f"  [{i}] line {line}: {json.dumps(to_openai(m), ensure_ascii=False)}", file=out)
    print("the contract's message-level rules on this request (the others need the session's event log):", file=out)
    _print_rules(violations, lambda v: _where(v, lambda line: line), out, codes=[c for c in rules if c in _selection(args).rules])
    rejected = [v for v in violations if v.level is Level.REJECT]
    if judged is not None:
        from .provider_check import print_verdict, verdict_line

        print_verdict(judged, out)
        others = len(violations) - len(rejected)
        accepted = verdict_line(judged) + (f"; {others} other finding(s)" if others and judged.accepted else "")
    elif rejected:
        accepted = f"the provider would reject it: {len(violations)} violation(s)"
    elif violations:
        accepted = f"the provider would accept it, but it loses context: {len(violations)} violation(s)"
    else:
        accepted = "the provider would accept it"
    print("verdict: " + _unloadable(fmt, refused) + accepted + ("" if runtime_skips else _skipped(loaded.report)), file=out)
    return code


def _check_projector(args: argparse.Namespace, fmt: str, out: TextIO) -> int:
    from ctxspec.contract import check_session, json_projector

    from .formats import load

    imp = load(args.log, format=fmt, lenient=args.lenient)
    with _under_test(args) as (projector, other, label):
        violations = check_session(imp.log, projector, policy=_policy(args), select=_selection(args), elsewhere=other)
    code = 1 if violations else 0
    if args.json:
        findings = [_violation(v, imp.call_origin(v.line, v.call) if v.line else None) for v in violations]
        _emit_json(_check_doc(args, code, imp.format, "projector", imp.report, RULES, findings, None, None, projector=label, events=len(imp.log)), out)
        return code
    print(f"{_name(args.log)}: {imp.format}, {len(imp.log)} events, projector {label}, policy {_policy(args).name}", file=out)

    _print_rules(violations, lambda v: _where(v, lambda line: imp.call_origin(line, v.call)), out, codes=[c for c in RULES if c in _selection(args).rules])
    print("verdict: " + ("clean" if not violations else f"{len(violations)} violation(s)") + _skipped(imp.report), file=out)
    return code


# -- repair --------------------------------------------------------------------


def cmd_repair(args: argparse.Namespace, out: TextIO) -> int:
    from .output import atomic_output, in_place_output

    if args.in_place and args.output:
        _fail("repair: give -o OUT or --in-place, not both")
    if not args.in_place and not args.output:
        _fail("repair needs -o OUT (or --in-place FILE, which keeps a backup): the input is never modified otherwise")
    if args.in_place and args.log == STDIN:
        _fail("repair --in-place needs a file, not standard input")
    if args.json and args.output == STDIN:
        _fail("--json and -o - both want standard output: write the repaired file elsewhere")
    if args.output and args.output != STDIN and args.log != STDIN and os.path.exists(args.output) and os.path.samefile(args.output, args.log):
        _fail(f"{args.output}: is the input; repair never modifies its input (write elsewhere, or use --in-place)")
    report_to = _report_stream(args.output, out)
    fmt = _format_of(args.log, args.format)
    wrote = True
    if args.output == STDIN:
        changes, remaining = _repair_into(args, fmt, sys.stdout.buffer)
    elif args.in_place:
        with in_place_output(args.log, backup_suffix=args.backup, force=args.force, purpose="repair") as sink:
            changes, remaining = _repair_into(args, fmt, sink)
            if not changes:
                sink.discard()  # no change: the file and its folder stay as they are, no backup
                wrote = False
    else:
        with atomic_output(args.output, force=args.force, purpose="repair") as sink:
            changes, remaining = _repair_into(args, fmt, sink)
    code = 1 if remaining else 0
    target = args.log if args.in_place else args.output
    backup = args.log + args.backup if args.in_place and wrote else None
    if args.json:
        _emit_json(
            _doc(
                "repair",
                code,
                file=args.log,
                format=fmt,
                output=target,
                in_place=bool(args.in_place),
                backup=backup,
                wrote=wrote,
                changes=[{"line": line or None, "action": action, "detail": detail} for line, action, detail, _ in changes],
                remaining=list(remaining),
            ),
            out,
        )
        return code
    where = "<stdout>" if target == STDIN else target
    if wrote:
        kept = f" (the original is kept as {backup})" if backup else ""
        print(f"{_name(args.log)}: {fmt}: {len(changes)} change(s); wrote {where}{kept}", file=report_to)
    else:
        print(f"{_name(args.log)}: {fmt}: no change; {where} left as it was", file=report_to)
    for _, action, detail, where in changes:
        print(f"  {where}: {action}: {detail}", file=report_to)
    if remaining:
        print(f"left as it was ({len(remaining)}): the repaired file still needs these", file=report_to)
        for r in remaining:
            print(f"  {r}", file=report_to)
        return 1
    if wrote and not changes:
        print("  nothing to repair: the output is a copy of the input", file=report_to)
    return 0


def _repair_into(args: argparse.Namespace, fmt: str, sink: BinaryIO) -> tuple[list[tuple[int, str, str, str]], list[str]]:
    """Repair ``args.log`` into ``sink``: ``(changes as (line, action, detail, where), what is left)``."""
    from .formats.base import open_input
    from .formats.messages import MESSAGE_FORMATS, repair_messages_file, runtime_reads_leniently
    from .formats.repair import repair_stream

    if fmt in MESSAGE_FORMATS:
        # as check judges it: Kimi CLI skips the lines it cannot read, so repair removes them
        text, changes, remaining_v = repair_messages_file(args.log, fmt, lenient=args.lenient or runtime_reads_leniently(fmt))
        sink.write(text.encode("utf-8", "surrogateescape"))
        sink.flush()
        split = [_split_change(c) for c in changes]
        return [(line, action, detail, f"line {line}" if line else "at the end of the file") for line, action, detail in split], [str(v) for v in remaining_v]
    with open_input(args.log) as source:
        result = repair_stream(source, fmt, sink, lenient=args.lenient, path=args.log)
    sink.flush()
    return [(c.line, c.action, c.detail, c.where) for c in result.changes], list(result.remaining_text)


def _split_change(text: str) -> tuple[int, str, str]:
    """A message-format change line ``line N: action: detail`` as its parts."""
    head, _, rest = text.partition(": ")
    action, _, detail = rest.partition(": ")
    if head.startswith("line ") and head[5:].isdigit():
        return int(head[5:]), action, detail
    return 0, head if not rest else action, text if not rest else detail


# -- project -------------------------------------------------------------------


def cmd_project(args: argparse.Namespace, out: TextIO) -> int:
    from ctxspec.messages import messages_to_openai

    from .formats import load
    from .formats.messages import MESSAGE_FORMATS, load_messages, runtime_reads_leniently
    from .projector import project

    fmt = _format_of(args.log, args.format)
    if fmt in MESSAGE_FORMATS:  # the file holds the message list: as the runtime sends it
        loaded = load_messages(args.log, fmt, lenient=args.lenient or runtime_reads_leniently(fmt))
        messages: Sequence[Message] = loaded.messages
        report = loaded.report
    else:
        imported = load(args.log, format=fmt, lenient=args.lenient)
        messages, report = project(imported.log, _policy(args)), imported.report
    for note in [*report.notes, *report.unreadable]:  # what was not projected, and why: never silently
        print(f"ctxcontract: note: {_name(args.log)}: {note}", file=sys.stderr)
    if args.to:
        from .render import render

        text = json.dumps(render(messages, args.to), ensure_ascii=False, indent=1) + "\n"
    else:
        text = json.dumps(messages_to_openai(messages), ensure_ascii=False, indent=1) + "\n"
    _write(args.output or STDIN, text, force=args.force, purpose="project", stdout=out)
    return 0


# -- counterexamples and verify --------------------------------------------------


def _session_text(found: ContractViolation, fmt: str, projector: ProjectorFn) -> str:
    """The counterexample in a runtime's own format.

    Event formats hold the session itself.  ``kimi-context`` holds the message
    list a runtime stores: there it is the request the projector under test
    built, which is what that runtime would load and send.
    """
    from ctxspec.events import dumps_log

    from .formats import EVENT_FORMATS, export_text
    from .formats.messages import export_messages

    if fmt == "ctxcontract":
        return dumps_log(found.log)
    if fmt in EVENT_FORMATS:
        return export_text(found.log, fmt)
    return export_messages(projector(found.log), fmt)


def _report(found: ContractViolation, out: TextIO, output: str | None, force: bool, fmt: str, projector: ProjectorFn, picture: str | None = None, label: str = "") -> None:
    from ctxspec.events import dumps_log

    from .projector import project

    report_to = _report_stream(output, out)
    print("rules broken:", file=report_to)
    for v in found.violations:
        print(f"  {v}", file=report_to)
    print(f"\ncounterexample session ({len(found.log) - 1} events after session.meta):", file=report_to)
    report_to.write(dumps_log(found.log))
    print("\nreference projection of that session (what a correct projector sends):", file=report_to)
    _print_messages(project(found.log), report_to)
    if output:
        _write(output, _session_text(found, fmt, projector), force=force, purpose="counterexample", stdout=out)
        if output != STDIN:
            print(f"\nwrote {output} ({fmt})", file=report_to)
    if picture:
        from .show.command import projector_pictures

        projector_pictures([picture], [(found.log, found.violations, f"counterexample: {label}")], projector, label=label, policy=None, force=force, out=out)
        print(f"picture: {picture}", file=report_to)


def _hypothesis_files(args: argparse.Namespace) -> dict[str, Any]:
    """Hypothesis's example database only where the user asked for one (never the working folder).

    Hypothesis also keeps caches (its Unicode tables) in ``.hypothesis/`` of
    the working folder; they go to the user's cache folder instead, unless
    ``HYPOTHESIS_STORAGE_DIRECTORY`` says where.
    """
    if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        from hypothesis.configuration import set_hypothesis_home_dir

        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        set_hypothesis_home_dir(os.path.join(cache, "ctxcontract", "hypothesis"))
    if getattr(args, "database", None):
        from hypothesis.database import DirectoryBasedExampleDatabase

        return {"database": DirectoryBasedExampleDatabase(args.database)}
    return {"database": None}


def cmd_counterexample(args: argparse.Namespace, out: TextIO) -> int:
    from .mutants import MUTANTS
    from .output import check_output

    if args.list or not args.mutant:
        for name, m in MUTANTS.items():
            print(f"{name:<40} {m.breaks}", file=out)
        if not args.list:
            print("ctxcontract: error: counterexample needs --mutant NAME (or --list)", file=sys.stderr)
        return 0 if args.list else 2
    mutant = MUTANTS.get(args.mutant)
    if mutant is None:
        _fail(f"unknown mutant {args.mutant!r}; `ctxcontract counterexample --list` lists them")
    if args.output and args.output != STDIN:
        check_output(args.output, force=args.force)  # before the search, not after it
    if args.picture:
        _picture_target(args.picture, args.force)
    if args.shortest:
        return _shortest(args, mutant, out)
    from ctxspec.checker import find_counterexample

    with _stop_between_programs():
        found = find_counterexample(mutant.project, incremental=mutant.cls, profile=args.profile, on_program=_stop_point, **_hypothesis_files(args))
    report_to = _report_stream(args.output, out)
    if found is None:
        print(f"mutant {args.mutant} survived the {args.profile} profile: a hole in the model", file=report_to)
        return 1
    print(f"mutant {args.mutant}: {mutant.breaks}", file=report_to)
    _report(found, out, args.output, args.force, args.format, mutant.project, args.picture, f"mutant {args.mutant}")
    return 0


def _shortest(args: argparse.Namespace, mutant: Mutant, out: TextIO) -> int:
    from ctxspec.errors import ContractViolation
    from ctxspec.exhaustive import shortest_counterexample

    report_to = _report_stream(args.output, out)
    for slots in (2, 3):
        found = shortest_counterexample(mutant.project, incremental=mutant.cls, rules=mutant.rules, max_length=args.max_length, slots=slots)
        if found is not None:
            break
    if found is None:
        print(f"no session of at most {args.max_length} events (2 or 3 call slots) breaks {args.mutant}", file=report_to)
        return 1
    print(f"mutant {args.mutant}: {mutant.breaks}", file=report_to)
    print(
        f"shortest: {found.length} events after session.meta ({slots} call slots); {found.checked:,} logs checked "
        f"in {found.seconds:.1f}s, every shorter one passes: minimal over the enumerated sessions (docs/proof.md)",
        file=report_to,
    )
    _report(ContractViolation(found.failure.violations, found.log), out, args.output, args.force, args.format, mutant.project, args.picture, f"mutant {args.mutant}")
    return 0


def free_name(stem: str, ext: str) -> str:
    """``stem.ext``, or ``stem-1.ext``, ``stem-2.ext``, ...: the first that does not exist."""
    name, n = f"{stem}{ext}", 0
    while os.path.lexists(name):
        n += 1
        name = f"{stem}-{n}{ext}"
    return name


class _Progress:
    """Programs run, their rate and the findings so far, on one terminal line."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.programs = 0
        self.events = 0
        self.findings = 0
        self.start = time.perf_counter()
        self._shown = 0.0

    def program(self, events: int) -> None:
        _stop_point(events)
        self.programs += 1
        self.events += events
        now = time.perf_counter()
        if self.stream is not None and now - self._shown >= 0.2:
            self._shown = now
            self.stream.write(f"\r{self.line()}")
            self.stream.flush()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def line(self) -> str:
        rate = self.programs / self.seconds if self.seconds > 0 else 0.0
        return f"{self.programs:,} programs ({self.events:,} events), {rate:,.0f}/s, {self.findings} finding(s)"

    def finding(self, finding: object) -> None:
        self.findings += 1

    def close(self) -> None:
        if self.stream is not None and self.programs:
            self.stream.write("\r" + " " * (len(self.line()) + 8) + "\r")
            self.stream.flush()


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from ctxspec.findings import load_accepted

    from .output import check_output

    if args.projector:
        load_callable(args.projector)  # a bad --projector is a usage error before anything else
    policy, select = _policy(args), _selection(args)
    accepted = load_accepted(args.accept) if args.accept else ()
    if args.json and args.output == STDIN:
        _fail("--json and -o - both want standard output: write the counterexample elsewhere")
    if args.output == STDIN and args.keep_going > 1:
        _fail("-o - holds one session: with --keep-going, write the counterexamples to a file (-o cx.jsonl gives cx.jsonl, cx-2.jsonl, ...)")
    if args.output and args.output != STDIN:
        check_output(args.output, force=args.force)  # before the search, not after it
    if args.picture:
        _picture_target(args.picture, args.force)
    from ctxspec.checker import search

    report_to = _report_stream(args.output, out)
    overrides: dict[str, Any] = {"max_examples": args.max_examples} if args.max_examples else {}
    overrides.update(_hypothesis_files(args))
    with _under_test(args) as (projector, other, label):
        if not args.json:
            seed = f", seed {args.seed}" if args.seed is not None else ""
            print(f"verifying {label} against the context contract (policy {policy.name}, profile {args.profile}{seed}) ...", file=report_to)
        progress = _Progress(sys.stderr if sys.stderr.isatty() and not args.json else None)
        try:
            with _stop_between_programs():
                found = search(
                    projector,
                    limit=args.keep_going,
                    accepted=accepted,
                    profile=args.profile,
                    seed=args.seed,
                    on_program=progress.program,
                    on_finding=progress.finding,
                    policy=policy,
                    select=select,
                    elsewhere=other,
                    **overrides,
                )
        except KeyboardInterrupt:
            progress.close()
            print(f"stopped after {progress.line()} in {progress.seconds:.1f}s", file=sys.stderr)
            raise
        progress.close()
        files = _counterexample_files(args, len(found.findings))
        for finding, path in zip(found.findings, files):
            _write(path, _session_text_of(finding.log, args.format, projector), force=args.force and path == args.output, purpose="counterexample", stdout=out)
        pictures: list[str] = []
        if args.picture:  # the projector's output and the reference's, one picture per finding
            from .show.command import picture_files, projector_pictures

            pictures = picture_files(args.picture, len(found.findings))
            titles = [f"verify: finding {n} of {len(found.findings)}: {f.rule} [{f.level.value}]" for n, f in enumerate(found.findings, 1)]
            projector_pictures(pictures, [(f.log, f.violations, t) for f, t in zip(found.findings, titles)], projector, label=label, policy=policy, force=args.force, out=out)
        code = 1 if found.findings else 0
        if args.json:
            _emit_json(_verify_doc(args, code, progress, found.findings, found.judged, files, projector, policy, label), out)
            return code
        for n, (finding, path) in enumerate(zip(found.findings, files), 1):
            _print_finding(f"finding {n} of {len(found.findings)}", finding, path, args.format, projector, policy, report_to)
        for n, path in enumerate(pictures, 1):
            print(f"picture of finding {n}: {path}", file=report_to)
    for finding in found.judged:
        print(f"accepted (--accept): {finding.rule} [{finding.level.value}] {finding.signature!r}: {finding.accepted}", file=report_to)
    tried = f"tried {progress.programs:,} programs ({progress.events:,} events) in {progress.seconds:.1f}s"
    judged = f", {len(found.judged)} accepted finding(s) set aside" if found.judged else ""
    if not found.findings:
        print(f"{tried}: no counterexample found{judged}; the projector kept every rule counted on every session tried", file=report_to)
        return 0
    stop = f" (--keep-going {args.keep_going}: stopped at {args.keep_going})" if len(found.findings) >= args.keep_going else ""
    print(f"{tried}: {len(found.findings)} distinct finding(s){stop}{judged}", file=report_to)
    return 1


def _counterexample_files(args: argparse.Namespace, n: int) -> list[str]:
    """Where each finding's session goes: ``-o OUT`` (or ``counterexample.jsonl``), then ``OUT-2``, ``OUT-3``, ...; never an existing file."""
    if n == 0:
        return []
    first = args.output or free_name("counterexample", ".jsonl")
    if first == STDIN:
        return [first]
    stem, ext = os.path.splitext(first)
    out = [first]
    for k in range(2, n + 1):
        out.append(free_name(f"{stem}-{k}", ext or ".jsonl"))
    return out


def _session_text_of(log: Sequence[Event], fmt: str, projector: ProjectorFn) -> str:
    from ctxspec.errors import ContractViolation

    return _session_text(ContractViolation((), log), fmt, projector)


def _sent(projector: ProjectorFn, log: Sequence[Event]) -> list[dict[str, object]] | str:
    """What the projector under test sends for ``log``, or why it sent nothing."""
    from ctxspec.messages import messages_to_openai

    try:
        return messages_to_openai(projector(log))
    except Exception as exc:  # the projector under test may fail on its own counterexample (C12)
        return f"{type(exc).__name__}: {exc}"


def _differs_at(a: Sequence[object], b: Sequence[object]) -> int | None:
    """The first index where two message lists differ (a missing message counts), or ``None``."""
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b) or a[i] != b[i]:
            return i
    return None


def _print_finding(title: str, finding: Finding, path: str, fmt: str, projector: ProjectorFn, policy: Policy, out: TextIO) -> None:
    from ctxspec.events import dumps_log
    from ctxspec.messages import messages_to_openai

    from .projector import project

    print(f"\n{title}: {finding.rule} {RULES[finding.rule].title} [{finding.level.value}], session shape {finding.signature!r}", file=out)
    for v in finding.violations:
        print(f"  {v}", file=out)
    where = "" if path == STDIN else f", written to {path} ({fmt})"
    print(f"session ({len(finding.log) - 1} events after session.meta{where}):", file=out)
    out.write(dumps_log(finding.log))
    sent = _sent(projector, finding.log)
    ref = messages_to_openai(project(finding.log, policy))
    print(f"what the projector sent at the last step.begin, beside the reference projection under policy {policy.name} (>> first difference):", file=out)
    if isinstance(sent, str):
        print(f"  the projector raised {sent}", file=out)
        _print_messages(project(finding.log, policy), out)
        return
    first = _differs_at(sent, ref)
    for i in range(max(len(sent), len(ref))):
        mark = ">>" if i == first else "  "
        a = json.dumps(sent[i], ensure_ascii=False) if i < len(sent) else "(nothing)"
        b = json.dumps(ref[i], ensure_ascii=False) if i < len(ref) else "(nothing)"
        if a == b:
            print(f"{mark} [{i}] both:      {a}", file=out)
        else:
            print(f"{mark} [{i}] projector: {a}", file=out)
            print(f"{' ' * len(str(i))}      reference: {b}", file=out)
    if first is None:
        print("  (the same messages: the finding is across requests, or the reference makes another allowed choice)", file=out)


def _verify_doc(
    args: argparse.Namespace,
    code: int,
    progress: _Progress,
    findings: Sequence[Finding],
    judged: Sequence[Finding],
    files: Sequence[str],
    projector: ProjectorFn,
    policy: Policy,
    label: str,
) -> dict[str, object]:
    from ctxspec.events import event_to_dict
    from ctxspec.messages import messages_to_openai

    from .projector import project

    results: list[dict[str, object]] = []
    for finding, path in zip(findings, files):
        sent = _sent(projector, finding.log)
        ref = messages_to_openai(project(finding.log, policy))
        results.append(
            {
                "rule": finding.rule,
                "level": finding.level.value,
                "signature": finding.signature,
                "findings": [_violation(v) for v in finding.violations],
                "counterexample": {
                    "file": path,
                    "format": args.format,
                    "events": [event_to_dict(e) for e in finding.log],
                    "projection": None if isinstance(sent, str) else sent,
                    "reference": ref,
                    "first_difference": None if isinstance(sent, str) else _differs_at(sent, ref),
                },
            }
        )
    first = results[0] if results else None
    return _doc(
        "verify",
        code,
        projector=label,
        profile=args.profile,
        policy={"name": policy.name, **policy.knobs()},
        fail_on=args.fail_on,
        rules=sorted(_selection(args).rules, key=list(RULES).index),
        keep_going=args.keep_going,
        seed=args.seed,
        programs=progress.programs,
        events=progress.events,
        seconds=round(progress.seconds, 3),
        findings=[] if first is None else first["findings"],
        counterexample=None if first is None else {k: v for k, v in first["counterexample"].items() if k != "first_difference"},  # type: ignore[attr-defined]
        results=results,
        accepted=[{"rule": f.rule, "level": f.level.value, "signature": f.signature, "reason": f.accepted} for f in judged],
    )


# -- prove, explore, rules ---------------------------------------------------------


def cmd_prove(args: argparse.Namespace, out: TextIO) -> int:
    from ctxspec.z3model import prove_report

    report = prove_report(args.slots, args.depth)
    code = 0 if report.proved else 1
    if not args.json:
        print(report.render(), file=out)
        return code
    b, p, si = report.bmc, report.proof, report.slot_inv
    _emit_json(
        _doc(
            "prove",
            code,
            slots=args.slots,
            depth=args.depth,
            proved=report.proved,
            bmc={"violation": b.found, "trace_length": None if b.trace is None else len(b.trace), "faults": [f.value for f in b.faults], "seconds": round(b.seconds, 3)},
            proof={"status": p.status, "proved": p.proved, "invariant": p.invariant, "rechecked": report.rechecked, "seconds": round(p.seconds, 3)},
            slot_invariant={"views": len(si.views), "safe": si.safe, "seconds": round(si.seconds, 3)},
        ),
        out,
    )
    return code


def _progress_bar(stream: TextIO) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        width = 40
        filled = width * done // total if total else width
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} sessions")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def cmd_explore(args: argparse.Namespace, out: TextIO) -> int:
    from ctxspec.events import event_to_dict
    from ctxspec.exhaustive import explore_contract
    from ctxspec.explore import ALL_VARIANTS

    from .projector import Projector, project

    from functools import partial

    progress = _progress_bar(sys.stderr) if sys.stderr.isatty() and not args.json else None
    policy = _policy(args)
    with _dask(args) as client:
        report = explore_contract(
            args.length,
            partial(project, policy=policy),
            incremental=partial(Projector, policy=policy),
            slots=args.slots,
            progress=progress,
            variants=ALL_VARIANTS if args.variants else None,
            workers=args.workers or 1,
            policy=policy,
            map_chunks=None if client is None else _on_cluster(client),  # the tasks: subtrees of the enumeration
        )
    code = 0 if report.ok else 1
    if args.json:
        _emit_json(
            _doc(
                "explore",
                code,
                length=args.length,
                slots=args.slots,
                variants=bool(args.variants),
                sessions=report.sessions,
                concretized=report.concretized,
                checked=report.checked,
                failed=report.failed,
                seconds=round(report.seconds, 3),
                failures=[
                    {"length": f.length, "events": [event_to_dict(e) for e in f.log], "findings": [_violation(v) for v in f.violations]}
                    for f in report.failures
                ],
            ),
            out,
        )
        return code
    print(f"reference projector{'' if policy.name == 'reference' else f' (policy {policy.name})'}, every abstract session: {report}", file=out)
    for failure in report.failures:
        print(f"\nfailing session ({failure.length} events):", file=out)
        out.write(failure.jsonl())
        for v in failure.violations:
            print(f"  {v}", file=out)
    return code


@contextmanager
def _dask(args: argparse.Namespace) -> Iterator[Client | None]:
    """The Dask cluster ``--scheduler`` or ``--dask-workers`` asks for (None: neither; the work stays here)."""
    if args.scheduler is None and args.dask_workers is None:
        yield None
        return
    if args.workers is not None:
        _fail("--workers counts processes on this machine; with --scheduler or --dask-workers the Dask workers do the work")
    from .distributed import BackendError, cluster

    try:
        with cluster(args.scheduler, args.dask_workers) as client:
            yield client
    except BackendError as exc:
        _fail(str(exc))


def _on_cluster(client: Client) -> OnCluster:
    from .distributed import OnCluster

    return OnCluster(client)


def _dask_options(p: argparse.ArgumentParser) -> None:
    """``--scheduler`` and ``--dask-workers``: the same work as Dask tasks (the ``dask`` extra)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="run the work as tasks on the Dask scheduler at ADDRESS (tcp://host:8786; needs pip install 'ctxcontract[dask]')")
    where.add_argument("--dask-workers", type=_at_least(1), metavar="N", help="run the work as tasks on a Dask LocalCluster of N worker processes (needs pip install 'ctxcontract[dask]')")


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    from .show.command import cmd_show as show

    return show(args, out)


def _picture_option(p: argparse.ArgumentParser, what: str, *, force: bool = True) -> None:
    """``--picture PATH`` (and, for a command with no other output file, ``--force``)."""
    p.add_argument("--picture", metavar="PATH", help=f"{what}; PATH.svg an SVG picture, any other name an HTML page (docs/show.md)")
    if force:
        p.add_argument("--force", action="store_true", help="replace the --picture file if it exists")


def cmd_scan(args: argparse.Namespace, out: TextIO) -> int:
    from .scan import cmd_scan as scan

    return scan(args, out)


def cmd_rules(args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        from ctxspec.contract import MESSAGE_RULES

        rules = [
            {"code": r.code, "title": r.title, "statement": r.statement, "level": r.level.value, "message_level": r.code in MESSAGE_RULES} for r in RULES.values()
        ]
        _emit_json(_doc("rules", 0, rules=rules), out)
        return 0
    for code, rule in RULES.items():
        print(f"{code:<4} {rule.title:<24} {rule.level.value:<7} {rule.statement}", file=out)
    return 0


# -- the parser ------------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilogs' examples as written."""


def _sub(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) + "\n\n" + EXIT_CODES
    return sub.add_parser(name, help=help, description=description, epilog=epilog, formatter_class=_Formatter)


def _judging(p: argparse.ArgumentParser, *, select: bool = True) -> None:
    """``--policy`` (and ``--fail-on``, ``--rules``): what is judged, and which findings count."""
    from ctxspec.policy import PRESETS

    p.add_argument("--policy", metavar="NAME|FILE", help=f"the runtime's declared policy: a preset ({', '.join(PRESETS)}) or a .toml file (docs/policies.md); default reference")
    if select:
        levels = ("reject", "loss", "cache", "policy")
        p.add_argument("--fail-on", choices=levels, default="policy", help="count findings of this level and worse (reject > loss > cache > policy; default policy: every finding)")
        p.add_argument("--rules", metavar="C1,C2,...", help="count findings of these rules only (default: every rule)")
        p.add_argument("--provider", choices=PROVIDER_NAMES, help="whose 400 the reject level is: that provider's own rules decide it, with its error text (docs/providers.md)")


def _under_test_options(group: argparse._MutuallyExclusiveGroup, lead: str) -> None:
    group.add_argument("--projector", metavar="MOD:FN", help=lead + "a Python function, module:function or file.py:function (event dicts -> OpenAI message dicts)")
    group.add_argument(
        "--projector-cmd",
        nargs=argparse.REMAINDER,
        metavar="CMD",
        help=lead + "a command, in any language, that speaks the projector protocol (docs/protocol.md); it takes the rest of the line, so put it last",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _timeout(p: argparse.ArgumentParser) -> None:
    from .protocol import DEFAULT_TIMEOUT

    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="--projector-cmd: seconds to wait for each answer; no answer is a C12 finding (default 10)")


def build_parser() -> argparse.ArgumentParser:
    formats = list(FORMATS)
    profiles = sorted(PROFILES)
    parser = argparse.ArgumentParser(
        prog="ctxcontract",
        description="The context contract of LLM agent runtimes: check, repair and project session files; verify a projector against the model.",
        epilog="'-' is standard input or output wherever a file is read or written.\n`ctxcontract COMMAND --help` shows each command's options and an example.\n\n" + EXIT_CODES,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"ctxcontract {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(
        sub,
        "check",
        "read a session file (any known format) and give the verdict rule by rule",
        "Read a session file in any known format (detected, or --format) and say, rule by rule and by the file's own lines,\n"
        "where a naive projection of it would not be sendable. A message-list file (Kimi CLI context.jsonl, a captured\n"
        "OpenAI Chat or Responses, Anthropic or Gemini request) is judged as the runtime sends it; --provider P judges it\n"
        "by that provider's own rules and prints the error it would answer.",
        ["ctxcontract check examples/kimi-wire/todolist3.jsonl --request examples/kimi-wire/todolist3-request.json", "ctxcontract check examples/requests/gemini-split-responses.json --provider gemini", "gunzip -c session.jsonl.gz | ctxcontract check - --json"],
    )
    p.add_argument("log", metavar="FILE", help="the session file ('-': standard input)")
    p.add_argument("--format", choices=formats, help="the file's format; detected when not given")
    p.add_argument("--lenient", action="store_true", help="skip and count unreadable lines instead of stopping at the first (the verdict says how many)")
    p.add_argument("--request", metavar="CAPTURED", help="a request your runtime sent (OpenAI Chat or Responses, Anthropic or Gemini JSON), judged as a projection of the log: what it lacks, adds or misplaces, with the log line of each")
    _under_test_options(p.add_mutually_exclusive_group(), "judge this projector's projection instead of the reference's: ")
    p.add_argument("--brief", action="store_true", help="do not print the projection")
    _judging(p)
    p.add_argument("--json", action="store_true", help="print one JSON document (docs/cli-output.schema.json) instead of text")
    _picture_option(p, "also draw the session, the projection and the findings as a picture (as `show` does)")
    _timeout(p)
    p.set_defaults(run=cmd_check)

    p = _sub(
        sub,
        "repair",
        "write a repaired copy of a session file, in its own format",
        "Write a repaired copy of a session file in its own format, every change listed by the input's line.\n"
        "The copy is created atomically and never replaces a file without --force; --in-place swaps the file\n"
        "atomically and keeps the original beside it as a backup.",
        ["ctxcontract repair examples/kimi-wire/crash-mid-parallel.jsonl -o repaired.wire.jsonl", "ctxcontract repair --in-place ~/.kimi/sessions/abc/wire.jsonl   # keeps wire.jsonl.bak"],
    )
    p.add_argument("log", metavar="FILE", help="the session file ('-': standard input)")
    p.add_argument("-o", "--output", metavar="OUT", help="where to write the repaired copy ('-': standard output)")
    p.add_argument("--in-place", action="store_true", help="replace FILE itself, keeping the original as FILE.bak (see --backup)")
    p.add_argument("--backup", metavar="SUFFIX", default=".bak", help="with --in-place: the backup's suffix (default .bak)")
    p.add_argument("--format", choices=formats, help="the file's format; detected when not given")
    p.add_argument("--lenient", action="store_true", help="drop unreadable lines (each one listed) instead of stopping")
    p.add_argument("--force", action="store_true", help="replace OUT (or, with --in-place, the backup) if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON document (docs/cli-output.schema.json) instead of text")
    p.set_defaults(run=cmd_repair)

    p = _sub(
        sub,
        "project",
        "print the reference projection as OpenAI-chat JSON, or as a provider's request body (--to)",
        "Print what the reference projector sends for a session file (any format check reads), as OpenAI-chat JSON,\n"
        "under a declared policy (--policy). For a message-list file, the messages as the runtime sends them.",
        ["ctxcontract project examples/codex/todolist3.jsonl --policy codex", "ctxcontract project examples/todolist3.jsonl -o request.json", "ctxcontract project examples/kimi-wire/todolist3.jsonl --to anthropic"],
    )
    p.add_argument("log", metavar="FILE", help="the session file ('-': standard input)")
    p.add_argument("-o", "--output", metavar="OUT", help="write the JSON here instead of standard output")
    p.add_argument("--format", choices=formats, help="the file's format; detected when not given")
    p.add_argument("--lenient", action="store_true", help="skip unreadable lines instead of stopping at the first")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--to", choices=PROVIDER_NAMES, metavar="PROVIDER", help=f"the request body for this provider ({', '.join(PROVIDER_NAMES)}), as the reference renders it (docs/providers.md)")
    _judging(p, select=False)
    p.set_defaults(run=cmd_project)

    p = _sub(
        sub,
        "show",
        "draw a session as a picture: its timeline, the projection beside it and what broke (HTML or SVG)",
        "Draw a session file (any format check reads) as one self-contained HTML page or SVG picture: the timeline of\n"
        "turns, steps and tool calls (each call a bar coloured by its fate), steers, crashes, cancels and compactions; the\n"
        "projection at a point beside it, each message linked to the line it came from; and every finding marked on both\n"
        "sides with its rule, level and why (docs/show.md). Nothing is fetched from anywhere.",
        [
            "ctxcontract show examples/kimi-wire/todolist3.jsonl -o todolist3.html",
            "ctxcontract show examples/kimi-wire/todolist3.jsonl --request examples/kimi-wire/todolist3-request.json -o sent.svg",
            "ctxcontract show examples/codex/crash-mid-parallel.jsonl --at 12",
        ],
    )
    p.add_argument("log", metavar="FILE", help="the session file ('-': standard input)")
    p.add_argument("-o", "--output", metavar="OUT", help="OUT.svg: an SVG picture; any other name: an HTML page (default NAME.html in the working folder, never overwritten; '-': standard output)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--format", choices=formats, help="the file's format; detected when not given")
    p.add_argument("--lenient", action="store_true", help="skip unreadable lines instead of stopping at the first")
    p.add_argument("--at", type=_at_least(1), metavar="LINE", help="show the projection a request built after this line of the file sends (default: the first request a projection in log order breaks, else the end of the file)")
    p.add_argument("--request", metavar="CAPTURED", help="draw a request your runtime sent beside the reference projection, what it lacks or adds marked (as check --request)")
    _under_test_options(p.add_mutually_exclusive_group(), "draw this projector's projection beside the reference's, at its first failing request: ")
    _judging(p, select=False)
    _timeout(p)
    p.set_defaults(run=cmd_show)

    p = _sub(
        sub,
        "counterexample",
        "a shrunk (or the shortest) session that breaks one of the bundled mutants",
        "Find a session that breaks one of the bundled mutant projectors, each a real bug class: shrunk from the\n"
        "stateful checker's find, or with --shortest the shortest one by exhaustive search.",
        ["ctxcontract counterexample --list", "ctxcontract counterexample --mutant half_call_sent --shortest --format kimi-wire -o cx.wire.jsonl"],
    )
    p.add_argument("--mutant", metavar="NAME", help="the mutant to break (--list lists them)")
    p.add_argument("--list", action="store_true", help="list the mutants")
    p.add_argument("-o", "--output", metavar="OUT", help="write the session here ('-': standard output; the report then goes to stderr)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--profile", choices=profiles, default="ci", help="Hypothesis profile (default ci: 1,000 programs, derandomized)")
    p.add_argument("--database", metavar="DIR", help="keep Hypothesis's example database in DIR (default: none)")
    p.add_argument("--shortest", action="store_true", help="the shortest session, by exhaustive search (iterative deepening)")
    p.add_argument("--max-length", type=_at_least(1), default=6, metavar="N", help="with --shortest: the longest session to try (default 6)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="ctxcontract", help="write the session in this runtime's format (default ctxcontract)")
    _picture_option(p, "also draw the session and the mutant's output beside the reference's", force=False)
    p.set_defaults(run=cmd_counterexample)

    p = _sub(
        sub,
        "verify",
        "run the stateful checker against your projector",
        "Run the stateful checker against your projector: generated sessions, the whole contract under your declared\n"
        "policy at every request. It collects up to --keep-going distinct findings (default 1), each shrunk on its\n"
        "own and written to its own file (default counterexample.jsonl, never overwriting), and prints your\n"
        "projector's output beside the reference projection. On a terminal it shows programs run, their rate and\n"
        "findings; it always ends with a count.",
        [
            "ctxcontract verify --projector examples/todolist_bug.py:project -o cx.jsonl",
            "ctxcontract verify --projector adapter.py:project --policy codex --fail-on loss --keep-going 5 --accept judged.toml",
        ],
    )
    _under_test_options(p.add_mutually_exclusive_group(required=True), "")
    p.add_argument("-o", "--output", metavar="OUT", help="write the counterexample here (default: counterexample.jsonl, never overwritten; '-': standard output)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--profile", choices=profiles, default="ci", help="Hypothesis profile (default ci: 1,000 programs, derandomized; fuzz: 10,000)")
    p.add_argument("--max-examples", type=_at_least(1), metavar="N", help="programs to run, overriding the profile")
    p.add_argument("--database", metavar="DIR", help="keep Hypothesis's example database in DIR (default: none)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="ctxcontract", help="write the counterexample in this runtime's format (default ctxcontract)")
    _judging(p)
    p.add_argument("--keep-going", type=_at_least(1), default=1, metavar="N", help="collect up to N distinct findings (rule, level, session shape) before stopping (default 1)")
    p.add_argument("--accept", metavar="FILE", help="findings your team has judged ([[accept]] rule, signature, reason in TOML): set aside, the search goes on")
    p.add_argument("--seed", type=_at_least(0), metavar="N", help="a fresh search from this seed (the profiles are derandomized: without it a rerun tries the same sessions)")
    p.add_argument("--json", action="store_true", help="print one JSON document (docs/cli-output.schema.json) instead of text")
    _picture_option(p, "also draw each finding: its session, and your projector's output beside the reference's (PATH, PATH-2, ...)", force=False)
    _timeout(p)
    p.set_defaults(run=cmd_verify)

    p = _sub(
        sub,
        "prove",
        "Z3: bounded check and unbounded proof of the abstract contract",
        "Z3: bounded model checking of every abstract session up to --depth events, an unbounded proof with\n"
        "constrained Horn clauses (its inductive invariant printed and re-checked), and the per-slot invariant.",
        ["ctxcontract prove", "ctxcontract prove --slots 2 --depth 12 --json"],
    )
    p.add_argument("--slots", type=_at_least(1), default=4, metavar="N", help="call slots of the abstraction (default 4)")
    p.add_argument("--depth", type=_at_least(1), default=30, metavar="K", help="bound of the bounded check (default 30)")
    p.add_argument("--json", action="store_true", help="print one JSON document (docs/cli-output.schema.json) instead of text")
    p.set_defaults(run=cmd_prove)

    p = _sub(
        sub,
        "explore",
        "check the reference projector on every abstract session up to a length",
        "Enumerate every abstract session up to --length events, turn each into a concrete log and check the\n"
        "reference projector on it, rule by rule.",
        ["ctxcontract explore --length 4", "ctxcontract explore --length 5 --variants --workers 2 --json"],
    )
    p.add_argument("--length", type=_at_least(0), required=True, metavar="L", help="the longest session, in events after session.meta")
    p.add_argument("--slots", type=_at_least(1), default=2, metavar="N", help="call slots (default 2)")
    p.add_argument("--variants", action="store_true", help="every id reuse, compaction cut and undo count per session")
    p.add_argument("--workers", type=_at_least(1), metavar="N", help="processes to use (default 1)")
    _dask_options(p)
    _judging(p, select=False)
    p.add_argument("--json", action="store_true", help="print one JSON document (docs/cli-output.schema.json) instead of text")
    p.set_defaults(run=cmd_explore)

    p = _sub(
        sub,
        "scan",
        "check every session file of the runtimes on this machine (or under DIR), one line each",
        "Find every session file in the runtimes' own folders (Kimi Code, Kimi CLI, Codex, Claude Code; each runtime's\n"
        "environment variable is honoured, docs/cli.md lists them) or under each DIR, check each on all cores, and print\n"
        "one line per file: its status (bricked, at risk, unloadable, unreadable, clean), runtime, first finding, and\n"
        "the command that repairs it. A progress bar goes to stderr on a terminal.",
        ["ctxcontract scan", "ctxcontract scan ~/.codex/sessions --json"],
    )
    p.add_argument("folders", nargs="*", metavar="DIR", help="scan every *.jsonl under these folders instead of the runtimes' own (a file is scanned as is)")
    p.add_argument("--workers", type=_at_least(1), metavar="N", help="processes to use (default: every core)")
    _dask_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON document (docs/cli-output.schema.json) instead of text")
    p.set_defaults(run=cmd_scan)  # imports the scanner when run, like every command

    p = _sub(sub, "rules", "list the rules of the contract", "List the rules of the context contract (docs/contract.md has one section each).", ["ctxcontract rules", "ctxcontract rules --json"])
    p.add_argument("--json", action="store_true", help="print one JSON document (docs/cli-output.schema.json) instead of text")
    p.set_defaults(run=cmd_rules)
    return parser


# -- main --------------------------------------------------------------------------------


@contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated`, so that cleanups run (main thread only)."""
    try:
        previous = signal.getsignal(signal.SIGTERM)

        def handler(signum: int, frame: FrameType | None) -> None:
            raise Terminated(signum)

        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, acted on between two generated programs (see :func:`_stop_between_programs`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: Signals that arrived while Hypothesis ran, to act on at the next program's end.
_pending: list[int] = []


def _to_stderr(text: object) -> None:
    print(text, file=sys.stderr)


def _stop_point(events: int) -> None:
    """Called at the end of every generated program: stop here if a signal asked to."""
    if _pending:
        raise _Stopped(_pending[0])


@contextmanager
def _stop_between_programs() -> Iterator[None]:
    """While Hypothesis runs, a first Ctrl-C or SIGTERM stops at the end of the current program.

    (Hypothesis's own reports go to stderr meanwhile.)

    An exception raised from a signal handler lands wherever the program
    is, and inside Hypothesis's own code (while it draws an event, say) it
    is taken for a failure of the run and reported as one.  At the end of a
    program it is the test's own exception, and a KeyboardInterrupt there
    stops the run cleanly.  A second signal acts at once: a projector that
    hangs must not make the command unstoppable.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        if _pending:
            raise _Stopped(signum)
        _pending.append(signum)

    from hypothesis.reporting import with_reporter

    try:
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    try:
        with with_reporter(_to_stderr):  # Hypothesis's own words never mix with our output or --json
            yield
        if _pending:  # arrived after the last program
            raise _Stopped(_pending[0])
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _pending.clear()


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    stream = out if out is not None else sys.stdout
    try:
        with _terminate_on_sigterm():
            args = build_parser().parse_args(argv)
            code: int = args.run(args, stream)
            return code
    except InvalidLog as exc:
        print(f"ctxcontract: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except CtxError as exc:
        print(f"ctxcontract: error: {exc}", file=sys.stderr)
        return 2
    except _Stopped as exc:
        print("ctxcontract: " + ("terminated" if exc.signum == signal.SIGTERM else "interrupted"), file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("ctxcontract: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print("ctxcontract: terminated", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (``| head``): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        name = exc.filename or ""
        print(f"ctxcontract: error: {name}: {exc.strerror}" if name else f"ctxcontract: error: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
