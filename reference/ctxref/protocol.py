"""The harness side of the projector protocol (docs/protocol.md).

:class:`ChildProjector` runs a projector in a child process, in any
language, and is called like any projector: a canonical log in, messages
out.  It keeps the child for the whole search, feeds a stateful child each
record once, and turns every way a child can fail (an error answer, a hang,
an exit, a line that is not the protocol, a malformed message list) into a
:class:`~ctxspec.errors.ProjectorFailed`, which the checker reports as a C12
finding; the next call starts a new child.

What it must not do: hang, or leave a process behind.  The child runs in its
own process group, and every way out of this module kills the group.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Final

from ctxcontract.adapter import FORMATS as FORMATS
from ctxcontract.adapter import PROTOCOL as PROTOCOL
from ctxspec.errors import InvalidLog, ProjectorFailed
from ctxspec.events import Event, Resume, TurnCancel, TurnEnd, dumps_event
from ctxspec.messages import Message, messages_from_openai

from .formats import EVENT_FORMATS

# The protocol version and the session formats (canonical first) are the Python
# kit's: one copy, in the module a child imports without the checker.
#: The request shapes it can read.
SHAPES: Final = ("openai-chat",)
MODES: Final = ("stateless", "stateful")
#: Seconds to wait for each answer unless told otherwise.
DEFAULT_TIMEOUT: Final = 10.0
#: The moments the log cannot say in a runtime's own records.
MOMENTS: Final[Mapping[type[Event], str]] = {Resume: "resume", TurnCancel: "cancel", TurnEnd: "turn_end"}

#: Seconds a child may take to start and answer ``hello`` (at least the request timeout).
STARTUP_TIMEOUT: Final = 60.0
_POLL: Final = 0.05  # seconds between looks at whether the child has exited
_STDERR_KEPT: Final = 4096  # bytes of the child's standard error kept for findings
_EOF: Final = object()


class ProtocolError(Exception):
    """The command does not speak the protocol (its first answer said so): nothing can be checked."""


@dataclass(frozen=True, slots=True)
class Hello:
    """What the child answered to ``hello``."""

    format: str
    shape: str
    mode: str
    name: str | None


def _hello_of(answer: object) -> Hello:
    if not isinstance(answer, dict) or answer.get("type") != "hello":
        raise ProtocolError(f"its first answer is not a hello: {_short(json.dumps(answer))}")
    if answer.get("protocol") != PROTOCOL:
        raise ProtocolError(f"it speaks protocol {answer.get('protocol')!r}; this harness speaks {PROTOCOL}")
    fmt, shape, mode, name = answer.get("format"), answer.get("shape"), answer.get("mode"), answer.get("name")
    if fmt not in FORMATS:
        raise ProtocolError(f"it wants the session format {fmt!r}; the harness sends {', '.join(FORMATS)}")
    if shape not in SHAPES:
        raise ProtocolError(f"it returns the request shape {shape!r}; the harness reads {', '.join(SHAPES)}")
    if mode not in MODES:
        raise ProtocolError(f"its mode is {mode!r}, not stateless or stateful")
    if name is not None and not isinstance(name, str):
        raise ProtocolError(f"its name is {name!r}, not a string")
    assert isinstance(fmt, str) and isinstance(shape, str) and isinstance(mode, str)
    return Hello(fmt, shape, mode, name)


def _short(text: str, width: int = 120) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


class _Child:
    """One running child: its pipes, a reader thread per output, the kept stderr."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killed whole
            env=dict(env) if env is not None else None,
        )
        self.lines: queue.Queue[object] = queue.Queue()
        self.stderr: collections.deque[bytes] = collections.deque()
        self._stderr_size = 0
        self._lock = threading.Lock()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_lines, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self.proc.stderr,), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_lines(self, pipe: IO[bytes]) -> None:
        for line in pipe:
            self.lines.put(line)
        self.lines.put(_EOF)

    def _read_stderr(self, pipe: IO[bytes]) -> None:
        while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
            with self._lock:
                self.stderr.append(chunk)
                self._stderr_size += len(chunk)
                while self._stderr_size - len(self.stderr[0]) >= _STDERR_KEPT:
                    self._stderr_size -= len(self.stderr.popleft())

    def stderr_tail(self) -> str:
        """The last lines the child wrote to standard error, on one line."""
        with self._lock:
            data = b"".join(self.stderr)[-_STDERR_KEPT:]
        lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        return _short(" | ".join(lines[-6:]), 400)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> bytes | None:
        """The next line, ``None`` once the child has exited; ``queue.Empty`` after ``timeout``.

        The child's exit is watched, not only the end of its output: a
        grandchild that inherited the pipe keeps it open after the child died.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                item = self.lines.get(timeout=max(0.0, min(left, _POLL)))
            except queue.Empty:
                if self.proc.poll() is not None:
                    try:  # what it wrote just before it exited is still on its way
                        item = self.lines.get(timeout=_POLL)
                    except queue.Empty:
                        return None
                elif left <= _POLL:
                    raise
                else:
                    continue
            return None if item is _EOF else item  # type: ignore[return-value]

    def stop(self, *, grace: float = 1.0) -> None:
        """Close its input, give it ``grace`` seconds to exit, then kill its process group."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """Kill the process group, and wait (a moment at most) until no member is left."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # grandchildren too
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.01)
        for t in self._threads:
            t.join(timeout=1.0)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


