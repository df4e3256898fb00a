"""The Dask backend of ``scan`` and ``explore``: the same work, split into tasks on a ``dask.distributed`` cluster.

What this module owns: connecting to a running scheduler (``--scheduler
ADDRESS``) or starting a ``LocalCluster`` (``--dask-workers N``), an ordered
map over the cluster with a bounded number of tasks in flight
(:func:`ordered_map`), and the scan's tasks (chunks of files,
:func:`judge_all`).  The exhaustive run's tasks are the ones its process
pool already uses (``ctxspec.exhaustive``, through its ``map_chunks``).

What it must not know: how a file or a session is judged.  The results are
those of the single-process run, in the same order.

Dask is an optional extra (``pip install 'ctxcontract[dask]'``): nothing
here imports it before a cluster is asked for, so ``import ctxcontract``
and the CLI's start-up do not pay for it, and without it the options fail
with one line saying what to install.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from distributed import Client, Future

    from .scan import Result, Skipped, Task

T = TypeVar("T")
R = TypeVar("R")

#: What a user without the extra is told.
MISSING: Final = "the Dask backend needs the extra: pip install 'ctxcontract[dask]'"
#: Seconds to wait for a scheduler named by ``--scheduler``.
CONNECT_TIMEOUT: Final = 10
#: Tasks in flight per worker thread: enough to hide the round trip (tens of ms on a loaded machine), few enough that memory stays flat.
IN_FLIGHT: Final = 16


class BackendError(Exception):
    """The Dask backend cannot start: the extra is missing, or the scheduler cannot be reached (one line)."""


@contextmanager
def cluster(scheduler: str | None = None, workers: int | None = None, *, processes: bool = True) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler``, or of a new ``LocalCluster`` of ``workers`` workers.

    A local worker is one process with one thread (``processes=True``): the
    judging is pure Python and holds the GIL, so threads would not run it in
    parallel.  ``processes=False`` puts the workers in this process (quick to
    start; what the tests use).
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BackendError(MISSING) from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise BackendError(f"cannot reach the Dask scheduler at {scheduler}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        with client:
            yield client
        return
    local = LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=processes, dashboard_address=None)
    with local, Client(local, set_as_default=False) as client:
        yield client


def threads(client: Client) -> int:
    """Worker threads of the cluster (at least 1: a scheduler without workers yet still takes tasks)."""
    return max(1, int(sum(client.nthreads().values())))


def address(client: Client) -> str:
    """The scheduler's address (a ``LocalCluster``'s too), for the summary line."""
    return str(client.scheduler_info().get("address", "?"))


def ordered_map(client: Client, fn: Callable[[T], R], items: Iterable[T], /) -> Iterator[R]:
    """``fn`` on each item as a Dask task; the results in the order of ``items``, like ``Pool.imap``.

    At most :data:`IN_FLIGHT` tasks per worker thread are in flight, so a
    long (or lazy) ``items`` is never all in memory; they are submitted in
    batches (one ``Client.map`` when half the window has come back), since
    one message per task would cost more than a small task.  A task's
    exception is raised here; the tasks still in flight are then cancelled.
    """
    window = IN_FLIGHT * threads(client)
    rest = iter(items)
    pending: deque[Future[R]] = deque()

    def refill() -> None:
        batch = list(islice(rest, window - len(pending)))
        if batch:
            pending.extend(client.map(fn, batch, pure=False))

    try:
        refill()
        while pending:
            result = pending.popleft().result()
            if len(pending) <= window // 2:
                refill()
            yield result
    finally:
        if pending:
            client.cancel(list(pending))


class OnCluster:
    """:func:`ordered_map` bound to a client: the ``map_chunks`` of ``ctxspec.exhaustive.explore_contract``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __call__(self, fn: Callable[[T], R], items: Iterable[T], /) -> Iterator[R]:
        return ordered_map(self.client, fn, items)


def judge_chunk(tasks: Sequence[Task]) -> list[Result | Skipped]:
    """One Dask task of ``scan``: the verdicts on a few files, in their order."""
    from .scan import judge

    return [judge(*task) for task in tasks]


def chunk_size(files: int, threads: int) -> int:
    """Files per task: about eight tasks per worker thread, at most 64 files each (as the process pool has it)."""
    return max(1, min(64, files // (threads * 8)))


def judge_all(client: Client, tasks: Sequence[Task], *, progress: Callable[[int, int], None] | None = None) -> list[Result | Skipped]:
    """Judge every file on the cluster; the same list as ``scan.judge_all`` gives, in the order of ``tasks``."""
    total = len(tasks)
    size = chunk_size(total, threads(client))
    chunks = [tasks[i : i + size] for i in range(0, total, size)]
    results: list[Result | Skipped] = []
    if progress is not None:
        progress(0, total)
    for done in ordered_map(client, judge_chunk, chunks):
        results += done
        if progress is not None:
            progress(len(results), total)
    return results
