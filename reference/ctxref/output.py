"""Output files you can trust with the only copy.

This module owns how ctxcontract puts a file on disk: the checks made before
any work, the temporary file, the exclusive commit, modes, symlinks, backups
for ``--in-place``, and what SIGTERM and Ctrl-C leave behind.  It does not
know what is written (formats are the caller's) nor standard output (``-`` is
the command line's job).  POSIX only.

Theory of operation:

* **Check first.**  Both context managers refuse before they yield, so before
  the caller's expensive work: a directory at OUT, an existing OUT without
  ``force`` (a symlink counts, dangling or not), a missing folder, a folder we
  cannot write in (proved by creating the temporary file there).  Every
  refusal is an :class:`OutputError`: one line naming OUT.
* **Write aside.**  The bytes go to ``.{name}.ctxcontract-{purpose}-XXXXXX.partial``
  in OUT's folder (same filesystem).  A new file gets ``0o666 & ~umask``, as
  ``open()`` would give; a regular file replaced under ``force`` keeps its
  permission bits.
* **Commit exclusively.**  Without ``force`` OUT is created with
  ``link(temp, OUT)``, which fails if anything is at OUT, so two writers
  racing to one OUT cannot both win.  Where hard links are unsupported, OUT is
  reserved with ``open(O_CREAT | O_EXCL)`` and the temporary file renamed over
  the reservation: still exclusive, but for an instant OUT exists and is empty.
  With ``force``, ``rename`` replaces OUT; a symlink at OUT is replaced itself,
  never written through.  Force never replaces anything but a regular file or
  a symlink (``--force -o /dev/null`` is refused).
* **Leave nothing.**  An exception in the ``with`` body (KeyboardInterrupt
  included) removes the temporary file and leaves OUT untouched.  While a
  context is open in the main thread, SIGTERM removes the temporary files and
  raises :class:`Terminated`; SIGINT does the same and raises
  KeyboardInterrupt (only if Python's default SIGINT handler is in place).  A
  signal that arrives while committing or cleaning up is held until that step
  ends, so a commit is whole: OUT can be complete when Terminated is raised.
  SIGKILL cannot be caught: it can leave a ``*.partial`` file named as above
  (and, on a filesystem without hard links, an empty OUT).
"""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final

from ctxspec.errors import CtxError

LEFTOVER_GLOB: Final = ".*.ctxcontract-*.partial"
"""What a SIGKILL (or a power cut) can leave beside an output file."""

# link(2) says "this filesystem has no hard links" with one of these.
_NO_HARD_LINKS: Final = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
)
_PURPOSE: Final = re.compile(r"[a-z0-9][a-z0-9-]*")
_NEW_FILE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


