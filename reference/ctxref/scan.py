"""``ctxcontract scan``: every session file on this machine, one line each.

What this module owns: where each runtime keeps its sessions (:data:`RUNTIMES`,
with the environment variable the runtime itself honours), finding the files
there or under folders the user names, judging each file in a worker process,
and the one-line verdict per file.  The judging is the library's: a message
list (Kimi CLI ``context.jsonl``) through
:func:`ctxref.formats.messages.check_messages_file`, an event log through
:func:`ctxref.formats.verdict.check_file`, and the runtime's own loader's
refusals through ``ctxref.formats.loadable.refusals`` when that module exists.

What it must not know: any format's fields, or what a rule means.

A file's status is the worst of what is found, in this order:

* ``unloadable``: the runtime's own loader refuses it (or crashes on it);
* ``unreadable``: we cannot parse it (the line says which line, never a traceback);
* ``bricked``: the next request will be rejected (a reject-level finding);
* ``at risk``: the next request loses context or the prompt cache (a loss- or cache-level finding);
* ``clean``: nothing of the above (policy-level findings do not count: they are a choice).
"""

from __future__ import annotations

import argparse
import glob
import importlib
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, TextIO

if TYPE_CHECKING:
    from ctxspec.errors import InvalidLog
    from ctxspec.rules import Level

#: The statuses, worst first.
STATUSES: Final = ("unloadable", "unreadable", "bricked", "at risk", "clean")
#: Statuses that make the exit code 1 (every one but ``clean``).
FAILING: Final = frozenset(STATUSES) - {"clean"}
#: The runtime that writes each format (for files found under a folder the user names).
FORMAT_RUNTIMES: Final[Mapping[str, str]] = {
    "kimi-wire": "Kimi Code",
    "kimi-context": "Kimi CLI",
    "codex": "Codex",
    "claude": "Claude Code",
    "ctxcontract": "ctxcontract",
    "openai": "OpenAI request",
    "anthropic": "Anthropic request",
    "openai-responses": "OpenAI Responses request",
}


@dataclass(frozen=True, slots=True)
class Runtime:
    """Where one runtime keeps its sessions: ``$env`` or ``~/default``, then ``patterns`` under it."""

    name: str
    env: str  # the variable the runtime itself reads for its home folder
    default: str  # under the user's home folder
    patterns: tuple[str, ...]  # glob patterns under the home folder, one per session-file layout


#: Each runtime's default folder and layout (docs/cli.md gives the source of each).
RUNTIMES: Final[tuple[Runtime, ...]] = (
    Runtime("Kimi Code", "KIMI_CODE_HOME", ".kimi-code", ("sessions/*/*/agents/*/wire.jsonl",)),
    Runtime("Kimi CLI", "KIMI_SHARE_DIR", ".kimi", ("sessions/*/*/context.jsonl", "sessions/*/*.jsonl")),
    Runtime("Codex", "CODEX_HOME", ".codex", ("sessions/*/*/*/rollout-*.jsonl", "archived_sessions/rollout-*.jsonl")),
    Runtime("Claude Code", "CLAUDE_CONFIG_DIR", ".claude", ("projects/*/*.jsonl", "projects/*/*/subagents/agent-*.jsonl")),
)


@dataclass(frozen=True, slots=True)
class Root:
    """A folder scanned: a runtime's home (``runtime`` set) or a folder the user named."""

    path: str
    runtime: str | None
    source: str  # how the folder was chosen: "$CODEX_HOME", "default", "argument"
    exists: bool


@dataclass(frozen=True, slots=True)
class Finding:
    """What decided a file's status: a rule broken, a loader's refusal, or why it cannot be read."""

    line: int | None  # the file's own line; None: the end of the file, or no line
    message: str
    rule: str | None = None
    level: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """The verdict on one file."""

    path: str
    runtime: str
    format: str | None
    status: str
    first: Finding | None  # the first finding of the level that decided the status
    findings: int  # findings that count (policy-level ones do not)
    repair: str | None  # the command that repairs it, when there is one


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file under a folder the user named that is no session file (no format claims it, or a Kimi CLI UI log)."""

    path: str
    why: str


class _Refusal(Protocol):
    line: int
    why: str


# -- finding the files -----------------------------------------------------------------


def home_folder(env: Mapping[str, str]) -> str:
    return env.get("HOME") or os.path.expanduser("~")


def default_roots(env: Mapping[str, str] | None = None) -> list[tuple[Runtime, Root]]:
    """Each runtime's home folder, from its own environment variable (if set and not empty) or its default."""
    env = os.environ if env is None else env
    out = []
    for rt in RUNTIMES:
        chosen = env.get(rt.env, "")
        path, source = (os.path.expanduser(chosen), "$" + rt.env) if chosen else (os.path.join(home_folder(env), rt.default), "default")
        out.append((rt, Root(path, rt.name, source, os.path.isdir(path))))
    return out


