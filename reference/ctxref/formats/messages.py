"""Message-list formats: Kimi CLI ``context.jsonl`` and captured provider requests.

These files hold the message list itself, not an event log, so they are not
imported to a canonical log.  They are read into :mod:`ctxspec.messages`
objects *exactly as the runtime will send them next* and checked against the
contract's message-level rules (:func:`ctxspec.contract.check_messages`), with
every verdict mapped back to the original file's line.

* ``kimi-context``: Kimi CLI's ``context.jsonl``.  One JSON object a line,
  discriminated by ``role``: ``_system_prompt`` (becomes the system message,
  first), ``_checkpoint`` and ``_usage`` (not model context: skipped and
  counted), and message dumps (``role`` system/user/assistant/tool, ``content``
  a string or a list of parts, ``tool_calls[{type, id, function{name,
  arguments}}]``, ``tool_call_id``).  Adjacent user messages are sent as one
  (joined with :data:`MERGE_SEPARATOR`).  In lenient mode unreadable lines are
  skipped, as Kimi CLI's restore does.
* ``openai``: a captured Chat Completions request, ``{"model": .., "messages":
  [..]}`` or a bare ``messages`` array.
* ``anthropic``: a captured Messages API request, ``{"system": .., "messages":
  [..]}`` with content blocks ``text``, ``tool_use{id, name, input}`` and
  ``tool_result{tool_use_id, content, is_error}``.  Each ``tool_result`` block
  becomes one tool message, in block order; the other blocks of that user
  message become one user message *after* them.  Anthropic wants the results
  before any text: a text block before a result is reported (rule C1).
* ``gemini``: a captured ``generateContent`` request, ``{"systemInstruction":
  .., "contents": [..]}``, read (and written and repaired) by :mod:`.gemini`.
* ``openai-responses``: a captured Responses API request, ``{"instructions":
  .., "input": [items]}``, read (and written and repaired) by :mod:`.responses`.

What this module must not know: how an event log is projected.  See
``docs/formats/messages.md``.
"""

from __future__ import annotations

import bisect
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Final, Union

from ctxspec.contract import Violation, check_messages
from ctxspec.errors import InvalidEvent, InvalidLog
from ctxspec.events import ToolCall
from ctxspec.messages import AssistantMessage, Message, Reasoning, SystemMessage, ToolMessage, UserMessage
from ctxspec.rules import Level

from . import base as _base
from .base import JSON, FieldError, ImportReport, Lenience, Skipped, dumps, get_bool, get_list, get_str, open_input, read_records
from .loadable import fix_kimi_context

#: Names of the message-list formats.
MESSAGE_FORMATS: Final[tuple[str, ...]] = ("kimi-context", "openai", "anthropic", "gemini", "openai-responses")

#: How adjacent Kimi CLI user messages are joined into the one message sent.
MERGE_SEPARATOR: Final = "\n\n"

#: The first text part of an error result in older Kimi CLI builds (``soul/message.py`` at
#: 1c9d18c7: ``[<system>ERROR</system>, <system>message</system>, output]``).  Read, not written.
KIMI_ERROR_MARK: Final = "<system>ERROR</system>"

#: How Kimi CLI 1.52 writes an error result: one text part ``<system>ERROR: message</system>``
#: (then the output's parts, if any).  A lone text part is dumped as a plain string.
KIMI_ERROR_FORM: Final = "<system>ERROR: {}</system>"
_KIMI_ERROR_RE: Final = re.compile(r"<system>ERROR: (.*)</system>", re.DOTALL)

#: The text of a result that repair adds for a call nobody answered (rule C5
#: recognises the reason by the words "never answered" and "no result").
SYNTHETIC_TEXT: Final = "Tool call never answered: no result was recorded (closed by ctxcontract repair)."

_KIMI_META: Final = ("_system_prompt", "_checkpoint", "_usage")
_KIMI_MEDIA: Final = ("image_url", "audio_url", "video_url")


