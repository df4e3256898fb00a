"""Output files: checked before the work, written whole, created exclusively.

The race and the signals are tested with real processes; the race has a
mutant (check, then rename) that the same harness catches.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from ctxref.output import LEFTOVER_GLOB, OutputError, OutputFile, Terminated, atomic_output, in_place_output
from ctxspec.errors import CtxError

# ---------------------------------------------------------------- helpers


def leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if fnmatch.fnmatch(n, LEFTOVER_GLOB))


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def no_hard_links(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)


def refused(make: Callable[[], AbstractContextManager[OutputFile]]) -> tuple[str, bool]:
    """The OutputError's message, and whether the body of the with ran."""
    ran = False
    with pytest.raises(OutputError) as info:
        with make() as f:
            ran = True
            f.write(b"work")
    return str(info.value), ran


def wait_for(path: Path, procs: list[subprocess.Popen[str]]) -> None:
    """Until ``path`` exists; a child that died first is a failure, not a hang."""
    while not path.exists():
        for p in procs:
            if p.poll() is not None:
                out, err = p.communicate()
                pytest.fail(f"child exited {p.returncode} before {path.name}: {out}{err}")
        time.sleep(0.002)


# ---------------------------------------------------------------- the basics


def test_writes_and_leaves_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with atomic_output(str(out)) as f:
        f.write(b"one\n")
        names = os.listdir(tmp_path)
        assert len(names) == 1 and re.fullmatch(r"\.out\.jsonl\.ctxcontract-output-[0-9a-f]{6}\.partial", names[0])
        assert f.temp_path == str(tmp_path / names[0])
        assert not out.exists()
    assert out.read_bytes() == b"one\n" and os.listdir(tmp_path) == ["out.jsonl"]


def test_the_temp_name_says_its_purpose(tmp_path: Path) -> None:
    with atomic_output(str(tmp_path / "c.jsonl"), purpose="counterexample") as f:
        assert ".c.jsonl.ctxcontract-counterexample-" in f.temp_path
    with pytest.raises(ValueError):
        with atomic_output(str(tmp_path / "d.jsonl"), purpose="no spaces/slashes"):
            pass


def test_output_error_is_a_ctx_error_of_one_line(tmp_path: Path) -> None:
    (tmp_path / "out.jsonl").write_bytes(b"")
    message, ran = refused(lambda: atomic_output(str(tmp_path / "out.jsonl")))
    assert not ran and "\n" not in message
    assert issubclass(OutputError, CtxError) and not issubclass(Terminated, Exception)


def test_existing_file_refused_before_work_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"precious")
    message, ran = refused(lambda: atomic_output(str(out)))
    assert message == f"{out}: already exists (use --force to replace it)" and not ran
    assert out.read_bytes() == b"precious" and leftovers(tmp_path) == []


def test_force_replaces(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"old")
    with atomic_output(str(out), force=True) as f:
        f.write(b"new")
    assert out.read_bytes() == b"new" and leftovers(tmp_path) == []


@pytest.mark.parametrize("force", [False, True])
def test_a_directory_is_refused_even_with_force(tmp_path: Path, force: bool) -> None:
    message, ran = refused(lambda: atomic_output(str(tmp_path), force=force))
    assert message == f"{tmp_path}: is a directory" and not ran


def test_force_replaces_only_files_and_symlinks(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    message, ran = refused(lambda: atomic_output(str(fifo), force=True))
    assert "is not a regular file" in message and not ran
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_caller_may_close_the_handle(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with atomic_output(str(out)) as f:
        f.write(b"closed early")
        f.close()
    assert out.read_bytes() == b"closed early"


def test_discard_touches_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with atomic_output(str(out)) as f:
        f.write(b"not needed")
        f.discard()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
@pytest.mark.parametrize("existing", [None, b"old"])
def test_an_exception_in_the_body_leaves_out_as_it_was(
    tmp_path: Path, error: type[BaseException], existing: bytes | None
) -> None:
    out = tmp_path / "out.jsonl"
    if existing is not None:
        out.write_bytes(existing)
    with pytest.raises(error):
        with atomic_output(str(out), force=True) as f:
            f.write(b"half")
            raise error()
    assert leftovers(tmp_path) == []
    assert (out.read_bytes() if out.exists() else None) == existing


# ---------------------------------------------------------------- modes


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o027, 0o640), (0o002, 0o664)])
def test_a_new_file_honours_the_umask(tmp_path: Path, mask: int, expected: int) -> None:
    out = tmp_path / "out.jsonl"
    with umask(mask):
        with atomic_output(str(out)) as f:
            f.write(b"x")
    assert mode(out) == expected