def runtime_files(rt: Runtime, root: str) -> list[str]:
    """The session files of ``rt`` under its home folder ``root``, sorted."""
    found: set[str] = set()
    for pattern in rt.patterns:
        found.update(path for path in glob.glob(os.path.join(glob.escape(root), pattern)) if os.path.isfile(path))
    return sorted(found)


def folder_files(folder: str) -> list[str]:
    """Every ``*.jsonl`` regular file under ``folder`` (symlinked folders not followed), sorted."""
    if os.path.isfile(folder):
        return [folder]
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in filenames:
            path = os.path.join(dirpath, name)
            if name.endswith(".jsonl") and os.path.isfile(path):
                out.append(path)
    return sorted(out)


#: One file to judge: its path and its runtime (None: tell it by the format; files no format claims are skipped).
Task = tuple[str, str | None]


def tasks_for(folders: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[list[Root], list[Task]]:
    """The folders to scan and the files in them: the runtimes' own, or ``folders``."""
    roots: list[Root] = []
    tasks: list[Task] = []
    if not folders:
        for rt, root in default_roots(env):
            roots.append(root)
            if root.exists:
                tasks += [(path, rt.name) for path in runtime_files(rt, root.path)]
        return roots, tasks
    seen: set[str] = set()
    for folder in folders:
        roots.append(Root(folder, None, "argument", os.path.exists(folder)))
        for path in folder_files(folder):
            if path not in seen:
                seen.add(path)
                tasks.append((path, None))
    return roots, tasks


# -- judging one file (in a worker process) --------------------------------------------


def _load_refusals() -> Callable[[str, str], Sequence[_Refusal]] | None:
    """``ctxref.formats.loadable.refusals``, or None while that module does not exist."""
    try:
        module = importlib.import_module("ctxref.formats.loadable")
    except ModuleNotFoundError as exc:
        if exc.name == "ctxref.formats.loadable":
            return None
        raise
    fn: Callable[[str, str], Sequence[_Refusal]] = module.refusals
    return fn


def backup_suffix(path: str) -> str:
    """The first ``--backup`` suffix free beside ``path``: ``.bak``, then ``.bak.1``, ... (nothing is replaced)."""
    suffix, n = ".bak", 0
    while os.path.lexists(path + suffix):
        n += 1
        suffix = f".bak.{n}"
    return suffix


def repair_command(path: str, *, lenient: bool = False) -> str:
    """``ctxcontract repair --in-place FILE``: the file swapped atomically, the original kept beside it."""
    suffix = backup_suffix(path)
    options = ["--in-place"] + (["--lenient"] if lenient else []) + ([] if suffix == ".bak" else ["--backup", suffix])
    return shlex.join(["ctxcontract", "repair", *options, path])


def _status(levels: Iterable[tuple[Level, int | None, Finding]]) -> tuple[str, Finding | None, int]:
    """The status from the findings' levels: ``(status, first deciding finding, findings that count)``."""
    from ctxspec.rules import Level

    counted = [(lv, line, f) for lv, line, f in levels if lv is not Level.POLICY]
    if not counted:
        return "clean", None, 0
    worst = max(lv.severity for lv, _, _ in counted)
    deciding = [(line, f) for lv, line, f in counted if lv.severity == worst]
    first = min(deciding, key=lambda d: d[0] if d[0] else sys.maxsize)[1]  # by line; the end of the file last
    return ("bricked" if worst == Level.REJECT.severity else "at risk"), first, len(counted)


def judge(path: str, runtime: str | None) -> Result | Skipped:
    """The verdict on one file; never raises (a crash of ours is the file's ``unreadable``)."""
    try:
        return _judge(path, runtime)
    except Exception as exc:  # noqa: BLE001 -- one line per file, never a traceback
        return Result(path, runtime or "?", None, "unreadable", Finding(None, f"ctxcontract failed on it: {type(exc).__name__}: {exc}"), 0, None)


def _judge(path: str, runtime: str | None) -> Result | Skipped:
    from ctxspec.errors import InvalidLog

    from .formats import detect_format
    from .formats.messages import MESSAGE_FORMATS, check_messages_file, runtime_reads_leniently
    from .formats.verdict import check_file

    try:
        fmt = detect_format(path)
    except InvalidLog as exc:
        if runtime is None and exc.message.startswith(_NOT_A_SESSION):
            return Skipped(path, exc.message)
        if runtime is None and _kimi_cli_ui_log(path):
            return Skipped(path, _UI_LOG)
        bad = _first_bad_line(path) if exc.line is None else None
        line, why = (bad.line, bad.message) if bad is not None else (exc.line, exc.message)
        return Result(path, runtime or "?", None, "unreadable", Finding(line, why), 0, None)
    ask_format = runtime is None
    runtime = runtime or FORMAT_RUNTIMES.get(fmt, fmt)
    refusals = _load_refusals()
    refused: list[_Refusal] = []
    try:
        refused = list(refusals(path, fmt)) if refusals is not None else []
        if fmt in MESSAGE_FORMATS:
            # Kimi CLI skips lines it cannot read before sending: judge what it sends (as ``check`` does).
            _, violations = check_messages_file(path, fmt, lenient=runtime_reads_leniently(fmt))
            levels = [(v.level, v.line, Finding(v.line, v.message, v.rule, v.level.value)) for v in violations]
        else:
            verdict = check_file(path, format=fmt)
            levels = [(h.level, h.line or None, Finding(h.line or None, h.what, h.rule, h.level.value)) for h in verdict.hazards]
    except InvalidLog as exc:
        if refused:
            return _unloadable(path, runtime, fmt, refused)
        if ask_format and _kimi_cli_ui_log(path):
            return Skipped(path, _UI_LOG)
        return Result(path, runtime, fmt, "unreadable", Finding(exc.line, exc.message), 0, repair_command(path, lenient=True) if exc.line else None)
    if refused:
        return _unloadable(path, runtime, fmt, refused)
    status, first, counted = _status(levels)
    return Result(path, runtime, fmt, status, first, counted, None if status == "clean" else repair_command(path))


#: What detection says of a readable file that no format claims, or an empty one: under a folder
#: the user names, that is some other JSON Lines file, not a broken session.
_NOT_A_SESSION: Final = ("cannot tell the format", "empty file")
_UI_LOG: Final = "a Kimi CLI wire.jsonl: the UI's event log, not the model's context (the context.jsonl beside it is the session)"


def _first_bad_line(path: str) -> InvalidLog | None:
    """The first line a strict read stops at (detection reads leniently, so it may name none)."""
    from ctxspec.errors import InvalidLog

    from .formats.base import ImportReport, open_input, read_records

    try:
        with open_input(path) as handle:
            for _ in read_records(handle, ImportReport(path=path), lenient=False):
                pass
    except InvalidLog as exc:
        return exc
    return None


def _kimi_cli_ui_log(path: str) -> bool:
    """Whether the file is the legacy Kimi CLI's UI event log (its header looks like Kimi Code's)."""
    from itertools import islice

    from .formats.base import ImportReport, open_input, read_records
    from .formats.kimi_wire import is_kimi_cli_wire

    with open_input(path) as handle:
        return any(is_kimi_cli_wire(r.obj) for r in islice(read_records(handle, ImportReport(path=path), lenient=True), 3))


def _unloadable(path: str, runtime: str, fmt: str, refused: Sequence[_Refusal]) -> Result:
    """Unloadable, with the repair that fixes it: ``repair`` mends what Kimi CLI refuses, and
    ``repair --lenient`` drops the lines a Kimi Code reader cannot parse; nothing else is repaired."""
    first = min(refused, key=lambda r: r.line or sys.maxsize)
    command: str | None = None
    if fmt == "kimi-context":
        command = repair_command(path)
    elif fmt == "kimi-wire" and {r.line for r in refused} <= _unreadable_lines(path):
        command = repair_command(path, lenient=True)
    return Result(path, runtime, fmt, "unloadable", Finding(first.line or None, first.why), len(refused), command)


def _unreadable_lines(path: str) -> set[int]:
    """The lines a lenient read skips as unreadable (what ``repair --lenient`` drops)."""
    from .formats.base import ImportReport, open_input, read_records

    report = ImportReport(path=path)
    with open_input(path) as handle:
        for _ in read_records(handle, report, lenient=True):
            pass
    return {s.line for s in report.unreadable}


def _judge_task(task: Task) -> Result | Skipped:
    return judge(*task)


def judge_all(tasks: Sequence[Task], *, workers: int = 1, progress: Callable[[int, int], None] | None = None) -> list[Result | Skipped]:
    """Judge every file, on ``workers`` processes (1: in this one); in the order of ``tasks``."""
    total = len(tasks)
    results: list[Result | Skipped] = []
    if progress is not None:
        progress(0, total)
    if workers <= 1 or total <= 1:
        for task in tasks:
            results.append(judge(*task))
            if progress is not None:
                progress(len(results), total)
        return results
    import multiprocessing

    from .formats import messages, verdict  # noqa: F401 -- imported once here, so that forked workers have them

    _load_refusals()
    by_path: dict[str, Result | Skipped] = {}
    chunk = max(1, min(64, total // (workers * 8)))
    pool = multiprocessing.get_context().Pool(min(workers, total), initializer=_worker_signals)
    try:
        for result in pool.imap_unordered(_judge_task, tasks, chunksize=chunk):
            by_path[result.path] = result
            if progress is not None:
                progress(len(by_path), total)
        pool.close()
    except BaseException:
        pool.terminate()  # Ctrl-C or SIGTERM in this process: the workers go at once
        raise
    finally:
        pool.join()
    return [by_path[path] for path, _ in tasks]


def _worker_signals() -> None:
    """A worker leaves Ctrl-C to the parent and dies quietly on SIGTERM (the parent's handlers raise)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# -- the command -----------------------------------------------------------------------


def _where(r: Result) -> str:
    if r.first is None or r.first.line is None:
        return r.path
    return f"{r.path}:{r.first.line}"


def result_line(r: Result) -> str:
    """One line: status, runtime, file (and line), the first finding, the command that repairs it."""
    head = f"{r.status:<10} {r.runtime:<12} {_where(r)}"
    if r.first is None:
        return head
    what = r.first.message if r.first.rule is None else f"{r.first.rule} [{r.first.level}] {r.first.message}"
    more = f" (+{r.findings - 1} more)" if r.findings > 1 else ""
    fix = f"; repair: {r.repair}" if r.repair else ""
    return f"{head}: {what}{more}{fix}"


def counts(results: Iterable[Result]) -> dict[str, int]:
    found = {s: 0 for s in STATUSES}
    for r in results:
        found[r.status] += 1
    return found


def _finding_json(f: Finding | None) -> dict[str, object] | None:
    return None if f is None else {"rule": f.rule, "level": f.level, "line": f.line, "message": f.message}


def cores() -> int:
    """The cores this process may run on (a container's or ``taskset``'s limit, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def cmd_scan(args: argparse.Namespace, out: TextIO) -> int:
    from .cli import _dask, _doc, _emit_json, _fail, _progress_bar

    missing = [d for d in args.folders if not os.path.exists(d)]
    if missing:
        _fail(f"{missing[0]}: no such file or folder")
    roots, tasks = tasks_for(args.folders)
    progress = _progress_bar(sys.stderr) if sys.stderr.isatty() and not args.json and tasks else None
    where = "process(es)"
    with _dask(args) as client:
        started = time.perf_counter()
        if client is None:
            workers = args.workers or cores()
            judged = judge_all(tasks, workers=workers, progress=progress)
        else:
            from . import distributed

            workers, where = distributed.threads(client), f"Dask worker thread(s) at {distributed.address(client)}"
            judged = distributed.judge_all(client, tasks, progress=progress)
        seconds = time.perf_counter() - started
    results = [r for r in judged if isinstance(r, Result)]
    skipped = [s for s in judged if isinstance(s, Skipped)]
    tally = counts(results)
    code = 1 if any(r.status in FAILING for r in results) else 0
    if args.json:
        doc = _doc(
            "scan",
            code,
            roots=[{"path": r.path, "runtime": r.runtime, "from": r.source, "exists": r.exists} for r in roots],
            workers=workers,
            seconds=round(seconds, 3),
            counts=tally,
            files=[
                {"file": r.path, "runtime": r.runtime, "format": r.format, "status": r.status, "first": _finding_json(r.first), "findings": r.findings, "repair": r.repair}
                for r in results
            ],
            skipped=[{"file": s.path, "why": s.why} for s in skipped],
        )
        _emit_json(doc, out)
        return code
    if not args.folders:
        for root in roots:
            print(f"{root.runtime}: {root.path} ({root.source}){'' if root.exists else ': not there'}", file=out)
    for r in results:
        print(result_line(r), file=out)
    summary = ", ".join(f"{n} {s}" for s, n in tally.items() if n)
    rate = f", {len(tasks) / seconds:,.0f} files/s" if seconds > 0 and tasks else ""
    print(f"scanned {len(results)} session file(s) in {seconds:.1f}s on {workers} {where}{rate}: {summary or 'none found'}", file=out)
    if skipped:
        print(f"  {len(skipped)} other .jsonl file(s) are not session files (--json lists them and why)", file=out)
    return code
