"""Will the runtime itself load this file?  A model of the runtimes' own loaders.

``check`` judges the request a runtime sends *once it has loaded* a session
file.  This module answers the question before that one: does the runtime's
own loader get that far, or does it stop with an error it does not catch, so
that the session cannot be resumed at all?  Each such line is a
:class:`Refusal`.  A line the loader *skips* (logs a warning and goes on) is
not a refusal: the session loads without it, and ``check`` already judges the
request without it.

Modelled (``MODELLED``), each from the runtime's own source:

* ``kimi-context``: Kimi CLI 1.52.0's ``Context.restore``
  (``kimi_cli/soul/context.py``), read in the installed package and run on
  every case below by ``tests/test_kimi_cli_loads.py``.  The file is read as
  UTF-8 with ``errors="replace"`` (so bad bytes never stop it), line by line;
  blank lines are skipped; ``json.loads(line, strict=False)``: malformed JSON
  and non-objects are skipped, but JSON nested too deeply raises
  ``RecursionError`` (how deep depends on the Python that runs Kimi CLI:
  about 1,000 levels on 3.12, several thousand on 3.13; this model calls a
  line refused when this process's ``json`` cannot parse it either).  A line without a string ``role`` is skipped;
  ``_system_prompt``/``_usage``/``_checkpoint`` lines with a value of the
  wrong type are skipped.  Every other line goes to kosong's
  ``Message.model_validate``, inside ``except ValidationError`` only, and
  kosong's ``Message`` has its own ``__init__``, which pydantic calls:

  - a line with no ``content`` key raises ``TypeError`` (``__init__`` needs
    ``content``), whatever its role; so does a line with a ``self`` key;
  - a content part whose ``type`` is a string kosong has no class for raises
    ``KeyError`` (kosong looks the type up in a dict; 1.52.0 knows ``text``,
    ``think``, ``image_url``, ``audio_url``, ``video_url``).  So an
    ``image_url`` part in kosong's shape loads, and an ``image`` or
    ``input_audio`` part (another provider's shape), or a part type from a
    newer kosong, stops the restore;
  - anything else kosong refuses is a ``ValidationError``: skipped.

  Older builds (e.g. ``07a7f173``) had no ``except`` at all: every line this
  model calls skipped stops them too.

* ``kimi-wire``: Kimi Code's replay of ``wire.jsonl``, read in its source
  (``records/persistence.ts`` at 3cd02dff; ``records/index.ts`` and
  ``context/index.ts`` at 041ae7be), not run.  Lines are split on ``\n``
  and one trailing ``\r`` is stripped; an empty line is skipped; a line
  ``JSON.parse`` rejects throws ``wire.jsonl: corrupted line N`` (only a last
  line with no newline after it is forgiven; a line of spaces, ``NaN`` and a
  byte order mark are rejected too: Node's stream decoder keeps the mark and
  ``JSON.parse`` takes none of them, checked with Node 20).  Replay
  throws unless the first record is ``metadata``, and on a ``content.part``
  or ``tool.call`` loop event whose ``stepUuid`` has no open
  ``step.begin`` (``step.end``, ``context.clear`` and
  ``context.apply_compaction`` close steps).  A loop event or message record
  without its object, and a ``tool.result`` without ``result``, throw a
  ``TypeError`` where the code reads their fields.  Not modelled: the
  migrations of older protocol versions, and what other records' handlers
  throw on malformed payloads.
* ``codex``: Codex's ``RolloutRecorder::load_rollout_items`` and
  ``get_rollout_history`` (``codex-rs/core/src/rollout/recorder.rs`` at
  035416bf, read, not run).  The whole file is read with ``read_to_string``,
  which fails on bytes that are not UTF-8; a blank file is "empty session
  file"; lines that are not JSON or not a rollout line are skipped; with no
  ``session_meta`` line it can read, there is no thread id and resume fails.
  Inferred: a ``session_meta`` is readable when its ``payload.id`` is a UUID
  (the ``ThreadId`` type); the other fields Codex requires of it are not
  modelled.
* ``claude``, the request formats: not modelled (Claude Code's loader is not
  public source).

What this module must not know: what the runtime sends once it has loaded the
file (that is :mod:`ctxref.formats.messages`), or how a file is repaired
beyond the refused lines themselves (:func:`fix_kimi_context`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Final

from .base import MAX_LINE_BYTES, open_input

#: The Kimi CLI release whose loader this module models (and the tests pin).
KIMI_CLI_VERSION: Final = "1.52.0"

#: The content part types kosong (the version Kimi CLI 1.52.0 pins) has a class for.
KOSONG_PART_TYPES: Final = frozenset({"text", "think", "image_url", "audio_url", "video_url"})

#: Formats whose runtime loader is modelled here, with the runtime's name.
MODELLED: Final[dict[str, str]] = {"kimi-context": f"Kimi CLI {KIMI_CLI_VERSION}", "kimi-wire": "Kimi Code", "codex": "Codex"}

#: Where each model comes from, and how far it is verified.
SOURCES: Final[dict[str, str]] = {
    "kimi-context": f"kimi_cli/soul/context.py and kosong/message.py in kimi-cli {KIMI_CLI_VERSION}, read and run (tests/test_kimi_cli_loads.py)",
    "kimi-wire": "MoonshotAI/kimi-code records/persistence.ts at 3cd02dff, records/index.ts and context/index.ts at 041ae7be, read, not run",
    "codex": "openai/codex codex-rs/core/src/rollout/recorder.rs at 035416bf and protocol/src/thread_id.rs, read, not run",
}

_KIMI_META: Final = ("_system_prompt", "_checkpoint", "_usage")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A line the runtime's own loader does not get past: the session cannot be resumed."""

    line: int  # the file's own (1-based, physical) line
    why: str  # one sentence: what the loader does with it

    def __str__(self) -> str:
        return f"line {self.line}: {self.why}"


