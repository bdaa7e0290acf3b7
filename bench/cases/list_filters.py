"""list_results pages of 100 under a filter and an order: ``has_error=True``, and slowest
first (``order="slowest"``), on the large run.

For each, the first page and the page at 90% depth by cursor (keyset): the cursor page
must cost about what the first page costs, however deep it is. runstore's cursor is the
``next_cursor`` of the page before, read by offset (not timed); the raw side runs
runstore's statements with the key of that page's last row and parses the JSON columns.
A filtered page's total is counted (over the partial index of failed results); an
unfiltered one's is the count kept on the run row.
"""

from __future__ import annotations

from typing import Any

from bench.backends import Backend
from bench.data import decoded
from bench.data import timestamp
from bench.harness import check_params
from bench.harness import fixed
from bench.report import Target
from runstore import ListRunResultsInput
from runstore import ListRunResultsOutput
from runstore import RunResult
from runstore import SqlRunsStorage

PER_PAGE = 100
FAILED_EVERY = 50
"""One seeded result in 50 is an error (see :func:`bench.data.result_fields`)."""


def measure(b: Backend, run_id: str, rows: int) -> None:
    _one_list(b, run_id, rows // FAILED_EVERY, "has_error=True", {"has_error": True})
    _one_list(b, run_id, rows, "slowest first", {"order": "slowest"})


def _one_list(b: Backend, run_id: str, rows: int, title: str, filters: dict[str, Any]) -> None:
    pages = -(-rows // PER_PAGE)
    deep = rows * 9 // 10 // PER_PAGE
    first_label = f"list_results {title}, first page"
    deep_label = f"list_results {title}, page at 90% depth (cursor)"
    slowest = filters.get("order") == "slowest"
    # Filtered lists count their total; others read the run's result count.
    total_names = ("filter_run_id",) if "has_error" in filters else ("filter_run_id", "coalesce_1")

    def page(
        storage: SqlRunsStorage, number: int = 0, cursor: str | None = None
    ) -> ListRunResultsOutput:
        pagination = {"page": number, "per_page": PER_PAGE}
        return storage.list_results(
            ListRunResultsInput(run_id=run_id, pagination=pagination, cursor=cursor, **filters)
        )

    def params(after: RunResult | None = None) -> Any:
        values: dict[str, Any] = {"filter_run_id": run_id, "limit": PER_PAGE + 1, "offset": 0}
        values["coalesce_1"] = 0
        if after is None:
            return b.bind((*total_names, "filter_run_id", "limit", "offset"), values)
        key = after.latency if slowest else timestamp(b.dialect, after.started_at)
        values |= {"after_key": key, "after_id": after.id}
        names = (*total_names, "filter_run_id", "after_key", "after_id", "limit", "offset")
        return b.bind(names, values)

    def one(label: str, sql: str, args: Any, cursor: str | None = None, **row: Any) -> None:
        ours, theirs = page(b.storage, 0, cursor), decoded(b.read(sql, args))
        assert [r.id for r in ours.results] == [r[0] for r in theirs[:PER_PAGE]], label
        assert ours.pagination.total == theirs[0][-1] == rows, (label, ours.pagination.total)
        if slowest:
            latencies = [r.latency for r in ours.results]
            assert latencies == sorted(latencies, reverse=True), label
        else:
            assert all(r.error is not None for r in ours.results), label
        b.measure(
            label,
            fixed(lambda: page(b.storage, 0, cursor)),
            fixed(lambda: decoded(b.read(sql, args))),
            unit="ms",
            samples=b.settings.page_samples,
            **row,
        )

    select = b.reads(b.caught(first_label, page)[1])
    check_params(select, params())
    b.show_raw(select.sql)
    one(first_label, select.sql, params(), details=f"{rows:,} matching results, {pages} pages")

    before = page(b.storage, deep - 1)  # by offset, not timed: its next_cursor
    after, cursor = before.results[-1], before.next_cursor
    keyset = b.reads(b.caught(deep_label, lambda s: page(s, cursor=cursor))[1])
    check_params(keyset, params(after))
    b.show_raw(keyset.sql)
    one(
        deep_label,
        keyset.sql,
        params(after),
        cursor,
        target=Target("relative", 1.2, first_label),
        details=f"page {deep} of {pages}: runstore's cursor is page {deep - 1}'s next_cursor, "
        "the raw key its last row",
    )
