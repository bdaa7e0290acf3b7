"""This checkout's runstore against another's, case by case, timed in turns: what a
release costs the writes and pages of the one before.

Usage (from the repository root)::

    python -m bench.ab --against OTHER/src [--rounds 7] [--only sqlite|postgres]

``OTHER/src`` is another runstore's ``src`` directory (a ``git worktree`` of a release).
Each side gets a database of its own, seeded by its own runstore with the same rows (a
run of :data:`PAGE_ROWS` results) and, on Postgres, analyzed as autovacuum would. Then
every case is timed in rounds: in each round a fresh process of each side -- their order
swapped each round, so that whatever else the machine does falls on both -- makes the
case's calls after an untimed warm-up and reports the median time per call. Prints, per
case and database, both sides' median over the rounds and their ratio (this / other):
above 1, this checkout is slower; then both sides' best round and its ratio. On a
shared virtual machine a whole process now and then runs up to twice as slow as the next
one, the same code on the same database (every call it makes, CPU time too), so a
median over a few rounds can land on one side's slow processes; what else runs only
adds time, and the best round is the one least disturbed.

The calls use runstore's public API only, with the fields every release since 0.3 has --
the same inputs on both sides -- so a ratio is what a release's schema and code cost the
same work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from runstore import SqlRunsStorage

PAGE_ROWS = 100_000
"""Results of the run whose pages are read."""
PER_PAGE = 50
BATCH = 10_000
SINGLE_CALLS = 300
PAGE_CALLS = 200
BATCH_CALLS = 3
_T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _result(run_id: str, n: int, shift: int = 0) -> dict[str, Any]:
    varied = n + shift
    took = 250 + (varied * 37) % 1900
    started = _T0 + timedelta(milliseconds=10 * n)
    return {
        "run_id": run_id,
        "item_id": f"item-{n:07d}",
        "item_version": _T0,
        "input": {"question": n, "context": ["a", "b"]},
        "output": {"answer": varied},
        "expected_output": {"answer": n},
        "latency": took + 0.125,
        "error": "timeout" if varied % 50 == 49 else None,
        "started_at": started,
        "completed_at": started + timedelta(milliseconds=took),
        "retry_count": varied % 3,
        "scores": {"accuracy": (varied % 101) / 100},
    }


def _run(storage: SqlRunsStorage, items: int) -> str:
    run = storage.create_run(
        {
            "dataset_id": "ab",
            "dataset_version": _T0,
            "target_type": "agent",
            "target_id": "support-bot",
            "total_items": items,
        }
    )
    return run.id


def _analyze(url: str) -> None:
    """What autovacuum does after a load, on a server that has it on: without the
    tables' statistics, Postgres estimates a page of results at thousands of scores a
    result, past ``jit_above_cost``, and JIT-compiles the statement (about 0.2 s a call,
    on either release), which is then all a page's time measures."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # committed: statistics rolled back are lost
        connection.execute(sa.text("ANALYZE"))
    engine.dispose()


def _seed(url: str) -> dict[str, Any]:
    with SqlRunsStorage(url) as storage:
        storage.init()
        run_id = _run(storage, PAGE_ROWS)
        for start in range(0, PAGE_ROWS, BATCH):
            storage.add_results([_result(run_id, n) for n in range(start, start + BATCH)])
        deep = PAGE_ROWS * 9 // 10 // PER_PAGE
        if url.startswith("postgresql"):
            _analyze(url)
        page = storage.list_results(
            {"run_id": run_id, "pagination": {"page": deep - 1, "per_page": PER_PAGE}}
        )
        return {"run": run_id, "cursor": page.next_cursor}