@pytest.mark.parametrize("old_mode, mask", [(0o644, 0o077), (0o600, 0o022), (0o640, 0o002), (0o444, 0o022)])
def test_force_keeps_the_replaced_files_mode(tmp_path: Path, old_mode: int, mask: int) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"old")
    out.chmod(old_mode)
    with umask(mask):
        with atomic_output(str(out), force=True) as f:
            f.write(b"new")
    assert mode(out) == old_mode and out.read_bytes() == b"new"


# ---------------------------------------------------------------- symlinks


@pytest.mark.parametrize("live", [False, True])
def test_a_symlink_at_out_counts_as_existing(tmp_path: Path, live: bool) -> None:
    target, out = tmp_path / "target", tmp_path / "out.jsonl"
    if live:
        target.write_bytes(b"target")
    out.symlink_to(target)
    message, ran = refused(lambda: atomic_output(str(out)))
    assert message == f"{out}: already exists (use --force to replace it)" and not ran
    assert os.readlink(out) == str(target)
    assert (target.read_bytes() if live else target.exists()) == (b"target" if live else False)


@pytest.mark.parametrize("live", [False, True])
def test_force_replaces_the_link_never_writes_through_it(tmp_path: Path, live: bool) -> None:
    target, out = tmp_path / "target", tmp_path / "out.jsonl"
    if live:
        target.write_bytes(b"target")
    out.symlink_to(target)
    with atomic_output(str(out), force=True) as f:
        f.write(b"new")
    assert not out.is_symlink() and out.read_bytes() == b"new"
    assert (target.read_bytes() if live else target.exists()) == (b"target" if live else False)


# ---------------------------------------------------------------- folders


def test_a_missing_folder_is_refused_before_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    message, ran = refused(lambda: atomic_output("out/x.jsonl"))
    assert message == "out/x.jsonl: folder out does not exist" and not ran


def test_a_folder_that_is_a_file_is_refused_before_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("out").write_bytes(b"")
    message, ran = refused(lambda: atomic_output("out/x.jsonl"))
    assert message == "out/x.jsonl: out is not a folder" and not ran


def _write_in_read_only(folder: str) -> str:
    """In ``folder``'s parent, try ``ro/out.jsonl``: the error, and whether the body ran."""
    try:
        with atomic_output(os.path.join(folder, "out.jsonl")):
            return "body ran"
    except OutputError as exc:
        return str(exc)


