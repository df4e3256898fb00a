"""OpenAI Responses API: the ``input`` array of ``POST /v1/responses``.

``input`` is a flat list of items, not of role messages: ``message``
(``role`` user, assistant, system or developer; the ``type`` may be left
out), ``function_call`` (``call_id``, ``name``, ``arguments``, and the item
``id`` ``fc_...`` when a runtime replays it), ``function_call_output``
(``call_id``, ``output``) and ``reasoning`` (``id`` ``rs_...``,
``summary``, ``encrypted_content``).  One reply of the model is the run of
items it produced (reasoning, an assistant message, calls), up to the next
item the runtime wrote (a message of another role, an output).

Pairing is by ``call_id`` over the whole input, wherever the output sits
(inferred, docs/research-providers.md §2.8: Codex puts ``developer``
messages between a call and its output, which DeepSeek refuses and OpenAI
is not reported to).  So no rule here fires on a message between a call and
its output: the contract's C1/C6 (nothing between a call and its answer)
is stricter than this provider (``PROVIDER.accepts``).  Whether an output may come *before* its
call is not known; no rule judges it either way.

The pairing and reasoning errors name no index (``param`` is ``input``);
:attr:`~.base.Rejection.item` still says which item, for the file line.
The reasoning link is the provider's memory, not the request's: an item
replayed with its ``id`` needs the reasoning item that came with it, whose
id the request cannot hold once it is dropped (OR3 prints ``rs_…`` there).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from .base import Evidence, Payload, Provider, ProviderRule, Rejection, items_of, obj, text

UNANSWERED = "No tool output found for function call {id}."
ORPHAN = "No tool call found for function call output with call_id {id}."
REASONING_MISSING = "Item '{id}' of type '{type}' was provided without its required 'reasoning' item: '{reasoning}'."
REASONING_ALONE = "Item '{id}' of type 'reasoning' was provided without its required following item."
DUPLICATE = "Duplicate item found with id {id}. Remove duplicate items from your input and try again."
CALL_ID_LENGTH = "Invalid 'input[{i}].call_id': string too long. Expected a string with maximum length 64, but got a string with length {n} instead."
ID_PREFIX = "Invalid 'input[{i}].id': '{id}'. Expected an ID that begins with '{prefix}'."

#: What OR3 prints for the reasoning item the provider stored with the item: the request no longer holds its id.
UNKNOWN_REASONING: Final = "rs_…"

#: The prefix of each item type's ``id``.
ID_PREFIXES: Final[Mapping[str, str]] = {"reasoning": "rs", "function_call": "fc", "message": "msg"}

#: Items the model produces that do not end in ``_call`` (those all do: ``function_call``, ``web_search_call``, ...).
_OTHER_OUTPUTS: Final = frozenset({"reasoning", "mcp_list_tools", "mcp_approval_request"})

CALL_ID_LIMIT: Final = 64

#: Why a message between a call and its output, or outputs in another order, is no 400 here.
PLACEMENT: Final = "it pairs an output with its call by call_id wherever the output sits after it (inferred: docs/research-providers.md §2.8)"


# -- reading items ------------------------------------------------------------------


def input_items(payload: Payload) -> list[object]:
    return items_of(payload, "input")


def kind(item: object) -> str:
    """The item's type; a ``{role, content}`` item without one is a ``message``."""
    o = obj(item)
    t = text(o.get("type"))
    return t or ("message" if "role" in o else "")


def item_id(item: object) -> str:
    """The item's ``id``, or ``""`` when it has none (an empty id counts as none)."""
    return text(obj(item).get("id"))


def is_output(item: object) -> bool:
    """An item the model produced: part of a reply."""
    k = kind(item)
    if k == "message":
        return text(obj(item).get("role")) == "assistant"
    return k in _OTHER_OUTPUTS or k.endswith("_call")