def _per_call(calls: int, call: Callable[[int], object]) -> float:
    """The median seconds of ``calls`` calls of ``call(n)``, after a few untimed."""
    for n in range(3):
        call(-1 - n)
    times = []
    for n in range(calls):
        started = time.perf_counter()
        call(n)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _case(url: str, case: str, seeded: dict[str, Any]) -> float:
    with SqlRunsStorage(url) as storage:
        run_id = seeded["run"]
        if case == "add_result":
            fresh = _run(storage, SINGLE_CALLS)
            return _per_call(
                SINGLE_CALLS,
                lambda n: storage.add_result(_result(fresh, n + 10), update_counts=True),
            )
        if case in ("add_results", "replace"):
            fresh = _run(storage, BATCH)
            batch = [_result(fresh, n) for n in range(BATCH)]
            if case == "add_results":
                runs = iter([_run(storage, BATCH) for _ in range(BATCH_CALLS + 3)])

                def write(_: int) -> object:
                    target = next(runs)
                    return storage.add_results([{**row, "run_id": target} for row in batch])

                return _per_call(BATCH_CALLS, write)
            storage.add_results(batch)
            return _per_call(
                BATCH_CALLS, lambda _: storage.add_results(batch, on_conflict="replace")
            )
        if case == "first_page":
            listing = {"run_id": run_id, "pagination": {"per_page": PER_PAGE}}
            return _per_call(PAGE_CALLS, lambda _: storage.list_results(listing))
        if case == "deep_page":
            listing = {
                "run_id": run_id,
                "pagination": {"per_page": PER_PAGE},
                "cursor": seeded["cursor"],
            }
            return _per_call(PAGE_CALLS, lambda _: storage.list_results(listing))
        if case == "runs_page":
            return _per_call(PAGE_CALLS, lambda _: storage.list_runs({"dataset_id": "ab"}))
    raise ValueError(case)


CASES = {
    "add_result": "add_result, one counted result a call",
    "add_results": f"add_results, a batch of {BATCH:,}",
    "replace": f"add_results(on_conflict='replace'), {BATCH:,} results over stored ones",
    "first_page": f"list_results, the first page of {PER_PAGE} of {PAGE_ROWS:,}",
    "deep_page": f"list_results, a page at 90% depth by cursor, of {PAGE_ROWS:,}",
    "runs_page": "list_runs, the first page of the dataset's runs",
}


def _in(src: Path, *arguments: str) -> str:
    """This module run with ``src``'s runstore (the benchmark itself from here)."""
    root = Path(__file__).resolve().parent.parent
    environment = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{root}"}
    command = [sys.executable, "-m", "bench.ab", *arguments]
    done = subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def _log(message: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _compare(name: str, other: Path, rounds: int, postgres_url: str) -> list[str]:
    from bench.comparison_cost import _database

    sides = {"this": Path(__file__).resolve().parent.parent / "src", "other": other.resolve()}
    rows = []
    with _database(name, postgres_url) as this_url, _database(name, postgres_url) as other_url:
        urls = {"this": this_url, "other": other_url}
        seeded = {side: _in(sides[side], "--seed", urls[side]) for side in sides}
        _log(f"{name}: seeded")
        for case, label in CASES.items():
            times: dict[str, list[float]] = {"this": [], "other": []}
            for round_ in range(rounds):
                order = ["other", "this"] if round_ % 2 == 0 else ["this", "other"]
                for side in order:
                    reply = _in(sides[side], "--case", case, urls[side], "--seeded", seeded[side])
                    times[side].append(float(reply))
            this, that = statistics.median(times["this"]), statistics.median(times["other"])
            best_this, best_that = min(times["this"]), min(times["other"])
            _log(
                f"{name}: {case}: other {that * 1e3:.3f} ms, this {this * 1e3:.3f} ms; "
                f"best rounds {best_that * 1e3:.3f} ms, {best_this * 1e3:.3f} ms"
            )
            rows.append(
                f"| {label} | {name} | {that * 1e3:.3f} ms | {this * 1e3:.3f} ms "
                f"| {this / that:.2f} | {best_that * 1e3:.3f} ms | {best_this * 1e3:.3f} ms "
                f"| {best_this / best_that:.2f} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("--against", type=Path, help="another runstore's src directory")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "RUNSTORE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--seed", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--case", nargs=2, metavar=("CASE", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--seeded", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.seed:
        print(json.dumps(_seed(arguments.seed)))
        return
    if arguments.case:
        case, url = arguments.case
        print(f"{_case(url, case, json.loads(arguments.seeded)):.9f}")
        return
    if arguments.against is None:
        parser.error("--against OTHER/src is required")
    names = [arguments.only] if arguments.only else ["sqlite", "postgres"]
    rows = [
        row
        for name in names
        for row in _compare(name, arguments.against, arguments.rounds, arguments.postgres_url)
    ]
    print(
        "| case | database | other (median per call) | this | this / other "
        "| other (best round) | this | this / other |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