def test_a_read_only_folder_is_refused_before_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root writes in a 0555 folder anyway, so as root a forked child drops to uid 65534."""
    if os.geteuid() != 0:
        monkeypatch.chdir(tmp_path)
        Path("ro").mkdir(mode=0o555)
        assert _write_in_read_only("ro") == "ro/out.jsonl: cannot write in folder ro: permission denied"
        return
    base = tempfile.mkdtemp()  # not under tmp_path: its parents are 0700, closed to uid 65534
    try:
        os.chmod(base, 0o755)
        os.mkdir(os.path.join(base, "ro"), 0o555)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 0
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                os.chdir(base)
                os.write(write, _write_in_read_only("ro").encode())
            except PermissionError:
                code = 77
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read) as pipe:
            said = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 77:
            pytest.skip("running as root without the right to drop to another user: cannot make a folder read-only")
        assert said == "ro/out.jsonl: cannot write in folder ro: permission denied"
        assert os.listdir(os.path.join(base, "ro")) == []
    finally:
        os.chmod(os.path.join(base, "ro"), 0o755)
        os.rmdir(os.path.join(base, "ro"))
        os.rmdir(base)


# ---------------------------------------------------------------- exclusive


@pytest.mark.parametrize("links", [True, False])
@pytest.mark.parametrize("rival", ["file", "dangling symlink"])
def test_out_appearing_during_the_work_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool, rival: str
) -> None:
    """Another writer creates OUT while we work: we refuse at commit, theirs stays."""
    if not links:
        no_hard_links(monkeypatch)
    out = tmp_path / "out.jsonl"
    with pytest.raises(OutputError, match="already exists"):
        with atomic_output(str(out)) as f:
            f.write(b"ours")
            if rival == "file":
                out.write_bytes(b"theirs")
            else:
                out.symlink_to(tmp_path / "nowhere")
    assert leftovers(tmp_path) == []
    if rival == "file":
        assert out.read_bytes() == b"theirs"
    else:
        assert out.is_symlink() and not (tmp_path / "nowhere").exists()


def test_without_hard_links_a_new_file_is_still_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_hard_links(monkeypatch)
    out = tmp_path / "out.jsonl"
    with umask(0o027):
        with atomic_output(str(out)) as f:
            f.write(b"fallback")
    assert out.read_bytes() == b"fallback" and mode(out) == 0o640 and os.listdir(tmp_path) == ["out.jsonl"]


WRITER = r"""
import errno, os, sys, time
import ctxref.output as output

