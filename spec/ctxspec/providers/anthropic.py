"""Anthropic Messages: the ``messages`` array of ``POST /v1/messages``.

Anthropic joins consecutive messages of one role into one turn before it
judges the history, so the rules read turns; an error still names the
original ``messages.<i>.content.<j>`` it is about.  A string ``content`` is
one text block.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .base import Evidence, Payload, Provider, ProviderRule, Rejection, items_of, obj, objs, text

UNANSWERED = (
    "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {ids}. "
    "Each `tool_use` block must have a corresponding `tool_result` block in the next message."
)
ORPHAN = (
    "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. "
    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
)
DUPLICATE = "messages.{i}.content.{j}: `tool_use` ids must be unique"
#: Text before a result: Anthropic looks for the results only at the start of the next message, so the
#: results after the text are "not found immediately after" (a live test: docs/research-providers.md §3.1).
RESULTS_FIRST = UNANSWERED
ID_PATTERN = "messages.{i}.content.{j}.{kind}: String should match pattern '^[a-zA-Z0-9_-]+$'"
EMPTY = "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
THINKING = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). "
    "We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. "
    "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)
INPUT = "messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary"

_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class Block:
    item: int  # index of the message in ``messages``
    index: int  # index in its content (0 for a string content)
    type: str
    body: Mapping[str, object]


@dataclass(slots=True)
class Turn:
    role: str
    items: list[int] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


def blocks_of(item: int, message: object) -> list[Block]:
    content = obj(message).get("content")
    if isinstance(content, str):
        return [Block(item, 0, "text", {"type": "text", "text": content})]
    return [Block(item, j, text(b.get("type")), b) for j, b in enumerate(objs(content))]


def turns(payload: Payload) -> list[Turn]:
    out: list[Turn] = []
    for i, m in enumerate(items_of(payload, "messages")):
        r = text(obj(m).get("role"))
        if not out or out[-1].role != r:
            out.append(Turn(r))
        out[-1].items.append(i)
        out[-1].blocks.extend(blocks_of(i, m))
    return out


def _uses(turn: Turn) -> list[Block]:
    return [b for b in turn.blocks if b.type == "tool_use"] if turn.role == "assistant" else []


def _results(turn: Turn | None) -> list[Block]:
    return [b for b in turn.blocks if b.type == "tool_result"] if turn is not None and turn.role == "user" else []


def _pairs(payload: Payload) -> Iterator[tuple[Turn, Turn | None]]:
    ts = turns(payload)
    for n, t in enumerate(ts):
        yield t, ts[n + 1] if n + 1 < len(ts) else None


def _unanswered(payload: Payload) -> Iterator[Rejection]:
    for t, nxt in _pairs(payload):
        uses = _uses(t)
        if not uses:
            continue
        answered = {text(b.body.get("tool_use_id")) for b in _results(nxt)}
        missing = [text(u.body.get("id")) for u in uses if text(u.body.get("id")) not in answered]
        if missing:
            i = uses[0].item
            yield Rejection("AN1", UNANSWERED.format(i=i, ids=", ".join(missing)), f"messages.{i}", i)


def _orphan(payload: Payload) -> Iterator[Rejection]:
    previous: Turn | None = None
    for t in turns(payload):
        ids = {text(u.body.get("id")) for u in _uses(previous)} if previous is not None else set()
        for b in _results(t):
            cid = text(b.body.get("tool_use_id"))
            if cid not in ids:
                yield Rejection("AN2", ORPHAN.format(i=b.item, j=b.index, id=cid), f"messages.{b.item}.content.{b.index}", b.item, b.index)
        previous = t


def _duplicate(payload: Payload) -> Iterator[Rejection]:
    seen: set[str] = set()
    for t in turns(payload):
        for u in _uses(t):
            cid = text(u.body.get("id"))
            if cid in seen:
                yield Rejection("AN3", DUPLICATE.format(i=u.item, j=u.index), f"messages.{u.item}.content.{u.index}", u.item, u.index)
            seen.add(cid)


def _results_first(payload: Payload) -> Iterator[Rejection]:
    """A text (or any other) block before a ``tool_result`` of the turn that answers calls."""
    for t, nxt in _pairs(payload):
        uses = _uses(t)
        if not uses or nxt is None:
            continue
        other = next((b for b in nxt.blocks if b.type != "tool_result"), None)
        late = [b for b in _results(nxt) if other is not None and (b.item, b.index) > (other.item, other.index)]
        ids = {text(u.body.get("id")) for u in uses}
        late_ids = [text(b.body.get("tool_use_id")) for b in late if text(b.body.get("tool_use_id")) in ids]
        if late_ids:
            i = uses[0].item
            yield Rejection("AN4", RESULTS_FIRST.format(i=i, ids=", ".join(late_ids)), f"messages.{i}", i)


def _id_pattern(payload: Payload) -> Iterator[Rejection]:
    for t in turns(payload):
        for b in t.blocks:
            if b.type == "tool_use" and t.role == "assistant":
                kind, value = "tool_use.id", b.body.get("id")
            elif b.type == "tool_result" and t.role == "user":
                kind, value = "tool_result.tool_use_id", b.body.get("tool_use_id")
            else:
                continue
            if not _ID.match(text(value)):
                yield Rejection("AN5", ID_PATTERN.format(i=b.item, j=b.index, kind=kind), f"messages.{b.item}.content.{b.index}.{kind}", b.item, b.index)


def _empty(payload: Payload) -> Iterator[Rejection]:
    messages = items_of(payload, "messages")
    for i, m in enumerate(messages):
        content = obj(m).get("content")
        final_assistant = i == len(messages) - 1 and text(obj(m).get("role")) == "assistant"
        if not final_assistant and (content == "" or content == [] or content is None):
            yield Rejection("AN6", EMPTY.format(i=i), f"messages.{i}", i)


def thinking_enabled(payload: Payload) -> bool:
    return text(obj(payload.get("thinking")).get("type")) in ("enabled", "adaptive")


def _thinking(payload: Payload) -> Iterator[Rejection]:
    """With thinking on, the assistant turn of the tool loop in progress starts with a thinking block.

    The loop in progress: the request ends with a user turn holding only
    ``tool_result`` blocks (no new prompt), answering the assistant turn before it.
    """
    if not thinking_enabled(payload):
        return
    ts = turns(payload)
    if len(ts) < 2 or ts[-1].role != "user" or ts[-2].role != "assistant":
        return
    if not ts[-1].blocks or any(b.type != "tool_result" for b in ts[-1].blocks) or not _uses(ts[-2]):
        return
    first = ts[-2].blocks[0]
    if first.type not in ("thinking", "redacted_thinking"):
        yield Rejection("AN7", THINKING.format(i=first.item, found=first.type), f"messages.{first.item}.content.0.type", first.item, 0)


def _input(payload: Payload) -> Iterator[Rejection]:
    for t in turns(payload):
        for u in _uses(t):
            if not isinstance(u.body.get("input"), Mapping):
                yield Rejection("AN8", INPUT.format(i=u.item, j=u.index), f"messages.{u.item}.content.{u.index}.tool_use.input", u.item, u.index)


def _envelope(r: Rejection) -> dict[str, object]:
    return {"type": "error", "error": {"type": "invalid_request_error", "message": r.error}}


_DOCS = "https://docs.claude.com/en/docs/agents-and-tools/tool-use/implement-tool-use"

PROVIDER = Provider(
    name="anthropic",
    title="Anthropic Messages",
    format="anthropic",
    items="messages",
    envelope=_envelope,
    rules=(
        ProviderRule(
            "AN1", "answered", "every tool_use of an assistant turn has a tool_result in the next (user) turn",
            UNANSWERED, Evidence.VERIFIED, ("https://github.com/anthropics/claude-code/issues/2697", "https://github.com/anthropics/claude-code/issues/5989"), _unanswered, ("C1", "C5"),
        ),
        ProviderRule(
            "AN2", "no orphan", "every tool_result answers a tool_use of the turn right before it",
            ORPHAN, Evidence.VERIFIED, ("https://github.com/anthropics/claude-code/issues/13460",), _orphan, ("C2",),
        ),
        ProviderRule(
            "AN3", "unique ids", "no tool_use id is used twice in the request",
            DUPLICATE, Evidence.VERIFIED, ("https://github.com/anthropics/claude-code/issues/21317",), _duplicate, ("C3",),
        ),
        ProviderRule(
            "AN4", "results first", "in the turn answering calls, every tool_result comes before any other block",
            RESULTS_FIRST, Evidence.VERIFIED, ("https://github.com/QwenLM/qwen-code/pull/8165", _DOCS), _results_first, ("C1", "C6"),
        ),
        ProviderRule(
            "AN5", "id pattern", "tool_use ids and tool_use_ids match ^[a-zA-Z0-9_-]+$",
            ID_PATTERN, Evidence.VERIFIED, ("https://github.com/BlockRunAI/ClawRouter/issues/17", "https://github.com/CommandCodeAI/command-code/issues/323"), _id_pattern,
        ),
        ProviderRule(
            "AN6", "non-empty", "every message but a final assistant one has content",
            EMPTY, Evidence.VERIFIED, ("https://github.com/anthropics/claude-code/issues/6774", "https://github.com/anthropics/claude-code/issues/3196"), _empty, ("C10",),
        ),
        ProviderRule(
            "AN7", "thinking first", "with thinking enabled, the assistant turn whose calls the request answers starts with its thinking block",
            THINKING, Evidence.VERIFIED, ("https://github.com/Kilo-Org/kilocode/issues/5219", "https://github.com/anomalyco/opencode/issues/3077"), _thinking, when="thinking enabled",
        ),
        ProviderRule(
            "AN8", "input object", "a tool_use input is a JSON object",
            INPUT, Evidence.INFERRED, (), _input, ("C10",),
        ),
    ),
)
