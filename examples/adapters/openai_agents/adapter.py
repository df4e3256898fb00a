"""The OpenAI Agents SDK (``openai-agents``) under the projector protocol.

Run it in the SDK's own environment, not the checker's:

    <venv>/bin/python examples/adapters/openai_agents/adapter.py

and check it with ``ctxcontract verify --projector-cmd <that command>``
(README.md beside this file says how the venv is made).

What runs here is the SDK's own code, end to end: an ``Agent`` with a
``Session``, driven by ``Runner.run``, calling the SDK's
``OpenAIChatCompletionsModel``.  The model's OpenAI client is a stand-in
whose ``chat.completions.create`` keeps the ``messages`` the SDK built and
waits for the log to say what the model answered; no request leaves the
process.  The answer to every ``request`` is exactly the ``messages`` list
the SDK handed to that client, system prompt included.

The mapping, one canonical record at a time:

* ``session.meta``: its system prompt is the agent's ``instructions``.
* ``turn.prompt``, ``turn.steer``, ``notification``: a user input item
  (``{"role": "user", "content": text}``, what the SDK makes of a string).
  The app queues it and hands it to ``Runner.run`` as the run's input as soon
  as it can: right away when no run is going, else when the run reaches its
  next model call (that run is stopped there, which loses nothing, and a new
  one starts with the input).  Input typed while tools run waits for them.
* ``step.begin``: the request.  When no run is going, the app starts one.
  The SDK reads the session (``prepare_input_with_session``: orphan calls
  dropped, duplicates removed), adds what the run made so far, and calls the
  model: the stand-in client keeps that request.
* ``assistant``: the model's reply, given to the SDK as a Chat Completions
  ``ChatCompletion``; the SDK turns it into its own items
  (``ResponseOutputMessage``, ``ResponseFunctionToolCall``) and runs the
  tools.  A reply cut mid-stream (``complete: false``) reaches the SDK as an
  error from the client, as a dropped stream does.
* ``tool.result``: the output of the matching tool invocation, returned as is
  (the SDK's ``function_call_output`` has no error flag).  A result for a
  call that is not running (late, twice, unknown id) has no tool invocation
  to go to: the SDK never sees it.
* ``step.error``: the client raises; the run fails.
* ``step.end``: nothing (the SDK goes on to the tools by itself).

The SDK saves the session once per finished step: the reply and every tool
output together, in call order.  What the SDK leaves to the app, and what
this app does:

* cancel (the ``cancel`` moment): the app cancels the ``Runner.run`` task
  (plain asyncio cancellation, what a stop button does to a run).  With
  ``CTXCONTRACT_OA_CANCEL=tools`` it cancels the running tool invocations
  instead and lets the SDK close them (its default tool error function), then
  stops the run at its next model call.
* a request while calls are still running (``step.begin`` with calls open):
  the app cannot wait for them, so it cancels as above; with ``tools`` the
  same run goes on to this request.
* crash (the ``resume`` moment): the process is gone; only what the session
  had saved survives.  The app opens the saved session again; its own queue
  of typed input survives too (it is the app's, not the SDK's).
* turn end (the ``turn_end`` moment): a run waiting on the model is stopped.
* compaction: the SDK compacts only through the Responses API
  (``OpenAIResponsesCompactionSession``), not for Chat Completions; the app
  rewrites the session: the saved items from lines up to ``upto`` (a prefix
  of the session) give way to one user item that holds the summary.  A run
  keeps its own copy of the history, so the app stops it at its model call
  and starts a new one from the session.
* undo and clear: the app stops the run and pops items with the SDK's
  ``Session.pop_item`` (undo) or calls ``clear_session`` (clear).

The session store is the SDK's ``SessionABC`` over a Python list, with the
semantics of ``SQLiteSession(":memory:")``; ``SQLiteSession`` itself does
its I/O in worker threads, which an event loop stepped record by record
cannot wait for deterministically.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any

from ctxcontract.adapter import serve

from agents import Agent, FunctionTool, RunConfig, Runner, set_tracing_disabled
from agents.memory.session import SessionABC
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from openai.types.chat import ChatCompletion

set_tracing_disabled(True)  # traces would be exported to OpenAI's servers

#: "run": cancel the Runner.run task (the default); "tools": cancel the running tools.
CANCEL = os.environ.get("CTXCONTRACT_OA_CANCEL", "run")
if CANCEL not in ("run", "tools"):
    raise SystemExit(f"CTXCONTRACT_OA_CANCEL must be run or tools, not {CANCEL!r}")

USER_KINDS = {"turn.prompt": "prompt", "turn.steer": "steer", "notification": "notification"}


class StreamCut(Exception):
    """The reply's stream broke off (the log's ``complete: false``)."""


class ProviderError(Exception):
    """The provider failed the request (the log's ``step.error``)."""


@dataclass
class Stamp:
    """Where a saved item came from: the log line it entered at, and what it is."""

    line: int
    kind: str  # prompt, steer, notification, summary, or model (saved by the runner)


# --- the stand-in OpenAI client ------------------------------------------------


class _Completions:
    def __init__(self, app: World) -> None:
        self._app = app

    async def create(self, **kwargs: Any) -> ChatCompletion:
        app = self._app
        app.sent = json.loads(json.dumps(kwargs["messages"]))  # what would go over the wire
        reply = asyncio.get_running_loop().create_future()
        app.call = reply
        return await reply


class _Chat:
    def __init__(self, app: World) -> None:
        self.completions = _Completions(app)


class StandInClient:
    """Just enough of ``AsyncOpenAI`` for ``OpenAIChatCompletionsModel``; it never opens a socket."""

    base_url = "http://model.invalid/v1/"

    def __init__(self, app: World) -> None:
        self.chat = _Chat(app)


def chat_completion(text: str, calls: list[dict[str, Any]]) -> ChatCompletion:
    """The reply as the Chat Completions API would return it."""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c.get("args", "")}} for c in calls
        ]
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-ctxcontract",
            "object": "chat.completion",
            "created": 0,
            "model": "ctxcontract-stand-in",
            "choices": [{"index": 0, "finish_reason": "tool_calls" if calls else "stop", "message": message}],
        }
    )


