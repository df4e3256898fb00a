"""ctxcontract: the context contract of LLM agent runtimes.

The public API, in one place.  Everything else (``ctxspec``, the model;
``ctxref``, the reference implementation) is behind it and may change.

Reading and checking a runtime's session file::

    >>> import ctxcontract
    >>> verdict = ctxcontract.check_file("examples/kimi-wire/todolist3.jsonl")  # doctest: +SKIP
    >>> [h.rule for h in verdict.hazards]                                         # doctest: +SKIP
    ['C5', ...]

Would a provider take a request, and with what error if not::

    >>> request = {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "x", "content": "?"}]}
    >>> ctxcontract.PROVIDERS["openai"].error(request).error
    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."

Projecting a canonical log, and checking a projector of your own::

    >>> log = ctxcontract.parse_log('{"type": "session.meta"}\\n')
    >>> ctxcontract.project(log)
    []
    >>> ctxcontract.check_session(log, ctxcontract.project)
    []

Every name is imported on first use: ``import ctxcontract`` costs nothing,
and only the strategies and the checker (``session_logs``,
``contract_machine``, ``find_counterexample``, ...) import Hypothesis, only
``prove_report`` imports Z3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported on first use at run time: see __getattr__
    from ctxref.formats import Imported, detect_format, load
    from ctxref.formats.messages import LoadedMessages, check_messages_file, load_messages
    from ctxref.formats.repair import Change, Repaired, RepairReport, repair_stream, repair_text
    from ctxref.formats.verdict import Hazard, Verdict, check_file
    from ctxref.projector import Projector, project, project_json
    from ctxref.render import render
    from ctxspec.providers import PROVIDERS, Provider, ProviderRule, Rejection
    from ctxspec.checker import contract_machine, find_counterexample, register_profiles, run_machine, session_settings
    from ctxspec.contract import RULES, Rule, Violation, check_messages, check_projection, check_session, json_projector
    from ctxspec.errors import ContractViolation, CtxError, InvalidEvent, InvalidLog
    from ctxspec.events import Event, dumps_log, event_from_dict, event_to_dict, load_log, parse_log
    from ctxspec.messages import Message, messages_from_openai, messages_to_openai
    from ctxspec.strategies import session_logs
    from ctxspec.z3model import prove_report

__version__ = "0.2.0"

__all__ = [
    "__version__",
    # reading and checking files
    "check_file",
    "Verdict",
    "Hazard",
    "check_messages_file",
    "load_messages",
    "LoadedMessages",
    "detect_format",
    "load",
    "Imported",
    # repairing them
    "repair_stream",
    "RepairReport",
    "repair_text",
    "Repaired",
    "Change",
    # the canonical log and the messages
    "Event",
    "parse_log",
    "load_log",
    "dumps_log",
    "event_from_dict",
    "event_to_dict",
    "Message",
    "messages_from_openai",
    "messages_to_openai",
    # projecting
    "project",
    "Projector",
    "project_json",
    # the contract
    "RULES",
    "Rule",
    "Violation",
    "check_session",
    "check_projection",
    "check_messages",
    # providers: each one's own 400 rules, and the reference's request body for it
    "PROVIDERS",
    "Provider",
    "ProviderRule",
    "Rejection",
    "render",
    # the strategies and the checker (Hypothesis), the proof (Z3)
    "session_logs",
    "session_settings",
    "contract_machine",
    "run_machine",
    "find_counterexample",
    "json_projector",
    "register_profiles",
    "prove_report",
    # errors
    "CtxError",
    "InvalidLog",
    "InvalidEvent",
    "ContractViolation",
]

#: Where each public name lives; it is imported on first use, so that
#: ``import ctxcontract`` costs nothing and a command imports only what it runs.
_HOME = {
    **dict.fromkeys(("Imported", "detect_format", "load"), "ctxref.formats"),
    **dict.fromkeys(("LoadedMessages", "check_messages_file", "load_messages"), "ctxref.formats.messages"),
    **dict.fromkeys(("Change", "Repaired", "RepairReport", "repair_stream", "repair_text"), "ctxref.formats.repair"),
    **dict.fromkeys(("Hazard", "Verdict", "check_file"), "ctxref.formats.verdict"),
    **dict.fromkeys(("Projector", "project", "project_json"), "ctxref.projector"),
    "render": "ctxref.render",
    **dict.fromkeys(("PROVIDERS", "Provider", "ProviderRule", "Rejection"), "ctxspec.providers"),
    **dict.fromkeys(("contract_machine", "find_counterexample", "register_profiles", "run_machine", "session_settings"), "ctxspec.checker"),
    **dict.fromkeys(("RULES", "Rule", "Violation", "check_messages", "check_projection", "check_session", "json_projector"), "ctxspec.contract"),
    **dict.fromkeys(("ContractViolation", "CtxError", "InvalidEvent", "InvalidLog"), "ctxspec.errors"),
    **dict.fromkeys(("Event", "dumps_log", "event_from_dict", "event_to_dict", "load_log", "parse_log"), "ctxspec.events"),
    **dict.fromkeys(("Message", "messages_from_openai", "messages_to_openai"), "ctxspec.messages"),
    "session_logs": "ctxspec.strategies",
    "prove_report": "ctxspec.z3model",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'ctxcontract' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
