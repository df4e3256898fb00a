"""The Dask backend (``--scheduler``, ``--dask-workers``): the same report as one process, on a LocalCluster of 2 workers.

The cluster is ``processes=False``: its two workers (one thread each) live in
this process, so it starts in well under a second and the whole module runs
in a few seconds; worker processes would cost each test a start-up of
seconds and add nothing this module asserts.  What a separate process adds,
that every task and result crosses a pickle, is asserted directly
(:func:`test_tasks_and_results_pickle`); the benchmark runs worker processes.
The CLI is pointed at the cluster with ``--scheduler`` (its ``inproc://``
address is reachable from this process), so the commands' Dask path is the
one tested.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ctxref import distributed, scan
from ctxref.cli import main
from test_scan import Home, home  # noqa: F401 -- the fixture: every runtime's layout under a fake $HOME

T = TypeVar("T")
R = TypeVar("R")

pytest.importorskip("distributed")  # the dev extra installs it; without it, nothing here applies

if TYPE_CHECKING:
    from distributed import Client

    from ctxspec.events import Event
    from ctxspec.messages import Message

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with distributed.cluster(workers=2, processes=False) as c:
        assert distributed.threads(c) == 2
        yield c


def run_json(*argv: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = main([*argv, "--json"], out=out)
    doc: dict[str, Any] = json.loads(out.getvalue())
    return code, doc


def test_scan_on_the_cluster_is_the_single_process_scan(home: Home, client: Client) -> None:
    code_one, one = run_json("scan", "--workers", "1")
    code_dask, many = run_json("scan", "--scheduler", distributed.address(client))
    assert code_one == code_dask == 1
    assert many["files"] == one["files"] and many["counts"] == one["counts"] and many["skipped"] == one["skipped"]
    assert many["workers"] == 2
    _, tasks = scan.tasks_for([])
    assert distributed.judge_all(client, tasks) == scan.judge_all(tasks)  # the library call, results as objects


def test_explore_on_the_cluster_is_the_single_process_explore(client: Client) -> None:
    # length 6: the shortest run that is handed out in subtrees (shorter ones stay in the process)
    code_one, one = run_json("explore", "--length", "6", "--variants")
    code_dask, many = run_json("explore", "--length", "6", "--variants", "--scheduler", distributed.address(client))
    assert code_one == code_dask == 0
    del one["seconds"], many["seconds"]
    assert many == one and one["checked"] > 0


def test_explore_keeps_the_same_failures_in_the_same_order(client: Client) -> None:
    """A broken projector: the failures kept (the first ``keep``) and the count are the single-process run's."""
    from ctxspec.exhaustive import explore_contract

    handed: list[object] = []

    def on_cluster(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        tasks = list(items)
        handed.extend(tasks)
        return distributed.OnCluster(client)(fn, tasks)

    one = explore_contract(6, drop_the_last_message, keep=5)
    many = explore_contract(6, drop_the_last_message, keep=5, map_chunks=on_cluster)
    assert one.failed > 0 and len(handed) == 365  # every session of 3 events roots a task
    assert (many.sessions, many.concretized, many.checked, many.failed) == (one.sessions, one.concretized, one.checked, one.failed)
    assert many.failures == one.failures


def drop_the_last_message(log: Iterable[Event]) -> list[Message]:
    from ctxref.projector import project

    return project(log)[:-1]


def test_tasks_and_results_pickle(home: Home) -> None:
    """What a worker process would receive and send back: a chunk of files and its verdicts, a subtree of sessions and its tally."""
    from ctxspec.abstract import TABLES
    from ctxspec.contract import REFERENCE
    from ctxspec.exhaustive import SPLIT_AT, _SubtreeTask, _walk_subtree
    from ctxspec.treewise import CONCRETIZE, jobs

    _, tasks = scan.tasks_for([])
    assert pickle.loads(pickle.dumps(distributed.judge_chunk(tasks))) == distributed.judge_chunk(tasks)
    job = jobs(5, 2, SPLIT_AT, TABLES)[-1]
    task = _SubtreeTask(job, 5, 2, drop_the_last_message, None, CONCRETIZE, TABLES, REFERENCE, 10)
    done = _walk_subtree(task)
    assert done.failed > 0
    assert _walk_subtree(pickle.loads(pickle.dumps(task))) == done and pickle.loads(pickle.dumps(done)) == done


def test_ordered_map_keeps_the_order_and_raises_a_tasks_error(client: Client) -> None:
    assert list(distributed.ordered_map(client, _square, range(50))) == [i * i for i in range(50)]  # more than the window
    with pytest.raises(ZeroDivisionError):
        list(distributed.ordered_map(client, _inverse, [1, 2, 0, 4]))


def _square(i: int) -> int:
    return i * i


def _inverse(i: int) -> float:
    return 1 / i


def test_without_the_extra_the_options_fail_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # ``import distributed`` raises ImportError
    for argv in (["scan", str(tmp_path), "--dask-workers", "2"], ["explore", "--length", "1", "--scheduler", "tcp://127.0.0.1:8786"]):
        assert main(argv, out=io.StringIO()) == 2
        err = capsys.readouterr().err
        assert err == "ctxcontract: error: the Dask backend needs the extra: pip install 'ctxcontract[dask]'\n", argv


def test_workers_and_a_dask_option_are_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path), "--workers", "2", "--dask-workers", "2"], out=io.StringIO()) == 2
    assert "--workers counts processes on this machine" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not both
        main(["explore", "--length", "1", "--dask-workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], out=io.StringIO())
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_cli_does_not_import_dask_at_start_up() -> None:
    probe = "import sys, ctxcontract, ctxref.cli, ctxref.scan; print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, cwd=ROOT, timeout=60)
    assert proc.stdout.decode().strip() == "[]", proc.stderr