# ---------------------------------------------------------------------------
# What a load returns.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one sent message came from.

    ``items``: for ``kimi-context`` the indices into :attr:`KimiSource.records`
    of the lines it was made from (more than one when adjacent user messages
    are merged); for a request document the index of the message object in the
    document's ``messages`` array.  ``block``: for an Anthropic tool message,
    the index of its ``tool_result`` block in that message's content.
    """

    line: int
    items: tuple[int, ...]
    block: int | None = None


@dataclass(frozen=True, slots=True)
class KimiRecord:
    """One readable line of a ``context.jsonl``: its role and, for a message line, the message."""

    line: int
    role: str
    message: Message | None = None


@dataclass(frozen=True, slots=True)
class KimiSource:
    records: tuple[KimiRecord, ...]


@dataclass(frozen=True, slots=True)
class DocumentSource:
    """A request document: the parsed JSON and where each message object starts."""

    document: JSON | list[object]
    raw_messages: tuple[object, ...]
    #: Line where each message object of the ``messages`` array begins.
    message_lines: tuple[int, ...]
    #: For each message object, the line where each of its content blocks (Gemini: parts) begins
    #: (empty when the content is a string).
    block_lines: tuple[tuple[int, ...], ...]
    #: Line of each top-level member of the document (``system``, ``instructions``, ...).
    member_lines: Mapping[str, int]
    #: Line where the document begins.
    first_line: int


@dataclass(frozen=True, slots=True)
class LoadedMessages:
    """A message-list file read as the runtime will send it."""

    format: str
    messages: tuple[Message, ...]
    #: For each message, the original file line where it starts.
    lines: tuple[int, ...]
    report: ImportReport
    origins: tuple[Origin, ...]
    source: Union[KimiSource, DocumentSource]
    #: Provider-specific violations found while reading (e.g. Anthropic text before results).
    provider: tuple[Violation, ...] = ()


# ---------------------------------------------------------------------------
# Detection.
# ---------------------------------------------------------------------------


def sniff_messages(path: str) -> str | None:
    """The message format of the file at ``path``, or None when it is none of them.

    JSON Lines whose first record has a ``role`` is ``kimi-context``; a JSON
    document (a request) with ``tool_use``/``tool_result`` blocks or a
    top-level ``system`` is ``anthropic``; any other messages document is
    ``openai``.  Only the first line is read unless the file is one JSON
    document.  Raises :class:`InvalidLog` only when the file cannot be opened.
    """
    with open_input(path) as handle:
        first = b""
        while not first.strip():
            first = handle.readline(_base.MAX_LINE_BYTES + 1).removeprefix(_base.BOM)
            if not first:
                return None
        head = first.lstrip()
        if head.startswith(b"["):
            return "openai"
        if not head.startswith(b"{"):
            return None
        try:
            obj = json.loads(first.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            if "role" in obj:
                return "kimi-context"
            rest = handle.read(64 * 1024)
            if rest.strip():
                return None  # JSON Lines of some other kind
            return _classify(obj)
        handle.seek(0)
        data = handle.read(_base.MAX_LINE_BYTES + 1).removeprefix(_base.BOM)
    if len(data) > _base.MAX_LINE_BYTES:
        return None
    try:
        return _classify(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def _undetected(path: str) -> InvalidLog:
    """Why the file at ``path`` is no message list: its real problem, in one line."""
    with open_input(path) as handle:
        _text, doc = _read_document(handle, ImportReport(path=path))  # raises for what is no JSON document
    arrays = " or ".join(repr(k) for k in dict.fromkeys(ITEMS_KEY.values()))
    if isinstance(doc, dict):
        keys = ", ".join(repr(k) for k in list(doc)[:6]) or "none"
        present = next((k for k in ITEMS_KEY.values() if k in doc), None)
        got = f"an object whose {present!r} is {_base._jtype(doc[present])}" if present else f"an object with no {arrays} array (keys: {keys})"
    else:
        got = _base._jtype(doc)
    known = ", ".join(MESSAGE_FORMATS)
    return InvalidLog(f"not a request: expected a JSON array of messages or an object with a {arrays} array, got {got} (known: {known})", line=1, path=path)


def _classify(doc: object) -> str | None:
    if isinstance(doc, list):
        return "openai"
    if isinstance(doc, dict) and isinstance(doc.get("contents"), list):
        return "gemini"
    if isinstance(doc, dict) and "messages" not in doc and isinstance(doc.get("input"), list):
        return "openai-responses"
    if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
        return None
    if "system" in doc:
        return "anthropic"
    for message in doc["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") in ("tool_use", "tool_result"):
                    return "anthropic"
    return "openai"


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------


def load_messages(path: str, format: str | None = None, *, lenient: bool = False) -> LoadedMessages:
    """Read a message-list file; every failure is a one-line :class:`InvalidLog`.

    ``format`` is one of :data:`MESSAGE_FORMATS`, or None to detect it.  In
    lenient mode unreadable lines (``kimi-context``) or message objects
    (request documents) are skipped and counted in the report.
    """
    if format is None:
        format = sniff_messages(path)
        if format is None:
            raise _undetected(path)
    if format not in MESSAGE_FORMATS:
        raise InvalidLog(f"unknown message format {format!r} (known: {', '.join(MESSAGE_FORMATS)})", path=path)
    report = ImportReport(path=path)
    with open_input(path) as handle:
        return _load(handle, format, report, lenient)


def load_messages_text(text: str, format: str, *, lenient: bool = False, path: str = "<text>") -> LoadedMessages:
    """:func:`load_messages` over text held in memory."""
    if format not in MESSAGE_FORMATS:
        raise InvalidLog(f"unknown message format {format!r}", path=path)
    return _load(io.BytesIO(text.encode("utf-8")), format, ImportReport(path=path), lenient)


def _load(handle: IO[bytes], format: str, report: ImportReport, lenient: bool) -> LoadedMessages:
    try:
        if format == "kimi-context":
            return _load_kimi(handle, report, lenient)
        return _load_document(handle, format, report, lenient)
    except FieldError as exc:  # a field error that escaped the per-record handling
        raise InvalidLog(str(exc), path=report.path) from None
    except RecursionError:
        raise InvalidLog("JSON nested too deeply", path=report.path) from None


# -- content ------------------------------------------------------------------


def _parts_text(value: object, media: Sequence[str] | None, skip: Sequence[str] = ()) -> str:
    """The text of a content value: a string, null, or a list of parts.

    Text parts give their text; a part whose type is in ``skip`` gives nothing;
    other parts give ``[type]`` when ``media`` is None or lists the type, else
    they are an error.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise FieldError(f"field 'content': expected a string or an array, got {_base._jtype(value)}")
    out: list[str] = []
    for j, part in enumerate(value):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise FieldError(f"content[{j}]: expected a part object with a string 'type'")
        kind = part["type"]
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise FieldError(f"content[{j}]: a text part needs a string 'text'")
            out.append(text)
        elif kind in skip:
            continue
        elif media is None or kind in media:
            out.append(f"[{kind}]")
        else:
            raise FieldError(f"content[{j}]: unknown part type {kind!r}")
    return "".join(out)


def _call(call_id: object, name: object, args: str, where: str) -> ToolCall:
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise FieldError(f"{where}: needs a string id and a string name")
    try:
        return ToolCall(id=call_id, name=name, args=args)
    except InvalidEvent as exc:
        raise FieldError(f"{where}: {exc}") from None


def _function_calls(obj: Mapping[str, object]) -> tuple[ToolCall, ...]:
    """``tool_calls[{type, id, function{name, arguments}}]`` (Kimi CLI and OpenAI share it)."""
    raw = obj.get("tool_calls")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FieldError(f"field 'tool_calls': expected an array, got {_base._jtype(raw)}")
    calls: list[ToolCall] = []
    for j, item in enumerate(raw):
        where = f"tool_calls[{j}]"
        if not isinstance(item, dict):
            raise FieldError(f"{where}: expected an object")
        fn = item.get("function")
        if not isinstance(fn, dict):
            raise FieldError(f"{where}: needs a 'function' object")
        args = fn.get("arguments")
        if args is None:
            args = ""
        if not isinstance(args, str):
            raise FieldError(f"{where}: 'arguments' must be a string")
        calls.append(_call(item.get("id"), fn.get("name"), args, where))
    return tuple(calls)


# -- kimi-context ---------------------------------------------------------------


#: The strings pydantic's (lax) ``bool`` accepts, lower-cased.
_PYDANTIC_BOOLS: Final = frozenset({"0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes"})


def _optional(obj: Mapping[str, object], key: str, ok: type, where: str = "") -> None:
    value = obj.get(key)
    if value is not None and not isinstance(value, ok):
        raise FieldError(f"{where}field {key!r}: kosong refuses {_base._jtype(value)} here")


