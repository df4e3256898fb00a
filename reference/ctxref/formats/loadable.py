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

What this module must not know: what the runtime sends once it has loaded the
file (that is :mod:`ctxref.formats.messages`), or how a file is repaired
beyond the refused lines themselves (:func:`fix_kimi_context`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from .base import open_input

#: The Kimi CLI release whose loader this module models (and the tests pin).
KIMI_CLI_VERSION: Final = "1.52.0"

#: The content part types kosong (the version Kimi CLI 1.52.0 pins) has a class for.
KOSONG_PART_TYPES: Final = frozenset({"text", "think", "image_url", "audio_url", "video_url"})

#: Formats whose runtime loader is modelled here, with the loader's name.
MODELLED: Final[dict[str, str]] = {"kimi-context": f"Kimi CLI {KIMI_CLI_VERSION}"}

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
    if format != "kimi-context":
        return []
    with open_input(path) as handle:
        data = handle.read()
    return [r for r, _ in _kimi_lines(data)]


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
        return Refusal(line, f"{who} raises TypeError on a {role!r} line with no 'content' (kosong's Message.__init__ requires it): the session cannot be resumed")
    unknown = _unknown_parts(obj["content"])
    if unknown:
        kinds = ", ".join(repr(k) for k in dict.fromkeys(unknown))
        return Refusal(line, f"{who} raises KeyError restoring a content part of type {kinds} (kosong has no class for it): the session cannot be resumed")
    return None


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


__all__ = ["KIMI_CLI_VERSION", "KOSONG_PART_TYPES", "MODELLED", "Refusal", "fix_kimi_context", "kimi_refusal", "refusals"]
