"""The reference implementation of the model: the projector, the runtimes' formats, repair, the CLI.

Users import the public API from ``ctxcontract``.
"""
