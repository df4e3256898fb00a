// A chat application built on the Vercel AI SDK (npm `ai`), checked through
// the ctxcontract projector protocol (docs/protocol.md):
//
//   ctxcontract verify --policy vercel-ai --projector-cmd node examples/adapters/vercel-ai/adapter.mjs
//
// The application is the one the SDK's documentation describes. Its client is
// the SDK's own `AbstractChat` (the class `useChat` runs), its tools run on the
// client (`onToolCall`, then `addToolOutput`), and every model request is one
// call of the chat route:
//
//   convertToModelMessages(uiMessages, { tools, ignoreIncompleteToolCalls: true })
//   -> pruneMessages(...) -> streamText({ model: openai.chat("gpt-4o"), ... })
//   -> toUIMessageStream(...)
//
// Nothing goes over the network. The OpenAI provider gets a `fetch` that keeps
// the JSON body the provider built (its `messages` are what this child
// answers) and streams back, as server-sent events, the reply the session log
// holds. The provider's request builder and stream parser, `streamText`,
// `toUIMessageStream` and the chat's message state are the SDK's code; this
// file says when the user types, what the model answered and when a tool
// finished, and makes the choices the SDK leaves to an application (cancel,
// crash, compaction, undo, clear). README.md lists each of them.
//
// `--strict` leaves out `ignoreIncompleteToolCalls`, as the SDK's default does.

import { serve } from "../../../adapters/js/ctxcontract-adapter.mjs";
import {
  AbstractChat,
  convertToModelMessages,
  isToolUIPart,
  jsonSchema,
  pruneMessages,
  streamText,
  toUIMessageStream,
  tool,
} from "ai";
import { createOpenAI } from "@ai-sdk/openai";

const STRICT = process.argv.includes("--strict");
const MODEL = "gpt-4o"; // a chat model that takes a system message (not a reasoning model)
const SUMMARY_HEADING = "Summary of the earlier conversation:\n";

// The SDK prints its warnings on the console; here they are only noise.
globalThis.AI_SDK_LOG_WARNINGS = false;

function deferred() {
  let resolve;
  const promise = new Promise((res) => (resolve = res));
  return { promise, resolve };
}

// Every stage between the response body and the chat's state is a web stream
// driven by promises: one turn of the event loop lets all of them run dry.
function drained() {
  return new Promise((resolve) => setImmediate(resolve));
}

// --- the client: the SDK's chat over a message store in memory ---------------

// A ChatState as the framework bindings keep one: every stored message is a
// copy, so the stream state can go on changing its own.
class MemoryState {
  constructor(messages) {
    this.messages = messages;
    this.status = "ready";
    this.error = undefined;
  }
  pushMessage = (message) => {
    this.messages = this.messages.concat(this.snapshot(message));
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
  };
  snapshot = (value) => structuredClone(value);
}

class AppChat extends AbstractChat {
  constructor({ messages = [], ...init }) {
    super({ ...init, state: new MemoryState(messages) });
  }
}

// The steps of an assistant message: [start, end) ranges of its parts, each
// beginning at a step-start part (parts before the first one are a step too).
function steps(message) {
  const out = [];
  message.parts.forEach((part, i) => {
    if (part.type === "step-start" || out.length === 0) out.push({ start: i, end: i + 1 });
    else out[out.length - 1].end = i + 1;
  });
  return out;
}

// --- the model: a reply from the log as an OpenAI chat completions stream ------

function completionChunk(n, delta, finish = null, extra = {}) {
  return { id: `chatcmpl-${n}`, object: "chat.completion.chunk", created: 0, model: MODEL, choices: [{ index: 0, delta, finish_reason: finish }], ...extra };
}

function replyChunks(reply, n) {
  const calls = reply.calls || [];
  const out = [completionChunk(n, { role: "assistant", content: reply.text || null })];
  calls.forEach((call, index) => {
    out.push(completionChunk(n, { tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: call.args } }] }));
  });
  return out;
}

