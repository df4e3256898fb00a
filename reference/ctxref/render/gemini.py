"""Google Gemini ``generateContent``.

A leading system message becomes ``systemInstruction``; every other message
becomes parts of a ``user`` or ``model`` content, and adjacent messages of one
role share one content (Gemini does not join contents itself, and adapters
report 400s for two user contents in a row).  So:

* an assistant message is a model content: its text part, then one
  ``functionCall {name, args}`` part per call;
* the tool messages after it are ``functionResponse {name, response}`` parts
  of the one user content that follows, and a user message after them is a
  text part of that same content.  In a user content the function responses
  come first, in the call order of the model content before it (Gemini pairs
  them by position and name), the other parts after them.  A tool message
  after a user message starts a content of its own: input inside a tool
  block splits the responses over two contents, as Gemini then sees them
  (it answers GE1; the reference projection never does this, rule C6);
* a later system message is user text.

Adaptations:

* **No ids.** Neither ``functionCall`` nor ``functionResponse`` carries an
  ``id``: some endpoints refuse the field (docs/research-providers.md §4,
  rule 7), and Gemini pairs without it.  A response's ``name`` is the name of
  the call it answers, looked up by call id in the assistant messages before
  it (empty when no call has that id: Gemini refuses that, GE6).
* **Response object.** ``response`` must be a JSON object: a result is sent
  as ``{"output": content}``, an error result as ``{"error": content}`` (the
  two keys Gemini's reference names for a function's output and its error).
* **Arguments.** ``args`` must be an object too: arguments holding a JSON
  object are sent as that object, blank arguments as ``{}``, any other
  arguments as ``{"value": v}`` where ``v`` is the JSON value they hold, or
  their text when they hold none.
* **No empty text parts.** An empty text gives no part; a message with
  nothing to send is a content with no parts, which Gemini refuses (GE5),
  as the contract does (C10).
* **Thinking mode** (``Options.thinking``, or a ``gemini-3`` model, which
  always thinks): ``generationConfig.thinkingConfig`` is set, and the first
  ``functionCall`` part of each assistant message carries its reasoning's
  signature as ``thoughtSignature``; a reply without calls carries it on its
  last part.  A call turn with no signature (a reply another model wrote, or
  one whose signature was not kept) gets ``skip_thought_signature_validator``,
  which gateways quote from Google's thought-signature page as the value for
  calls the model did not sign (inferred: not read there).  Reasoning
  text is not sent back.
* The model is not part of the body: Gemini takes it from the URL.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from ctxspec.messages import AssistantMessage, Message, SystemMessage, ToolMessage, UserMessage

from .base import MutantRenderer, Options, json_object

JSON = dict[str, object]

#: The signature sent for a call the model did not sign (module docstring).
UNSIGNED: Final = "skip_thought_signature_validator"


def args_object(args: str) -> JSON:
    """Call arguments as the JSON object ``args`` must be (module docstring)."""
    if not args.strip():
        return {}
    value = json_object(args)
    return value if isinstance(value, dict) else {"value": value}


def response_object(m: ToolMessage) -> JSON:
    return {"error": m.content} if m.is_error else {"output": m.content}


def thinks(o: Options) -> bool:
    return o.thinking or (o.model is not None and "gemini-3" in o.model)


@dataclass(slots=True)
class _Content:
    role: str
    #: Each part with the call id it answers (function responses) or ``None``.
    parts: list[tuple[JSON, str | None]] = field(default_factory=list)
    #: The call ids of a model content, in call order.
    calls: list[str] = field(default_factory=list)


def _model_parts(m: AssistantMessage, thinking: bool) -> list[JSON]:
    parts: list[JSON] = [{"text": m.text}] if m.text else []
    for k, c in enumerate(m.calls):
        part: JSON = {"functionCall": {"name": c.name, "args": args_object(c.args)}}
        if thinking and k == 0:
            part["thoughtSignature"] = m.reasoning.signature if m.reasoning is not None and m.reasoning.signature else UNSIGNED
        parts.append(part)
    if thinking and not m.calls and parts and m.reasoning is not None and m.reasoning.signature:
        parts[-1]["thoughtSignature"] = m.reasoning.signature
    return parts


def _ordered(content: _Content, before: _Content | None) -> list[JSON]:
    """A user content's parts: function responses first, in the call order of the model content before it."""
    if content.role != "user":
        return [p for p, _ in content.parts]
    order = {cid: n for n, cid in reversed(list(enumerate(before.calls)))} if before is not None and before.role == "model" else {}
    responses = [(p, cid) for p, cid in content.parts if cid is not None]
    responses.sort(key=lambda pc: order.get(pc[1] or "", len(order)))
    return [p for p, _ in responses] + [p for p, cid in content.parts if cid is None]


