"""The catalogue mutants as JSON projectors, for ``ctxcontract verify``.

Each name is one bundled mutant (``ctxcontract counterexample --list`` says
what each breaks), in the shape ``verify --projector`` takes::

    ctxcontract verify --projector examples/mutants.py:steer_inside_block --keep-going 5
"""

from __future__ import annotations

from collections.abc import Callable

from ctxref.mutants import MUTANTS
from ctxspec.events import events_from_dicts
from ctxspec.messages import messages_to_openai

JsonProjector = Callable[[list[dict[str, object]]], list[dict[str, object]]]


def _json(name: str) -> JsonProjector:
    mutant = MUTANTS[name]

    def project(events: list[dict[str, object]]) -> list[dict[str, object]]:
        return messages_to_openai(mutant.project(events_from_dicts(events)))

    project.__name__ = name
    return project


drop_last_step_result = _json("drop_last_step_result")
steer_inside_block = _json("steer_inside_block")
no_closure_on_resume = _json("no_closure_on_resume")
prompt_deferred_forever = _json("prompt_deferred_forever")
compaction_splits_exchange = _json("compaction_splits_exchange")
late_result_after_compaction_dropped = _json("late_result_after_compaction_dropped")
first_parallel_result_only_on_resume = _json("first_parallel_result_only_on_resume")
duplicate_id_kept = _json("duplicate_id_kept")
orphan_result_kept_after_trim = _json("orphan_result_kept_after_trim")
nondeterministic_synthetic_ids = _json("nondeterministic_synthetic_ids")
late_result_moved_up = _json("late_result_moved_up")
half_call_sent = _json("half_call_sent")