function finishChunks(reply, n) {
  const finish = (reply.calls || []).length > 0 ? "tool_calls" : "stop";
  return [completionChunk(n, {}, finish), { ...completionChunk(n, {}), choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }];
}

// --- one session: the application, fed the log record by record --------------

class Session {
  constructor() {
    this.system = "";
    this.tools = {}; // the app's tools by name: client-side tools, no execute
    this.nextId = 0;
    this.requests = 0;
    this.inFlight = null; // the request whose reply has not come yet
    this.answer = null; // what the last step.begin sent: { messages } or { error }
    this.started = new Set(); // tool call ids the chat handed to onToolCall
    this.running = []; // tools running on the client: { logId, sdkId, toolName }
    this.entered = new Map(); // unit key -> the line at which it settled
    this.abandoned = new Set(); // tool parts the app stopped waiting for
    this.stepBase = new Map(); // assistant message id -> steps a compaction removed from its front
    this.cut = 0; // the latest line a compaction summarized up to
    this.pendingCompaction = null; // one that waits for the reply in flight
    this.chat = this.newChat([]);
  }

  id(prefix) {
    this.nextId += 1;
    return `${prefix}-${this.nextId}`;
  }

  newChat(messages) {
    return new AppChat({
      messages,
      generateId: () => this.id("m"),
      transport: { sendMessages: (options) => this.route(options), reconnectToStream: async () => null },
      // The client runs the tool here; its output comes back as a tool.result record.
      onToolCall: ({ toolCall }) => {
        this.started.add(toolCall.toolCallId);
      },
      onError: (error) => {
        if (this.inFlight) this.inFlight.error ??= error;
      },
    });
  }

  // The app has a tool for every name the model calls (an unknown name would
  // be the SDK's NoSuchToolError, a different story).
  addTools(calls) {
    for (const { name } of calls || []) {
      this.tools[name] ??= tool({ description: `the ${name} tool`, inputSchema: jsonSchema({ type: "object", additionalProperties: true }) });
    }
  }