def gemini(messages: Sequence[Message], o: Options, *, thoughts_apart: bool = False) -> JSON:
    """The reference payload; ``thoughts_apart`` (a mutant's) sends each reasoning as a model content of its own."""
    thinking = thinks(o)
    doc: JSON = {}
    rest = list(messages)
    if rest and isinstance(rest[0], SystemMessage):
        if rest[0].text:
            doc["systemInstruction"] = {"parts": [{"text": rest[0].text}]}
        rest.pop(0)
    out: list[_Content] = []
    names: dict[str, str] = {}

    def add(role: str, parts: list[tuple[JSON, str | None]], calls: Sequence[str] = (), apart: bool = False) -> None:
        if apart or not out or out[-1].role != role:
            out.append(_Content(role))
        out[-1].parts.extend(parts)
        out[-1].calls.extend(calls)

    for m in rest:
        if isinstance(m, AssistantMessage):
            names.update((c.id, c.name) for c in m.calls)
            if thoughts_apart and thinking and m.reasoning is not None:
                add("model", [({"text": m.reasoning.text, "thought": True}, None)])
                add("model", [(p, None) for p in _model_parts(m, thinking)], [c.id for c in m.calls], apart=True)
                continue
            add("model", [(p, None) for p in _model_parts(m, thinking)], [c.id for c in m.calls])
        elif isinstance(m, ToolMessage):
            after_input = bool(out) and out[-1].role == "user" and any(cid is None for _, cid in out[-1].parts)
            add("user", [({"functionResponse": {"name": names.get(m.call_id, ""), "response": response_object(m)}}, m.call_id)], apart=after_input)
        else:
            assert isinstance(m, (UserMessage, SystemMessage))
            add("user", [({"text": m.text}, None)] if m.text else [])
    doc["contents"] = [{"role": c.role, "parts": _ordered(c, out[n - 1] if n else None)} for n, c in enumerate(out)]
    if thinking:
        doc["generationConfig"] = {"thinkingConfig": {"includeThoughts": True}}
    return doc


def render(messages: Sequence[Message], o: Options) -> JSON:
    return gemini(messages, o)


# -- mutants: one per rule, each a change to the reference payload --------------------


def _parts(content: object) -> list[JSON]:
    assert isinstance(content, dict)
    parts = content["parts"]
    assert isinstance(parts, list)
    return parts


def _contents(doc: JSON) -> list[JSON]:
    cs = doc["contents"]
    assert isinstance(cs, list)
    return cs


def _edited(edit: Callable[[list[JSON]], list[JSON]]) -> Callable[[Sequence[Message], Options], JSON]:
    def render_mutant(messages: Sequence[Message], o: Options) -> JSON:
        doc = copy.deepcopy(gemini(messages, o))
        doc["contents"] = edit(_contents(doc))
        return doc

    return render_mutant


def _split_responses(cs: list[JSON]) -> list[JSON]:
    """Each function response in its own user content (one content per tool message)."""
    out: list[JSON] = []
    for c in cs:
        parts = _parts(c)
        responses = [p for p in parts if "functionResponse" in p]
        if len(responses) < 2:
            out.append(c)
            continue
        others = [p for p in parts if "functionResponse" not in p]
        out.extend({"role": "user", "parts": [p]} for p in responses[:-1])
        out.append({"role": "user", "parts": [responses[-1], *others]})
    return out


def _thoughts_apart(messages: Sequence[Message], o: Options) -> JSON:
    return gemini(messages, o, thoughts_apart=True)


def _text_before_responses(cs: list[JSON]) -> list[JSON]:
    """The user's text in its own content, before the content holding the function responses."""
    out: list[JSON] = []
    for c in cs:
        parts = _parts(c)
        responses = [p for p in parts if "functionResponse" in p]
        others = [p for p in parts if "functionResponse" not in p]
        if responses and others:
            out += [{"role": "user", "parts": others}, {"role": "user", "parts": responses}]
        else:
            out.append(c)
    return out


def _responses_with_calls(cs: list[JSON]) -> list[JSON]:
    """The function responses appended to the model content that called them (one content per exchange)."""
    out: list[JSON] = []
    for c in cs:
        parts = _parts(c)
        responses = [p for p in parts if "functionResponse" in p]
        if responses and out and out[-1]["role"] == "model":
            _parts(out[-1]).extend(responses)
            others = [p for p in parts if "functionResponse" not in p]
            if others:
                out.append({"role": "user", "parts": others})
        else:
            out.append(c)
    return out


def _calls_stripped(cs: list[JSON]) -> list[JSON]:
    """Model contents keep only their text parts: a reply of calls alone has no parts."""
    return [{"role": c["role"], "parts": [p for p in _parts(c) if "functionCall" not in p]} if c["role"] == "model" else c for c in cs]


def _names_dropped(cs: list[JSON]) -> list[JSON]:
    """A function response's name is the tool message's, which it does not have: empty."""
    for c in cs:
        for p in _parts(c):
            response = p.get("functionResponse")
            if isinstance(response, dict):
                response["name"] = ""
    return cs


def _signatures_dropped(cs: list[JSON]) -> list[JSON]:
    for c in cs:
        for p in _parts(c):
            p.pop("thoughtSignature", None)
    return cs


MUTANTS: tuple[MutantRenderer, ...] = (
    MutantRenderer("gemini_split_responses", "gemini", "GE1", "each function response is sent in its own user content", _edited(_split_responses)),
    MutantRenderer("gemini_thoughts_apart", "gemini", "GE2", "in thinking mode, each reasoning goes back as a model content of its own, before its reply", _thoughts_apart),
    MutantRenderer("gemini_text_before_responses", "gemini", "GE3", "the user's text goes in a content of its own before the function responses", _edited(_text_before_responses)),
    MutantRenderer("gemini_responses_with_calls", "gemini", "GE4", "the function responses are appended to the model content that called them", _edited(_responses_with_calls)),
    MutantRenderer("gemini_calls_stripped", "gemini", "GE5", "model contents keep only their text: a reply of calls alone has no parts", _edited(_calls_stripped)),
    MutantRenderer("gemini_names_dropped", "gemini", "GE6", "a function response is sent without its call's name", _edited(_names_dropped)),
    MutantRenderer("gemini_signatures_dropped", "gemini", "GE7", "in thinking mode, the thought signatures are not sent back", _edited(_signatures_dropped)),
)
