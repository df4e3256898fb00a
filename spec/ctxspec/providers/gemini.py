"""Google Gemini ``generateContent``: the ``contents`` array of ``POST .../models/<model>:generateContent``.

A content is ``{"role": "user" | "model", "parts": [...]}``; a part holds
``text``, ``functionCall {name, args}`` (in a model content) or
``functionResponse {name, response}`` (in a user content).  Gemini does not
join adjacent contents: a *call turn* is one content holding ``functionCall``
parts, and the *response turn* is the one content right after it.  Calls and
responses pair by position and name; an ``id`` on either side is optional
and some endpoints refuse it (docs/research-providers.md §4, rule 7), so no
rule here reads ids, and none requires or refuses them: whether an endpoint
takes ``id`` depends on the endpoint, not on the payload.

The four turn-order errors name no index (their ``path`` is ``contents``);
field errors start ``* GenerateContentRequest.<path>: ``, as Gemini words
them.  The thought-signature rule (GE7) is Gemini 3's: it applies when the
payload names a ``gemini-3`` model, or names no model and sets
``generationConfig.thinkingConfig`` (the model is in the URL, so a captured
body rarely names it: a thinking config is the body's only sign of a thinking
model; our reading).  Its ``position`` is the index of the model content in
``contents`` (our reading: the research found values it could not explain).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .base import Evidence, Payload, Provider, ProviderRule, Rejection, items_of, obj, objs, text

COUNT = (
    "Please ensure that the number of function response parts is equal to the number of function call parts "
    "of the function call turn."
)
CALL_PLACE = "Please ensure that function call turn comes immediately after a user turn or after a function response turn."
RESPONSE_PLACE = "Please ensure that function response turn comes immediately after a function call turn."
MIXED = (
    "Please ensure that function call turn contains at least one function_call part which can not be mixed with "
    "function_response parts."
)
EMPTY = "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
NAME = "* GenerateContentRequest.contents[{i}].parts[{j}].{kind}.name: Name cannot be empty."
SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, "
    "function call `default_api:{name}` , position {n}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)

#: The field names of a part, in the JSON form Gemini answers with and the proto form it also reads.
_CALL = ("functionCall", "function_call")
_RESPONSE = ("functionResponse", "function_response")
_SIGNATURE = ("thoughtSignature", "thought_signature")


def _field(part: Mapping[str, object], names: tuple[str, ...]) -> object:
    for n in names:
        if n in part:
            return part[n]
    return None


def is_call(part: Mapping[str, object]) -> bool:
    return any(n in part for n in _CALL)


def is_response(part: Mapping[str, object]) -> bool:
    return any(n in part for n in _RESPONSE)


@dataclass(frozen=True, slots=True)
class Content:
    """One entry of ``contents``: its index, role and parts (the objects among them)."""

    index: int
    role: str
    parts: list[Mapping[str, object]]

    @property
    def calls(self) -> list[int]:
        """Indexes (in ``parts``) of the ``functionCall`` parts."""
        return [j for j, p in enumerate(self.parts) if is_call(p)]

    @property
    def responses(self) -> list[int]:
        return [j for j, p in enumerate(self.parts) if is_response(p)]

    @property
    def is_call_turn(self) -> bool:
        return bool(self.calls)

    @property
    def is_response_turn(self) -> bool:
        return bool(self.responses)


def contents(payload: Payload) -> list[Content]:
    return [Content(i, text(obj(c).get("role")), objs(obj(c).get("parts"))) for i, c in enumerate(items_of(payload, "contents"))]


def _count(payload: Payload) -> Iterator[Rejection]:
    """The content after a call turn holds exactly as many ``functionResponse`` parts as the call turn has calls."""
    cs = contents(payload)
    for n, c in enumerate(cs):
        if c.is_call_turn:
            answered = len(cs[n + 1].responses) if n + 1 < len(cs) else 0
            if answered != len(c.calls):
                yield Rejection("GE1", COUNT, "contents", c.index)


def _call_place(payload: Payload) -> Iterator[Rejection]:
    """A call turn comes right after a user content (a response turn is one)."""
    cs = contents(payload)
    for n, c in enumerate(cs):
        if c.is_call_turn:
            before = cs[n - 1] if n else None
            if before is None or not (before.role in ("user", "function") or before.is_response_turn):
                yield Rejection("GE2", CALL_PLACE, "contents", c.index)


def _response_place(payload: Payload) -> Iterator[Rejection]:
    """A response turn comes right after a call turn."""
    cs = contents(payload)
    for n, c in enumerate(cs):
        if c.is_response_turn and not (n and cs[n - 1].is_call_turn):
            yield Rejection("GE3", RESPONSE_PLACE, "contents", c.index)


def _mixed(payload: Payload) -> Iterator[Rejection]:
    for c in contents(payload):
        if c.is_call_turn and c.is_response_turn:
            yield Rejection("GE4", MIXED, "contents", c.index)


def _empty(payload: Payload) -> Iterator[Rejection]:
    for i, c in enumerate(items_of(payload, "contents")):
        parts = obj(c).get("parts")
        if parts is None or parts == []:
            yield Rejection("GE5", EMPTY.format(i=i), f"contents[{i}].parts", i)


def _name(payload: Payload) -> Iterator[Rejection]:
    for c in contents(payload):
        for j, p in enumerate(c.parts):
            for kind, names in (("function_call", _CALL), ("function_response", _RESPONSE)):
                if any(n in p for n in names) and not text(obj(_field(p, names)).get("name")):
                    yield Rejection("GE6", NAME.format(i=c.index, j=j, kind=kind), f"contents[{c.index}].parts[{j}].{kind}.name", c.index, j)


def signatures_required(payload: Payload) -> bool:
    """Gemini 3's check applies: a ``gemini-3`` model, or no model named and a thinking config set."""
    model = text(payload.get("model"))
    if model:
        return "gemini-3" in model
    config = obj(payload.get("generationConfig") or payload.get("generation_config"))
    return isinstance(config.get("thinkingConfig") or config.get("thinking_config"), Mapping)


