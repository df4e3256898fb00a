"""A child that misbehaves, one way per argument, once a session has a tool result.

``misbehave.py KIND PIDDIR``: every start writes its pid (and the pid of a
grandchild it keeps) into PIDDIR, so a test can tell that none is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from ctxcontract.adapter import serve
from ctxref.projector import project as reference
from ctxspec.events import events_from_dicts
from ctxspec.messages import messages_to_openai

KIND, PIDDIR = sys.argv[1], sys.argv[2]
os.makedirs(PIDDIR, exist_ok=True)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
with open(os.path.join(PIDDIR, f"{os.getpid()}"), "w") as handle:
    handle.write(f"{os.getpid()}\n{grandchild.pid}\n")

if KIND == "badhello":
    sys.stdin.readline()
    print('{"type": "hello", "protocol": 2, "format": "canonical", "shape": "openai-chat", "mode": "stateless"}', flush=True)
    time.sleep(3600)
if KIND == "nohello":
    time.sleep(3600)


def project(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages = messages_to_openai(reference(events_from_dicts(records)))
    if KIND == "chatty":
        print("projecting", len(records), "records")  # the kit sends it to stderr
    if KIND == "pid":  # the same in this process, another in the next: a summary may say more than the summary
        for m in messages:
            if m["role"] == "user" and m["content"].startswith("[summary of the earlier conversation]"):
                m["content"] += f" (written by process {os.getpid()})"
        return messages
    if any(r["type"] == "tool.result" for r in records):
        print("about to misbehave:", KIND)  # the kit sends it to stderr
        if KIND == "hang":
            time.sleep(3600)
        elif KIND == "crash":
            print("Traceback (most recent call last):\nRuntimeError: boom", file=sys.stderr, flush=True)
            os._exit(3)
        elif KIND == "garbage":
            os.write(1, b"Loading model weights... done\n")
        elif KIND == "wrongid":
            os.write(1, b'{"type": "messages", "id": 0, "messages": []}\n')
        elif KIND == "malformed":
            return [{"role": "tool", "content": "where is my id"}]
        elif KIND == "error":
            raise LookupError("no call for this result")
    return messages


serve(project, name=f"misbehaving ({KIND})")
