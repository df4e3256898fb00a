"""Run a command with its standard error on a pseudo-terminal, as a person at a terminal sees it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def on_a_terminal(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 120) -> tuple[int, str, str]:
    """``(exit code, what went to the terminal, standard output)``: stderr is a terminal, stdout a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=slave, env=dict(env))
    os.close(slave)
    screen = b""
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    out, _ = proc.communicate(timeout=timeout)
    os.close(master)
    return proc.returncode, screen.decode(errors="replace"), out.decode()
