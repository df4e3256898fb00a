"""Events: the canonical session log, one frozen class per line type.

What this module owns: the shape of every event, its validation, its JSON form
and the JSON Schema of the log (generated from the classes below, so the
schema and the code cannot disagree).  What it must not know: which event may
follow which (``state.py``), what an event means for the context
(``ledger.py``), or how any projector turns events into messages.

A log is JSON Lines.  Line 1 is ``session.meta``; every later line is one of
the other events.  Line numbers are 1-based file lines and are how every rule,
repair and error names a place in the log: ``log[i]`` is line ``i + 1``.

Events are keyword-only and validate on construction, so an invalid event
cannot exist::

    >>> ToolResult(call_id="TodoList:3", output="ok")
    ToolResult(call_id='TodoList:3', output='ok', is_error=False)
    >>> TurnPrompt(text="")
    Traceback (most recent call last):
    ...
    ctxspec.errors.InvalidEvent: turn.prompt.text: must not be empty
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Union, get_args, get_type_hints

from .errors import InvalidEvent, InvalidLog

#: The log format version this package reads and writes.
FORMAT_VERSION: Final = 1

_NONEMPTY: Final = {"minLength": 1}


def _nonempty() -> Any:
    return field(metadata=_NONEMPTY)


class _Validated:
    """Shared by every event class: validation on construction, printable repr."""

    __slots__ = ()

    def __post_init__(self) -> None:
        _check_fields(self, getattr(self, "type", "call"))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints events exactly as ``repr`` does: valid Python."""
        printer.text(repr(self))


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCall(_Validated):
    """One call inside an ``assistant`` event: ``args`` is the raw argument text."""

    id: str = _nonempty()
    name: str = _nonempty()
    args: str = "{}"

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "args": self.args}


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionMeta(_Validated):
    """Line 1 of every log: the format version and the system prompt."""

    type: ClassVar[str] = "session.meta"
    version: int = FORMAT_VERSION
    system: str = ""

    def __post_init__(self) -> None:
        _Validated.__post_init__(self)  # not super(): slots=True rebuilds the class
        if self.version != FORMAT_VERSION:
            raise InvalidEvent(f"session.meta.version: unsupported version {self.version} (this is {FORMAT_VERSION})")


@dataclass(frozen=True, kw_only=True, slots=True)
class TurnPrompt(_Validated):
    """The user starts a turn."""

    type: ClassVar[str] = "turn.prompt"
    text: str = _nonempty()


@dataclass(frozen=True, kw_only=True, slots=True)
class TurnSteer(_Validated):
    """User input typed while a turn is running."""

    type: ClassVar[str] = "turn.steer"
    text: str = _nonempty()


@dataclass(frozen=True, kw_only=True, slots=True)
class Notification(_Validated):
    """User-role text the runtime injects (a background task finished, ...)."""

    type: ClassVar[str] = "notification"
    text: str = _nonempty()


@dataclass(frozen=True, kw_only=True, slots=True)
class TurnCancel(_Validated):
    """The user cancelled the running turn; calls still running are abandoned."""

    type: ClassVar[str] = "turn.cancel"


@dataclass(frozen=True, kw_only=True, slots=True)
class TurnEnd(_Validated):
    """The runtime finished the turn."""

    type: ClassVar[str] = "turn.end"


@dataclass(frozen=True, kw_only=True, slots=True)
class StepBegin(_Validated):
    """A model request is built here: a projection point."""

    type: ClassVar[str] = "step.begin"


@dataclass(frozen=True, kw_only=True, slots=True)
class Assistant(_Validated):
    """The model's reply: text and zero or more parallel calls.

    ``complete=False`` means the stream was cut; the last call may be cut
    mid-arguments.
    """

    type: ClassVar[str] = "assistant"
    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    complete: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class StepError(_Validated):
    """The provider failed the request."""

    type: ClassVar[str] = "step.error"
    message: str = ""
    retryable: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class StepEnd(_Validated):
    """The step finished with the provider's finish reason."""

    type: ClassVar[str] = "step.end"
    finish_reason: str = "stop"


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolResult(_Validated):
    """A tool's output: any order, late, twice, never, or for an unknown id."""

    type: ClassVar[str] = "tool.result"
    call_id: str = _nonempty()
    output: str = ""
    is_error: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Resume(_Validated):
    """The runtime restarted from this log: whatever was in flight is dead."""

    type: ClassVar[str] = "resume"


