"""The model: events, messages, the session tables, the contract and its checkers.

Read it in this order: ``events``, ``messages``, ``state``, ``ledger``,
``contract``, ``strategies``, ``checker``, ``shrink``, then the Z3 side
(``abstract``, ``z3model``, ``explore``, ``exhaustive``).  This package never
imports ``ctxref``: a checker takes the projector under test as a parameter.
Users import the public API from ``ctxcontract``.
"""
