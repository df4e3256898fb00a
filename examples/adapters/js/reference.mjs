// The reference projector in JavaScript: examples/policies/_log.py and
// examples/policies/reference.py ported to one dependency-free ESM file, served
// over the projector protocol (docs/protocol.md) with the JavaScript kit.
//
//   ctxcontract verify --projector-cmd node examples/adapters/js/reference.mjs
//
// It is stateful: the harness feeds each record (a canonical event dict,
// docs/format.md) once, and `request()` returns the OpenAI-chat messages a
// `step.begin` would send now. For every log it gives exactly what the Python
// example gives for the same prefix.
//
// The bookkeeping (docs/model.md, as _log.py reads it):
//
// * An assistant reply with calls is an *exchange*. It enters the context whole
//   when its last call closes: a result arrives, or `turn.cancel`, `resume` or
//   `step.begin` closes the calls still open. User input that arrives while it
//   is open waits and enters right after it, in arrival order.
// * On a cut stream (`complete: false`) the last call may be cut mid-arguments
//   and is never sent; the calls before it are closed at once ("stream cut").
// * A result answers the earliest open call with its id, else it is about the
//   latest call with that id: a *late* result if that call was closed, answered
//   or summarized; nothing if it was undone, cleared or never sent.
// * `compaction` replaces the items that entered the context at or before line
//   `upto`; `undo n` drops the last n turns (never into the summary); `clear`
//   drops everything but the system prompt.
// * A call id used a second time is sent as `<id>#<n>` (`'` added until the
//   name is free): the first use keeps its id.
//
// The policy is the contract's own (`reference`): a call with no result gets a
// synthetic error result that says why, tool messages follow call order, a late
// result becomes a user note, each user message stands alone, the summary comes
// first, a cut reply's whole calls are sent closed, arguments go as written.
//
// A request changes nothing: the calls still open are shown as never answered
// without being closed, so asking twice gives the same answer and a result that
// comes later still answers them. Its cost is the size of the context, never
// more than replaying the log as the Python example does.

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { serve } from "../../../adapters/js/ctxcontract-adapter.mjs";

export const CANCELLED = "cancelled";
export const LOST_AT_CRASH = "lost at crash";
export const STREAM_CUT = "stream cut";
export const NEVER_ANSWERED = "never answered";

/** The record kinds that close the calls still open, and the reason they give. */
export const CLOSING = { "turn.cancel": CANCELLED, resume: LOST_AT_CRASH, "step.begin": NEVER_ANSWERED };

/** What a synthetic result says, by reason. */
export const WHY = {
  [CANCELLED]: "Tool call cancelled: the user cancelled the turn before it returned.",
  [LOST_AT_CRASH]: "Tool call lost at crash: the runtime restarted before it returned.",
  [STREAM_CUT]: "Tool call not run: the stream was cut before the reply was complete.",
  [NEVER_ANSWERED]: "Tool call never answered: there was no result when this request was built.",
};

// A record is a JSON object; these read it the way the Python example reads a dict.

/** `record.get(key, fallback)`: a key that is present wins, even when it is null. */
function get(record, key, fallback) {
  return Object.hasOwn(record, key) ? record[key] : fallback;
}

/** Python's truth: empty strings, lists and objects are false too. */
function truthy(value) {
  if (Array.isArray(value)) return value.length > 0;
  if (value !== null && typeof value === "object") return Object.keys(value).length > 0;
  return Boolean(value);
}

function int(value) {
  return Math.trunc(Number(value));
}

/** One call of an exchange. */
export class Call {
  constructor(id, name, args) {
    this.id = id; // the id to send (renamed if the log used it before)
    this.name = name;
    this.args = args; // the raw argument text from the log
    this.status = "open"; // open, answered, closed, summarized, gone, dropped (cut mid-arguments)
    this.output = null;
    this.isError = false;
    this.arrived = 0; // the line of its result
    this.reason = null; // why it was closed without a result
  }
}

/** One item of the context: prompt, steer, notification, note (a late result), reply or exchange. */
export class Item {
  constructor(kind, text = "", calls = [], noteOf = null) {
    this.kind = kind;
    this.text = text;
    this.calls = calls;
    this.noteOf = noteOf; // for a note: the call the late result is about
    this.entered = 0; // the line at which it entered the context
    this.heldBy = null; // the open exchange it waited behind, if it did
  }

