"""The kinds of error ctxcontract raises.

* :class:`InvalidLog` -- what we were handed is not a log we can read: bad JSON,
  a field of the wrong type, an event the session state machine refuses.  It
  names the file (when there is one) and the 1-based line.
* :class:`ContractViolation` -- a projection breaks the context contract.  It
  carries the violations and the log that produced them, so the failure is a
  replayable session, not a log line.
* :class:`ProjectorFailed` -- the projector under test gave no message list
  (its process crashed, hung or answered garbage): a C12 finding.

Both print as a single line; the command line never shows a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .contract import Violation
    from .events import Event


class CtxError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidEvent(CtxError, ValueError):
    """An event that cannot exist: raised by the event constructors."""


class InvalidLog(CtxError):
    """The input is not a usable session log."""

    def __init__(self, message: str, *, line: int | None = None, path: str | None = None) -> None:
        self.message = message
        self.line = line
        self.path = path
        super().__init__(self.one_line())

    def at(self, path: str) -> "InvalidLog":
        """The same error, naming the file it came from."""
        return InvalidLog(self.message, line=self.line, path=path)

    def one_line(self) -> str:
        where = "<stdin>" if self.path == "-" else (self.path or "<log>")
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}"


class ProjectorFailed(CtxError, RuntimeError):
    """The projector under test gave no message list, for a reason its message states whole.

    The checker reports it as a C12 finding with that message (a plain
    exception is reported as ``the projector raised KIND: MESSAGE``).
    """


class ContractViolation(CtxError, AssertionError):
    """A projection broke the contract; ``log`` replays the failure."""

    def __init__(self, violations: Sequence["Violation"], log: Sequence["Event"]) -> None:
        self.violations = tuple(violations)
        self.log = tuple(log)
        lines = "\n".join(f"  {v}" for v in self.violations)
        super().__init__(f"{len(self.violations)} contract violation(s):\n{lines}")


class RefinementError(CtxError, AssertionError):
    """A concrete step that is no step of the abstract model; ``log`` replays it."""

    def __init__(self, failures: Sequence[str], log: Sequence["Event"]) -> None:
        self.failures = tuple(failures)
        self.log = tuple(log)
        super().__init__("refinement: " + "; ".join(self.failures))
