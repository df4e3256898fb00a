"""Captured Gemini ``generateContent`` requests: ``{"systemInstruction"?, "contents": [...]}``.

Reading (registered as ``DOCUMENT_READERS["gemini"]``; :mod:`.messages`
imports this module at its end):

* ``systemInstruction`` (its text parts) is the system message.
* A ``model`` content is one assistant message: its text parts (thought
  parts, ``"thought": true``, are reasoning, not text), then its
  ``functionCall`` parts as calls.  A call's id is its ``id`` when it has
  one, else ``<name>#<content>.<k>`` (the content's index in ``contents``,
  the call's place among that content's calls): Gemini has no ids of its own.
  ``args`` is an object; the call's arguments are its JSON text.
* A ``user`` content (or a legacy ``function`` one) gives one tool message per
  ``functionResponse`` part, in part order, then one user message with its
  other parts, if it has any (or if it has no parts at all).  A response
  answers a call of the call turn before it: that turn's first unanswered
  call with its ``id`` (when both have one), else its first unanswered call
  of the same ``name`` (one with no ``id`` first; a response with an ``id``
  answers no call with another).  A response that answers none keeps its ``id``, or
  gets ``<name>#<content>.<part>``, and the contract rules judge it (an
  orphan, C2).  Gemini wants every response to a call turn in the one content
  right after it; responses split over several contents of responses only
  still answer the call turn's calls, and the first one past the first
  content is reported (C1, as the Anthropic reader reports text before a
  result; Gemini's own error is GE1).  ``response`` is an object: its
  ``output`` is the result, its ``error`` an error result, and an object with
  neither is the result as a whole; a value that is no string is kept as its
  JSON text.
* Other parts (``inlineData``, ``fileData``, ...) read as ``[kind]``.
* A ``functionResponse`` in a model content (Gemini refuses it: GE4) reads as
  a tool message after that content's assistant message, paired with its
  calls; a ``functionCall`` in a user content is unreadable.

Lines: each message starts on its content's line; a tool message on its
part's line; the user message after tool messages on its first other part's.

Writing (:func:`export_gemini`) and repair (:func:`repair_gemini`) keep the
file's own pairing readable: export writes each call's and each response's
``id`` (the reference renderer, ``ctxref.render.gemini``, sends none), and
repair writes ``id`` only where the call had one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ctxspec.contract import Violation
from ctxspec.events import ToolCall
from ctxspec.messages import AssistantMessage, Message, Reasoning, SystemMessage, ToolMessage, UserMessage

from . import base as _base
from .base import JSON, FieldError, ImportReport, Lenience
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
    object_args,
)

#: Keys a part may carry beside its data: not a kind of part.
_META = frozenset({"thought", "thoughtSignature", "thought_signature", "videoMetadata", "video_metadata", "partMetadata", "part_metadata"})
_CALL = ("functionCall", "function_call")
_RESPONSE = ("functionResponse", "function_response")


def _get(part: Mapping[str, object], names: tuple[str, ...]) -> object:
    for n in names:
        if n in part:
            return part[n]
    return None


def _kind(part: Mapping[str, object]) -> str:
    if any(n in part for n in _CALL):
        return "call"
    if any(n in part for n in _RESPONSE):
        return "response"
    if "text" in part:
        return "text"
    return next((k for k in part if k not in _META), "empty")


def _text_of(parts: Sequence[tuple[int, Mapping[str, object]]]) -> str:
    """The text of ``(index, part)`` s that are neither calls nor responses: text parts' text, ``[kind]`` for others."""
    out: list[str] = []
    for j, part in parts:
        kind = _kind(part)
        if kind == "text":
            value = part["text"]
            if not isinstance(value, str):
                raise FieldError(f"parts[{j}]: 'text' must be a string, got {_base._jtype(value)}")
            out.append(value)
        else:
            out.append(f"[{kind}]")
    return "".join(out)


def _system(value: object) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise FieldError(f"expected a content object, got {_base._jtype(value)}")
    parts = value.get("parts", [])
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise FieldError("'parts' must be an array of part objects")
    return _text_of(list(enumerate(parts)))


def _args(fc: Mapping[str, object], where: str) -> str:
    args = fc.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise FieldError(f"{where}: 'args' must be an object, got {_base._jtype(args)}")
    return json.dumps(args, ensure_ascii=False)