@dataclass(frozen=True, kw_only=True, slots=True)
class Compaction(_Validated):
    """``summary`` replaces the context up to log line ``upto`` (inclusive).

    The runtime may have chosen ``upto`` badly, inside an open exchange.
    """

    type: ClassVar[str] = "compaction"
    summary: str = _nonempty()
    upto: int = field(default=1, metadata={"minimum": 1})


@dataclass(frozen=True, kw_only=True, slots=True)
class Undo(_Validated):
    """Drop the last ``count`` user turns."""

    type: ClassVar[str] = "undo"
    count: int = field(default=1, metadata={"minimum": 1})


@dataclass(frozen=True, kw_only=True, slots=True)
class Clear(_Validated):
    """Drop the whole context but the system prompt."""

    type: ClassVar[str] = "clear"



Event = Union[
    SessionMeta,
    TurnPrompt,
    TurnSteer,
    Notification,
    TurnCancel,
    TurnEnd,
    StepBegin,
    Assistant,
    StepError,
    StepEnd,
    ToolResult,
    Resume,
    Compaction,
    Undo,
    Clear,
]

#: Every event class, in the order the docs list them.
EVENT_CLASSES: Final[tuple[type[Event], ...]] = get_args(Event)
EVENT_TYPES: Final[dict[str, type[Event]]] = {cls.type: cls for cls in EVENT_CLASSES}

# ---------------------------------------------------------------------------
# Field checks, shared by construction and loading.
# ---------------------------------------------------------------------------

_JSON_TYPES: Final[dict[object, str]] = {str: "string", bool: "boolean", int: "integer"}


def _field_schema(hint: object, metadata: Mapping[str, object]) -> dict[str, object]:
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint], **metadata}
    if hint == tuple[ToolCall, ...]:
        return {"type": "array", "items": {"$ref": "#/$defs/call"}}
    raise TypeError(f"no JSON schema for {hint!r}")  # pragma: no cover - a programming error


_SCHEMA_CACHE: Final[dict[tuple[type[object], str | None], dict[str, object]]] = {}


def _object_schema(cls: type[object], type_name: str | None) -> dict[str, object]:
    cached = _SCHEMA_CACHE.get((cls, type_name))
    if cached is not None:
        return cached
    hints = get_type_hints(cls)
    props: dict[str, object] = {}
    required: list[str] = []
    if type_name is not None:
        props["type"] = {"const": type_name}
        required.append("type")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        props[f.name] = _field_schema(hints[f.name], f.metadata)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    schema: dict[str, object] = {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }
    _SCHEMA_CACHE[(cls, type_name)] = schema
    return schema


