// Serve a projector over the ctxcontract projector protocol (docs/protocol.md).
//
// One ESM file, no dependency, node 18 or later. Copy it next to your
// adapter and check your runtime with
//
//   ctxcontract verify --projector-cmd node my-adapter.mjs
//
// Stateless, the whole session with every request:
//   serve({ project: (records) => messages })
// Stateful, each record once:
//   serve({ format: "kimi-wire", session: () => ({ record(r, line) {}, moment(m, line) {}, request() { return messages; } }) })

import { createInterface } from "node:readline";
import { writeSync } from "node:fs";

export const PROTOCOL = 1;
export const FORMATS = ["canonical", "kimi-wire", "codex", "claude"];

function errorOf(err) {
  if (err instanceof Error) return { message: err.message || err.name, kind: err.name };
  return { message: String(err), kind: typeof err };
}

export function serve(options) {
  const opts = typeof options === "function" ? { project: options } : options;
  const { project, session, format = "canonical", name } = opts;
  if ((project === undefined) === (session === undefined)) {
    throw new TypeError("serve() takes a stateless project function or a session factory, not both");
  }
  if (!FORMATS.includes(format)) throw new RangeError(`unknown format ${format}: one of ${FORMATS.join(", ")}`);
  const input = opts.input ?? process.stdin;
  const write = opts.write ?? ((text) => {
    // synchronous, so answers keep their order and a crash loses none
    let buf = Buffer.from(text, "utf8");
    while (buf.length) buf = buf.subarray(writeSync(1, buf));
  });
  if (opts.write === undefined) {
    // a stray console.log must not reach the answers
    console.log = console.error;
    console.info = console.error;
    console.debug = console.error;
  }
  const sessions = new Map();
  const failed = new Map();
  const say = (obj) => write(JSON.stringify(obj) + "\n");

  async function answer(id, make) {
    try {
      const out = await make();
      say({ type: "messages", id, messages: Array.from(out) });
    } catch (err) {
      say({ type: "error", id, error: errorOf(err) });
    }
  }

  async function handle(msg) {
    const sid = msg.session;
    switch (msg.type) {
      case "hello":
        say({ type: "hello", protocol: PROTOCOL, format, shape: "openai-chat", mode: project ? "stateless" : "stateful", ...(name ? { name } : {}) });
        return;
      case "project":
        if (!project) break;
        return answer(msg.id, () => project(msg.entries.filter((e) => "record" in e).map((e) => e.record)));
      case "open":
        if (!session) break;
        failed.delete(sid);
        try {
          sessions.set(sid, await session());
        } catch (err) {
          failed.set(sid, err);
        }
        return;
      case "append":
        if (!session || failed.has(sid)) return;
        try {
          const s = sessions.get(sid);
          for (const entry of msg.entries) {
            if ("record" in entry) await s.record(entry.record, entry.line);
            else if (typeof s.moment === "function") await s.moment(entry.moment, entry.line);
          }
        } catch (err) {
          failed.set(sid, err);
        }
        return;
      case "request":
        if (!session) break;
        return answer(msg.id, () => {
          if (failed.has(sid)) throw failed.get(sid);
          return sessions.get(sid).request();
        });
      case "close":
        sessions.delete(sid);
        failed.delete(sid);
        return;
    }
    if ("id" in msg) say({ type: "error", id: msg.id, error: { message: `this child does not take ${JSON.stringify(msg.type)} messages`, kind: "protocol" } });
  }

  // one message at a time, in order, even when the projector is async
  let queue = Promise.resolve();
  const lines = createInterface({ input, crlfDelay: Infinity });
  lines.on("line", (line) => {
    if (!line.trim()) return;
    const msg = JSON.parse(line);
    queue = queue.then(() => handle(msg));
  });
  return new Promise((resolve) => lines.on("close", () => queue.then(resolve)));
}