# --- the session store -----------------------------------------------------------


class Store(SessionABC):
    """The app's session: the SDK's Session protocol over a list, each item stamped with its line."""

    def __init__(self, app: World, items: list[Any] | None = None, stamps: list[Stamp] | None = None) -> None:
        self.session_id = "ctxcontract"
        self.session_settings = None
        self.app = app
        self.items: list[Any] = items if items is not None else []
        self.stamps: list[Stamp] = stamps if stamps is not None else []
        self.dead = False  # the process that wrote here crashed: nothing more reaches this store

    async def get_items(self, limit: int | None = None) -> list[Any]:
        if limit is None:
            return copy.deepcopy(self.items)
        return copy.deepcopy(self.items[-limit:]) if limit > 0 else []

    async def add_items(self, items: list[Any]) -> None:
        if self.dead:
            return
        for item in items:
            self.items.append(copy.deepcopy(item))
            self.stamps.append(self.app.stamp_of(item))

    async def pop_item(self) -> Any | None:
        if self.dead or not self.items:
            return None
        self.stamps.pop()
        return self.items.pop()

    async def clear_session(self) -> None:
        if not self.dead:
            self.items.clear()
            self.stamps.clear()


# --- the app -----------------------------------------------------------------------

LOOP = asyncio.new_event_loop()
asyncio.set_event_loop(LOOP)


async def _idle() -> None:
    for _ in range(1_000_000):
        await asyncio.sleep(0)
        if not LOOP._ready:  # type: ignore[attr-defined]  # asyncio has no public "idle" test
            return
    raise RuntimeError("the SDK never settled")


def spin() -> None:
    """Run the loop until nothing is ready to run: every task waits on the log."""
    LOOP.run_until_complete(_idle())


def drain() -> None:
    """Cancel every task a previous session left behind (one session is open at a time)."""
    for task in asyncio.all_tasks(LOOP):
        task.cancel()
    spin()


