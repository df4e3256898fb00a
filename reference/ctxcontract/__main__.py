"""``python -m ctxcontract``: the same command as ``ctxcontract``."""

import sys

from ctxref.cli import main

sys.exit(main())
