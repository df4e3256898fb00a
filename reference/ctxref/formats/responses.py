"""``openai-responses``: a captured OpenAI Responses request, ``{"model", "instructions"?, "input": [items]}``.

Reading.  ``instructions`` is the system message, first (on the line of the
``instructions`` member).  Each item of ``input`` (on the line where its
``{`` is):

* ``message`` (``type`` may be left out): role ``user`` a user message,
  ``system`` or ``developer`` a system message, ``assistant`` starts an
  assistant message with its text.  A content is a string or a list of parts
  (``input_text``, ``output_text``, ``refusal`` give their text; an image or
  a file gives ``[input_image]``, ``[input_file]``);
* ``function_call``: a call of the assistant message it follows when the
  items before it since that message's start are its own (its message item,
  its reasoning, its other calls); otherwise it starts an assistant message
  with no text;
* ``function_call_output``: a tool message (``x_is_error``/``x_synthetic``,
  our keys, state its flags; the API has no field for them);
* ``reasoning``: the :class:`~ctxspec.messages.Reasoning` of the assistant
  message its reply starts next (summary texts, ``encrypted_content`` as the
  signature, ``id``); one with no reply after it is counted as skipped;
* any other item (``web_search_call``, ``item_reference``, ...) is counted
  as skipped; it is not model context the contract judges.

An assistant message is on the line of its first item that is not
reasoning.

Repair closes, moves and removes ``function_call_output`` items as the
other formats do (right after the calls of their assistant message, in call
order), keeps every other readable item where it is, and removes the
unreadable ones (lenient mode).  Export writes what the reference renderer
sends with the ids as they are, the flags as ``x_`` keys, and an empty
assistant message item wherever an assistant message would otherwise read
as the calls of the one before it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Final, Union

from ctxspec.events import ToolCall
from ctxspec.messages import AssistantMessage, Message, Reasoning, SystemMessage, ToolMessage, UserMessage
from ctxspec.providers.openai_responses import is_output

from ..render.base import Options
from ..render.responses import responses
from . import base as _base
from .base import FieldError, ImportReport, Lenience, get_bool, get_str
from .messages import (
    DOCUMENT_READERS,
    SYNTHETIC_TEXT,
    DocumentSource,
    LoadedMessages,
    Origin,
    _call,
    _finish,
    _format_changes,
    _plan,
    _plan_changes,
)

FORMAT: Final = "openai-responses"

#: The content parts whose text is read (the key holding it).
_TEXT_PARTS: Final[Mapping[str, str]] = {"input_text": "text", "output_text": "text", "text": "text", "refusal": "refusal"}

#: One item, read: ``("message", Message)`` for a user or system message or an output,
#: ``("assistant", text)``, ``("call", ToolCall)``, ``("reasoning", Reasoning)``, ``("other", type)``.
Item = tuple[str, Union[Message, ToolCall, Reasoning, str]]


def _content(value: object, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise FieldError(f"field {key!r}: expected a string or an array, got {_base._jtype(value)}")
    out: list[str] = []
    for j, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(part, dict) or not isinstance(kind, str):
            raise FieldError(f"{key}[{j}]: expected a part object with a string 'type'")
        field = _TEXT_PARTS.get(kind)
        if field is None:
            out.append(f"[{kind}]")
            continue
        text = part.get(field)
        if not isinstance(text, str):
            raise FieldError(f"{key}[{j}]: a {kind} part needs a string {field!r}")
        out.append(text)
    return "".join(out)


def _reasoning(raw: Mapping[str, object]) -> Reasoning:
    summary = raw.get("summary")
    if summary is not None and not isinstance(summary, list):
        raise FieldError(f"field 'summary': expected an array, got {_base._jtype(summary)}")
    texts: list[str] = []
    for j, part in enumerate(summary or ()):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise FieldError(f"summary[{j}]: expected a part with a string 'text'")
        texts.append(part["text"])
    signature = raw.get("encrypted_content")
    rid = raw.get("id")
    if signature is not None and not isinstance(signature, str) or rid is not None and not isinstance(rid, str):
        raise FieldError("a reasoning item's 'id' and 'encrypted_content' are strings")
    return Reasoning(text="\n\n".join(texts), signature=signature or "", id=rid or "")


def read_item(raw: object) -> Item:
    """One ``input`` item; :class:`FieldError` when it cannot be read."""
    if not isinstance(raw, dict):
        raise FieldError(f"expected an item object, got {_base._jtype(raw)}")
    kind = raw.get("type", "message" if "role" in raw else None)
    if not isinstance(kind, str):
        raise FieldError("an item needs a string 'type' (or a 'role', for a message)")
    if kind == "message":
        role = get_str(raw, "role")
        text = _content(raw.get("content"), "content")
        if role == "user":
            return "message", UserMessage(text=text)
        if role in ("system", "developer"):
            return "message", SystemMessage(text=text)
        if role == "assistant":
            return "assistant", text
        raise FieldError(f"unknown role {role!r}")
    if kind == "function_call":
        args = raw.get("arguments")
        if args is not None and not isinstance(args, str):
            raise FieldError("'arguments' must be a string")
        return "call", _call(raw.get("call_id"), raw.get("name"), args or "", "function_call")
    if kind == "function_call_output":
        output = ToolMessage(
            call_id=get_str(raw, "call_id"),
            content=_content(raw.get("output"), "output"),
            is_error=get_bool(raw, "x_is_error"),
            synthetic=get_bool(raw, "x_synthetic"),
        )
        return "message", output
    if kind == "reasoning":
        return "reasoning", _reasoning(raw)
    return "other", kind


def _responses(source: DocumentSource, report: ImportReport, lax: Lenience) -> LoadedMessages:
    messages: list[Message] = []
    origins: list[Origin] = []
    doc = source.document
    if isinstance(doc, dict) and doc.get("instructions") is not None:
        line = source.member_lines.get("instructions", source.first_line)
        if isinstance(doc["instructions"], str):
            messages.append(SystemMessage(text=doc["instructions"]))
            origins.append(Origin(line, ()))
        else:
            lax.bad(line, f"instructions: expected a string, got {_base._jtype(doc['instructions'])}")
    reply: int | None = None  # the assistant message a function_call joins
    pending: tuple[Reasoning, int] | None = None  # a reasoning item waiting for its reply

    def drop_pending() -> None:
        nonlocal pending
        if pending is not None:
            report.skip("openai-responses reasoning item with no reply after it")
            pending = None

    def start(m: AssistantMessage, r: int) -> None:
        nonlocal reply, pending
        before = (pending[1],) if pending is not None else ()
        messages.append(replace(m, reasoning=pending[0]) if pending is not None else m)
        origins.append(Origin(source.message_lines[r], (*before, r)))
        reply, pending = len(messages) - 1, None

    for r, raw in enumerate(source.raw_messages):
        try:
            kind, value = read_item(raw)
        except FieldError as exc:
            lax.bad(source.message_lines[r], f"input[{r}]: {exc}")
            continue
        if kind == "assistant":
            assert isinstance(value, str)
            start(AssistantMessage(text=value), r)
        elif kind == "call":
            assert isinstance(value, ToolCall)
            if reply is not None and pending is None:
                owner = messages[reply]
                assert isinstance(owner, AssistantMessage)
                messages[reply] = replace(owner, calls=(*owner.calls, value))
                origins[reply] = Origin(origins[reply].line, (*origins[reply].items, r))
            else:
                start(AssistantMessage(calls=(value,)), r)
        elif kind == "reasoning":
            assert isinstance(value, Reasoning)
            drop_pending()
            pending, reply = (value, r), None
        elif kind == "other":
            report.skip(f"openai-responses {value} item")
            if not is_output(raw):  # an input of some other kind ends the reply
                drop_pending()
                reply = None
        else:
            assert isinstance(value, (SystemMessage, UserMessage, ToolMessage))
            drop_pending()
            reply = None
            messages.append(value)
            origins.append(Origin(source.message_lines[r], (r,)))
    drop_pending()
    return _finish(FORMAT, source, messages, origins, report)


def _unreadable(raw: object) -> str | None:
    """Why the item cannot be read, or ``None``."""
    try:
        read_item(raw)
    except FieldError as exc:
        return str(exc)
    return None


def repair_responses(loaded: LoadedMessages, original: str) -> tuple[str, list[str]]:
    """The repaired text of a Responses request and its changes (see the module docstring)."""
    source = loaded.source
    assert isinstance(source, DocumentSource) and isinstance(source.document, dict)
    raws = source.raw_messages
    plan = _plan(loaded.messages)
    changes = _plan_changes(loaded, plan, "function_call_output item")
    unreadable = {r: why for r, why in ((r, _unreadable(raw)) for r, raw in enumerate(raws)) if why is not None}
    changes.extend((source.message_lines[r], f"removed unreadable item input[{r}] ({why})") for r, why in unreadable.items())
    dropped = set(unreadable)
    if not changes:
        return original, []
    origins = loaded.origins
    dropped.update(origins[k].items[0] for k in plan.removed)
    tails: dict[int, list[object]] = {}  # raw index -> the outputs to put right after it
    for a, entries in plan.blocks.items():
        anchor = max(origins[a].items)
        tail: list[object] = []
        for c, t in entries:
            if t is not None and t in plan.in_place:
                anchor = origins[t].items[0]
            elif t is None:
                tail.append({"type": "function_call_output", "call_id": c.id, "output": SYNTHETIC_TEXT})
            else:
                dropped.add(origins[t].items[0])
                tail.append(raws[origins[t].items[0]])
        if tail:
            tails[anchor] = tail
    new: list[object] = []
    for r, raw in enumerate(raws):
        if r not in dropped:
            new.append(raw)
        new.extend(tails.get(r, ()))
    return json.dumps({**source.document, "input": new}, ensure_ascii=False, indent=2) + "\n", _format_changes(changes)


def export_responses(messages: Sequence[Message], *, model: str | None = None) -> str:
    """A Responses request document holding ``messages`` (see the module docstring)."""
    thinking = any(isinstance(m, AssistantMessage) and m.reasoning is not None for m in messages)
    doc = responses(messages, Options(model=model, thinking=thinking), ids=lambda i: i, flags=True, separate=True)
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


DOCUMENT_READERS[FORMAT] = _responses