def _kosong_checks(obj: Mapping[str, object]) -> None:
    """What else kosong's ``Message.model_validate`` refuses, so that we skip the lines Kimi CLI skips.

    Kimi CLI 1.52 validates every field of a message line, whatever its role:
    ``name``/``tool_call_id`` strings, ``partial`` a boolean (pydantic's lax
    kind), ``tool_calls`` a list of ``{id, function{name, arguments}}``
    (``arguments`` present, a string or null), and each known content part's
    own fields.  (Tested against the real loader in tests/test_kimi_cli_loads.py.)
    """
    _optional(obj, "name", str)
    _optional(obj, "tool_call_id", str)
    partial = obj.get("partial")
    if partial is not None and not (isinstance(partial, (bool, int, float)) and partial in (0, 1) or isinstance(partial, str) and partial.lower() in _PYDANTIC_BOOLS):
        raise FieldError(f"field 'partial': kosong refuses {_base._jtype(partial)} here")
    calls = obj.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise FieldError(f"field 'tool_calls': expected an array, got {_base._jtype(calls)}")
        for j, call in enumerate(calls):
            fn = call.get("function") if isinstance(call, dict) else None
            if not (isinstance(call, dict) and isinstance(call.get("id"), str) and call.get("type", "function") == "function" and isinstance(fn, dict) and isinstance(fn.get("name"), str) and "arguments" in fn):
                raise FieldError(f"tool_calls[{j}]: kosong needs a string 'id' and 'function' with a string 'name' and an 'arguments'")
            _optional(fn, "arguments", str, f"tool_calls[{j}].function: ")
            _optional(call, "extras", dict, f"tool_calls[{j}]: ")
    content = obj.get("content")
    for j, part in enumerate(content if isinstance(content, list) else ()):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or kind not in _KOSONG_FIELDS:
            continue  # the reader judges it
        field, inner = _KOSONG_FIELDS[kind]
        value = part.get(field)
        if inner:
            if not (isinstance(value, dict) and isinstance(value.get("url"), str)):
                raise FieldError(f"content[{j}]: a {kind} part needs '{field}' with a string 'url'")
            _optional(value, "id", str, f"content[{j}].{field}: ")
        elif not isinstance(value, str):
            raise FieldError(f"content[{j}]: a {kind} part needs a string {field!r}")
        if kind == "think":
            _optional(part, "encrypted", str, f"content[{j}]: ")


#: For each content part kosong knows: its required field, and whether that is a ``{url, id}`` object.
_KOSONG_FIELDS: Final[dict[str, tuple[str, bool]]] = {"text": ("text", False), "think": ("think", False), **{k: (k, True) for k in ("image_url", "audio_url", "video_url")}}


def _kimi_message(obj: Mapping[str, object], role: str) -> Message:
    if "content" not in obj:
        raise FieldError("missing field 'content'")
    _kosong_checks(obj)
    content = obj["content"]
    if role == "system":
        return SystemMessage(text=_parts_text(content, _KIMI_MEDIA, ("think",)))
    if role == "user":
        return UserMessage(text=_parts_text(content, _KIMI_MEDIA, ("think",)))
    if role == "assistant":
        return AssistantMessage(text=_parts_text(content, _KIMI_MEDIA, ("think",)), calls=_function_calls(obj))
    if role == "tool":
        call_id = obj.get("tool_call_id") or ""  # Kimi CLI loads a tool message with none (and sends it)
        assert isinstance(call_id, str)
        is_error, head = _kimi_error(content)
        if is_error:
            assert isinstance(content, (str, list))
            content = content[1:] if isinstance(content, list) else []
        return ToolMessage(call_id=call_id, content=head + _parts_text(content, _KIMI_MEDIA, ("think",)), is_error=is_error)
    raise FieldError(f"unknown role {role!r}")


def _kimi_int(obj: Mapping[str, object], key: str) -> None:
    """Kimi CLI checks ``isinstance(value, int)``, which a JSON ``true`` passes (it is read as 1)."""
    if not isinstance(obj.get(key), int):
        raise FieldError(f"field {key!r}: expected an integer, got {_base._jtype(obj.get(key))}")


def _kimi_error(content: object) -> tuple[bool, str]:
    """Whether a Kimi CLI tool message's content is in an error form, and the text its mark part holds.

    Kimi CLI 1.52: a first text part (or the whole string) ``<system>ERROR: message</system>``,
    whose message is kept; older builds: a first part ``<system>ERROR</system>`` of two or more,
    which is not part of the content.
    """
    first = content[0] if isinstance(content, list) and content else content
    text = first.get("text") if isinstance(first, dict) and first.get("type") == "text" else first
    if not isinstance(text, str):
        return False, ""
    if text == KIMI_ERROR_MARK and isinstance(content, list) and len(content) >= 2:
        return True, ""
    match = _KIMI_ERROR_RE.fullmatch(text)
    return (True, match.group(1)) if match else (False, "")


def _load_kimi(handle: IO[bytes], report: ImportReport, lenient: bool) -> LoadedMessages:
    lax = Lenience(report, lenient)
    records: list[KimiRecord] = []
    system: tuple[str, int, int] | None = None  # text, line, record index
    for rec in read_records(handle, report, lenient=lenient):
        try:
            role = get_str(rec.obj, "role")
            if role == "_system_prompt":
                system = (get_str(rec.obj, "content"), rec.line, len(records))
                records.append(KimiRecord(rec.line, role))
            elif role == "_checkpoint":
                _kimi_int(rec.obj, "id")
                report.skip(role)
                records.append(KimiRecord(rec.line, role))
            elif role == "_usage":
                _kimi_int(rec.obj, "token_count")
                report.skip(role)
                records.append(KimiRecord(rec.line, role))
            else:
                records.append(KimiRecord(rec.line, role, _kimi_message(rec.obj, role)))
        except FieldError as exc:
            lax.bad(rec.line, str(exc))
    if not records:
        if report.unreadable:
            raise InvalidLog("nothing usable: every line was unreadable", path=report.path)
        raise InvalidLog("empty file: no messages", path=report.path)
    messages: list[Message] = []
    origins: list[Origin] = []
    if system is not None:
        messages.append(SystemMessage(text=system[0]))
        origins.append(Origin(system[1], (system[2],)))
    for k, record in enumerate(records):
        m = record.message
        if m is None:
            continue
        if isinstance(m, UserMessage) and messages and isinstance(messages[-1], UserMessage):
            prev = messages[-1]
            messages[-1] = UserMessage(text=prev.text + MERGE_SEPARATOR + m.text)
            origins[-1] = Origin(origins[-1].line, origins[-1].items + (k,))
            report.notes.append(Skipped(record.line, f"user message sent together with the one on line {origins[-1].line}"))
            continue
        messages.append(m)
        origins.append(Origin(record.line, (k,)))
    return LoadedMessages(
        format="kimi-context",
        messages=tuple(messages),
        lines=tuple(o.line for o in origins),
        report=report,
        origins=tuple(origins),
        source=KimiSource(tuple(records)),
    )