def _linked(item: object) -> bool:
    """A function_call or assistant message: the items the reasoning link and the follower id are known for."""
    return kind(item) == "function_call" or (kind(item) == "message" and is_output(item))


def reasoning_on(payload: Payload) -> bool:
    """The request asks a reasoning model to reason: a ``reasoning`` object whose effort is not ``none``."""
    r = payload.get("reasoning")
    return isinstance(r, Mapping) and r.get("effort") != "none"


def _context_elsewhere(payload: Payload) -> bool:
    """Earlier items the request does not hold: stored state or references to stored items."""
    if payload.get("previous_response_id") is not None or payload.get("conversation") is not None:
        return True
    return any(kind(i) == "item_reference" for i in input_items(payload))


# -- the rules ------------------------------------------------------------------------


def _unanswered(payload: Payload) -> Iterator[Rejection]:
    items = input_items(payload)
    answered = {text(obj(i).get("call_id")) for i in items if kind(i).endswith("_output")}
    for n, i in enumerate(items):
        cid = text(obj(i).get("call_id"))
        if kind(i) == "function_call" and cid not in answered:
            yield Rejection("OR1", UNANSWERED.format(id=cid), "input", n)


def _orphan(payload: Payload) -> Iterator[Rejection]:
    if _context_elsewhere(payload):
        return
    items = input_items(payload)
    called = {text(obj(i).get("call_id")) for i in items if is_output(i)} - {""}
    for n, i in enumerate(items):
        cid = obj(i).get("call_id")
        if kind(i) == "function_call_output" and isinstance(cid, str) and cid not in called:
            yield Rejection("OR2", ORPHAN.format(id=cid), "input", n)


def _reasoning_missing(payload: Payload) -> Iterator[Rejection]:
    """With reasoning on, an item replayed with its id has a reasoning item before it in its reply."""
    if not reasoning_on(payload):
        return
    seen = False
    for n, i in enumerate(input_items(payload)):
        if not is_output(i):
            seen = False
        elif kind(i) == "reasoning":
            seen = True
        elif _linked(i) and item_id(i) and not seen:
            yield Rejection("OR3", REASONING_MISSING.format(id=item_id(i), type=kind(i), reasoning=UNKNOWN_REASONING), "input", n)


def _followers(payload: Payload) -> Iterator[tuple[int, str, object | None]]:
    """Each reasoning item sent with its id, and the item right after it (``None`` at the end)."""
    items = input_items(payload)
    for n, i in enumerate(items):
        if kind(i) == "reasoning" and item_id(i):
            yield n, item_id(i), items[n + 1] if n + 1 < len(items) else None


def _reasoning_alone(payload: Payload) -> Iterator[Rejection]:
    """A reasoning item is followed by an item of its reply (another reasoning item counts)."""
    for n, rid, nxt in _followers(payload):
        if nxt is None or not is_output(nxt):
            yield Rejection("OR4", REASONING_ALONE.format(id=rid), "input", n)


def _follower_id(payload: Payload) -> Iterator[Rejection]:
    """The function_call or assistant message right after a reasoning item keeps its id."""
    for n, rid, nxt in _followers(payload):
        if nxt is not None and _linked(nxt) and not item_id(nxt):
            yield Rejection("OR5", REASONING_ALONE.format(id=rid), "input", n)


def _duplicate(payload: Payload) -> Iterator[Rejection]:
    seen: set[str] = set()
    for n, i in enumerate(input_items(payload)):
        iid = item_id(i)
        if iid in seen:
            yield Rejection("OR6", DUPLICATE.format(id=iid), "input", n)
        elif iid:
            seen.add(iid)


def _call_id_length(payload: Payload) -> Iterator[Rejection]:
    for n, i in enumerate(input_items(payload)):
        size = len(text(obj(i).get("call_id")))
        if kind(i) in ("function_call", "function_call_output") and size > CALL_ID_LIMIT:
            yield Rejection("OR7", CALL_ID_LENGTH.format(i=n, n=size), f"input[{n}].call_id", n)


