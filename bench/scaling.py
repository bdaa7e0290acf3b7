"""Throughput with many processes: results written per second directly and through
PgBouncer, and reads per second with and without a read replica.

Usage (from the repository root; needs PostgreSQL's server programs and PgBouncer)::

    python -m bench.scaling [--seconds 5] [--processes 1,4,16]

It starts a throwaway primary with a streaming replica and a stock PgBouncer in transaction
mode in front of the primary (:mod:`runstore.testing.servers`), so the figures are
comparable from one machine to another only as far as the machines are. Each figure is one
timed window of ``--seconds`` in which every process works flat out, after each process
has connected and made a few calls; it prints a markdown table.

- **writes**: every process adds counted results (``add_result(..., update_counts=True)``)
  to one shared run -- the workers of one evaluation run -- each on its own storage with
  one connection.
- **reads**: every process alternates ``get_run_by_id`` and the first page of 50 of a
  run of 1,000 results, on a storage of its own, with or without ``read_replicas``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

from runstore import ListRunResultsInput
from runstore import SqlRunsStorage
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input
from runstore.testing.servers import pgbouncer
from runstore.testing.servers import postgres_cluster

WARMUP = 5
"""Calls each process makes before the window opens."""


def _work(
    kind: str,
    url: str,
    replicas: list[str],
    run_id: str,
    number: int,
    ready: Any,
    start: Any,
    seconds: float,
    done: Any,
) -> None:
    with SqlRunsStorage(url, pool_size=1, read_replicas=replicas) as storage:
        items = (f"{number}-{n}" for n in range(10**9))
        page = ListRunResultsInput(run_id=run_id, pagination={"per_page": 50})
        calls: list[Callable[[], object]]
        if kind == "writes":

            def add() -> object:
                return storage.add_result(result_input(run_id, next(items)), update_counts=True)

            calls = [add]
        else:
            calls = [lambda: storage.get_run_by_id(run_id), lambda: storage.list_results(page)]
        for n in range(WARMUP):
            calls[n % len(calls)]()
        ready.release()
        start.wait()
        made, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            calls[made % len(calls)]()
            made += 1
        done.put(made)


def throughput(
    kind: str, url: str, replicas: list[str], run_id: str, processes: int, seconds: float
) -> float:
    """Calls per second of ``processes`` processes in one window of ``seconds``."""
    context = multiprocessing.get_context("spawn")
    ready, start, done = context.Semaphore(0), context.Event(), context.Queue()
    workers = [
        context.Process(
            target=_work,
            args=(kind, url, replicas, run_id, number, ready, start, seconds, done),
        )
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        if not ready.acquire(timeout=120):
            raise TimeoutError("a worker did not start")
    start.set()
    total = sum(int(done.get(timeout=seconds + 120)) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        if worker.exitcode != 0:
            raise RuntimeError(f"a worker failed (exit code {worker.exitcode})")
    return total / seconds


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", default="1,4,16")
    arguments = parser.parse_args()
    counts = [int(number) for number in arguments.processes.split(",")]
    rows: list[tuple[str, int, float]] = []
    with postgres_cluster() as cluster, pgbouncer(cluster.primary_url) as pooler:
        with SqlRunsStorage(cluster.primary_url) as storage:
            storage.init()
            read_run = storage.create_run(run_input(total_items=1000))
            storage.add_results([result_input(read_run, n) for n in range(1000)])
        cluster.wait_for_replica()
        for processes in counts:
            for path, url in (("direct", cluster.primary_url), ("PgBouncer", pooler.url)):
                with SqlRunsStorage(cluster.primary_url) as storage:
                    run_id = storage.create_run(run_input(total_items=10**6)).id
                rate = throughput("writes", url, [], run_id, processes, arguments.seconds)
                rows.append((f"results written per second, {path}", processes, rate))
                print(f"writes {path} x{processes}: {rate:,.0f}/s", flush=True)
            for label, replicas in (
                ("primary only", []),
                ("with a replica", [cluster.replica_url]),
            ):
                rate = throughput(
                    "reads",
                    cluster.primary_url,
                    replicas,
                    read_run.id,
                    processes,
                    arguments.seconds,
                )
                rows.append((f"reads per second, {label}", processes, rate))
                print(f"reads {label} x{processes}: {rate:,.0f}/s", flush=True)
    print("\n| measure | processes | per second |\n|---|--:|--:|")
    for measure, processes, rate in sorted(rows, key=lambda row: (row[0], row[1])):
        print(f"| {measure} | {processes} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