class OutputError(CtxError):
    """An output file we will not or cannot write; one line naming the file."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class Terminated(BaseException):
    """SIGTERM arrived inside an output context; the temporary files are gone.

    A BaseException, like KeyboardInterrupt, so ``except Exception`` does not
    swallow it.  The command line prints one line and exits ``exit_code``.
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        self.signum = signum
        super().__init__(f"terminated by signal {signum}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class OutputFile(io.BufferedWriter):
    """The handle both context managers yield: a binary file, plus ``discard``.

    ``discard()`` says "no change needed": at the end of the ``with`` the
    temporary file is removed and nothing else is touched (no OUT, no backup).
    """

    def __init__(self, fd: int, temp_path: str) -> None:
        super().__init__(io.FileIO(fd, "wb"))
        self.temp_path: Final = temp_path
        self.discarded = False

    def discard(self) -> None:
        self.discarded = True


# ---------------------------------------------------------------- pure parts


def temp_name(path: str, purpose: str, token: str) -> str:
    """The temporary file beside ``path``: a hidden name saying what it is."""
    folder, base = os.path.split(path)
    return os.path.join(folder, f".{base[:120]}.ctxcontract-{purpose}-{token}.partial")


def folder_of(path: str) -> str:
    return os.path.dirname(path) or "."


def _reason(exc: OSError) -> str:
    """An OSError as a few words, without the path (the message names OUT)."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return (os.strerror(exc.errno) if exc.errno else str(exc)).lower()


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What must not change while we work on a file in place."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# ---------------------------------------------------------------- checks


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(path, f"cannot look at it: {_reason(exc)}") from None


def _check_folder(path: str) -> None:
    folder = folder_of(path)
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise OutputError(path, f"folder {folder} does not exist") from None
    except OSError as exc:
        raise OutputError(path, f"cannot reach folder {folder}: {_reason(exc)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(path, f"{folder} is not a folder")


def _refusal(path: str, st: os.stat_result, force: bool) -> str | None:
    """Something is at ``path``: why we may not replace it, or None."""
    if stat.S_ISDIR(st.st_mode) or os.path.isdir(path):
        return "is a directory"
    if not force:
        return "already exists (use --force to replace it)"
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        return "is not a regular file; --force replaces only files and symlinks"
    return None


def _check_output(path: str, force: bool) -> int | None:
    """Refuse what :func:`atomic_output` must not write; the mode to keep, if any."""
    _check_folder(path)
    st = _lstat(path)
    if st is None:
        return None
    reason = _refusal(path, st, force)
    if reason is not None:
        raise OutputError(path, reason)
    return stat.S_IMODE(st.st_mode) & 0o777 if stat.S_ISREG(st.st_mode) else None


def check_output(path: str, *, force: bool = False) -> None:
    """Raise the :class:`OutputError` :func:`atomic_output` would raise before its work.

    For callers whose work comes long before the file is opened (a search
    that may run for minutes): say now what would be refused then.
    """
    _check_output(path, force)


def _check_in_place(path: str, backup: str, force: bool) -> os.stat_result:
    """Refuse what :func:`in_place_output` must not touch; the file's stat."""
    _check_folder(path)
    st = _lstat(path)
    if st is None:
        raise OutputError(path, "no such file")
    if stat.S_ISLNK(st.st_mode):
        real = os.path.realpath(path)
        raise OutputError(path, f"is a symbolic link; to change the file it points to, name it: {real}")
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(path, "is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(path, "is not a regular file")
    old = _lstat(backup)
    reason = None if old is None else _refusal(backup, old, force)
    if reason is not None:
        raise OutputError(path, f"backup {backup}: {reason}")
    return st


# ---------------------------------------------------------------- signals


class _Guard:
    """While an output context is open: the temp files to remove on a signal.

    ``holding`` is set while committing or cleaning up: a signal then waits
    until :meth:`release`, so a commit is never cut in half.
    """

    def __init__(self) -> None:
        self.temps: list[str] = []
        self.holding = False
        self.pending: int | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.holding:
            self.pending = self.pending or signum
            return
        _remove_all(self.temps)
        raise _interruption(signum)

    def release(self) -> None:
        self.holding = False
        if self.pending is not None:
            signum, self.pending = self.pending, None
            _remove_all(self.temps)
            raise _interruption(signum)


def _interruption(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_all(paths: list[str]) -> None:
    for path in paths:
        try:
            _remove(path)
        except OSError:
            pass


Handler = Callable[[int, FrameType | None], object] | int | None


def _takes_over(signum: int, current: Handler) -> bool:
    """SIGTERM unless ignored; SIGINT only from Python's default handler."""
    if signum == signal.SIGINT:
        return current is signal.default_int_handler
    return current is not signal.SIG_IGN


@contextmanager
def _signals_caught() -> Iterator[_Guard]:
    """Install the guard's handler (main thread only), restore the old ones after."""
    guard = _Guard()
    if threading.current_thread() is not threading.main_thread():
        yield guard  # signal.signal works only in the main thread; no handlers here
        return
    previous: dict[int, Handler] = {}
    guard.holding = True  # a signal while installing waits, then restores what was there
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            current = signal.getsignal(signum)
            if _takes_over(signum, current):
                previous[signum] = current
                signal.signal(signum, guard.on_signal)
        guard.release()
        yield guard
    finally:
        guard.holding = True
        for caught, handler in previous.items():
            signal.signal(caught, handler if handler is not None else signal.SIG_DFL)
        guard.release()


@contextmanager
def _held(guard: _Guard) -> Iterator[None]:
    guard.holding = True
    try:
        yield
    finally:
        guard.release()


# ---------------------------------------------------------------- file steps


def _open_temp(
    path: str, purpose: str, mode: int | None, guard: _Guard, owner: tuple[int, int] | None = None
) -> OutputFile:
    """Create the temporary file beside ``path``; this proves the folder writable."""
    for _ in range(100):
        tmp = temp_name(path, purpose, os.urandom(3).hex())
        try:
            fd = os.open(tmp, _NEW_FILE, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(path, f"cannot write in folder {folder_of(path)}: {_reason(exc)}") from None
        guard.temps.append(tmp)
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            if owner is not None:
                _chown_best_effort(fd, owner)
        except OSError as exc:
            os.close(fd)
            raise OutputError(path, f"cannot set the mode of its temporary file: {_reason(exc)}") from None
        return OutputFile(fd, tmp)
    raise OutputError(path, "cannot find a free temporary name beside it")


def _chown_best_effort(fd: int, owner: tuple[int, int]) -> None:
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) != owner:
        try:
            os.fchown(fd, *owner)
        except PermissionError:
            pass


def _finish(handle: OutputFile, path: str) -> None:
    """Flush and fsync the temporary file (unless discarded), then close it."""
    try:
        if handle.discarded:
            handle.close()
        elif handle.closed:  # the caller closed it: sync through a new descriptor
            fd = os.open(handle.temp_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
    except OSError as exc:
        raise OutputError(path, f"cannot write it: {_reason(exc)}") from None


def _abandon(handle: OutputFile) -> None:
    """Close and remove the temporary file, whatever state it is in."""
    try:
        handle.close()
    except OSError:
        pass
    _remove_all([handle.temp_path])


def _sync_folder(path: str) -> None:
    """Make a rename durable; best effort (some filesystems refuse)."""
    try:
        fd = os.open(folder_of(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_exclusive(tmp: str, path: str) -> None:
    """Give ``tmp`` the name ``path`` if and only if nothing is there."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputError(path, "already exists (use --force to replace it)") from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise OutputError(path, f"cannot create it: {_reason(exc)}") from None
        _reserve_and_replace(tmp, path)
    else:
        _remove(tmp)


def _reserve_and_replace(tmp: str, path: str) -> None:
    """No hard links here: reserve ``path`` exclusively, then rename over it."""
    try:
        os.close(os.open(path, _NEW_FILE, 0o600))
    except FileExistsError:
        raise OutputError(path, "already exists (use --force to replace it)") from None
    except OSError as exc:
        raise OutputError(path, f"cannot create it: {_reason(exc)}") from None
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _remove(path)  # our empty reservation: no one else can have taken it
        raise OutputError(path, f"cannot create it: {_reason(exc)}") from None


def _replace(tmp: str, path: str) -> None:
    try:
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(path, f"cannot replace it: {_reason(exc)}") from None


def _commit(tmp: str, path: str, force: bool) -> None:
    if force:
        _replace(tmp, path)
    else:
        _create_exclusive(tmp, path)
    _sync_folder(path)


def _check_purpose(purpose: str) -> None:
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError(f"purpose {purpose!r}: lower-case letters, digits and '-' only")


# ---------------------------------------------------------------- atomic_output


@contextmanager
def atomic_output(path: str, *, force: bool = False, purpose: str = "output") -> Iterator[OutputFile]:
    """Write OUT whole or not at all; refuse before the work, commit exclusively.

    ``with atomic_output("out.jsonl") as f: f.write(data)``.  Raises
    :class:`OutputError` before yielding (see the module's theory) and at
    commit, e.g. when another writer created OUT meanwhile; call
    ``f.discard()`` to leave without writing OUT.
    """
    _check_purpose(purpose)
    keep_mode = _check_output(path, force)
    with _signals_caught() as guard:
        with _held(guard):
            handle = _open_temp(path, purpose, keep_mode, guard)
        try:
            yield handle
            _finish(handle, path)
            if not handle.discarded:
                with _held(guard):
                    _commit(handle.temp_path, path, force)
        finally:
            with _held(guard):
                _abandon(handle)


# ---------------------------------------------------------------- in_place_output


@contextmanager
def in_place_output(
    path: str, *, backup_suffix: str = ".bak", force: bool = False, purpose: str = "repair"
) -> Iterator[OutputFile]:
    """Replace FILE with what the body writes, keeping the original as FILE+suffix.

    Refuses before yielding: a FILE that is missing, not a regular file, or a
    symlink (name the real file instead: replacing a link in place would turn
    it into a file); an existing backup without ``force``; a folder we cannot
    write in.  At the end: if FILE changed while we worked (inode, size or
    mtime), :class:`OutputError` and nothing is touched.  Else the backup
    becomes a hard link to the original (its exact inode, no copy; under
    ``force`` an old backup is replaced atomically), then the new file takes
    FILE's name in one rename, with FILE's mode (and owner, where allowed).
    Without hard links the backup is a copy, committed the same way.
    ``f.discard()`` says "no change needed": nothing is touched, no backup.
    """
    _check_purpose(purpose)
    if not backup_suffix or os.sep in backup_suffix:
        raise OutputError(path, f"backup suffix {backup_suffix!r}: must be a non-empty file name ending")
    backup = path + backup_suffix
    original = _check_in_place(path, backup, force)
    with _signals_caught() as guard:
        with _held(guard):
            owner = (original.st_uid, original.st_gid)
            handle = _open_temp(path, purpose, stat.S_IMODE(original.st_mode) & 0o777, guard, owner)
        try:
            yield handle
            _finish(handle, path)
            if not handle.discarded:
                with _held(guard):
                    _swap(handle.temp_path, path, backup, original, force, guard)
        finally:
            with _held(guard):
                _abandon(handle)


def _check_unchanged(path: str, original: os.stat_result) -> None:
    now = _lstat(path)
    if now is None:
        raise OutputError(path, "disappeared while we worked; nothing written")
    if not stat.S_ISREG(now.st_mode) or _identity(now) != _identity(original):
        raise OutputError(path, "changed while we worked (did something write to it?); left as it is, no backup")


def _swap(tmp: str, path: str, backup: str, original: os.stat_result, force: bool, guard: _Guard) -> None:
    """Check FILE, back it up, rename the new file over it."""
    _check_unchanged(path, original)
    _back_up(path, backup, original, force, guard)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(path, f"cannot replace it: {_reason(exc)}; it is as it was, backup in {backup}") from None
    _sync_folder(path)


def _back_up(path: str, backup: str, original: os.stat_result, force: bool, guard: _Guard) -> None:
    """The backup: a hard link to FILE's inode, or a copy where links are unsupported."""
    try:
        if force:
            _link_over(path, backup, guard)
        else:
            os.link(path, backup)
        return
    except FileExistsError:
        raise OutputError(path, f"backup {backup}: already exists (use --force to replace it)") from None
    except OutputError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise OutputError(path, f"backup {backup}: cannot create it: {_reason(exc)}") from None
    _copy_backup(path, backup, original, force, guard)


def _link_over(path: str, backup: str, guard: _Guard) -> None:
    """Hard-link FILE to a temporary name, then rename that over the backup."""
    for _ in range(100):
        tmp = temp_name(backup, "backup", os.urandom(3).hex())
        try:
            os.link(path, tmp)
        except FileExistsError:
            continue
        guard.temps.append(tmp)
        try:
            os.replace(tmp, backup)
        except OSError as exc:
            _remove_all([tmp])
            raise OutputError(path, f"backup {backup}: cannot replace it: {_reason(exc)}") from None
        return
    raise OutputError(path, "cannot find a free temporary name for its backup")


def _copy_backup(path: str, backup: str, original: os.stat_result, force: bool, guard: _Guard) -> None:
    """Copy FILE to a temporary file beside the backup, then commit that."""
    with _about_backup(path, backup):
        handle = _open_temp(backup, "backup", stat.S_IMODE(original.st_mode) & 0o777, guard)
        try:
            with open(path, "rb") as source:
                while chunk := source.read(1 << 20):
                    handle.write(chunk)
            _finish(handle, backup)
            _check_unchanged(path, original)  # the copy is of the file we checked
            if force:
                _replace(handle.temp_path, backup)
            else:
                _create_exclusive(handle.temp_path, backup)
        except OSError as exc:
            raise OutputError(backup, f"cannot copy {path} to it: {_reason(exc)}") from None
        finally:
            _abandon(handle)


@contextmanager
def _about_backup(path: str, backup: str) -> Iterator[None]:
    """An error naming the backup, said about FILE: ``FILE: backup B: reason``."""
    try:
        yield
    except OutputError as exc:
        if exc.path != backup:
            raise
        raise OutputError(path, f"backup {backup}: {exc.reason}") from None
