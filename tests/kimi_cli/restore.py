"""Restore context.jsonl files through Kimi CLI's own loader; run by tests/test_kimi_cli_loads.py in its venv.

Reads ``{"files": [path, ...], "error": {"call_id": .., "message": ..}}`` on
standard input and writes one JSON document: for each file, whether
``kimi_cli.soul.context.Context.restore`` got through it (else the exception it
raised), and the restored history as Kimi CLI dumps it; and, for ``error``, the
line Kimi CLI itself writes for a tool error with that message and no output.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from loguru import logger

logger.remove()  # the loader's warnings for skipped lines are not wanted here

from kimi_cli.soul.context import Context  # noqa: E402
from kimi_cli.soul.message import tool_result_to_message  # noqa: E402
from kosong.tooling import ToolError, ToolResult  # noqa: E402


def restore(path: str) -> dict[str, object]:
    context = Context(Path(path))
    try:
        asyncio.run(context.restore())
    except BaseException as exc:  # what the runtime does not catch
        return {"ok": False, "error": type(exc).__name__, "history": None}
    history = [json.loads(m.model_dump_json(exclude_none=True)) for m in context.history]
    return {"ok": True, "error": None, "history": history, "system_prompt": context.system_prompt is not None, "checkpoints": context.n_checkpoints}


def main() -> None:
    job = json.load(sys.stdin)
    out: dict[str, object] = {"files": {p: restore(p) for p in job["files"]}}
    if job.get("error"):
        result = ToolResult(tool_call_id=job["error"]["call_id"], return_value=ToolError(message=job["error"]["message"], brief=""))
        out["error"] = tool_result_to_message(result).model_dump_json(exclude_none=True)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