class ChildProjector:
    """A projector in a child process, over the projector protocol; call it like a projector.

    ``argv`` is the command (no shell).  :meth:`start` does the handshake
    (raises :class:`ProtocolError`); a call starts the child if it is not
    running.  Every failure of the child raises
    :class:`~ctxspec.errors.ProjectorFailed` with a one-line reason and the
    end of its standard error; the next call starts a new child.  Use it as
    a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        startup_timeout: float = STARTUP_TIMEOUT,
        env: Mapping[str, str] | None = None,
        trace: list[tuple[str, str]] | None = None,
    ) -> None:
        if not argv:
            raise ValueError("no command")
        self.argv = tuple(argv)
        self.timeout = timeout
        self.startup_timeout = max(timeout, startup_timeout)
        self.env = env
        self.hello: Hello | None = None
        self.trace = trace  # every line both ways, ("to", text) or ("from", text): for the tests
        self.starts = 0
        self._child: _Child | None = None
        self._ids = 0
        self._sessions = 0
        self._session: str | None = None
        self._fed: tuple[Event, ...] = ()
        self._sent: list[str] = []  # the records sent in this session (formats other than canonical)

    # -- the child's life ---------------------------------------------------------------

    def start(self) -> Hello:
        """Start the child and shake hands; :class:`ProtocolError` if it does not speak the protocol."""
        if self._child is not None and self.hello is not None:
            return self.hello
        try:
            child = _Child(self.argv, self.env)
        except OSError as exc:
            raise ProtocolError(f"cannot start it: {exc.strerror or exc}") from None
        self._child = child
        self.starts += 1
        try:
            self._say({"type": "hello", "protocol": PROTOCOL, "formats": list(FORMATS), "shapes": list(SHAPES)})
            line = self._line("hello", self.startup_timeout)
            try:
                answer = json.loads(line)
            except ValueError:
                raise ProtocolError(f"its first answer is not JSON: {_short(line)}") from None
            hello = _hello_of(answer)
        except (ProtocolError, ProjectorFailed) as exc:
            tail = child.stderr_tail()
            self._drop()
            raise ProtocolError(str(exc) + (f"; its stderr: {tail}" if tail and "stderr:" not in str(exc) else "")) from None
        if self.hello is not None and hello != self.hello:
            self._drop()
            raise ProjectorFailed(f"the projector's process, restarted, answered another hello: {hello} after {self.hello}")
        self.hello = hello
        return hello

    def close(self) -> None:
        """Stop the child (it may finish what it is doing for a moment) and forget its session."""
        if self._child is not None:
            if self._session is not None:
                try:
                    self._say({"type": "close", "session": self._session})
                except OSError:
                    pass
            self._child.stop()
        self._child = None
        self._session = None

    def __enter__(self) -> ChildProjector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop(self) -> None:
        """Kill the child at once; the next call starts a new one."""
        if self._child is not None:
            self._child.kill()
        self._child = None
        self._session = None

    def _fail(self, why: str) -> ProjectorFailed:
        """Kill the child and say why, with the end of its standard error."""
        tail = self._child.stderr_tail() if self._child is not None else ""
        self._drop()
        return ProjectorFailed(why + (f" (its stderr: {tail})" if tail else ""))

    # -- lines ----------------------------------------------------------------------------

    def _say(self, obj: dict[str, object]) -> None:
        self._say_text(json.dumps(obj, ensure_ascii=False))

    def _say_text(self, text: str) -> None:
        assert self._child is not None
        if self.trace is not None:
            self.trace.append(("to", text))
        self._child.send(text)

    def _line(self, waiting_for: str, timeout: float | None = None) -> str:
        assert self._child is not None
        timeout = self.timeout if timeout is None else timeout
        try:
            raw = self._child.receive(timeout)
        except queue.Empty:
            raise self._fail(f"the projector's process gave no answer within {timeout:g} s to {waiting_for}") from None
        if raw is None:
            code = self._child.proc.wait()
            raise self._fail(f"the projector's process exited with code {code} before answering {waiting_for}")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if self.trace is not None:
            self.trace.append(("from", text))
        return text

    # -- projecting -----------------------------------------------------------------------

    def __call__(self, log: Sequence[Event]) -> Sequence[Message]:
        hello = self._ensure_started()
        log = tuple(log)
        self._ids += 1
        rid = self._ids
        try:
            if hello.mode == "stateless":
                entries, _ = self._entries(log, 0, [])
                assert entries is not None  # nothing was sent before: nothing can have changed
                self._say_text(f'{{"type":"project","id":{rid},"entries":[{",".join(entries)}]}}')
            else:
                self._advance(log)
                self._say({"type": "request", "id": rid, "session": self._session})
        except OSError:  # a closed pipe: it ended; its exit code says more
            code = self._child.proc.wait() if self._child is not None else None
            raise self._fail(f"the projector's process exited with code {code} before the request was sent") from None
        return self._answer(rid)

    def _ensure_started(self) -> Hello:
        if self._child is None or self.hello is None:
            try:
                return self.start()
            except ProtocolError as exc:  # at a restart, mid-search: a finding, not a usage error
                raise ProjectorFailed(f"the projector's process did not start again: {exc}") from None
        return self.hello

    def _answer(self, rid: int) -> list[Message]:
        line = self._line("the request")
        try:
            answer = json.loads(line)
        except ValueError:
            raise self._fail(f"the projector's process answered the request with a line that is not JSON: {_short(line)!r}") from None
        kind = answer.get("type") if isinstance(answer, dict) else None
        if kind not in ("messages", "error") or answer.get("id") != rid:
            raise self._fail(f"the projector's process answered the request with something other than the protocol: {_short(line)!r}")
        if kind == "error":
            error = answer.get("error")
            if not isinstance(error, dict) or not isinstance(error.get("message"), str):
                raise self._fail(f"the projector's process answered the request with an error the protocol does not allow: {_short(line)!r}")
            what = error.get("kind") if isinstance(error.get("kind"), str) else "an error"
            raise ProjectorFailed(f"the projector raised {what}: {error['message']}")
        try:
            return list(messages_from_openai(answer.get("messages")))
        except InvalidLog as exc:
            raise ProjectorFailed(f"the projector returned a malformed message list: {exc.message}") from None

    def _advance(self, log: tuple[Event, ...]) -> None:
        """Send a stateful child what it lacks of ``log``: the new entries, or a new session."""
        assert self.hello is not None
        n = len(self._fed)
        if self._session is not None and len(log) >= n and log[:n] == self._fed:
            entries, sent = self._entries(log, n, self._sent)
            if entries is not None:
                if entries:
                    self._say_text(f'{{"type":"append","session":{json.dumps(self._session)},"entries":[{",".join(entries)}]}}')
                self._fed, self._sent = log, sent
                return
        if self._session is not None:
            self._say({"type": "close", "session": self._session})
        self._sessions += 1
        self._session = f"s{self._sessions}"
        self._say({"type": "open", "session": self._session})
        entries, sent = self._entries(log, 0, [])
        assert entries is not None
        if entries:
            self._say_text(f'{{"type":"append","session":{json.dumps(self._session)},"entries":[{",".join(entries)}]}}')
        self._fed, self._sent = log, sent

    def _entries(self, log: tuple[Event, ...], start: int, sent: list[str]) -> tuple[list[str], list[str]] | tuple[None, list[str]]:
        """The entries for ``log[start:]`` after the records ``sent``; ``None`` if the records changed.

        Canonical records are the events themselves.  Other formats are
        exported whole, as the runtime would have written them by now, and
        only the records past ``sent`` go out.
        """
        assert self.hello is not None
        moments = [(i + 1, MOMENTS[type(e)]) for i, e in enumerate(log[start:], start) if type(e) in MOMENTS]
        if self.hello.format == "canonical":
            records = [(i + 1, dumps_event(e)) for i, e in enumerate(log[start:], start)]
            new_sent = sent
        else:
            every = list(EVENT_FORMATS[self.hello.format].export_sourced(log, final=False))
            texts = [text for _line, text in every]
            if texts[: len(sent)] != sent:
                return None, sent
            records, new_sent = every[len(sent) :], texts
        out: list[str] = []
        k = 0
        for line, text in records:
            while k < len(moments) and moments[k][0] < line:
                out.append(f'{{"line":{moments[k][0]},"moment":"{moments[k][1]}"}}')
                k += 1
            out.append(f'{{"line":{line},"record":{text}}}')
        out.extend(f'{{"line":{line},"moment":"{m}"}}' for line, m in moments[k:])
        return out, new_sent