out, fill, ready, go, variant = sys.argv[1:]
if variant == "no-links":
    def no_link(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")
    os.link = no_link
elif variant == "check-then-rename":  # the mutant: what cli.write_atomic did
    def racy_commit(tmp, path, force):
        if os.path.lexists(path):
            raise output.OutputError(path, "already exists (use --force to replace it)")
        time.sleep(0.05)  # widen the window between the check and the rename
        os.replace(tmp, path)
    output._commit = racy_commit
try:
    with output.atomic_output(out) as f:
        f.write(fill.encode() * 300_000)
        open(ready, "w").close()
        while not os.path.exists(go):
            time.sleep(0.001)
except output.OutputError as exc:
    print(exc)
    sys.exit(3)
print("wrote")
"""


def race(tmp_path: Path, variant: str, round_: int) -> tuple[list[tuple[int, str]], bytes, list[str]]:
    """Two writers, past their checks together, commit to one OUT at once."""
    folder, sync = tmp_path / f"out{round_}", tmp_path / f"sync{round_}"
    folder.mkdir()
    sync.mkdir()
    out, go = folder / "out.jsonl", sync / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(out), fill, str(sync / f"ready-{fill}"), str(go), variant],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for fill in "ab"
    ]
    for fill in "ab":
        wait_for(sync / f"ready-{fill}", procs)
    go.touch()
    results = []
    for p in procs:
        stdout, stderr = p.communicate()
        results.append((p.returncode, stdout.strip() + stderr.strip()))
    return results, out.read_bytes(), leftovers(folder)


@pytest.mark.parametrize("variant", ["hard-links", "no-links"])
def test_two_processes_racing_to_one_out_exactly_one_wins(tmp_path: Path, variant: str) -> None:
    for round_ in range(8):
        results, content, left = race(tmp_path, variant, round_)
        codes = sorted(code for code, _ in results)
        assert codes == [0, 3], results
        winner = "ab"[[code for code, _ in results].index(0)]
        loser_said = [said for code, said in results if code == 3][0]
        assert loser_said.endswith("out.jsonl: already exists (use --force to replace it)")
        assert content == winner.encode() * 300_000
        assert left == []


def test_the_race_harness_catches_a_check_then_rename_writer(tmp_path: Path) -> None:
    """The mutant: both writers say "wrote", and one silently replaced the other."""
    rounds = []
    for round_ in range(10):  # one round is enough unless the machine is very busy
        results, content, _ = race(tmp_path, "check-then-rename", round_)
        rounds.append([code for code, _ in results])
        assert content in (b"a" * 300_000, b"b" * 300_000)
        if rounds[-1] == [0, 0]:
            break
    assert rounds[-1] == [0, 0], rounds


# ---------------------------------------------------------------- signals


SIGNALLED = r"""
import signal, sys, time
from ctxref.output import Terminated, atomic_output, in_place_output

signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
which, target, ready = sys.argv[1:]
context = atomic_output(target) if which == "atomic" else in_place_output(target)
try:
    with context as f:
        f.write(b"x" * 1000)
        f.flush()
        open(ready, "w").close()
        while True:
            time.sleep(0.01)
except Terminated as exc:
    sys.exit(exc.exit_code)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("which", ["atomic", "in-place"])
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_in_the_work_leaves_no_temp_and_no_out(tmp_path: Path, which: str, signum: int, code: int) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    target, ready = folder / "file.jsonl", tmp_path / "ready"
    if which == "in-place":
        target.write_bytes(b"original")
    child = subprocess.Popen(
        [sys.executable, "-c", SIGNALLED, which, str(target), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(ready, [child])
    partial = leftovers(folder)
    assert len(partial) == 1 and (folder / partial[0]).stat().st_size == 1000  # there was something to clean
    child.send_signal(signum)
    _, err = child.communicate()
    assert child.returncode == code, err
    assert leftovers(folder) == []
    if which == "atomic":
        assert os.listdir(folder) == []
    else:
        assert os.listdir(folder) == ["file.jsonl"] and target.read_bytes() == b"original"


def test_sigterm_raises_terminated_and_the_handler_is_restored(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "out.jsonl"
    with pytest.raises(Terminated) as info:
        with atomic_output(str(out)) as f:
            f.write(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this; never waited out
    assert info.value.exit_code == 143
    assert os.listdir(tmp_path) == [] and signal.getsignal(signal.SIGTERM) is before


def test_a_signal_during_the_commit_is_held_until_it_is_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM arriving inside the rename waits: OUT is complete, then Terminated."""
    real_replace = os.replace

    def replace_signalled(src: str, dst: str) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0)  # a point where Python runs signal handlers
        real_replace(src, dst)

    out = tmp_path / "out.jsonl"
    out.write_bytes(b"old")
    monkeypatch.setattr(os, "replace", replace_signalled)
    with pytest.raises(Terminated):
        with atomic_output(str(out), force=True) as f:
            f.write(b"new")
    assert out.read_bytes() == b"new" and leftovers(tmp_path) == []


def test_outside_the_main_thread_no_handler_is_installed(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def work() -> None:
        with atomic_output(str(tmp_path / "out.jsonl")) as f:
            seen.append(signal.getsignal(signal.SIGTERM))
            f.write(b"thread")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [before] and (tmp_path / "out.jsonl").read_bytes() == b"thread"


# ---------------------------------------------------------------- in place


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "session.jsonl"
    path.write_bytes(b'{"original": true}\n' * 1000)
    path.chmod(0o640)
    return path


def test_in_place_keeps_the_original_as_a_backup(log: Path, tmp_path: Path) -> None:
    original, inode = log.read_bytes(), log.stat().st_ino
    with umask(0o022):
        with in_place_output(str(log)) as f:
            f.write(b"repaired\n")
    backup = tmp_path / "session.jsonl.bak"
    assert backup.read_bytes() == original and backup.stat().st_ino == inode  # the original file itself
    assert log.read_bytes() == b"repaired\n" and mode(log) == 0o640 and log.stat().st_ino != inode
    assert leftovers(tmp_path) == []


def test_in_place_with_a_custom_suffix(log: Path, tmp_path: Path) -> None:
    original = log.read_bytes()
    with in_place_output(str(log), backup_suffix=".orig") as f:
        f.write(b"repaired\n")
    assert (tmp_path / "session.jsonl.orig").read_bytes() == original
    assert not (tmp_path / "session.jsonl.bak").exists()


@pytest.mark.parametrize("suffix", ["", "/x"])
def test_in_place_refuses_a_suffix_that_names_no_file(log: Path, suffix: str) -> None:
    _, ran = refused(lambda: in_place_output(str(log), backup_suffix=suffix))
    assert not ran


def test_in_place_refuses_an_existing_backup_without_force(log: Path, tmp_path: Path) -> None:
    backup = tmp_path / "session.jsonl.bak"
    backup.write_bytes(b"older backup")
    original = log.read_bytes()
    message, ran = refused(lambda: in_place_output(str(log)))
    assert message == f"{log}: backup {backup}: already exists (use --force to replace it)" and not ran
    assert backup.read_bytes() == b"older backup" and log.read_bytes() == original
    assert leftovers(tmp_path) == []


def test_in_place_refuses_a_dangling_symlink_as_backup(log: Path, tmp_path: Path) -> None:
    (tmp_path / "session.jsonl.bak").symlink_to(tmp_path / "nowhere")
    message, ran = refused(lambda: in_place_output(str(log)))
    assert "already exists" in message and not ran and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("links", [True, False])
def test_in_place_force_replaces_the_backup(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    if not links:
        no_hard_links(monkeypatch)
    backup = tmp_path / "session.jsonl.bak"
    backup.write_bytes(b"older backup")
    original = log.read_bytes()
    with in_place_output(str(log), force=True) as f:
        f.write(b"repaired\n")
    assert backup.read_bytes() == original and log.read_bytes() == b"repaired\n"
    assert leftovers(tmp_path) == []


def test_in_place_without_hard_links_copies_the_backup(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_hard_links(monkeypatch)
    original, inode = log.read_bytes(), log.stat().st_ino
    with in_place_output(str(log)) as f:
        f.write(b"repaired\n")
    backup = tmp_path / "session.jsonl.bak"
    assert backup.read_bytes() == original and backup.stat().st_ino != inode and mode(backup) == 0o640
    assert log.read_bytes() == b"repaired\n" and mode(log) == 0o640
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("links", [True, False])
def test_in_place_refuses_a_file_changed_during_the_work(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    if not links:
        no_hard_links(monkeypatch)
    original = log.read_bytes()
    with pytest.raises(OutputError, match="changed while we worked"):
        with in_place_output(str(log)) as f:
            f.write(b"repaired\n")
            with open(log, "ab") as runtime:  # the runtime appends meanwhile
                runtime.write(b'{"late": true}\n')
    assert log.read_bytes() == original + b'{"late": true}\n'
    assert os.listdir(tmp_path) == ["session.jsonl"]


def test_in_place_discard_touches_nothing(log: Path, tmp_path: Path) -> None:
    before = log.stat()
    with in_place_output(str(log)) as f:
        f.discard()
    after = log.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert os.listdir(tmp_path) == ["session.jsonl"]


def test_in_place_exception_touches_nothing(log: Path, tmp_path: Path) -> None:
    original = log.read_bytes()
    with pytest.raises(RuntimeError):
        with in_place_output(str(log)) as f:
            f.write(b"half")
            raise RuntimeError("repair failed")
    assert log.read_bytes() == original and os.listdir(tmp_path) == ["session.jsonl"]


def test_in_place_refuses_a_symlink_naming_the_real_file(log: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to(log)
    original = log.read_bytes()
    message, ran = refused(lambda: in_place_output(str(link)))
    assert message.startswith(f"{link}: is a symbolic link") and message.endswith(str(log)) and not ran
    assert link.is_symlink() and log.read_bytes() == original


@pytest.mark.parametrize("name, reason", [("missing.jsonl", "no such file"), ("folder", "is a directory")])
def test_in_place_refuses_what_is_no_regular_file(tmp_path: Path, name: str, reason: str) -> None:
    (tmp_path / "folder").mkdir()
    message, ran = refused(lambda: in_place_output(str(tmp_path / name)))
    assert message == f"{tmp_path / name}: {reason}" and not ran
