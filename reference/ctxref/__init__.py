"""The reference implementation of the model: the projector, the runtimes' formats, repair, the CLI.

Users import the public API from ``ctxcontract``.
"""

from typing import Final

#: The path that means standard input, or standard output, wherever a file is read or written.
STDIN: Final = "-"