def refusals(path: str, format: str) -> list[Refusal]:
    """The lines of the ``format`` file at ``path`` that stop its runtime's loader.

    An empty list means the loader gets through the file (it may still skip
    lines, and what it then sends is ``check``'s business).  Formats not in
    :data:`MODELLED` give an empty list: nothing is known that they refuse.
    Raises :class:`~ctxspec.errors.InvalidLog` only when the file cannot be
    opened.
    """
    if format not in MODELLED:
        return []
    with open_input(path) as handle:
        lines = _lines(handle)
        if format == "kimi-context":
            return [r for number, raw in lines if (r := kimi_refusal(number, raw)) is not None]
        if format == "kimi-wire":
            return _kimi_wire(lines)
        return _codex(lines)


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """The file's physical lines (split on ``\\n``, which is kept), numbered from 1."""
    for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), start=1):
        yield number, raw


def kimi_refusal(line: int, raw: bytes) -> Refusal | None:
    """Why Kimi CLI's restore stops at this one line, or None when it gets past it."""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return None
    who = MODELLED["kimi-context"]
    try:
        obj = json.loads(text, strict=False)
    except json.JSONDecodeError:
        return None  # skipped with a warning
    except RecursionError:
        return Refusal(line, f"{who} raises RecursionError parsing this line (JSON nested too deeply; Python 3.12 stops at about 1,000 levels, 3.13 deeper): the session cannot be resumed")
    if not isinstance(obj, dict):
        return None
    role = obj.get("role")
    if not isinstance(role, str) or role in _KIMI_META:
        return None  # skipped, or read with type checks that skip what is wrong
    if "self" in obj:
        return Refusal(line, f"{who} raises TypeError on a message line with a 'self' key (kosong's Message.__init__ gets it twice): the session cannot be resumed")
    if "content" not in obj:
        return Refusal(line, f"{who} raises TypeError on a message line with no 'content' (role {role!r}; kosong's Message.__init__ requires it): the session cannot be resumed")
    unknown = _unknown_parts(obj["content"])
    if unknown:
        kinds = ", ".join(repr(k) for k in dict.fromkeys(unknown))
        return Refusal(line, f"{who} raises KeyError restoring a content part of type {kinds} (kosong has no class for it): the session cannot be resumed")
    return None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _json_parse(text: str) -> object:
    """As JavaScript's ``JSON.parse``: no ``NaN``/``Infinity``, no byte order mark, no blank text."""
    return json.loads(text, parse_constant=_reject_constant)


def _kimi_wire(lines: Iterator[tuple[int, bytes]]) -> list[Refusal]:
    who = "Kimi Code"
    out: list[Refusal] = []
    first = True
    open_steps: set[object] = set()
    for number, raw in lines:
        ended = raw.endswith(b"\n")
        text = raw.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
        if not text:
            continue
        try:
            record = _json_parse(text)
        except (ValueError, RecursionError):
            if ended:
                return [*out, Refusal(number, f"{who} throws 'wire.jsonl: corrupted line {number}' (JSON.parse rejects it, and only a last line with no newline is forgiven): the session cannot be resumed")]
            continue  # a torn last line
        if first:
            first = False
            if not (isinstance(record, dict) and record.get("type") == "metadata"):
                return [Refusal(number, f"{who} throws 'AgentRecords replay expected metadata as the first record': the session cannot be resumed")]
            continue
        if not isinstance(record, dict):
            continue  # a record with no known type is passed over
        kind = record.get("type")
        if kind == "context.clear" or kind == "context.apply_compaction":
            open_steps.clear()
        elif kind == "context.append_message" and not isinstance(record.get("message"), dict):
            out.append(Refusal(number, f"{who} throws a TypeError replaying a context.append_message with no message object: the session cannot be resumed"))
        elif kind == "context.append_loop_event":
            event = record.get("event")
            if not isinstance(event, dict):
                out.append(Refusal(number, f"{who} throws a TypeError replaying a context.append_loop_event with no event object: the session cannot be resumed"))
                continue
            step = event.get("type")
            if step == "step.begin":
                open_steps.add(_key(event.get("uuid")))
            elif step == "step.end":
                open_steps.discard(_key(event.get("uuid")))
            elif step in ("content.part", "tool.call") and _key(event.get("stepUuid")) not in open_steps:
                out.append(Refusal(number, f"{who} throws 'Received {str(step).replace('.', '_')} for unknown step_uuid' replaying this {step} (no open step.begin): the session cannot be resumed"))
            elif step == "tool.result" and not isinstance(event.get("result"), dict):
                out.append(Refusal(number, f"{who} throws a TypeError replaying a tool.result with no result object: the session cannot be resumed"))
        if out:
            return out  # replay stops at the first error
    return out