class World:
    """The app and the SDK, playing one canonical session with a given set of tools."""

    def __init__(self, tools: list[str], quiet: bool = False) -> None:
        drain()
        self.now = 0
        self.quiet = quiet  # replaying: say nothing on standard error
        self.store = Store(self)
        model = OpenAIChatCompletionsModel(model="ctxcontract-stand-in", openai_client=StandInClient(self))  # type: ignore[arg-type]
        self.agent: Agent[Any] = Agent(name="assistant", instructions=None, model=model, tools=[self.tool(name) for name in tools])
        self.task: asyncio.Task[Any] | None = None
        self.call: asyncio.Future[ChatCompletion] | None = None  # the model call waiting for its reply
        self.sent: list[dict[str, Any]] | None = None  # what that call sends
        self.queued: list[tuple[Stamp, str]] = []  # input the SDK has not been given yet
        self.inputs: deque[Stamp] = deque()  # stamps of the input items of the run just started
        self.running: dict[str, deque[asyncio.Future[str]]] = {}  # call id -> tool invocations waiting
        self.stale = False  # the session was rewritten under the running run

    # state of the run
    def at_model_call(self) -> bool:
        return self.call is not None and not self.call.done() and self.task is not None and not self.task.done()

    def idle(self) -> bool:
        return self.task is None or self.task.done()

    def open_calls(self) -> list[asyncio.Future[str]]:
        return [f for waiting in self.running.values() for f in waiting if not f.done()]

    def stamp_of(self, item: Any) -> Stamp:
        if self.inputs and isinstance(item, dict) and item.get("role") == "user":
            return self.inputs.popleft()
        return Stamp(self.now, "model")

    # driving the SDK
    def start(self) -> None:
        items = [{"role": "user", "content": text} for _, text in self.queued]
        self.inputs = deque(stamp for stamp, _ in self.queued)
        self.queued = []
        self.stale = False
        self.call, self.sent = None, None
        config = RunConfig(tracing_disabled=True)
        self.task = LOOP.create_task(Runner.run(self.agent, items, session=self.store, max_turns=1_000_000, run_config=config))
        self.task.add_done_callback(self.ended)
        spin()

    def ended(self, task: asyncio.Task[Any]) -> None:
        """Say on standard error why a run ended other than by a final answer (it goes with the findings)."""
        if not task.cancelled() and task.exception() is not None and not self.quiet:
            error = task.exception()
            print(f"line {self.now}: Runner.run raised {type(error).__name__}: {error}", file=sys.stderr)

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            spin()
        self.task = None
        self.call, self.sent = None, None
        self.running.clear()

    def settle(self) -> None:
        spin()
        if self.at_model_call() and (self.queued or self.stale):
            # The run's own copy of the history is out of date: stop it at its model call (every
            # finished step is saved there, so nothing is lost) and call the model again.
            self.stop()
            self.start()
        elif self.idle() and self.queued:
            self.start()

    def cancel(self, end_turn: bool) -> None:
        """The user cancels (``end_turn``), or a request must be built while calls run (see the module doc)."""
        if CANCEL == "tools" and self.open_calls():
            for f in self.open_calls():
                f.cancel()
            spin()  # the SDK closes them and goes on to its next model call
            if end_turn and self.at_model_call():
                self.stop()
        else:
            self.stop()
        self.running.clear()

    def tool(self, name: str) -> FunctionTool:
        async def invoke(ctx: Any, args: str) -> str:
            waiting = asyncio.get_running_loop().create_future()
            self.running.setdefault(ctx.tool_call_id, deque()).append(waiting)
            return await waiting

        return FunctionTool(
            name=name,
            description=f"the log's {name}",
            params_json_schema={"type": "object", "properties": {}, "additionalProperties": True},
            on_invoke_tool=invoke,
            strict_json_schema=False,
        )

    # the records
    def record(self, record: dict[str, Any], line: int) -> None:
        self.now = line
        kind = record["type"]
        if kind == "session.meta":
            self.agent.instructions = record.get("system") or None
        elif kind in USER_KINDS:
            self.queued.append((Stamp(line, USER_KINDS[kind]), record["text"]))
        elif kind == "step.begin":
            if self.open_calls():
                self.cancel(end_turn=False)  # the calls still running are never answered
            self.settle()
            if self.idle():
                self.start()
        elif kind == "assistant":
            self.reply(record)
        elif kind == "step.error":
            if self.at_model_call():
                assert self.call is not None
                self.call.set_exception(ProviderError(record.get("message", "")))
        elif kind == "tool.result":
            waiting = [f for f in self.running.get(record["call_id"], ()) if not f.done()]
            if waiting:
                waiting[0].set_result(record.get("output", ""))
        elif kind == "compaction":
            self.compact(record["summary"], int(record["upto"]))
        elif kind in ("undo", "clear"):
            self.cancel_everything()
            if kind == "undo":
                self.undo(int(record.get("count", 1)))
            else:
                LOOP.run_until_complete(self.store.clear_session())
                self.queued = []
        self.settle()

    def moment(self, moment: str, line: int) -> None:
        self.now = line
        if moment == "cancel":
            self.cancel(end_turn=True)
        elif moment == "turn_end":
            if self.at_model_call():
                self.stop()
        elif moment == "resume":
            self.crash()
        self.settle()

    def request(self) -> list[dict[str, Any]]:
        if not self.at_model_call() or self.sent is None:
            state = "finished: " + repr(self.task.exception()) if self.task is not None and self.task.done() else "not at a model call"
            raise RuntimeError(f"the SDK built no request here (run {state})")
        return copy.deepcopy(self.sent)

    # what each record does
    def reply(self, record: dict[str, Any]) -> None:
        calls = record.get("calls") or []
        if not self.at_model_call():
            return  # a reply to a request the SDK no longer makes
        assert self.call is not None
        if record.get("complete", True):
            self.call.set_result(chat_completion(record.get("text") or "", calls))
        else:
            self.call.set_exception(StreamCut("the stream broke off"))

    def compact(self, summary: str, upto: int) -> None:
        items, stamps = self.store.items, self.store.stamps
        keep = [i for i, s in enumerate(stamps) if s.kind != "summary"]
        cut = 0
        while cut < len(keep) and stamps[keep[cut]].line <= upto:
            cut += 1
        kept = keep[cut:]
        self.store.items = [{"role": "user", "content": summary}] + [items[i] for i in kept]
        self.store.stamps = [Stamp(self.now, "summary")] + [stamps[i] for i in kept]
        self.stale = True

    def cancel_everything(self) -> None:
        self.stop()
        self.running.clear()

    def undo(self, count: int) -> None:
        prompts = [i for i, (stamp, _) in enumerate(self.queued) if stamp.kind == "prompt"]
        while count and prompts:
            del self.queued[prompts.pop() :]
            count -= 1
        while count and self.store.items:
            stamp = self.store.stamps[-1]
            if stamp.kind == "summary":
                break  # undo does not reach into a compaction's summary
            LOOP.run_until_complete(self.store.pop_item())
            if stamp.kind == "prompt":
                count -= 1

    def crash(self) -> None:
        dead = self.store
        dead.dead = True
        self.store = Store(self, list(dead.items), list(dead.stamps))  # the session as saved
        if self.task is not None and not self.task.done():
            self.task.cancel()  # the dead process does nothing more: its store takes no writes
            spin()
        self.task = None
        self.call, self.sent = None, None
        self.running.clear()