  open() {
    return this.calls.some((c) => c.status === "open");
  }
}

/** One session of the reference projector: `record` each record once, `request` at any time. */
export class ReferenceSession {
  constructor() {
    this.line = 0; // records seen (in the canonical format, the log line)
    this.system = "";
    this.summary = null;
    this.summarizedInput = []; // prompts, steers, notifications a compaction removed
    this.items = []; // entered, in order
    this.pending = null; // the open exchange
    this.queued = []; // input waiting behind it
    this.byId = new Map(); // log id -> every call declared with it, in order
    this.sentIds = new Set();
    this.cut = 0;
  }

  // -- the kit's surface ----------------------------------------------------

  record(record, _line) {
    // Lines are counted here, as the Python example counts its events: in the
    // canonical format one record is one line, so this is the harness's line.
    const line = ++this.line;
    const kind = get(record, "type", undefined);
    if (kind === "session.meta") {
      const system = get(record, "system", undefined);
      this.system = truthy(system) ? system : "";
    } else if (kind === "turn.prompt" || kind === "turn.steer" || kind === "notification") {
      this.arrive(new Item(kind.split(".").pop(), get(record, "text", "")), line);
    } else if (kind === "assistant") {
      this.assistant(record, line);
    } else if (kind === "tool.result") {
      this.result(record, line);
    } else if (Object.hasOwn(CLOSING, kind)) {
      this.close(CLOSING[kind], line);
    } else if (kind === "compaction") {
      this.compact(record, line);
    } else if (kind === "undo") {
      this.undo(int(get(record, "count", 1)));
    } else if (kind === "clear") {
      this.clear();
    }
  }

  moment(_moment, _line) {
    // Nothing to run: in the canonical format the `resume` and `turn.cancel`
    // records that come just before their moments have closed the calls
    // already, and a turn's end changes nothing in the context.
  }

  request() {
    const out = [];
    if (this.system) out.push({ role: "system", content: this.system });
    if (this.summary !== null) out.push({ role: "user", content: `[summary of the earlier conversation]\n${this.summary}` });
    this.render(this.view(), out);
    return out;
  }

  // -- the context ----------------------------------------------------------

  /** The items a request built now carries: the open exchange and its queue last. */
  view() {
    return this.pending === null ? this.items : [...this.items, this.pending, ...this.queued];
  }

  /** Why a call without a result has none (a call still open is never answered: a request closes it). */
  reasonOf(call) {
    return call.status === "open" ? NEVER_ANSWERED : call.reason;
  }

  enter(item, line) {
    item.entered = line;
    this.items.push(item);
  }

  arrive(item, line) {
    if (this.pending !== null) {
      item.heldBy = this.pending;
      this.queued.push(item);
    } else {
      this.enter(item, line);
    }
  }

  flush(line) {
    if (this.pending !== null) {
      this.enter(this.pending, line);
      for (const item of this.queued) this.enter(item, line);
    }
    this.pending = null;
    this.queued = [];
  }

  discard(removed) {
    for (const item of removed) for (const call of item.calls) call.status = "gone";
  }

  freshId(logId) {
    const uses = this.byId.get(logId)?.length ?? 0;
    let name = uses === 0 ? logId : `${logId}#${uses + 1}`;
    while (this.sentIds.has(name)) name += "'";
    this.sentIds.add(name);
    return name;
  }

  /** The status and reason of the call at `index` of `count` in a reply, as it is declared. */
  declared(index, count, complete) {
    if (complete) return ["open", null];
    // the last call may be cut mid-arguments; the ones before it were streamed whole
    return index === count - 1 ? ["dropped", null] : ["closed", STREAM_CUT];
  }

  // -- records --------------------------------------------------------------

  assistant(record, line) {
    const raw = get(record, "calls", undefined);
    const specs = truthy(raw) ? raw : [];
    const complete = truthy(get(record, "complete", true));
    const calls = [];
    specs.forEach((spec, index) => {
      const call = new Call(this.freshId(spec.id), spec.name, get(spec, "args", ""));
      if (!this.byId.has(spec.id)) this.byId.set(spec.id, []);
      this.byId.get(spec.id).push(call);
      [call.status, call.reason] = this.declared(index, specs.length, complete);
      if (call.status !== "dropped") calls.push(call);
    });
    const text = truthy(get(record, "text", undefined)) ? record.text : "";
    if (!calls.length && !text) return;
    const item = new Item(calls.length ? "exchange" : "reply", text, calls);
    if (item.open()) this.pending = item;
    else this.enter(item, line);
  }