def _key(value: object) -> object:
    """A JavaScript ``Map`` key: JSON scalars by value, objects never equal."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else object()


def _codex(lines: Iterator[tuple[int, bytes]]) -> list[Refusal]:
    who = "Codex"
    blank = True
    meta = False
    for number, raw in lines:
        try:
            text = raw.decode("utf-8")  # the whole file must be UTF-8: read_to_string reads it at once
        except UnicodeDecodeError:
            return [Refusal(number, f"{who} cannot read the file (read_to_string: stream did not contain valid UTF-8, here): the session cannot be resumed")]
        if meta or not text.strip():
            continue
        blank = False
        try:
            record = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            continue  # skipped, counted as a parse error
        payload = record.get("payload") if isinstance(record, dict) and record.get("type") == "session_meta" else None
        meta = isinstance(payload, dict) and _is_uuid(payload.get("id"))
    if blank:
        return [Refusal(1, f"{who} stops with 'empty session file': the session cannot be resumed")]
    if not meta:
        return [Refusal(1, f"{who} stops with 'failed to parse thread ID from rollout file': no session_meta line with a UUID id, so the session cannot be resumed")]
    return []


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _unknown_parts(content: object) -> list[str]:
    if not isinstance(content, list):
        return []
    return [p["type"] for p in content if isinstance(p, dict) and isinstance(p.get("type"), str) and p["type"] not in KOSONG_PART_TYPES]


def _kimi_lines(data: bytes) -> list[tuple[Refusal, bytes]]:
    out: list[tuple[Refusal, bytes]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        refusal = kimi_refusal(number, raw)
        if refusal is not None:
            out.append((refusal, raw))
    return out


def _placeholder(kind: str) -> dict[str, str]:
    return {"type": "text", "text": f"<system>[a part of type {kind!r} was removed by ctxcontract repair: {MODELLED['kimi-context']} cannot load it]</system>"}


def fix_kimi_context(data: bytes) -> tuple[bytes, list[tuple[int, str]]]:
    """``data`` with every line Kimi CLI's restore refuses made loadable, line for line.

    The line count never changes, so every other line keeps its number:

    * a content part of a type kosong does not know becomes a text part
      saying what was removed (the message keeps its place, calls and result);
    * a message line with no ``content`` gets ``"content": []`` (its calls
      stay paired; an empty message is then ``check``'s C10);
    * a ``self`` key is dropped;
    * a line nested too deeply to parse is emptied (Kimi CLI skips blank lines).

    Returns the new bytes and ``(line, what was done)`` for each fixed line.
    """
    lines = data.split(b"\n")
    changes: list[tuple[int, str]] = []
    for refusal, raw in _kimi_lines(data):
        k = refusal.line - 1
        end = b"\r" if raw.endswith(b"\r") else b""
        try:
            obj = json.loads(raw.decode("utf-8", errors="replace"), strict=False)
        except RecursionError:
            lines[k] = b""
            changes.append((refusal.line, f"{MODELLED['kimi-context']} could not load it: emptied the line (JSON nested too deeply)"))
            continue
        assert isinstance(obj, dict)
        done: list[str] = []
        if "self" in obj:
            del obj["self"]
            done.append("dropped its 'self' key")
        if "content" not in obj:
            obj["content"] = []
            done.append("added an empty 'content'")
        content = obj["content"]
        if isinstance(content, list) and _unknown_parts(content):
            kinds = _unknown_parts(content)
            obj["content"] = [_placeholder(p["type"]) if isinstance(p, dict) and p.get("type") in kinds else p for p in content]
            done.append("replaced its " + ", ".join(repr(t) for t in dict.fromkeys(kinds)) + " part(s) by a text part saying so")
        lines[k] = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + end
        changes.append((refusal.line, f"{MODELLED['kimi-context']} could not load it: " + "; ".join(done)))
    return b"\n".join(lines), changes


__all__ = ["KIMI_CLI_VERSION", "KOSONG_PART_TYPES", "MODELLED", "SOURCES", "Refusal", "fix_kimi_context", "kimi_refusal", "refusals"]