def current_turn(cs: list[Content]) -> int:
    """Index in ``cs`` where the current turn starts: the last user content with a part that is no function response."""
    for n in range(len(cs) - 1, -1, -1):
        c = cs[n]
        if c.role == "user" and any(not is_response(p) for p in c.parts):
            return n
    return 0


def _signature(payload: Payload) -> Iterator[Rejection]:
    """Gemini 3: the first ``functionCall`` part of each call turn of the current turn carries its signature."""
    if not signatures_required(payload):
        return
    cs = contents(payload)
    for c in cs[current_turn(cs) :]:
        if not c.is_call_turn or c.role != "model":
            continue
        j = c.calls[0]
        part = c.parts[j]
        if not text(_field(part, _SIGNATURE)):
            name = text(obj(_field(part, _CALL)).get("name"))
            yield Rejection("GE7", SIGNATURE.format(name=name, n=c.index), f"contents[{c.index}].parts[{j}].thought_signature", c.index, j)


def _envelope(r: Rejection) -> dict[str, object]:
    return {"error": {"code": 400, "message": r.error, "status": "INVALID_ARGUMENT"}}


PROVIDER = Provider(
    name="gemini",
    title="Google Gemini generateContent",
    format="gemini",
    items="contents",
    envelope=_envelope,
    rules=(
        ProviderRule(
            "GE1", "response count",
            "the content right after a call turn holds exactly one functionResponse part per functionCall part of it "
            "(responses split over two contents, or none, break it)",
            COUNT, Evidence.VERIFIED,
            ("https://github.com/google-gemini/gemini-cli/issues/4217", "https://github.com/microsoft/vscode/issues/299295", "https://github.com/cloudwego/eino-ext/issues/571"),
            _count, ("C1", "C2", "C5"),
        ),
        ProviderRule(
            "GE2", "call turn place", "a call turn comes right after a user content or a function response content (never first)",
            CALL_PLACE, Evidence.VERIFIED,
            ("https://github.com/google-gemini/gemini-cli/issues/11814", "https://github.com/continuedev/continue/issues/11164"),
            _call_place, ("C10",),
        ),
        ProviderRule(
            "GE3", "response turn place",
            "a content holding functionResponse parts comes right after a call turn (not after an input, nor after other responses)",
            RESPONSE_PLACE, Evidence.VERIFIED,
            ("https://github.com/GoogleCloudPlatform/generative-ai/pull/368", "https://github.com/langchain-ai/langchain/issues/27799"),
            _response_place, ("C1", "C2", "C6"),
        ),
        ProviderRule(
            "GE4", "not mixed", "no content holds both functionCall and functionResponse parts",
            MIXED, Evidence.VERIFIED, ("https://github.com/googleapis/python-genai/issues/81",), _mixed, ("C1",),
        ),
        ProviderRule(
            "GE5", "non-empty", "every content has at least one part",
            EMPTY, Evidence.VERIFIED,
            ("https://github.com/aaif-goose/goose/issues/1585", "https://github.com/langchain-ai/langchain-google/issues/691"),
            _empty, ("C10",),
        ),
        ProviderRule(
            "GE6", "function name",
            "every functionCall and functionResponse has a non-empty name (the text is verified for function_response; "
            "the function_call form is ours)",
            NAME, Evidence.VERIFIED,
            ("https://github.com/router-for-me/CLIProxyAPI/issues/1903", "https://github.com/langflow-ai/langflow/issues/9437"),
            _name,
        ),
        ProviderRule(
            "GE7", "thought signature",
            "Gemini 3: in the current turn (from the last user content with a part that is no function response), the first "
            "functionCall part of each call turn carries its thoughtSignature; position is the content's index (ours)",
            SIGNATURE, Evidence.VERIFIED,
            (
                "https://github.com/theopenco/llmgateway/issues/1267",
                "https://github.com/manthanabc/paws/issues/103",
                "https://discuss.ai.google.dev/t/openai-api-compatibility-broken-due-to-thought-signature-on-gemini-3-pro-preview/109823",
                "https://ai.google.dev/gemini-api/docs/thought-signatures",
            ),
            _signature, when="Gemini 3: a gemini-3 model, or no model named and generationConfig.thinkingConfig set (inferred)",
        ),
    ),
)
