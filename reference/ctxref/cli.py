"""The ``ctxcontract`` command: a thin shell over the library.

Exit codes: 0 clean, 1 violations (or a counterexample found), 2 unusable
input.  Every error the user can cause prints one line naming the file and
line; nothing the user gave is modified, and every file written is written
atomically (a temporary file in the same folder, then a rename) and never
over an existing file without ``--force``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Final, NoReturn, TextIO

from ctxspec.checker import PROFILES, find_counterexample, json_projector, register_profiles
from ctxspec.contract import MESSAGE_RULES, RULES, Violation, check_session
from ctxspec.errors import ContractViolation, CtxError, InvalidLog
from ctxspec.events import Event, dumps_log, load_log
from ctxspec.messages import Message, messages_to_openai, to_openai
from ctxspec.state import validate_log
from ctxspec.exhaustive import explore_contract, shortest_counterexample
from ctxspec.explore import ALL_VARIANTS
from ctxspec.z3model import prove_report

from .formats import EVENT_FORMATS, detect_file, export_text, load, read_text
from .formats.base import ImportReport
from .formats.messages import MESSAGE_FORMATS, check_messages_file, export_messages, load_messages, repair_messages_file, sniff_messages
from .formats.repair import repair_text
from .formats.verdict import Verdict, check_file, request_difference
from .mutants import MUTANTS, Mutant
from .projector import Projector, project

ProjectorFn = Callable[[Sequence[Event]], Sequence[Message]]
#: Formats a counterexample can be written in.
EXPORT_FORMATS: Final = ("ctxcontract", "kimi-wire", "codex", "claude", "kimi-context")

class UsageError(CtxError):
    """A bad command line (exit 2)."""


def _fail(message: str) -> NoReturn:
    raise UsageError(message)


def write_atomic(path: str, text: str, *, force: bool) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    if os.path.isdir(path):
        _fail(f"{path}: is a directory")
    if os.path.exists(path) and not force:
        _fail(f"{path}: already exists (use --force to replace it)")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ctxcontract-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load(path: str) -> tuple[Event, ...]:
    log = load_log(path)
    try:
        validate_log(log)
    except InvalidLog as exc:
        raise exc.at(path) from None
    return log


def load_callable(spec: str) -> Callable[..., object]:
    """``module:function`` or ``path/to/file.py:function``."""
    if ":" not in spec:
        _fail(f"--projector {spec!r}: expected module:function or file.py:function")
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            if not os.path.isfile(module_name):
                _fail(f"{module_name}: no such file")
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


def _print_messages(messages: Sequence[Message], out: TextIO) -> None:
    for i, m in enumerate(messages_to_openai(messages)):
        print(f"  [{i}] {json.dumps(m, ensure_ascii=False)}", file=out)


def _print_violations(violations: Sequence[Violation], out: TextIO) -> None:
    by_rule = {code: [v for v in violations if v.rule == code] for code in RULES}
    for code, rule in RULES.items():
        found = by_rule[code]
        status = "ok" if not found else f"{len(found)} violation(s)"
        print(f"  {code:<4} {rule.title:<24} {status}", file=out)
        for v in found:
            print(f"         - {v}", file=out)


# -- commands ----------------------------------------------------------------


def _print_rules(violations: Sequence[Violation], where: Callable[[Violation], str], out: TextIO, codes: Sequence[str] = tuple(RULES)) -> None:
    shown = {*codes, *(v.rule for v in violations)}  # never hide a finding
    for code in (c for c in RULES if c in shown):
        rule = RULES[code]
        found = [v for v in violations if v.rule == code]
        status = "ok" if not found else f"{len(found)} violation(s)"
        print(f"  {code:<4} {rule.title:<24} {status}", file=out)
        for v in found:
            print(f"         - {where(v)}", file=out)


def _print_report(report: ImportReport, out: TextIO) -> None:
    for note in report.notes:
        print(f"  note: {note}", file=out)
    for bad in report.unreadable:
        print(f"  skipped unreadable {bad}", file=out)


def _format_of(path: str, forced: str | None) -> str:
    """``--format`` or the detected format of ``path`` (message formats first)."""
    if forced:
        if forced not in EVENT_FORMATS and forced not in MESSAGE_FORMATS:
            _fail(f"--format {forced!r}: known formats are {', '.join([*EVENT_FORMATS, *MESSAGE_FORMATS])}")
        return forced
    return sniff_messages(path) or detect_file(path)


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    fmt = _format_of(args.log, args.format)
    if fmt in MESSAGE_FORMATS:
        return _check_messages(args, fmt, out)
    if args.projector:
        return _check_projector(args, fmt, out)
    verdict = check_file(args.log, format=fmt, lenient=args.lenient)
    print(f"{args.log}: {verdict.format}, {verdict.events} events ({verdict.report.summary()})", file=out)
    _print_report(verdict.report, out)
    if not args.brief:
        print(f"projection at the end of the file ({len(verdict.messages)} messages; line = where it comes from):", file=out)
        for i, (m, line) in enumerate(verdict.messages):
            print(f"  [{i}] line {line}: {json.dumps(to_openai(m), ensure_ascii=False)}", file=out)
    hazards = verdict.hazards
    print("rules a naive projection of this log breaks (each repaired by the reference projector):", file=out)
    violations = [Violation(h.rule, str(h)) for h in hazards]
    _print_rules(violations, lambda v: v.message, out)
    code = 1 if hazards else 0
    if args.request:
        code = max(code, _diff_request(args.request, verdict, out))
    print("verdict: " + ("clean" if not hazards else f"{len(hazards)} place(s) need a repair (ctxcontract repair)"), file=out)
    return code


def _diff_request(path: str, verdict: Verdict, out: TextIO) -> int:
    captured = load_messages(path)
    got = tuple(zip(captured.messages, captured.lines))
    diff = request_difference(verdict.messages, got)
    print(f"captured request {path} ({captured.format}, {len(got)} messages) against the reference projection:", file=out)
    if diff is None:
        print("  the same messages", file=out)
        return 0
    for line in diff.describe().splitlines():
        print(f"  {line}", file=out)
    return 1


def _check_messages(args: argparse.Namespace, fmt: str, out: TextIO) -> int:
    if args.projector or args.request:
        _fail(f"{args.log}: {fmt} stores the message list itself; --projector and --request take a session log")
    # Kimi CLI skips lines it cannot read before sending: judge what it sends.
    runtime_skips = fmt == "kimi-context"
    loaded, violations = check_messages_file(args.log, fmt, lenient=args.lenient or runtime_skips)
    print(f"{args.log}: {fmt}, {len(loaded.messages)} messages as the runtime sends them ({loaded.report.summary()})", file=out)
    if runtime_skips and loaded.report.unreadable:
        print("  Kimi CLI skips unreadable lines when it loads this file; so does this verdict", file=out)
    _print_report(loaded.report, out)
    if not args.brief:
        for i, (m, line) in enumerate(zip(loaded.messages, loaded.lines)):
            print(f"  [{i}] line {line}: {json.dumps(to_openai(m), ensure_ascii=False)}", file=out)
    print("the contract's message-level rules on this request (the others need the session's event log):", file=out)

    def where(v: Violation) -> str:
        parts = [f"message {v.index}"] if v.index is not None else []
        if v.line is not None:
            parts.append(f"line {v.line}")
        return f"{v.message} ({', '.join(parts)})" if parts else v.message

    _print_rules(violations, where, out, codes=MESSAGE_RULES)
    print("verdict: " + ("the provider would accept it" if not violations else f"the provider would reject it: {len(violations)} violation(s)"), file=out)
    return 1 if violations else 0


def _check_projector(args: argparse.Namespace, fmt: str, out: TextIO) -> int:
    imp = load(args.log, format=fmt, lenient=args.lenient)
    projector = json_projector(load_callable(args.projector))
    violations = check_session(imp.log, projector, flags=False)
    print(f"{args.log}: {imp.format}, {len(imp.log)} events, projector {args.projector}", file=out)

    def where(v: Violation) -> str:
        parts = [f"message {v.index}"] if v.index is not None else []
        if v.line is not None:
            parts.append(f"line {imp.origin(v.line)}")
        return f"{v.message} ({', '.join(parts)})" if parts else v.message

    _print_rules(violations, where, out)
    print("verdict: " + ("clean" if not violations else f"{len(violations)} violation(s)"), file=out)
    return 1 if violations else 0


def cmd_repair(args: argparse.Namespace, out: TextIO) -> int:
    if not args.output:
        _fail("repair needs -o OUT: the input is never modified")
    if os.path.exists(args.output) and os.path.exists(args.log) and os.path.samefile(args.output, args.log):
        _fail(f"{args.output}: is the input; repair never modifies its input (write elsewhere)")
    if os.path.exists(args.output) and not args.force:
        _fail(f"{args.output}: already exists (use --force to replace it)")
    fmt = _format_of(args.log, args.format)
    if fmt in MESSAGE_FORMATS:
        text, changes, remaining_v = repair_messages_file(args.log, fmt, lenient=args.lenient)
        lines = list(changes)
        remaining = [str(v) for v in remaining_v]
    else:
        result = repair_text(read_text(args.log, lenient=args.lenient), fmt, lenient=args.lenient, path=args.log)
        text, lines, remaining = result.text, [str(c) for c in result.changes], list(result.remaining_text)
    write_atomic(args.output, text, force=args.force)
    print(f"{args.log}: {fmt}: {len(lines)} change(s); wrote {args.output}", file=out)
    for line in lines:
        print(f"  {line}", file=out)
    if remaining:
        print(f"left as it was ({len(remaining)}): the repaired file still needs these", file=out)
        for r in remaining:
            print(f"  {r}", file=out)
        return 1
    if not lines:
        print("  nothing to repair: the output is a copy of the input", file=out)
    return 0


def cmd_project(args: argparse.Namespace, out: TextIO) -> int:
    log = _load(args.log)
    text = json.dumps(messages_to_openai(project(log)), ensure_ascii=False, indent=1) + "\n"
    if args.output:
        write_atomic(args.output, text, force=args.force)
    else:
        out.write(text)
    return 0


def _session_text(found: ContractViolation, fmt: str, projector: ProjectorFn) -> str:
    """The counterexample in a runtime's own format.

    Event formats hold the session itself.  ``kimi-context`` holds the message
    list a runtime stores: there it is the request the projector under test
    built, which is what that runtime would load and send.
    """
    if fmt == "ctxcontract":
        return dumps_log(found.log)
    if fmt in EVENT_FORMATS:
        return export_text(found.log, fmt)
    return export_messages(projector(found.log), fmt)


def _report(found: ContractViolation, out: TextIO, output: str | None, force: bool, fmt: str = "ctxcontract", projector: ProjectorFn = project) -> None:
    print("rules broken:", file=out)
    for v in found.violations:
        print(f"  {v}", file=out)
    print(f"\ncounterexample session ({len(found.log) - 1} events after session.meta):", file=out)
    out.write(dumps_log(found.log))
    print("\nreference projection of that session (what a correct projector sends):", file=out)
    _print_messages(project(found.log), out)
    if output:
        write_atomic(output, _session_text(found, fmt, projector), force=force)
        print(f"\nwrote {output} ({fmt})", file=out)


def cmd_counterexample(args: argparse.Namespace, out: TextIO) -> int:
    if args.list or not args.mutant:
        for name, m in MUTANTS.items():
            print(f"{name:<40} {m.breaks}", file=out)
        return 0 if args.list else 2
    mutant = MUTANTS.get(args.mutant)
    if mutant is None:
        _fail(f"unknown mutant {args.mutant!r}; `ctxcontract counterexample --list` lists them")
    if args.output and os.path.exists(args.output) and not args.force:
        _fail(f"{args.output}: already exists (use --force to replace it)")
    if args.shortest:
        return _shortest(args, mutant, out)
    found = find_counterexample(mutant.project, incremental=mutant.cls, profile=args.profile)
    if found is None:
        print(f"mutant {args.mutant} survived the {args.profile} profile: a hole in the model", file=out)
        return 1
    print(f"mutant {args.mutant}: {mutant.breaks}", file=out)
    _report(found, out, args.output, args.force, args.format, mutant.project)
    return 0


def free_name(stem: str, ext: str) -> str:
    """``stem.ext``, or ``stem-1.ext``, ``stem-2.ext``, ...: the first that does not exist."""
    name, n = f"{stem}{ext}", 0
    while os.path.exists(name):
        n += 1
        name = f"{stem}-{n}{ext}"
    return name


def _shortest(args: argparse.Namespace, mutant: Mutant, out: TextIO) -> int:
    for slots in (2, 3):
        found = shortest_counterexample(mutant.project, incremental=mutant.cls, rules=mutant.rules, max_length=args.max_length, slots=slots)
        if found is not None:
            break
    if found is None:
        print(f"no session of at most {args.max_length} events (2 or 3 call slots) breaks {args.mutant}", file=out)
        return 1
    print(f"mutant {args.mutant}: {mutant.breaks}", file=out)
    print(
        f"shortest: {found.length} events after session.meta ({slots} call slots); {found.checked:,} logs checked "
        f"in {found.seconds:.1f}s, every shorter one passes: minimal over the enumerated sessions (docs/proof.md)",
        file=out,
    )
    _report(ContractViolation(found.failure.violations, found.log), out, args.output, args.force, args.format, mutant.project)
    return 0


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
    if args.length < 0 or args.slots < 1:
        _fail("--length must be at least 0 and --slots at least 1")
    progress = _progress_bar(sys.stderr) if sys.stderr.isatty() else None
    report = explore_contract(
        args.length,
        project,
        incremental=Projector,
        slots=args.slots,
        progress=progress,
        variants=ALL_VARIANTS if args.variants else None,
        workers=args.workers,
    )
    print(f"reference projector, every abstract session: {report}", file=out)
    for failure in report.failures:
        print(f"\nfailing session ({failure.length} events):", file=out)
        out.write(failure.jsonl())
        for v in failure.violations:
            print(f"  {v}", file=out)
    return 0 if report.ok else 1


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    fn = load_callable(args.projector)
    if args.output and os.path.exists(args.output) and not args.force:
        _fail(f"{args.output}: already exists (use --force to replace it)")
    if not args.output:
        args.output = free_name("counterexample", ".jsonl")
    overrides = {"max_examples": args.max_examples} if args.max_examples else {}
    print(f"verifying {args.projector} against the context contract (profile {args.profile}) ...", file=out)
    found = find_counterexample(json_projector(fn), flags=False, profile=args.profile, **overrides)
    if found is None:
        print("no counterexample found: the projector satisfies every rule on every session tried", file=out)
        return 0
    _report(found, out, args.output, args.force, args.format, json_projector(fn))
    return 1


def cmd_prove(args: argparse.Namespace, out: TextIO) -> int:
    if args.slots < 1 or args.depth < 1:
        _fail("--slots and --depth must be at least 1")
    report = prove_report(args.slots, args.depth)
    print(report.render(), file=out)
    return 0 if report.proved else 1


def cmd_rules(args: argparse.Namespace, out: TextIO) -> int:
    for code, rule in RULES.items():
        print(f"{code:<4} {rule.title:<24} {rule.statement}", file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctxcontract", description="The context contract of LLM agent runtimes.")
    sub = parser.add_subparsers(dest="command", required=True)
    formats = [*EVENT_FORMATS, *MESSAGE_FORMATS]
    p = sub.add_parser("check", help="read a session file (any known format) and give the verdict rule by rule")
    p.add_argument("log")
    p.add_argument("--format", choices=formats, help="do not detect the format")
    p.add_argument("--lenient", action="store_true", help="skip and count unreadable lines instead of stopping at the first")
    p.add_argument("--request", help="a captured request (OpenAI or Anthropic JSON) to diff against the reference projection")
    p.add_argument("--projector", help="check this module:function's projection instead of the reference's")
    p.add_argument("--brief", action="store_true", help="do not print the projection")
    p.set_defaults(run=cmd_check)
    p = sub.add_parser("repair", help="write a repaired copy of a session file, in its own format")
    p.add_argument("log")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--format", choices=formats, help="do not detect the format")
    p.add_argument("--lenient", action="store_true", help="drop unreadable lines (each one listed) instead of stopping")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(run=cmd_repair)
    p = sub.add_parser("project", help="print the reference projection as OpenAI-chat JSON")
    p.add_argument("log")
    p.add_argument("-o", "--output")
    p.add_argument("--force", action="store_true")
    p.set_defaults(run=cmd_project)
    profiles = sorted(PROFILES)
    p = sub.add_parser("counterexample", help="a shrunk session that breaks a mutant")
    p.add_argument("--mutant")
    p.add_argument("--list", action="store_true", help="list the mutants")
    p.add_argument("-o", "--output")
    p.add_argument("--force", action="store_true")
    p.add_argument("--profile", choices=profiles, default="ci")
    p.add_argument("--shortest", action="store_true", help="the shortest session, by exhaustive search (iterative deepening)")
    p.add_argument("--max-length", type=int, default=6, help="with --shortest: longest session to try (default 6)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="ctxcontract", help="write the session in this runtime's format")
    p.set_defaults(run=cmd_counterexample)
    p = sub.add_parser("verify", help="run the stateful checker against your projector")
    p.add_argument("--projector", required=True, help="module:function or file.py:function (event dicts -> OpenAI message dicts)")
    p.add_argument("-o", "--output", help="write the counterexample session here (default: counterexample.jsonl, never overwritten)")
    p.add_argument("--force", action="store_true")
    p.add_argument("--profile", choices=profiles, default="ci")
    p.add_argument("--max-examples", type=int)
    p.add_argument("--format", choices=EXPORT_FORMATS, default="ctxcontract", help="write the session in this runtime's format")
    p.set_defaults(run=cmd_verify)
    p = sub.add_parser("prove", help="Z3: bounded check and unbounded proof of the abstract contract")
    p.add_argument("--slots", type=int, default=4, help="call slots of the abstraction (default 4)")
    p.add_argument("--depth", type=int, default=30, help="bound of the bounded check (default 30)")
    p.set_defaults(run=cmd_prove)
    p = sub.add_parser("explore", help="check the reference projector on every abstract session up to a length")
    p.add_argument("--length", type=int, required=True)
    p.add_argument("--slots", type=int, default=2)
    p.add_argument("--variants", action="store_true", help="every id reuse, compaction cut and undo count per session")
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(run=cmd_explore)
    p = sub.add_parser("rules", help="list the rules of the contract")
    p.set_defaults(run=cmd_rules)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    register_profiles()
    stream = out if out is not None else sys.stdout
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args, stream)
        return code
    except InvalidLog as exc:
        print(f"ctxcontract: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except CtxError as exc:
        print(f"ctxcontract: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (``| head``): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        print(f"ctxcontract: error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
