"""Pages of a list: how many rows to read for one, and what the output says about it.

Every adapter reads one row more than a page shows, to know whether more follow; the
cursor to the next page points after the last row shown.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic
from typing import TypeVar

from runstore.models import StoragePagination
from runstore.models import StoragePaginationResult

__all__ = ["Page", "fetch_limit", "make_page"]

_Row = TypeVar("_Row")


def fetch_limit(pagination: StoragePagination) -> int | None:
    """How many rows to read for a page: one more than shown (None: every row)."""
    return None if pagination.per_page is False else pagination.per_page + 1


@dataclass(frozen=True, slots=True)
class Page(Generic[_Row]):
    """The rows a page shows, where it sits, and the cursor to the next one."""

    rows: Sequence[_Row]
    pagination: StoragePaginationResult
    next_cursor: str | None


def make_page(
    fetched: Sequence[_Row],
    total: int,
    pagination: StoragePagination,
    cursor_after: Callable[[_Row], str],
) -> Page[_Row]:
    """The page from what :func:`fetch_limit` read, with ``total`` matching rows."""
    if pagination.per_page is False:
        rows, has_more = fetched, False
    else:
        rows, has_more = fetched[: pagination.per_page], len(fetched) > pagination.per_page
    result = StoragePaginationResult(
        total=total, page=pagination.page, per_page=pagination.per_page, has_more=has_more
    )
    return Page(rows, result, cursor_after(rows[-1]) if has_more else None)
