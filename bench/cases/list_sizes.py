"""The first list_results page of the large run against the first page of a small run.

A page's total is the result count kept on the run row, so a first page must not grow
with the run: the large run's at most 1.5x the small run's (runstore against runstore).
Both runs are loaded by the raw driver; each row also has its raw side, runstore's
statement run by the driver, JSON parsed.
"""

from __future__ import annotations

from typing import Any

from bench.backends import Backend
from bench.data import decoded
from bench.harness import check_params
from bench.harness import fixed
from bench.report import Target
from runstore import ListRunResultsInput
from runstore import ListRunResultsOutput
from runstore import SqlRunsStorage

PER_PAGE = 100


def label(rows: int) -> str:
    return f"list_results first page, run of {rows:,} results"


def measure(b: Backend, large_run: str, large_rows: int) -> None:
    small_rows = b.settings.small_rows
    small_run = b.seed(small_rows)
    _first_page(b, small_run, small_rows, None)
    name = f"runstore's first page of the run of {small_rows:,}"
    _first_page(b, large_run, large_rows, Target("relative", 1.5, label(small_rows), name))


def _first_page(b: Backend, run_id: str, rows: int, target: Target | None) -> None:
    def page(storage: SqlRunsStorage) -> ListRunResultsOutput:
        return storage.list_results(
            ListRunResultsInput(run_id=run_id, pagination={"per_page": PER_PAGE})
        )

    select = b.reads(b.caught(label(rows), page)[1])
    names = ("filter_run_id", "coalesce_1", "filter_run_id", "limit", "offset")
    args = b.bind(names, {"filter_run_id": run_id, "coalesce_1": 0, "limit": 101, "offset": 0})
    check_params(select, args)
    b.show_raw(select.sql)

    def raw() -> list[list[Any]]:
        return decoded(b.read(select.sql, args))

    ours, theirs = page(b.storage), raw()
    assert [r.id for r in ours.results] == [r[0] for r in theirs[:PER_PAGE]]
    assert ours.pagination.total == theirs[0][-1] == rows
    b.measure(
        label(rows),
        fixed(lambda: page(b.storage)),
        fixed(raw),
        unit="ms",
        samples=b.settings.page_samples,
        target=target,
    )