def _output(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _response(fr: Mapping[str, object], where: str) -> tuple[str, bool]:
    """A response's content and whether it is an error (module docstring)."""
    response = fr.get("response", {})
    if response is None:
        response = {}
    if not isinstance(response, dict):
        raise FieldError(f"{where}: 'response' must be an object, got {_base._jtype(response)}")
    if "output" in response:
        return _output(response["output"]), False
    if "error" in response:
        return _output(response["error"]), True
    return (json.dumps(response, ensure_ascii=False) if response else ""), False


@dataclass(slots=True)
class _Pending:
    """The calls of the content before, each answered or not."""

    calls: list[ToolCall]
    #: Whether each call's id was in the document (or made up by us).
    explicit: list[bool]
    answered: list[bool]
    #: The index in ``contents`` of the call turn.
    content: int = -1
    #: Whether a content of responses came between the call turn and the one being read.
    late: bool = False

    def answer(self, name: str, rid: str | None) -> str | None:
        if rid is not None:
            for k, c in enumerate(self.calls):
                if not self.answered[k] and self.explicit[k] and c.id == rid:
                    self.answered[k] = True
                    return c.id
        # By name: a call with no id of its own first (a response with an id is bound to its own)
        for only_unnamed in (True, False) if rid is None else (True,):
            for k, c in enumerate(self.calls):
                if not self.answered[k] and c.name == name and (not only_unnamed or not self.explicit[k]):
                    self.answered[k] = True
                    return c.id
        return None


def _optional_id(body: Mapping[str, object], where: str) -> str | None:
    value = body.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise FieldError(f"{where}: 'id' must be a non-empty string, got {_base._jtype(value)}")
    return value


def read(source: DocumentSource, report: ImportReport, lax: Lenience) -> LoadedMessages:
    messages: list[Message] = []
    origins: list[Origin] = []
    doc = source.document
    if isinstance(doc, dict):
        key = "systemInstruction" if "systemInstruction" in doc else "system_instruction"
        if key in doc:
            line = source.member_lines.get(key, source.first_line)
            try:
                messages.append(SystemMessage(text=_system(doc[key])))
                origins.append(Origin(line, ()))
            except FieldError as exc:
                lax.bad(line, f"{key}: {exc}")
    pending: _Pending | None = None
    provider: list[Violation] = []
    for r, raw in enumerate(source.raw_messages):
        line = source.message_lines[r]
        blines = source.block_lines[r]
        before = pending
        pending = None
        try:
            if not isinstance(raw, dict):
                raise FieldError(f"expected a content object, got {_base._jtype(raw)}")
            role = raw.get("role", "user")
            if role not in ("user", "model", "function"):
                raise FieldError(f"role must be 'user' or 'model', got {role!r}" if isinstance(role, str) else f"field 'role': expected a string, got {_base._jtype(role)}")
            parts = raw.get("parts", [])
            if not isinstance(parts, list):
                raise FieldError(f"field 'parts': expected an array, got {_base._jtype(parts)}")
            indexed: list[tuple[int, Mapping[str, object]]] = []
            for j, part in enumerate(parts):
                if not isinstance(part, dict):
                    raise FieldError(f"parts[{j}]: expected a part object, got {_base._jtype(part)}")
                indexed.append((j, part))
            new: list[Message] = []
            where: list[Origin] = []
            split: list[Violation] = []
            responses = [(j, p) for j, p in indexed if _kind(p) == "response"]
            if role == "model":
                calls: list[ToolCall] = []
                explicit: list[bool] = []
                signature = ""
                thoughts: list[str] = []
                plain: list[tuple[int, Mapping[str, object]]] = []
                for j, p in indexed:
                    kind = _kind(p)
                    sig = p.get("thoughtSignature", p.get("thought_signature"))
                    if isinstance(sig, str) and sig and not signature:
                        signature = sig
                    if kind == "call":
                        fc = _get(p, _CALL)
                        at = f"parts[{j}].functionCall"
                        if not isinstance(fc, dict):
                            raise FieldError(f"{at}: expected an object")
                        cid = _optional_id(fc, at)
                        name = fc.get("name")
                        calls.append(_call(cid or f"{name}#{r}.{len(calls)}", name, _args(fc, at), at))
                        explicit.append(cid is not None)
                    elif kind == "text" and p.get("thought") is True:
                        value = p["text"]
                        thoughts.append(value if isinstance(value, str) else "")
                    elif kind != "response":
                        plain.append((j, p))
                reasoning = Reasoning(text="".join(thoughts), signature=signature) if thoughts or signature else None
                new.append(AssistantMessage(text=_text_of(plain), calls=tuple(calls), reasoning=reasoning))
                where.append(Origin(line, (r,)))
                pending = _Pending(calls, explicit, [False] * len(calls), r)
                answering = pending
            else:
                if any(_kind(p) == "call" for _, p in indexed):
                    raise FieldError("a functionCall part in a user content")
                answering = before if before is not None else _Pending([], [], [])
            for j, p in responses:
                fr = _get(p, _RESPONSE)
                at = f"parts[{j}].functionResponse"
                if not isinstance(fr, dict):
                    raise FieldError(f"{at}: expected an object")
                name = fr.get("name")
                if not isinstance(name, str):
                    raise FieldError(f"{at}: needs a string 'name'")
                rid = _optional_id(fr, at)
                content, is_error = _response(fr, at)
                paired = answering.answer(name, rid)
                call_id = paired or rid or f"{name}#{r}.{j}"
                bline = blines[j] if j < len(blines) else line
                if paired is not None and answering.late and not split:
                    split.append(
                        Violation(
                            "C1",
                            f"functionResponse for {call_id!r} is in contents[{r}], not in the content right after its call turn"
                            f" (contents[{answering.content}]); Gemini wants every response to a call turn in that one content",
                            len(messages) + len(new),
                            bline,
                        )
                    )
                new.append(ToolMessage(call_id=call_id, content=content, is_error=is_error))
                where.append(Origin(bline, (r,), j))
            if role != "model":
                others = [(j, p) for j, p in indexed if _kind(p) != "response"]
                if indexed and not others and before is not None:  # responses only: the next content may hold more of them
                    pending = before
                    pending.late = True
                if others or not indexed:
                    new.append(UserMessage(text=_text_of(others)))
                    first = others[0][0] if others else None
                    where.append(Origin(blines[first] if first is not None and first < len(blines) else line, (r,)))
            messages.extend(new)
            origins.extend(where)
            provider.extend(split)
        except FieldError as exc:
            pending = None
            lax.bad(line, f"contents[{r}]: {exc}")
    return _finish("gemini", source, messages, origins, report, provider)


DOCUMENT_READERS["gemini"] = read


# ---------------------------------------------------------------------------
# Export.
# ---------------------------------------------------------------------------


def _export_response(m: ToolMessage, name: str) -> JSON:
    return {"functionResponse": {"id": m.call_id, "name": name, "response": {"error": m.content} if m.is_error else {"output": m.content}}}


def export_gemini(messages: Sequence[Message]) -> str:
    """A ``generateContent`` request document ``{"systemInstruction"?, "contents"}``.

    A leading system message becomes ``systemInstruction``; an assistant
    message a model content; the tool messages after it the
    ``functionResponse`` parts of one user content, followed by the text of
    the user message right after them, if any; any other user message a user
    content of its own.  Calls and responses carry ``id``, so every message
    list reads back as it was (a response's ``name`` is its call's, or empty
    when no earlier call has its id).  Raises ``ValueError`` for what the
    format cannot hold: a system message after the start, or call arguments
    that are not a JSON object.  ``synthetic`` is not written.
    """
    doc: JSON = {}
    rest: Sequence[Message] = messages
    if messages and isinstance(messages[0], SystemMessage):
        doc["systemInstruction"] = {"parts": [{"text": messages[0].text}]}
        rest = messages[1:]
    names: dict[str, str] = {}
    out: list[JSON] = []
    i = 0
    while i < len(rest):
        m = rest[i]
        i += 1
        if isinstance(m, SystemMessage):
            raise ValueError("a system message after the start has no place in a Gemini request")
        if isinstance(m, UserMessage):
            out.append({"role": "user", "parts": [{"text": m.text}]})
        elif isinstance(m, AssistantMessage):
            parts: list[JSON] = [{"text": m.text}] if m.text else []
            for c in m.calls:
                names[c.id] = c.name
                parts.append({"functionCall": {"id": c.id, "name": c.name, "args": object_args(c, "a Gemini functionCall 'args'")}})
            out.append({"role": "model", "parts": parts})
        else:
            assert isinstance(m, ToolMessage)
            responses = [_export_response(m, names.get(m.call_id, ""))]
            while i < len(rest) and isinstance(rest[i], ToolMessage):
                t = rest[i]
                assert isinstance(t, ToolMessage)
                responses.append(_export_response(t, names.get(t.call_id, "")))
                i += 1
            if i < len(rest) and isinstance(rest[i], UserMessage):
                user = rest[i]
                assert isinstance(user, UserMessage)
                responses.append({"text": user.text})
                i += 1
            out.append({"role": "user", "parts": responses})
    doc["contents"] = out
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


# ---------------------------------------------------------------------------
# Repair.
# ---------------------------------------------------------------------------


def _synthetic(call: Mapping[str, object]) -> JSON:
    """A closing error response for the call part ``call`` (its ``functionCall`` object), with its ``id`` if it has one."""
    body: JSON = {"name": call.get("name", ""), "response": {"error": SYNTHETIC_TEXT}}
    if "id" in call:
        body = {"id": call["id"], **body}
    return {"functionResponse": body}


def repair_gemini(loaded: LoadedMessages, original: str) -> tuple[str, list[str]]:
    """Each call turn followed by one user content holding its responses in call order (a synthetic
    error response for a call with none), then that content's other parts; orphan and duplicate
    responses removed; a content left empty removed.  ``(new text, changes)``; the text unchanged
    when nothing changes."""
    source = loaded.source
    assert isinstance(source, DocumentSource)
    plan = _plan(loaded.messages)
    changes = _plan_changes(loaded, plan, "functionResponse part")
    for bad in loaded.report.unreadable:
        changes.append((bad.line, f"removed unreadable content ({bad.why})"))
    for v in loaded.provider:
        if v.line is not None:
            changes.append((v.line, "functionResponse parts moved into the content right after their call turn (Gemini wants them all in that one content)"))
    first_of: dict[int, int] = {}  # raw content index -> its first message
    for k, o in enumerate(loaded.origins):
        for r in o.items:
            first_of.setdefault(r, k)

    def response_part(t: int) -> object:
        o = loaded.origins[t]
        raw = source.raw_messages[o.items[0]]
        assert isinstance(raw, dict) and isinstance(raw["parts"], list) and o.block is not None
        return raw["parts"][o.block]

    new: list[object] = []
    pending: list[object] | None = None
    for r, raw in enumerate(source.raw_messages):
        if r not in first_of:
            continue  # unreadable
        k = first_of[r]
        assert isinstance(raw, dict)
        parts = raw.get("parts", [])
        assert isinstance(parts, list)
        others = [p for p in parts if not (isinstance(p, dict) and _kind(p) == "response")]
        if raw.get("role") == "model":
            if pending is not None:
                new.append({"role": "user", "parts": pending})
            if len(others) != len(parts):
                changes.append((source.message_lines[r], "functionResponse parts moved out of the model content into the user content after it"))
            new.append({**raw, "parts": others} if len(others) != len(parts) else raw)
            entries = plan.blocks.get(k)
            calls = [c if isinstance(c, dict) else {} for c in (_get(p, _CALL) for p in others if isinstance(p, dict) and _kind(p) == "call")]
            pending = [response_part(t) if t is not None else _synthetic(calls[n]) for n, (_, t) in enumerate(entries)] if entries else None
            continue
        has_responses = len(others) != len(parts)
        if pending is None and not has_responses:
            new.append(raw)
            continue
        merged = (pending or []) + others
        pending = None
        if merged:
            new.append({**raw, "parts": merged})
        elif parts:
            changes.append((source.message_lines[r], "removed the user content, empty once its functionResponse parts moved"))
    if pending is not None:
        new.append({"role": "user", "parts": pending})
    if not changes:
        return original, []
    doc = source.document
    assert isinstance(doc, dict)
    if not (loaded.origins and loaded.origins[0].items == ()):  # an unreadable system instruction is removed
        doc = {k: v for k, v in doc.items() if k not in ("systemInstruction", "system_instruction")}
    return json.dumps({**doc, "contents": new}, ensure_ascii=False, indent=2) + "\n", _format_changes(changes)
