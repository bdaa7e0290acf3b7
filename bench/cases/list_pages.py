"""list_results pages of 100 from one large run.

The first page, the pages at 90% depth and at the end by ``pagination.page`` (OFFSET), and
the page at 90% depth by cursor (keyset). runstore reads a page and its total in one
statement; the raw side runs that statement and parses the JSON columns (``json.loads``).
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
FIRST = f"list_results first page ({PER_PAGE} rows)"
DEEP = "list_results page at 90% depth (offset)"
LAST = "list_results last page (offset)"
CURSOR = "list_results page at 90% depth (cursor)"
KEY = ("after_key", "after_id")
TOTAL = ("filter_run_id", "coalesce_1")
"""The total: the run's result count, or 0 for an unknown run."""


def measure(b: Backend, run_id: str, rows: int) -> None:
    pages, deep = rows // PER_PAGE, rows * 9 // 10 // PER_PAGE

    def page(
        storage: SqlRunsStorage, number: int = 0, cursor: str | None = None
    ) -> ListRunResultsOutput:
        pagination = {"page": number, "per_page": PER_PAGE}
        return storage.list_results(
            ListRunResultsInput(run_id=run_id, pagination=pagination, cursor=cursor)
        )

    def params(offset: int, after: RunResult | None = None) -> Any:
        values: dict[str, Any] = {"filter_run_id": run_id, "limit": PER_PAGE + 1, "offset": offset}
        values["coalesce_1"] = 0
        if after is None:
            return b.bind((*TOTAL, "filter_run_id", "limit", "offset"), values)
        values |= {"after_key": timestamp(b.dialect, after.started_at), "after_id": after.id}
        return b.bind((*TOTAL, "filter_run_id", *KEY, "limit", "offset"), values)

    def one(
        label: str, sql: str, args: Any, number: int = 0, cursor: str | None = None, **row: Any
    ) -> None:
        ours, theirs = page(b.storage, number, cursor), decoded(b.read(sql, args))
        assert [r.id for r in ours.results] == [r[0] for r in theirs[:PER_PAGE]], label
        assert ours.pagination.total == theirs[0][-1] == rows, label
        if label in (DEEP, LAST):  # slow pages: fewer samples
            row = {"samples": b.settings.deep_samples, "warmup": 2, "rounds": 2}
            row["details"] = f"page {number} of {pages}"
        b.measure(
            label,
            fixed(lambda: page(b.storage, number, cursor)),
            fixed(lambda: decoded(b.read(sql, args))),
            unit="ms",
            **{"samples": b.settings.page_samples} | row,
        )

    select = b.reads(b.caught("list_results page", page)[1])
    check_params(select, params(0))
    b.show_raw(select.sql)
    one(FIRST, select.sql, params(0), target=Target("ratio", 1.3 if b.postgres else 2))
    # A page after an offset reads its rows through a subquery: a statement of its own.
    skipping = b.reads(b.caught("list_results page by offset", lambda s: page(s, deep))[1])
    check_params(skipping, params(deep * PER_PAGE))
    b.show_raw(skipping.sql)
    one(DEEP, skipping.sql, params(deep * PER_PAGE), deep)
    one(LAST, skipping.sql, params((pages - 1) * PER_PAGE), pages - 1)

    before = page(b.storage, deep - 1)
    after, cursor = before.results[-1], before.next_cursor
    keyset = b.reads(b.caught("list_results page by cursor", lambda s: page(s, cursor=cursor))[1])
    check_params(keyset, params(0, after))
    b.show_raw(keyset.sql)
    one(
        CURSOR,
        keyset.sql,
        params(0, after),
        cursor=cursor,
        target=Target("relative", 1.2, FIRST),
        details=f"runstore's cursor is page {deep - 1}'s next_cursor, the raw key its last row",
    )