# -- request documents ------------------------------------------------------------

_WS: Final = re.compile(r"[ \t\n\r]*")
_DECODER: Final = json.JSONDecoder()


def _skip_ws(text: str, i: int) -> int:
    m = _WS.match(text, i)
    return m.end() if m else i


def _array_starts(text: str, i: int) -> list[int]:
    """Offsets where the elements of the (valid) JSON array at ``i`` begin."""
    starts: list[int] = []
    i = _skip_ws(text, i + 1)
    if text[i] == "]":
        return starts
    while True:
        starts.append(i)
        _, i = _DECODER.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i] != ",":
            return starts
        i = _skip_ws(text, i + 1)


def _member_starts(text: str, i: int) -> dict[str, int]:
    """Offsets where the member values of the (valid) JSON object at ``i`` begin (last key wins)."""
    out: dict[str, int] = {}
    i = _skip_ws(text, i + 1)
    if text[i] == "}":
        return out
    while True:
        key, i = _DECODER.raw_decode(text, i)
        i = _skip_ws(text, _skip_ws(text, i) + 1)  # past ':'
        out[key] = i
        _, i = _DECODER.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i] != ",":
            return out
        i = _skip_ws(text, i + 1)


def _read_document(handle: IO[bytes], report: ImportReport) -> tuple[str, object]:
    limit = _base.MAX_LINE_BYTES
    data = handle.read(limit + 1).removeprefix(_base.BOM)
    if len(data) > limit:
        raise InvalidLog(f"larger than {limit:,} bytes: too big for one request document", path=report.path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidLog(f"not UTF-8 (byte {exc.start + 1} of the file)", line=line, path=report.path) from None
    report.lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    if not text.strip():
        raise InvalidLog("empty file: no messages", path=report.path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):  # the writer stopped, or the capture was cut
            raise InvalidLog(f"truncated JSON: the document ends before it is complete ({exc.msg})", line=exc.lineno, path=report.path) from None
        raise InvalidLog(f"malformed JSON: {exc.msg} at column {exc.colno}", line=exc.lineno, path=report.path) from None
    except RecursionError:
        raise InvalidLog("JSON nested too deeply", line=1, path=report.path) from None
    return text, doc


#: The key holding the history in each request format's document.
ITEMS_KEY: Final[dict[str, str]] = {"openai": "messages", "anthropic": "messages", "gemini": "contents", "openai-responses": "input"}


def _load_document(handle: IO[bytes], format: str, report: ImportReport, lenient: bool) -> LoadedMessages:
    text, doc = _read_document(handle, report)
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(offset: int) -> int:
        return bisect.bisect_right(newlines, offset - 1) + 1

    key = ITEMS_KEY[format]
    start = _skip_ws(text, 0)
    member_lines: dict[str, int] = {}
    if isinstance(doc, list) and key == "messages":
        raw_messages: list[object] = doc
        array_at = start
    elif isinstance(doc, dict):
        members = _member_starts(text, start)
        member_lines = {k: line_at(v) for k, v in members.items()}
        if not isinstance(doc.get(key), list):
            raise InvalidLog(f"a {format} request document needs a '{key}' array, got {_base._jtype(doc.get(key))}", line=line_at(start), path=report.path)
        raw_messages = doc[key]
        array_at = members[key]
    else:
        raise InvalidLog(f"expected a request object or a messages array, got {_base._jtype(doc)}", line=line_at(start), path=report.path)
    starts = _array_starts(text, array_at)
    message_lines = tuple(line_at(s) for s in starts)
    block_lines: list[tuple[int, ...]] = []
    inner = "parts" if format == "gemini" else "content"
    for s, raw in zip(starts, raw_messages):
        lines: tuple[int, ...] = ()
        if isinstance(raw, dict) and isinstance(raw.get(inner), list):
            at = _member_starts(text, s).get(inner)
            if at is not None:
                lines = tuple(line_at(b) for b in _array_starts(text, at))
        block_lines.append(lines)
    source = DocumentSource(doc, tuple(raw_messages), message_lines, tuple(block_lines), member_lines, line_at(start))
    lax = Lenience(report, lenient)
    if format == "openai":
        return _openai(source, report, lax)
    if format == "anthropic":
        system_line = member_lines.get("system", line_at(start))
        system: str | None = None
        if isinstance(doc, dict) and "system" in doc:
            try:
                system = _anthropic_system(doc["system"])
            except FieldError as exc:
                lax.bad(system_line, f"system: {exc}")
        return _anthropic(source, system, system_line, report, lax)
    return DOCUMENT_READERS[format](source, report, lax)


#: Readers of the request formats defined in their own modules (``gemini``,
#: ``openai-responses``): each registers itself here when imported.
DocumentReader = Callable[[DocumentSource, ImportReport, Lenience], LoadedMessages]
DOCUMENT_READERS: dict[str, DocumentReader] = {}


def _finish(format: str, source: DocumentSource, messages: list[Message], origins: list[Origin], report: ImportReport, provider: Sequence[Violation] = ()) -> LoadedMessages:
    if not messages and report.unreadable:
        raise InvalidLog("nothing usable: every message was unreadable", path=report.path)
    return LoadedMessages(format, tuple(messages), tuple(o.line for o in origins), report, tuple(origins), source, tuple(provider))


def _openai_message(obj: Mapping[str, object]) -> Message:
    role = get_str(obj, "role")
    content = obj.get("content")
    if role in ("system", "developer"):
        return SystemMessage(text=_parts_text(content, None))
    if role == "user":
        return UserMessage(text=_parts_text(content, None))
    if role == "assistant":
        reasoning = obj.get("reasoning_content")  # DeepSeek's and Moonshot's thinking mode
        kept = Reasoning(text=reasoning) if isinstance(reasoning, str) else None
        return AssistantMessage(text=_parts_text(content, None), calls=_function_calls(obj), reasoning=kept)
    if role == "tool":
        return ToolMessage(
            call_id=get_str(obj, "tool_call_id"),
            content=_parts_text(content, None),
            is_error=get_bool(obj, "x_is_error"),
            synthetic=get_bool(obj, "x_synthetic"),
        )
    raise FieldError(f"unknown role {role!r}")


def _openai(source: DocumentSource, report: ImportReport, lax: Lenience) -> LoadedMessages:
    messages: list[Message] = []
    origins: list[Origin] = []
    for r, raw in enumerate(source.raw_messages):
        line = source.message_lines[r]
        try:
            if not isinstance(raw, dict):
                raise FieldError(f"expected a message object, got {_base._jtype(raw)}")
            messages.append(_openai_message(raw))
            origins.append(Origin(line, (r,)))
        except FieldError as exc:
            lax.bad(line, f"messages[{r}]: {exc}")
    return _finish("openai", source, messages, origins, report)


def _anthropic_system(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _parts_text(value, ())
    raise FieldError(f"expected a string or text blocks, got {_base._jtype(value)}")


def _anthropic_args(value: object, where: str) -> str:
    if not isinstance(value, dict):
        raise FieldError(f"{where}: 'input' must be an object, got {_base._jtype(value)}")
    return json.dumps(value, ensure_ascii=False)


def _anthropic(source: DocumentSource, system: str | None, system_line: int, report: ImportReport, lax: Lenience) -> LoadedMessages:
    messages: list[Message] = []
    origins: list[Origin] = []
    provider: list[Violation] = []
    if system is not None:
        messages.append(SystemMessage(text=system))
        origins.append(Origin(system_line, ()))
    for r, raw in enumerate(source.raw_messages):
        line = source.message_lines[r]
        blines = source.block_lines[r]
        try:
            if not isinstance(raw, dict):
                raise FieldError(f"expected a message object, got {_base._jtype(raw)}")
            role = get_str(raw, "role")
            content = raw.get("content")
            if role not in ("user", "assistant"):
                raise FieldError(f"role must be 'user' or 'assistant', got {role!r}")
            if isinstance(content, str):
                messages.append(UserMessage(text=content) if role == "user" else AssistantMessage(text=content))
                origins.append(Origin(line, (r,)))
                continue
            blocks = get_list(raw, "content")
            new_msgs: list[Message] = []
            new_origins: list[Origin] = []
            if role == "assistant":
                texts: list[str] = []
                calls: list[ToolCall] = []
                for j, block in enumerate(blocks):
                    where = f"content[{j}]"
                    if not isinstance(block, dict):
                        raise FieldError(f"{where}: expected a block object")
                    kind = get_str(block, "type")
                    if kind == "text":
                        texts.append(get_str(block, "text"))
                    elif kind == "tool_use":
                        calls.append(_call(block.get("id"), block.get("name"), _anthropic_args(block.get("input"), where), where))
                    else:
                        report.skip(f"anthropic {kind} block")
                new_msgs.append(AssistantMessage(text="".join(texts), calls=tuple(calls)))
                new_origins.append(Origin(line, (r,)))
            else:
                others: list[str] = []
                other_line: int | None = None
                first_other: int | None = None  # block index of the first non-result block
                reported = False
                for j, block in enumerate(blocks):
                    where = f"content[{j}]"
                    bline = blines[j] if j < len(blines) else line
                    if not isinstance(block, dict):
                        raise FieldError(f"{where}: expected a block object")
                    kind = get_str(block, "type")
                    if kind == "tool_result":
                        call_id = get_str(block, "tool_use_id")
                        try:
                            output = _parts_text(block.get("content"), None)
                        except FieldError as exc:
                            raise FieldError(f"{where}: {exc}") from None
                        new_msgs.append(ToolMessage(call_id=call_id, content=output, is_error=get_bool(block, "is_error")))
                        new_origins.append(Origin(bline, (r,), j))
                        if first_other is not None and not reported:
                            reported = True
                            before = blocks[first_other]
                            assert isinstance(before, dict)
                            provider.append(
                                Violation(
                                    "C1",
                                    f"tool_result for {call_id!r} comes after a {before.get('type')} block in the same user message;"
                                    " Anthropic wants every result before any other content",
                                    len(messages) + len(new_msgs) - 1,
                                    bline,
                                )
                            )
                        continue
                    if first_other is None:
                        first_other = j
                    others.append(get_str(block, "text") if kind == "text" else f"[{kind}]")
                    if other_line is None:
                        other_line = bline
                if others or not blocks:
                    new_msgs.append(UserMessage(text="".join(others)))
                    new_origins.append(Origin(other_line if other_line is not None else line, (r,)))
            messages.extend(new_msgs)
            origins.extend(new_origins)
        except FieldError as exc:
            # Drop provider findings made for this message before the error.
            provider = [v for v in provider if v.index is None or v.index < len(messages)]
            lax.bad(line, f"messages[{r}]: {exc}")
    return _finish("anthropic", source, messages, origins, report, provider)


# ---------------------------------------------------------------------------
# Checking.
# ---------------------------------------------------------------------------


def check_loaded(loaded: LoadedMessages) -> list[Violation]:
    """The contract's message-level rules (and the provider's own) on what will be sent.

    Each violation keeps its message ``index`` and gets ``line``, the original
    file line: for C1, the line of the assistant message holding the call (and
    the message names the line of the call's result when the file has one
    elsewhere); otherwise the line of the message at ``index``.
    """
    msgs, lines = loaded.messages, loaded.lines
    out: list[Violation] = []
    for v in check_messages(msgs):
        line: int | None = None
        text = v.message
        if v.index is not None and v.rule == "C1":
            j = min(v.index, len(msgs)) - 1
            here = msgs[v.index] if v.index < len(msgs) else None
            if isinstance(here, AssistantMessage) and any(f"call {c.id!r}" in v.message for c in here.calls):
                j = v.index  # the call's own message is the last one sent: its block is empty
            while j >= 0 and not (isinstance(msgs[j], AssistantMessage) and msgs[j].calls):  # type: ignore[union-attr]
                j -= 1
            if j >= 0:
                line = lines[j]
                owner = msgs[j]
                assert isinstance(owner, AssistantMessage)
                named = [c.id for c in owner.calls if f"call {c.id!r}" in v.message]
                if named:
                    cid = named[0]
                    found = [lines[k] for k, m in enumerate(msgs) if isinstance(m, ToolMessage) and m.call_id == cid and k != v.index]
                    text += f"; its result is on line {found[0]}" if found else "; the file has no result for it"
        if line is None and v.index is not None and lines:
            line = lines[min(v.index, len(lines) - 1)]
        out.append(Violation(v.rule, text, v.index, line))
    out.extend(loaded.provider)
    return sorted(out, key=lambda v: (v.line or 0, v.rule))


def check_messages_file(path: str, format: str | None = None, *, lenient: bool = False) -> tuple[LoadedMessages, list[Violation]]:
    """Load and check: the verdict on a message-list file."""
    loaded = load_messages(path, format, lenient=lenient)
    return loaded, check_loaded(loaded) + skipped_by_runtime(loaded)


#: The message formats whose runtime skips a line it cannot read when it loads
#: the file (Kimi CLI from 1.30): they are read leniently, as the runtime reads
#: them, by check, repair, project and scan, and each skipped line is a C8 loss.
RUNTIME_SKIPS: Final = frozenset({"kimi-context"})


def runtime_reads_leniently(format: str) -> bool:
    """Whether the runtime that writes ``format`` skips the lines it cannot read (:data:`RUNTIME_SKIPS`)."""
    return format in RUNTIME_SKIPS


def skipped_by_runtime(loaded: LoadedMessages) -> list[Violation]:
    """The lines the runtime skips when it loads the file: what they held is not sent (C8, ``loss``).

    Kimi CLI (from 1.30) skips a line it cannot read; a line it cannot read
    and stops at is a refusal (:mod:`.loadable`), which the caller reports
    instead.  Captured requests are one JSON document: nothing is skipped.
    """
    if not runtime_reads_leniently(loaded.format):
        return []
    return [
        Violation("C8", f"Kimi CLI skips this line when it loads the file ({s.why}): whatever it held is not sent", line=s.line, level=Level.LOSS)
        for s in loaded.report.unreadable
    ]


# ---------------------------------------------------------------------------
# Repair.
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which tool message goes where: each call's owning tool message or None (synthetic)."""

    blocks: dict[int, tuple[tuple[ToolCall, int | None], ...]]
    in_place: frozenset[int]
    removed: dict[int, str]


def _plan(messages: Sequence[Message]) -> _Plan:
    """Owner of each tool message: the nearest earlier assistant message with an unanswered call of that id."""
    waiting: dict[str, list[tuple[int, int]]] = defaultdict(list)
    called: set[str] = set()
    owner: dict[tuple[int, int], int] = {}
    removed: dict[int, str] = {}
    for i, m in enumerate(messages):
        if isinstance(m, AssistantMessage):
            for p, c in enumerate(m.calls):
                waiting[c.id].append((i, p))
                called.add(c.id)
        elif isinstance(m, ToolMessage):
            ws = waiting.get(m.call_id)
            if ws:
                last = max(a for a, _ in ws)
                pick = min(w for w in ws if w[0] == last)
                ws.remove(pick)
                owner[pick] = i
            elif m.call_id in called:
                removed[i] = "the call already has a result (duplicate)"
            else:
                removed[i] = "no earlier assistant message called it (orphan)"
    blocks: dict[int, tuple[tuple[ToolCall, int | None], ...]] = {}
    in_place: set[int] = set()
    for i, m in enumerate(messages):
        if isinstance(m, AssistantMessage) and m.calls:
            entries = tuple((c, owner.get((i, p))) for p, c in enumerate(m.calls))
            blocks[i] = entries
            for j, (_, t) in enumerate(entries):
                if t != i + 1 + j:
                    break
                in_place.add(t)
    return _Plan(blocks, frozenset(in_place), removed)


def _plan_changes(loaded: LoadedMessages, plan: _Plan, what: str) -> list[tuple[int, str]]:
    msgs, lines = loaded.messages, loaded.lines
    out: list[tuple[int, str]] = []
    for k, why in plan.removed.items():
        m = msgs[k]
        assert isinstance(m, ToolMessage)
        out.append((lines[k], f"removed {what} for {m.call_id!r}: {why}"))
    for a, entries in plan.blocks.items():
        for c, t in entries:
            if t is None:
                out.append((lines[a], f"call {c.id!r} ({c.name}) has no result: added a synthetic error result after its assistant message"))
            elif t not in plan.in_place:
                out.append((lines[t], f"{what} for {c.id!r} moved to follow its assistant message (line {lines[a]}) in call order"))
    return out


def _format_changes(changes: list[tuple[int, str]]) -> list[str]:
    return [f"line {line}: {text}" for line, text in sorted(changes, key=lambda c: c[0])]


def repair_messages_file(path: str, format: str | None = None, *, lenient: bool = False) -> tuple[str, list[str], list[Violation]]:
    """A repaired copy of a message-list file, in the same format: ``(new_text, changes, remaining)``.

    Unanswered calls are closed by synthetic error results right after their
    assistant message, orphan and duplicate tool messages are removed, tool
    messages are moved right after their assistant message in call order
    (Anthropic: into the next user message, before any text).  ``changes``
    names the original line of every change; every other line is kept
    (``kimi-context`` lines byte for byte, lines the model never sees included).
    ``remaining`` is the verdict on the repaired text (what repair does not
    fix: reused call ids, empty messages, a first message that is not a user
    message).  The input file is not modified.  With no change, ``new_text``
    is the input unchanged, so repairing a repaired file changes nothing.
    """
    if format is None:
        format = sniff_messages(path)
    if format != "kimi-context":
        loaded = load_messages(path, format, lenient=lenient)
        with open_input(path) as handle:
            return _repair(loaded, handle.read())
    with open_input(path) as handle:
        data = handle.read()
    return _repair_kimi_data(data, lenient, path)


def repair_messages_text(text: str, format: str, *, lenient: bool = False, path: str = "<text>") -> tuple[str, list[str], list[Violation]]:
    """:func:`repair_messages_file` over text held in memory."""
    if format == "kimi-context":
        return _repair_kimi_data(text.encode("utf-8"), lenient, path)
    return _repair(load_messages_text(text, format, lenient=lenient, path=path), text.encode("utf-8"))


def _repair_kimi_data(data: bytes, lenient: bool, path: str) -> tuple[str, list[str], list[Violation]]:
    """First the lines Kimi CLI's own restore refuses are made loadable (line for line), then the rest."""
    data, fixes = fix_kimi_context(data)
    return _repair(_load(io.BytesIO(data), "kimi-context", ImportReport(path=path), lenient), data, fixes)


def _repair(loaded: LoadedMessages, data: bytes, fixes: Sequence[tuple[int, str]] = ()) -> tuple[str, list[str], list[Violation]]:
    if loaded.format == "kimi-context":
        text, changes = _repair_kimi(loaded, data, fixes)
    else:
        text, changes = _repair_document(loaded, data.removeprefix(_base.BOM).decode("utf-8"))
    if not text.strip():  # every line removed: an empty context.jsonl is a fresh session
        return text, changes, []
    again = load_messages_text(text, loaded.format, path=f"{loaded.report.path} (repaired)")
    return text, changes, check_loaded(again)


def _kimi_line(message: Message) -> str:
    return dumps(_kimi_dump(message)) + "\n"


def _synthetic_kimi(call_id: str) -> str:
    """A closing result as Kimi CLI 1.52 writes an error result with no output."""
    return dumps({"role": "tool", "content": KIMI_ERROR_FORM.format(SYNTHETIC_TEXT), "tool_call_id": call_id}) + "\n"


def _repair_kimi(loaded: LoadedMessages, data: bytes, fixes: Sequence[tuple[int, str]]) -> tuple[str, list[str]]:
    assert isinstance(loaded.source, KimiSource)
    records = loaded.source.records
    plan = _plan(loaded.messages)
    changes = _plan_changes(loaded, plan, "tool message") + list(fixes)
    physical = data.split(b"\n")
    raw_lines = [p + b"\n" for p in physical[:-1]] + ([physical[-1]] if physical[-1] else [])
    line_of = {k: loaded.origins[k].line for k in range(len(loaded.messages))}
    removed_lines = {line_of[t] for t in plan.removed}
    for bad in loaded.report.unreadable:
        removed_lines.add(bad.line)
        changes.append((bad.line, f"removed unreadable line ({bad.why})"))
    for note in loaded.report.notes:
        if note.why.startswith("truncated"):
            removed_lines.add(note.line)
            changes.append((note.line, "removed the truncated last line (the writer stopped mid-line)"))
    moved_lines: set[int] = set()
    tails: dict[int, list[str]] = {}
    for a, entries in plan.blocks.items():
        last = line_of[a]
        tail: list[str] = []
        for c, t in entries:
            if t is not None and t in plan.in_place:
                last = line_of[t]
                continue
            if t is None:
                tail.append(_synthetic_kimi(c.id))
            else:
                moved_lines.add(line_of[t])
                tail.append(raw_lines[line_of[t] - 1].decode("utf-8"))
        if tail:
            tails[last] = tail
    if not changes:
        return data.decode("utf-8"), []
    roles = {r.line: r.role for r in records}

    def stays_with_block(number: int, raw: bytes) -> bool:
        """A ``_usage`` or blank line right after a block stays before the results added to it."""
        if number in roles:
            return roles[number] == "_usage"
        return number not in removed_lines and not raw.strip()

    out: list[str] = []
    pending: list[str] = []
    for number, raw in enumerate(raw_lines, start=1):
        if pending and not stays_with_block(number, raw):
            out.extend(pending)
            pending = []
        if number in removed_lines or number in moved_lines:
            continue
        out.append(raw.decode("utf-8"))
        if number in tails:
            pending = tails[number]
    out.extend(pending)
    text = "".join(item if item.endswith("\n") or k == len(out) - 1 else item + "\n" for k, item in enumerate(out))
    return text, _format_changes(changes)


def _synthetic_result(format: str, call_id: str) -> JSON:
    if format == "anthropic":
        return {"type": "tool_result", "tool_use_id": call_id, "content": SYNTHETIC_TEXT, "is_error": True}
    return {"role": "tool", "tool_call_id": call_id, "content": SYNTHETIC_TEXT}


def _repair_document(loaded: LoadedMessages, original: str) -> tuple[str, list[str]]:
    if loaded.format == "gemini":
        return _gemini.repair_gemini(loaded, original)
    if loaded.format == "openai-responses":
        return _responses.repair_responses(loaded, original)
    source = loaded.source
    assert isinstance(source, DocumentSource)
    plan = _plan(loaded.messages)
    anthropic = loaded.format == "anthropic"
    changes = _plan_changes(loaded, plan, "tool_result block" if anthropic else "tool message")
    for bad in loaded.report.unreadable:
        changes.append((bad.line, f"removed unreadable message ({bad.why})"))
    of_raw: dict[int, list[int]] = defaultdict(list)  # raw message index -> message indices
    for k, o in enumerate(loaded.origins):
        for r in o.items:
            of_raw[r].append(k)
    raws = source.raw_messages

    def result_of(t: int | None, c: ToolCall) -> object:
        if t is None:
            return _synthetic_result(loaded.format, c.id)
        o = loaded.origins[t]
        raw = raws[o.items[0]]
        if anthropic:
            assert isinstance(raw, dict) and isinstance(raw["content"], list) and o.block is not None
            return raw["content"][o.block]
        return raw

    new: list[object] = []
    if not anthropic:
        for r, raw in enumerate(raws):
            ks = of_raw.get(r)
            if not ks or isinstance(loaded.messages[ks[0]], ToolMessage):
                continue  # unreadable, or a tool message placed by its owner (or removed)
            new.append(raw)
            for c, t in plan.blocks.get(ks[0], ()):
                new.append(result_of(t, c))
    else:
        for bad_v in loaded.provider:
            if bad_v.line is not None:
                changes.append((bad_v.line, "tool_result blocks moved before the other content of their user message (Anthropic requires results first)"))
        pending: list[object] | None = None
        for r, raw in enumerate(raws):
            ks = of_raw.get(r)
            if not ks:
                continue
            assert isinstance(raw, dict)
            if raw.get("role") == "assistant":
                if pending is not None:
                    new.append({"role": "user", "content": pending})
                new.append(raw)
                entries = plan.blocks.get(ks[0])
                pending = [result_of(t, c) for c, t in entries] if entries else None
                continue
            content = raw.get("content")
            has_results = isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
            if pending is None and not has_results:
                new.append(raw)
                continue
            if isinstance(content, str):
                others: list[object] = [{"type": "text", "text": content}]
            else:
                assert isinstance(content, list)
                others = [b for b in content if not (isinstance(b, dict) and b.get("type") == "tool_result")]
            merged = (pending or []) + others
            pending = None
            if merged:
                new.append({**raw, "content": merged})
            else:
                changes.append((source.message_lines[r], "removed the user message, empty once its tool_result blocks moved"))
        if pending is not None:
            new.append({"role": "user", "content": pending})
    if not changes:
        return original, []
    doc: object = {**source.document, "messages": new} if isinstance(source.document, dict) else new
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n", _format_changes(changes)


# ---------------------------------------------------------------------------
# Export.
# ---------------------------------------------------------------------------


def _kimi_dump(m: Message) -> JSON:
    if isinstance(m, ToolMessage):
        content: object = m.content if m.content else []
        if m.is_error:
            content = KIMI_ERROR_FORM.format(m.content)
        return {"role": "tool", "content": content, "tool_call_id": m.call_id}
    out: JSON = {"role": m.role, "content": m.text if m.text else []}
    if isinstance(m, AssistantMessage) and m.calls:
        out["tool_calls"] = [{"type": "function", "id": c.id, "function": {"name": c.name, "arguments": c.args}} for c in m.calls]
    return out


def export_kimi_context(messages: Sequence[Message]) -> str:
    """A ``context.jsonl`` Kimi CLI can load: ``_system_prompt`` first when the
    list starts with a system message, then one message dump a line.

    Adjacent user messages are written as separate lines (Kimi CLI sends them
    as one).  ``synthetic`` has no field in this format and is not written;
    ``is_error`` is written as Kimi CLI 1.52 does, ``<system>ERROR: text</system>``.
    """
    out: list[str] = []
    rest: Sequence[Message] = messages
    if messages and isinstance(messages[0], SystemMessage):
        out.append(json.dumps({"role": "_system_prompt", "content": messages[0].text}) + "\n")
        rest = messages[1:]
    out.extend(_kimi_line(m) for m in rest)
    return "".join(out)


def _openai_dump(m: Message, flags: bool) -> JSON:
    if isinstance(m, SystemMessage):
        return {"role": "system", "content": m.text}
    if isinstance(m, UserMessage):
        return {"role": "user", "content": m.text}
    if isinstance(m, AssistantMessage):
        out: JSON = {"role": "assistant", "content": m.text or None}
        if m.calls:
            out["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.args}} for c in m.calls]
        return out
    tool: JSON = {"role": "tool", "tool_call_id": m.call_id, "content": m.content}
    if flags and m.is_error:
        tool["x_is_error"] = True
    if flags and m.synthetic:
        tool["x_synthetic"] = True
    return tool


def export_openai(messages: Sequence[Message], *, model: str | None = None, flags: bool = False) -> str:
    """A Chat Completions request document ``{"model"?, "messages"}``.

    ``flags`` writes a tool message's ``is_error``/``synthetic`` as our
    ``x_is_error``/``x_synthetic`` keys (read back by :func:`load_messages`;
    a provider may refuse unknown keys, so they are off by default).
    """
    doc: JSON = {}
    if model is not None:
        doc["model"] = model
    doc["messages"] = [_openai_dump(m, flags) for m in messages]
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def object_args(call: ToolCall, field: str) -> JSON:
    """A call's arguments as the JSON object a format stores them as; ``ValueError`` names ``field`` when they hold none."""
    try:
        value = json.loads(call.args)
    except (json.JSONDecodeError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise ValueError(f"call {call.id!r}: arguments are not a JSON object, which {field} must be")
    return value


def export_anthropic(messages: Sequence[Message], *, model: str | None = None) -> str:
    """A Messages API request document ``{"model"?, "system"?, "messages"}``.

    A leading system message becomes ``system``; tool messages become
    ``tool_result`` blocks of one user message, followed by the text of the
    user message that comes right after them, if any.  Raises ``ValueError``
    for what the format cannot hold: a system message after the start, or
    call arguments that are not a JSON object.  ``synthetic`` is not written.
    """
    doc: JSON = {}
    if model is not None:
        doc["model"] = model
    rest: Sequence[Message] = messages
    if messages and isinstance(messages[0], SystemMessage):
        doc["system"] = messages[0].text
        rest = messages[1:]
    out: list[JSON] = []
    i = 0
    while i < len(rest):
        m = rest[i]
        i += 1
        if isinstance(m, SystemMessage):
            raise ValueError("a system message after the start has no place in an Anthropic request")
        if isinstance(m, UserMessage):
            out.append({"role": "user", "content": m.text})
        elif isinstance(m, AssistantMessage):
            if not m.calls:
                out.append({"role": "assistant", "content": m.text})
                continue
            blocks: list[JSON] = [{"type": "text", "text": m.text}] if m.text else []
            blocks.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": object_args(c, "an Anthropic tool_use 'input'")} for c in m.calls)
            out.append({"role": "assistant", "content": blocks})
        else:
            results: list[JSON] = []
            tool: Message = m
            while isinstance(tool, ToolMessage):
                block: JSON = {"type": "tool_result", "tool_use_id": tool.call_id, "content": tool.content}
                if tool.is_error:
                    block["is_error"] = True
                results.append(block)
                if i >= len(rest):
                    break
                tool = rest[i]
                if isinstance(tool, ToolMessage):
                    i += 1
            if i < len(rest) and isinstance(rest[i], UserMessage):
                user = rest[i]
                assert isinstance(user, UserMessage)
                results.append({"type": "text", "text": user.text})
                i += 1
            out.append({"role": "user", "content": results})
    doc["messages"] = out
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def export_messages(messages: Sequence[Message], format: str) -> str:
    """The text of a ``format`` file holding ``messages``: the three exporters'
    defaults, except that OpenAI documents carry ``x_is_error``/``x_synthetic``
    so every message list round-trips."""
    if format == "kimi-context":
        return export_kimi_context(messages)
    if format == "openai":
        return export_openai(messages, flags=True)
    if format == "anthropic":
        return export_anthropic(messages)
    if format == "gemini":
        return _gemini.export_gemini(messages)
    if format == "openai-responses":
        return _responses.export_responses(messages)
    raise ValueError(f"unknown message format {format!r}")


__all__ = [
    "MESSAGE_FORMATS",
    "MERGE_SEPARATOR",
    "KIMI_ERROR_FORM",
    "KIMI_ERROR_MARK",
    "SYNTHETIC_TEXT",
    "DocumentSource",
    "KimiRecord",
    "KimiSource",
    "LoadedMessages",
    "Origin",
    "check_loaded",
    "check_messages_file",
    "export_anthropic",
    "export_kimi_context",
    "export_messages",
    "export_openai",
    "load_messages",
    "load_messages_text",
    "repair_messages_file",
    "repair_messages_text",
    "sniff_messages",
]

from . import gemini as _gemini  # noqa: E402  (registers its reader; it imports this module)
from . import responses as _responses  # noqa: E402  (registers its reader; it imports this module)
