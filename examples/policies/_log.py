"""What a canonical session log holds when a request is built: shared by the example projectors.

``read(events)`` replays the log (docs/format.md) and returns a :class:`Context`:
the system prompt, the current compaction summary, the user input that
compactions removed, and the items of the context in the order they entered it.
It makes none of a runtime's choices.  Each projector in this folder decides
how to send the items: what a call without a result gets, the order of a tool
block, whether late results and user messages are kept or merged, and so on.

The bookkeeping follows docs/model.md:

* An assistant reply with calls is an *exchange*.  It enters the context whole
  when its last call closes: a result arrives, or ``turn.cancel``, ``resume``
  or ``step.begin`` closes the calls still open.  User input that arrives while
  it is open waits and enters right after it, in arrival order.
* On a cut stream (``complete: false``) the last call may be cut mid-arguments
  and is never sent; the calls before it are closed at once ("stream cut").
* A result answers the earliest open call with its id, else it is about the
  latest call with that id: a *late* result if that call was closed, answered
  or summarized; nothing if it was undone, cleared or never sent.
* ``compaction`` replaces the items that entered the context at or before
  line ``upto``; ``undo n`` drops the last n turns (never into the summary);
  ``clear`` drops everything but the system prompt.
* A call id used a second time is sent as ``<id>#<n>`` (``'`` added until the
  name is free): the first use keeps its id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CANCELLED, LOST_AT_CRASH, STREAM_CUT, NEVER_ANSWERED = "cancelled", "lost at crash", "stream cut", "never answered"
_CLOSING = {"turn.cancel": CANCELLED, "resume": LOST_AT_CRASH, "step.begin": NEVER_ANSWERED}


@dataclass(eq=False)
class Call:
    id: str  # the id to send (renamed if the log used it before)
    name: str
    args: str  # the raw argument text from the log
    status: str = "open"  # open, answered, closed, summarized, gone, dropped (cut mid-arguments)
    output: str | None = None
    is_error: bool = False
    arrived: int = 0  # the line of its result: the block's arrival order
    reason: str | None = None  # why it was closed without a result


@dataclass(eq=False)
class Item:
    kind: str  # prompt, steer, notification, note (a late result), reply, exchange
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    note_of: Call | None = None  # for a note: the call the late result is about
    entered: int = 0  # the line at which it entered the context

    def open(self) -> bool:
        return any(c.status == "open" for c in self.calls)


@dataclass
class Context:
    system: str = ""
    summary: str | None = None
    summarized_input: list[str] = field(default_factory=list)  # prompts, steers, notifications a compaction removed
    items: list[Item] = field(default_factory=list)


def read(events: list[dict]) -> Context:
    """The context a request built after ``events`` would carry (open calls count as never answered)."""
    ctx = Context()
    items: list[Item] = []  # entered, in order
    pending: Item | None = None  # the open exchange
    queued: list[Item] = []  # input waiting behind it
    by_id: dict[str, list[Call]] = {}
    sent_ids: set[str] = set()
    cut = 0

    def enter(item: Item, line: int) -> None:
        item.entered = line
        items.append(item)

    def arrive(item: Item, line: int) -> None:
        if pending is not None:
            queued.append(item)
        else:
            enter(item, line)

    def flush(line: int) -> None:
        nonlocal pending, queued
        if pending is not None:
            enter(pending, line)
            for item in queued:
                enter(item, line)
        pending, queued = None, []

    def discard(removed: list[Item]) -> None:
        for item in removed:
            for call in item.calls:
                call.status = "gone"

    def fresh_id(log_id: str) -> str:
        uses = len(by_id.get(log_id, []))
        name = log_id if uses == 0 else f"{log_id}#{uses + 1}"
        while name in sent_ids:
            name += "'"
        sent_ids.add(name)
        return name

    for line, event in enumerate(events, start=1):
        kind = event.get("type")
        if kind == "session.meta":
            ctx.system = event.get("system") or ""
        elif kind in ("turn.prompt", "turn.steer", "notification"):
            arrive(Item(kind.rsplit(".", 1)[-1], event.get("text", "")), line)
        elif kind == "assistant":
            raw = event.get("calls") or []
            complete = event.get("complete", True)
            calls = []
            for index, c in enumerate(raw):
                call = Call(fresh_id(c["id"]), c["name"], c.get("args", ""))
                by_id.setdefault(c["id"], []).append(call)
                if not complete:  # the last call may be cut mid-arguments; the ones before it were streamed whole
                    call.status, call.reason = ("dropped", None) if index == len(raw) - 1 else ("closed", STREAM_CUT)
                if call.status != "dropped":
                    calls.append(call)
            text = event.get("text") or ""
            if not calls and not text:
                continue
            item = Item("exchange" if calls else "reply", text, calls)
            if item.open():
                pending = item
            else:
                enter(item, line)
        elif kind == "tool.result":
            candidates = by_id.get(event.get("call_id", ""), [])
            call = next((c for c in candidates if c.status == "open"), candidates[-1] if candidates else None)
            if call is None or call.status in ("gone", "dropped"):
                continue  # answers nothing that is (still) in the context
            output, is_error = event.get("output", ""), bool(event.get("is_error", False))
            if call.status == "open":
                call.status, call.output, call.is_error, call.arrived = "answered", output, is_error, line
                if pending is not None and not pending.open():
                    flush(line)
            else:
                arrive(Item("note", output, note_of=call), line)
        elif kind in _CLOSING:
            if pending is not None:
                for call in pending.calls:
                    if call.status == "open":
                        call.status, call.reason = "closed", _CLOSING[kind]
                flush(line)
        elif kind == "compaction":
            cut = max(cut, int(event.get("upto", 0)))
            keep = 0
            while keep < len(items) and items[keep].entered <= cut:
                keep += 1
            for item in items[:keep]:
                for call in item.calls:
                    call.status = "summarized"
                if item.kind in ("prompt", "steer", "notification"):
                    ctx.summarized_input.append(item.text)
            del items[:keep]
            ctx.summary = event.get("summary", "")
        elif kind == "undo":
            order = items + ([pending] if pending else []) + queued
            prompts = [i for i, item in enumerate(order) if item.kind == "prompt"]
            count = int(event.get("count", 1))
            start = prompts[-count] if len(prompts) >= count else 0
            discard(order[start:])
            if start <= len(items):
                del items[start:]
                pending, queued = None, []
            else:  # the prompt is still waiting behind the open exchange
                del queued[start - len(items) - 1 :]
        elif kind == "clear":
            discard(items + ([pending] if pending else []) + queued)
            items, pending, queued = [], None, []
            ctx.summary, ctx.summarized_input = None, []

    if pending is not None:  # a request built now closes what is still open
        for call in pending.calls:
            if call.status == "open":
                call.status, call.reason = "closed", NEVER_ANSWERED
        items = items + [pending] + queued
    ctx.items = items
    return ctx


def assistant(text: str, calls: list[Call], arguments=lambda args: args) -> dict:
    """An OpenAI-chat assistant message; ``arguments`` says how a call's argument text is sent."""
    out: dict = {"role": "assistant", "content": text or None}
    if calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": arguments(c.args)}} for c in calls
        ]
    return out


def tool(call: Call, content: str, *, error: bool = False, synthetic: bool = False) -> dict:
    """An OpenAI-chat tool message, with the extension keys when they are true."""
    out: dict = {"role": "tool", "tool_call_id": call.id, "content": content}
    if error:
        out["x_is_error"] = True
    if synthetic:
        out["x_synthetic"] = True
    return out