  /** The call a result is about: the earliest open one with its id, else the latest (or null). */
  route(callId) {
    const candidates = this.byId.get(callId) ?? [];
    return candidates.find((c) => c.status === "open") ?? candidates.at(-1) ?? null;
  }

  result(record, line) {
    const call = this.route(get(record, "call_id", ""));
    if (call === null || call.status === "gone" || call.status === "dropped") return; // answers nothing in the context
    const output = get(record, "output", "");
    const isError = truthy(get(record, "is_error", false));
    if (call.status === "open") {
      call.status = "answered";
      call.output = output;
      call.isError = isError;
      call.arrived = line;
      if (this.pending !== null && !this.pending.open()) this.flush(line);
    } else {
      this.late(call, output, line);
    }
  }

  /** A result for a call that was closed, answered or summarized: a note. */
  late(call, output, line) {
    this.arrive(new Item("note", output, [], call), line);
  }

  close(reason, line) {
    if (this.pending === null) return;
    for (const call of this.pending.calls) {
      if (call.status === "open") {
        call.status = "closed";
        call.reason = reason;
      }
    }
    this.flush(line);
  }

  compact(record, _line) {
    this.cut = Math.max(this.cut, int(get(record, "upto", 0)));
    let keep = 0;
    while (keep < this.items.length && this.items[keep].entered <= this.cut) keep += 1;
    for (const item of this.items.slice(0, keep)) {
      for (const call of item.calls) call.status = "summarized";
      if (item.kind === "prompt" || item.kind === "steer" || item.kind === "notification") this.summarizedInput.push(item.text);
    }
    this.items.splice(0, keep);
    this.summary = get(record, "summary", "");
  }

  undo(count) {
    const order = this.view();
    const prompts = [];
    order.forEach((item, i) => {
      if (item.kind === "prompt") prompts.push(i);
    });
    const start = prompts.length >= count ? prompts[prompts.length - count] : 0;
    this.discard(order.slice(start));
    if (start <= this.items.length) {
      this.items.splice(start);
      this.pending = null;
      this.queued = [];
    } else {
      // the prompt is still waiting behind the open exchange
      this.queued.splice(start - this.items.length - 1);
    }
  }

  clear() {
    this.discard(this.view());
    this.items = [];
    this.pending = null;
    this.queued = [];
    this.summary = null;
    this.summarizedInput = [];
  }

  // -- messages -------------------------------------------------------------

  render(items, out) {
    for (const item of items) {
      if (item.kind === "exchange") this.exchange(item, out);
      else this.renderItem(item, out);
    }
  }

  /** The assistant message of an exchange, then a tool message for each call, in call order. */
  exchange(item, out) {
    out.push(assistant(item.text, item.calls));
    for (const call of item.calls) out.push(this.toolMessage(call));
  }

  toolMessage(call) {
    if (call.status === "answered") return tool(call, call.output, { error: call.isError });
    return tool(call, WHY[this.reasonOf(call)], { error: true, synthetic: true });
  }

  /** Any item but an exchange. */
  renderItem(item, out) {
    if (item.kind === "reply") {
      out.push(assistant(item.text, []));
    } else if (item.kind === "note") {
      const call = item.noteOf;
      out.push({ role: "user", content: `[late tool result] call ${call.id} (${call.name}) returned after it was closed:\n${item.text}` });
    } else {
      out.push({ role: "user", content: item.text }); // prompt, steer, notification
    }
  }
}

/** An OpenAI-chat assistant message; a call's arguments are sent as the model wrote them. */
export function assistant(text, calls) {
  const out = { role: "assistant", content: text || null };
  if (calls.length) {
    out.tool_calls = calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.args } }));
  }
  return out;
}

/** An OpenAI-chat tool message, with the extension keys when they are true. */
export function tool(call, content, { error = false, synthetic = false } = {}) {
  const out = { role: "tool", tool_call_id: call.id, content };
  if (error) out.x_is_error = true;
  if (synthetic) out.x_synthetic = true;
  return out;
}

/** Whether this module is the script node was started with (not imported by another). */
export function isMain(meta) {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(meta.url));
  } catch {
    return false;
  }
}

if (isMain(import.meta)) {
  serve({ format: "canonical", name: "js-reference", session: () => new ReferenceSession() });
}