class App:
    """One session of the protocol.

    A real app knows its tools before the model calls them, and the SDK fixes
    an agent's tools when it calls the model.  The log names a tool only when
    the model calls it, so when a reply names a new one the app is played
    again from the start with that tool added, which changes nothing before
    that reply (no earlier reply called it).
    """

    #: every tool name any session of this process has called: a real app's tools are fixed
    known: list[str] = []

    def __init__(self) -> None:
        self.tools: list[str] = list(App.known)
        self.entries: list[tuple[str, Any, int]] = []  # ("record", record, line) or ("moment", name, line)
        self.world = World(self.tools)

    def record(self, record: dict[str, Any], line: int) -> None:
        new = [c["name"] for c in record.get("calls") or [] if c["name"] not in self.tools] if record["type"] == "assistant" else []
        if new:
            self.tools += dict.fromkeys(new)
            App.known[:] = self.tools
            self.world = World(self.tools, quiet=True)
            for kind, what, at in self.entries:
                getattr(self.world, kind)(what, at)
            self.world.quiet = False
        self.entries.append(("record", record, line))
        self.world.record(record, line)

    def moment(self, moment: str, line: int) -> None:
        self.entries.append(("moment", moment, line))
        self.world.moment(moment, line)

    def request(self) -> list[dict[str, Any]]:
        return self.world.request()


if __name__ == "__main__":
    try:
        serve(session=App, format="canonical", name=f"openai-agents (Runner + Session, cancel={CANCEL})")
    finally:
        drain()
