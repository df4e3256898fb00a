// The JavaScript reference projector with one bug switched on: each mutant is
// a bug class from reference/ctxref/mutants.py, written in this port's terms.
// The checker must find every one.
//
//   ctxcontract verify --projector-cmd node examples/adapters/js/mutants.mjs steer_inside_block
//
// `node mutants.mjs --list` prints the names and what each breaks.

import { serve } from "../../../adapters/js/ctxcontract-adapter.mjs";
import { Item, ReferenceSession, STREAM_CUT, assistant, tool } from "./reference.mjs";

/** Kimi Code 0.20.1 (TodoList:3): a result logged after its step ended is never sent. */
class DropLastStepResult extends ReferenceSession {
  constructor() {
    super();
    this.stepOver = false;
    this.lost = new Set(); // calls answered after their step ended: their result is not sent
  }

  record(record, line) {
    if (record.type === "step.end") this.stepOver = true;
    else if (record.type === "step.begin") this.stepOver = false;
    else if (record.type === "tool.result" && this.stepOver) {
      const call = this.route(record.call_id);
      if (call?.status === "open") this.lost.add(call);
    }
    super.record(record, line);
  }

  exchange(item, out) {
    out.push(assistant(item.text, item.calls));
    for (const call of item.calls) if (!this.lost.has(call)) out.push(this.toolMessage(call));
  }
}

/** User input typed while calls run lands between the calls and their results. */
class SteerInsideBlock extends ReferenceSession {
  render(items, out) {
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item.kind !== "exchange") {
        this.renderItem(item, out);
        continue;
      }
      const [head, ...results] = this.exchangeMessages(item);
      out.push(head);
      // the input that waited behind this exchange goes in before its results
      while (i + 1 < items.length && items[i + 1].heldBy === item) this.renderItem(items[++i], out);
      out.push(...results);
    }
  }

  exchangeMessages(item) {
    const own = [];
    this.exchange(item, own);
    return own;
  }
}

/** After undo or compaction, a result for a trimmed call is sent as a tool message. */
class OrphanKeptAfterTrim extends ReferenceSession {
  result(record, line) {
    const call = this.route(record.call_id);
    if (call !== null && (call.status === "gone" || call.status === "summarized")) {
      this.arrive(new Item("orphan", record.output ?? "", [], call), line);
      return;
    }
    super.result(record, line);
  }

  renderItem(item, out) {
    if (item.kind === "orphan") out.push(tool(item.noteOf, item.text));
    else super.renderItem(item, out);
  }
}

/** A call cut mid-arguments by a broken stream is sent anyway. */
class HalfCallSent extends ReferenceSession {
  declared(index, count, complete) {
    return complete ? super.declared(index, count, complete) : ["closed", STREAM_CUT];
  }
}

/** A call id the model reuses is sent twice. */
class DuplicateIdKept extends ReferenceSession {
  freshId(logId) {
    return logId;
  }
}

const MUTANTS = {
  drop_last_step_result: DropLastStepResult,
  steer_inside_block: SteerInsideBlock,
  orphan_result_kept_after_trim: OrphanKeptAfterTrim,
  half_call_sent: HalfCallSent,
  duplicate_id_kept: DuplicateIdKept,
};

/** What each mutant breaks (its class comment, for `--list`). */
const BREAKS = {
  drop_last_step_result: "a result logged after its step ended is never sent",
  steer_inside_block: "user input typed while calls run lands between the calls and their results",
  orphan_result_kept_after_trim: "after undo or compaction, a result for a trimmed call is sent as a tool message",
  half_call_sent: "a call cut mid-arguments by a broken stream is sent anyway",
  duplicate_id_kept: "a call id the model reuses is sent twice",
};

const name = process.argv[2];
if (name === "--list") {
  for (const [n, what] of Object.entries(BREAKS)) console.log(`${n}: ${what}`);
  process.exit(0);
}
if (!Object.hasOwn(MUTANTS, name ?? "")) {
  const which = name === undefined ? "usage: node mutants.mjs MUTANT_NAME" : `unknown mutant ${JSON.stringify(name)}`;
  process.stderr.write(`${which}: one of ${Object.keys(MUTANTS).join(", ")}\n`);
  process.exit(2);
}
const Mutant = MUTANTS[name];
serve({ format: "canonical", name: `js-mutant ${name}`, session: () => new Mutant() });