  // The chat route of the SDK's documentation, in this process.
  async route({ messages, abortSignal }) {
    const request = this.inFlight;
    const wire = JSON.parse(JSON.stringify(messages)); // what crosses HTTP
    const modelMessages = await convertToModelMessages(wire, { tools: this.tools, ...(STRICT ? {} : { ignoreIncompleteToolCalls: true }) });
    const pruned = pruneMessages({ messages: modelMessages, reasoning: "none", toolCalls: "none", emptyMessages: "remove" });
    const provider = createOpenAI({
      apiKey: "never-sent",
      fetch: async (url, init) => {
        let controller;
        const body = new ReadableStream({ start: (c) => (controller = c) });
        init.signal?.addEventListener("abort", () => {
          try {
            controller.error(new DOMException("This operation was aborted", "AbortError"));
          } catch {
            // the body is already closed
          }
        });
        request.body = JSON.parse(init.body);
        request.controller = controller;
        request.sent.resolve();
        return new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } });
      },
    });
    const result = streamText({
      model: provider.chat(MODEL),
      ...(this.system ? { instructions: this.system } : {}),
      messages: pruned,
      tools: this.tools,
      maxRetries: 0,
      abortSignal,
      onError: ({ error }) => {
        request.error ??= error;
      },
    });
    return toUIMessageStream({ stream: result.stream, onError: (error) => (error instanceof Error ? error.message : String(error)) });
  }

  // --- the protocol's three calls

  async record(record, line) {
    const handler = this[`on_${record.type.replace(".", "_")}`];
    if (handler) await handler.call(this, record, line);
    this.settle(line);
  }

  moment() {
    // resume, cancel, turn_end: the app does its part at the records themselves
  }

  request() {
    if (!this.answer) throw new Error("no request was built yet");
    if (this.answer.error) throw this.answer.error;
    return this.answer.messages;
  }

  // --- the records

  on_session_meta(record) {
    this.system = record.system || "";
  }

  addUserMessage(text, kind) {
    this.chat.messages = [...this.chat.messages, { id: this.id("u"), role: "user", parts: [{ type: "text", text }], metadata: { kind } }];
  }

  on_turn_prompt(record) {
    this.addUserMessage(record.text, "prompt");
  }

  on_turn_steer(record) {
    this.addUserMessage(record.text, "steer");
  }

  on_notification(record) {
    this.addUserMessage(record.text, "notification");
  }

  async on_step_begin() {
    if (this.inFlight) await this.giveUp(); // a request that never got a reply
    this.abandonOpenCalls();
    await this.applyCompaction();
    this.requests += 1;
    const request = { n: this.requests, sent: deferred(), body: null, controller: null, error: null, done: null };
    this.inFlight = request;
    request.done = this.chat.sendMessage(); // no new message: send the chat as it is
    await Promise.race([request.sent.promise, request.done]);
    if (request.body) {
      this.answer = { messages: request.body.messages };
    } else {
      this.inFlight = null; // the route failed before the provider sent anything
      this.answer = { error: request.error ?? this.chat.error ?? new Error("the chat sent no request") };
    }
  }

  async on_assistant(record) {
    const request = this.inFlight;
    if (!request?.controller) return;
    this.addTools(record.calls);
    const encoder = new TextEncoder();
    const send = (chunk) => request.controller.enqueue(encoder.encode(`data: ${JSON.stringify(chunk)}\n\n`));
    for (const chunk of replyChunks(record, request.n)) send(chunk);
    if (record.complete === false) {
      // The connection breaks after what came before it was read and handled
      // (an error that overtook the bytes would make them vanish).
      await drained();
      request.controller.error(new TypeError("terminated"));
    } else {
      for (const chunk of finishChunks(record, request.n)) send(chunk);
      request.controller.enqueue(encoder.encode("data: [DONE]\n\n"));
      request.controller.close();
    }
    await request.done;
    this.inFlight = null;
    if (record.complete === false) this.abandonOpenCalls();
    else this.startTools(record.calls || []);
    await this.applyCompaction();
  }

  // The tools the chat started for this reply, matched to the log's calls by
  // position: the provider may give a call another id than the model did.
  startTools(calls) {
    const message = [...this.chat.messages].reverse().find((m) => m.role === "assistant");
    if (!message || calls.length === 0) return;
    const last = steps(message).at(-1);
    const parts = message.parts.slice(last.start, last.end).filter(isToolUIPart);
    if (parts.length !== calls.length) {
      console.error(`reply with ${calls.length} calls gave ${parts.length} tool parts: no tool is started`);
      return;
    }
    parts.forEach((part, i) => {
      if (this.started.has(part.toolCallId) && part.state === "input-available") {
        this.running.push({ logId: calls[i].id, sdkId: part.toolCallId, toolName: calls[i].name });
      }
    });
    this.started.clear();
  }

  async on_step_error() {
    const request = this.inFlight;
    if (!request?.controller) return;
    request.controller.error(new TypeError("terminated")); // the provider failed the request
    await request.done;
    this.inFlight = null;
    await this.applyCompaction();
  }

  async on_tool_result(record) {
    // the earliest tool still running for this id; none: nothing calls addToolOutput
    const at = this.running.findIndex((r) => r.logId === record.call_id);
    if (at < 0) return;
    const [run] = this.running.splice(at, 1);
    if (record.is_error) {
      await this.chat.addToolOutput({ state: "output-error", tool: run.toolName, toolCallId: run.sdkId, errorText: record.output });
    } else {
      await this.chat.addToolOutput({ tool: run.toolName, toolCallId: run.sdkId, output: record.output });
    }
  }

  async giveUp() {
    await this.chat.stop();
    this.inFlight = null;
  }

  async on_turn_cancel() {
    // the stop button
    this.abandonOpenCalls();
    await this.giveUp();
    await this.applyCompaction();
  }

  async on_resume() {
    // The process died; it starts again from the messages it had stored.
    this.abandonOpenCalls();
    const stored = structuredClone(this.chat.messages);
    this.inFlight = null;
    this.chat = this.newChat(stored);
    await this.applyCompaction();
  }

  async on_compaction(record, line) {
    this.cut = Math.max(this.cut, record.upto);
    this.pendingCompaction = { summary: record.summary, line };
    await this.applyCompaction();
  }

  on_undo(record) {
    const messages = this.chat.messages;
    const summary = messages.filter((m) => m.metadata?.kind === "summary");
    const rest = messages.filter((m) => m.metadata?.kind !== "summary");
    const prompts = rest.flatMap((m, i) => (m.metadata?.kind === "prompt" ? [i] : []));
    const count = record.count ?? 1;
    const start = prompts.length >= count ? prompts[prompts.length - count] : 0;
    this.chat.messages = [...summary, ...rest.slice(0, start)];
  }

  on_clear() {
    this.pendingCompaction = null;
    this.chat.messages = [];
  }

  // --- what the app counts as settled, for its compaction

  // The conversation as units a compaction can remove: a user message, or one
  // step of an assistant message (its step-start part and the parts after it).
  units() {
    const out = [];
    for (const message of this.chat.messages) {
      if (message.role !== "assistant") {
        out.push({ key: message.id, message, parts: message.parts });
        continue;
      }
      const base = this.stepBase.get(message.id) ?? 0;
      steps(message).forEach((range, k) => {
        out.push({ key: `${message.id}:${base + k}`, message, parts: message.parts.slice(range.start, range.end), start: range.start });
      });
    }
    return out;
  }

  // The app stops waiting for the tool calls that have no output yet (a
  // request sent without them, the stop button, a crash, a broken stream): it
  // cancels their runners, so no late output is added to an old message.
  abandonOpenCalls() {
    this.running = [];
    this.started.clear();
    for (const unit of this.units()) {
      unit.parts.forEach((part, i) => {
        if (isToolUIPart(part) && !part.state.startsWith("output-")) this.abandoned.add(`${unit.key}/${i}`);
      });
    }
  }

  settled(unit) {
    return unit.parts.every((part, i) => !isToolUIPart(part) || part.state.startsWith("output-") || this.abandoned.has(`${unit.key}/${i}`));
  }

  // A unit enters the conversation once it and every unit before it settled.
  settle(line) {
    for (const unit of this.units()) {
      if (this.entered.has(unit.key)) continue;
      if (!this.settled(unit)) break;
      this.entered.set(unit.key, line);
    }
  }

  // The app's compaction, between requests: what had entered the conversation
  // by line `upto` is replaced by one user message that carries the summary.
  async applyCompaction() {
    const c = this.pendingCompaction;
    if (!c || this.inFlight) return;
    this.pendingCompaction = null;
    const gone = (unit) => (this.entered.get(unit.key) ?? Infinity) <= this.cut;
    const units = this.units();
    const kept = [];
    for (const message of this.chat.messages) {
      if (message.metadata?.kind === "summary") continue; // the new summary replaces it
      const mine = units.filter((u) => u.message === message);
      const removed = mine.filter(gone).length; // the units that entered form a prefix
      if (removed === 0) kept.push(message);
      else if (removed < mine.length) {
        // an assistant message whose first steps are summarized keeps the others
        this.stepBase.set(message.id, (this.stepBase.get(message.id) ?? 0) + removed);
        kept.push({ ...message, parts: message.parts.slice(mine[removed].start) });
      }
    }
    const summary = { id: this.id("s"), role: "user", parts: [{ type: "text", text: SUMMARY_HEADING + c.summary }], metadata: { kind: "summary" } };
    this.entered.set(summary.id, c.line);
    this.chat.messages = [summary, ...kept];
  }
}

serve({ format: "canonical", name: "vercel-ai", session: () => new Session() });