def json_schema() -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of one log line, generated from the classes."""
    schema: dict[str, object] = json.loads(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ctxcontract.invalid/session.schema.json",
        "title": f"ctxcontract session log line, format version {FORMAT_VERSION}",
        "$defs": {"call": _object_schema(ToolCall, None)},
        "oneOf": [_object_schema(cls, cls.type) for cls in EVENT_CLASSES],
    }))  # a deep copy: callers may not mutate the cached parts
    return schema


def _check_fields(obj: object, where: str) -> None:
    """Validate a freshly built event against its own schema.

    Each field first meets its quick test (:func:`_quick_tests`); only a value
    that fails it is checked against the schema, which names what is wrong.
    """
    cls = type(obj)
    tests = _QUICK_TESTS.get(cls) or _quick_tests(cls)
    for name, quick, spec in tests:
        value = getattr(obj, name)
        if not quick(value):
            _check_value(value, spec, f"{where}.{name}")


_QuickTest = tuple[str, Callable[[object], bool], Mapping[str, object]]
_QUICK_TESTS: Final[dict[type[object], tuple[_QuickTest, ...]]] = {}


def _quick_tests(cls: type[object]) -> tuple[_QuickTest, ...]:
    """Per field of ``cls``: a test that passes only values :func:`_check_value` accepts.

    It may fail a value the schema accepts (a ``str`` subclass, a list of
    calls): the schema check then decides.  ``check`` builds an event for
    every record of a file; this keeps the schema the one statement of what
    is valid without interpreting it for every event (half the time).
    """
    props = _object_schema(cls, None)["properties"]
    assert isinstance(props, dict)
    tests: list[_QuickTest] = []
    for name, spec in props.items():
        kind, least = spec.get("type"), spec.get("minLength", spec.get("minimum", 0))
        assert isinstance(least, int)
        if kind == "string":
            quick = _long_str(least)
        elif kind == "boolean":
            quick = _is_bool
        elif kind == "integer":
            quick = _int_from(least)
        elif kind == "array":
            quick = _is_calls
        else:  # pragma: no cover - every schema type is above
            quick = _never
        tests.append((name, quick, spec))
    _QUICK_TESTS[cls] = result = tuple(tests)
    return result


def _long_str(least: int) -> Callable[[object], bool]:
    return lambda v: type(v) is str and len(v) >= least


def _int_from(least: int) -> Callable[[object], bool]:
    return lambda v: type(v) is int and v >= least


def _is_bool(v: object) -> bool:
    return v is True or v is False


def _is_calls(v: object) -> bool:
    return type(v) is tuple and all(type(c) is ToolCall for c in v)


def _never(v: object) -> bool:  # pragma: no cover - every schema type has a test
    return False


def _check_value(value: object, spec: Mapping[str, object], where: str) -> None:
    kind = spec.get("type")
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidEvent(f"{where}: expected a string, got {_jtype(value)}")
        if len(value) < int(spec.get("minLength", 0)):  # type: ignore[call-overload]
            raise InvalidEvent(f"{where}: must not be empty")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidEvent(f"{where}: expected true or false, got {_jtype(value)}")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidEvent(f"{where}: expected an integer, got {_jtype(value)}")
        minimum = spec.get("minimum")
        if isinstance(minimum, int) and value < minimum:
            raise InvalidEvent(f"{where}: must be at least {minimum}, got {value}")
    elif kind == "array":
        if not isinstance(value, (list, tuple)):
            raise InvalidEvent(f"{where}: expected an array, got {_jtype(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, ToolCall):
                raise InvalidEvent(f"{where}[{i}]: expected a call object, got {_jtype(item)}")


def _jtype(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# ---------------------------------------------------------------------------
# JSON form.
# ---------------------------------------------------------------------------


def event_to_dict(event: Event) -> dict[str, object]:
    """The JSON object of one log line (fields at their defaults included)."""
    out: dict[str, object] = {"type": event.type}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "calls":
            value = [c.to_dict() for c in value]
        out[f.name] = value
    return out


def _keys_check(obj: Mapping[str, object], cls: type[object], where: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    extra = sorted(set(obj) - names - {"type"})
    if extra:
        raise InvalidEvent(f"{where}: unknown field {extra[0]!r}")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in obj and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InvalidEvent(f"{where}: missing field {f.name!r}")


def event_from_dict(obj: object) -> Event:
    """Build an event from a decoded JSON value; raises :class:`InvalidEvent`."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"expected a JSON object, got {_jtype(obj)}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise InvalidEvent("missing or non-string field 'type'")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise InvalidEvent(f"unknown event type {kind!r}")
    _keys_check(obj, cls, kind)
    kwargs: dict[str, Any] = {k: v for k, v in obj.items() if k != "type"}
    if "calls" in kwargs:
        raw = kwargs["calls"]
        if not isinstance(raw, list):
            raise InvalidEvent(f"{kind}.calls: expected an array, got {_jtype(raw)}")
        calls = []
        for i, c in enumerate(raw):
            if not isinstance(c, dict):
                raise InvalidEvent(f"{kind}.calls[{i}]: expected an object, got {_jtype(c)}")
            _keys_check(c, ToolCall, f"{kind}.calls[{i}]")
            for key in ("id", "name", "args"):
                if key in c and not isinstance(c[key], str):
                    raise InvalidEvent(f"{kind}.calls[{i}].{key}: expected a string, got {_jtype(c[key])}")
            calls.append(ToolCall(**c))
        kwargs["calls"] = tuple(calls)
    return cls(**kwargs)