def _id_prefix(payload: Payload) -> Iterator[Rejection]:
    for n, i in enumerate(input_items(payload)):
        prefix = ID_PREFIXES.get(kind(i))
        iid = item_id(i)
        if prefix is not None and iid and not iid.startswith(prefix):
            yield Rejection("OR8", ID_PREFIX.format(i=n, id=iid, prefix=prefix), f"input[{n}].id", n)


def _envelope(r: Rejection) -> dict[str, object]:
    code = "string_above_max_length" if r.rule == "OR7" else None
    return {"error": {"message": r.error, "type": "invalid_request_error", "param": r.path or None, "code": code}}


_REASONING_ON = "reasoning on: the request sets `reasoning`"
_REASONING_SENT = "a reasoning item is sent with its id"

PROVIDER = Provider(
    name="openai-responses",
    title="OpenAI Responses",
    format="openai-responses",
    items="input",
    envelope=_envelope,
    accepts={"C1": PLACEMENT, "C6": PLACEMENT},
    rules=(
        ProviderRule(
            "OR1", "answered", "every function_call has a function_call_output with its call_id in the input (anywhere after it: inferred)",
            UNANSWERED, Evidence.VERIFIED, ("https://github.com/tjardoo/openai-client/pull/124",), _unanswered, ("C1", "C5"),
        ),
        ProviderRule(
            "OR2", "no orphan", "every function_call_output with a call_id answers a call in the input (not judged when earlier items are stored: previous_response_id, conversation, item_reference)",
            ORPHAN, Evidence.VERIFIED, ("https://github.com/microsoft/vscode/issues/320060", "https://github.com/continuedev/continue/issues/10092"), _orphan, ("C2",),
        ),
        ProviderRule(
            "OR3", "reasoning kept", "a function_call or assistant message replayed with its item id comes after the reasoning item of its reply",
            REASONING_MISSING, Evidence.VERIFIED,
            ("https://github.com/cline/cline/issues/12242", "https://github.com/continuedev/continue/issues/10018", "https://github.com/VRSEN/agency-swarm/issues/367", "https://github.com/continuedev/continue/issues/11309"),
            _reasoning_missing, when=_REASONING_ON,
        ),
        ProviderRule(
            "OR4", "reasoning followed", "a reasoning item is followed by the item the model produced after it (its message, a call, or more reasoning)",
            REASONING_ALONE, Evidence.VERIFIED, ("https://github.com/continuedev/continue/issues/8933", "https://github.com/continuedev/continue/issues/10428"), _reasoning_alone, when=_REASONING_SENT,
        ),
        ProviderRule(
            "OR5", "follower keeps its id", "the function_call or assistant message right after a reasoning item is sent with its item id",
            REASONING_ALONE, Evidence.INFERRED, ("https://github.com/OpenHands/software-agent-sdk/pull/1754",), _follower_id, when=_REASONING_SENT,
        ),
        ProviderRule(
            "OR6", "unique item ids", "no item id is used twice in the input",
            DUPLICATE, Evidence.VERIFIED, ("https://github.com/github/app/issues/540", "https://github.com/vercel/ai/issues/13307"), _duplicate, ("C3",),
        ),
        ProviderRule(
            "OR7", "call_id length", "a call_id has at most 64 characters (only the length is checked)",
            CALL_ID_LENGTH, Evidence.VERIFIED, ("https://github.com/orchidfiles/ungate/issues/26", "https://github.com/AnswerDotAI/fastllm/issues/45"), _call_id_length,
        ),
        ProviderRule(
            "OR8", "id prefix", "an item id begins with its type's prefix: rs (reasoning), fc (function_call), msg (message); the text was seen for 'rs'",
            ID_PREFIX, Evidence.INFERRED, ("https://github.com/jlcodes99/cockpit-tools/issues/2090",), _id_prefix,
        ),
    ),
)
