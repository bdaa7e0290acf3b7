"""iter_results over a large run: wall time and peak RSS, in a child process per
measurement (see :mod:`bench.iterate`); the raw side runs runstore's batch statements."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from itertools import islice
from pathlib import Path
from typing import Any

from bench import iterate
from bench.backends import Backend
from bench.data import JSON_COLUMNS
from bench.data import RESULT_COLUMNS
from bench.data import check_read_back
from bench.data import result_fields
from bench.data import timestamp
from bench.harness import check_params
from bench.report import Measurement
from bench.report import Target
from runstore import RunResult
from runstore import SqlRunsStorage
from runstore.engine import DEFAULT_SQLITE_PRAGMAS

BATCH = 1000


def in_child(spec: Any, module: str = "bench.iterate") -> dict[str, float]:
    """Run ``module`` with ``spec`` in a fresh process; its report."""
    # Linux keeps the peak RSS of the memory a process had before exec() in its ru_maxrss,
    # and a child spawned from here starts on this process's memory (vfork). A shell in
    # between, which forks the measured process itself, gives it a clean slate.
    command = [sys.executable, "-m", module, json.dumps(spec)]
    done = subprocess.run(
        ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} child failed:\n{done.stderr}")
    report: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return report


def measure(b: Backend, run_id: str, rows: int) -> None:
    def first_batches(storage: SqlRunsStorage) -> list[RunResult]:
        return list(islice(storage.iter_results(run_id, batch_size=BATCH), BATCH + 1))

    results, caught = b.caught("iter_results (two batches)", first_batches)
    first, following = b.batch_reads(caught, 2)
    last = results[BATCH - 1]
    check_params(first, iterate.batch_params(b.dialect, run_id, None, BATCH))
    after = (timestamp(b.dialect, last.started_at), last.id)
    check_params(following, iterate.batch_params(b.dialect, run_id, after, BATCH))
    check_read_back(results[0], result_fields(run_id, int(results[0].item_id[5:])))
    b.show_raw(first.sql, following.sql)
    spec: iterate.Spec = {
        "side": "raw",
        "dialect": b.dialect,
        "target": b.raw_target,
        "run_id": run_id,
        "batch_size": BATCH,
        "sql": [first.sql, following.sql],
        "json_columns": list(JSON_COLUMNS),
        "started_column": RESULT_COLUMNS.index("startedAt"),
        "pragmas": [f"PRAGMA {name}={value}" for name, value in DEFAULT_SQLITE_PRAGMAS.items()],
    }
    sides: dict[str, iterate.Spec] = {"runstore": {**spec, "side": "runstore", "target": b.url}}
    sides["raw"] = spec
    in_child(spec)  # warms the page cache (not measured)
    reports: dict[str, list[dict[str, float]]] = {"runstore": [], "raw": []}
    for _ in range(b.settings.iteration_repeats):
        for side, into in reports.items():
            into.append(in_child(sides[side]))
            assert into[-1]["rows"] == rows, (side, into[-1])

    def median(side: str, key: str) -> float:
        return statistics.median(report[key] for report in reports[side])

    label = f"iter_results, {rows:,} rows"
    before = {side: median(side, "baseline_rss") / 2**20 for side in reports}
    runs = f"{b.settings.iteration_repeats} run(s) per side, each in a fresh process"
    times = (median("runstore", "seconds"), median("raw", "seconds"))
    b.add(
        Measurement(
            f"{label}: wall time",
            b.label,
            "s",
            *times,
            Target("ratio", 1.3),
            f"{runs}; batches of {BATCH}; the raw side decodes the JSON columns",
        )
    )
    memory = (median("runstore", "peak_rss"), median("raw", "peak_rss"))
    detail = f"before iterating: runstore {before['runstore']:.0f} MB, raw {before['raw']:.0f} MB"
    b.add(Measurement(f"{label}: peak RSS", b.label, "MB", *memory, Target("below", 150), detail))