def dumps_event(event: Event) -> str:
    """One log line, without the newline."""
    return json.dumps(event_to_dict(event), ensure_ascii=False, separators=(",", ":"))


def dumps_log(events: Iterable[Event]) -> str:
    """A whole log as JSON Lines text."""
    return "".join(dumps_event(e) + "\n" for e in events)


def iter_log_lines(lines: Iterable[str]) -> Iterator[Event]:
    """Parse JSON Lines, raising :class:`InvalidLog` with the 1-based line."""
    last_number = 0
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(lines, start=1):
        if pending is not None:
            yield _parse_line(*pending, last=False)
        pending = (number, raw)
        last_number = number
    if pending is None:
        raise InvalidLog("empty file: a log starts with a session.meta line", line=1)
    yield _parse_line(*pending, last=True)
    del last_number


def _parse_line(number: int, raw: str, *, last: bool) -> Event:
    text = raw.rstrip("\n").rstrip("\r")
    if not text.strip():
        raise InvalidLog("blank line", line=number)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if last and not raw.endswith("\n"):
            raise InvalidLog(f"truncated last line (the writer stopped mid-line?): {exc.msg}", line=number) from None
        raise InvalidLog(f"malformed JSON: {exc.msg} at column {exc.colno}", line=number) from None
    try:
        event = event_from_dict(obj)
    except InvalidEvent as exc:
        raise InvalidLog(str(exc), line=number) from None
    if number == 1 and not isinstance(event, SessionMeta):
        raise InvalidLog(f"line 1 must be session.meta, got {event.type}", line=1)
    if number > 1 and isinstance(event, SessionMeta):
        raise InvalidLog("session.meta may only be line 1", line=number)
    return event


def parse_log(text: str) -> tuple[Event, ...]:
    """Parse a whole log held in memory (lines end at ``\n`` only, as in the file)."""
    lines = [part + "\n" for part in text.split("\n")]
    if lines[-1] == "\n":  # text ended with a newline (or is empty)
        lines.pop()
    else:
        lines[-1] = lines[-1][:-1]
    return tuple(iter_log_lines(lines))


def load_log(path: str) -> tuple[Event, ...]:
    """Read a log file; every failure is an :class:`InvalidLog` naming the file."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return tuple(iter_log_lines(handle))
    except InvalidLog as exc:
        raise exc.at(path) from None
    except IsADirectoryError:
        raise InvalidLog("is a directory, not a log file", path=path) from None
    except FileNotFoundError:
        raise InvalidLog("no such file", path=path) from None
    except PermissionError:
        raise InvalidLog("permission denied", path=path) from None
    except UnicodeDecodeError as exc:
        raise InvalidLog(f"not UTF-8 text (byte {exc.start} of the file)", path=path) from None


def events_from_dicts(objs: Sequence[object]) -> tuple[Event, ...]:
    """Build a log from decoded JSON objects (line numbers follow the list)."""
    out = []
    for i, obj in enumerate(objs, start=1):
        try:
            out.append(event_from_dict(obj))
        except InvalidEvent as exc:
            raise InvalidLog(str(exc), line=i) from None
    return tuple(out)


def delete_lines(log: Sequence[Event], drop: set[int]) -> list[Event]:
    """``log`` without the (1-based) lines in ``drop``; ``compaction.upto`` follows its event."""
    shift = [0] * (len(log) + 1)
    removed = 0
    for line in range(1, len(log) + 1):
        if line in drop:
            removed += 1
        shift[line] = removed
    out: list[Event] = []
    for line, event in enumerate(log, start=1):
        if line in drop:
            continue
        if isinstance(event, Compaction):
            event = Compaction(summary=event.summary, upto=max(1, event.upto - shift[event.upto]))
        out.append(event)
    return out
