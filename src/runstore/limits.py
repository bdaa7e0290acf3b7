"""The limits every runstore backend enforces, before anything reaches the database.

One table of numbers, so SQLite, Postgres and memory refuse exactly the same input (the
README lists them too). Each is chosen to stay clear of a database's own limit:

* Ids (run, result, dataset, target and item ids) are indexed; Postgres refuses an index
  entry over about 2,700 bytes, and the unique (run, item) index holds two ids. 256
  characters of up to 4 UTF-8 bytes each keep every index entry under that.
* JSON values nest at most 256 levels: deep enough for any real payload, shallow enough
  that reading a value back never comes near Python's recursion limit.
* Integers inside JSON have at most 4,000 digits: Python refuses to print much larger ones.
* Counts (``total_items``, ``succeeded_count``, ``failed_count``, ``retry_count``) are
  32-bit, as Postgres' ``integer`` column is.
* A page or a streamed batch holds at most 100,000 rows; ``per_page=False`` reads all.
* A run's name has at most 256 characters; a run has at most 64 tags of 1 to 64
  characters each: tags are indexed one row each, and listed with the run.
* A histogram has at most 1,000 bins: finer than any chart draws, and each bin a row of
  the database's answer.
"""

from __future__ import annotations

__all__ = [
    "MAX_BINS",
    "MAX_COUNT",
    "MAX_CURSOR_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_NAME_LENGTH",
    "MAX_PAGE_SIZE",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "MAX_TREND_RUNS",
]

MAX_ID_LENGTH = 256
"""Characters in an id."""

MAX_NAME_LENGTH = 256
"""Characters in a run's name."""

MAX_TAGS = 64
"""Tags of one run."""

MAX_TAG_LENGTH = 64
"""Characters in a tag."""

MAX_JSON_DEPTH = 256
"""Levels of nested lists and objects in a JSON value (a scalar is level 0)."""

MAX_INT_DIGITS = 4000
"""Decimal digits of an integer inside a JSON value."""

MAX_COUNT = 2**31 - 1
"""The largest count or counter value."""

MAX_PAGE_SIZE = 100_000
"""The largest ``per_page`` and ``batch_size``."""

MAX_BINS = 1000
"""The largest number of bins of a histogram (``histogram_run``)."""

MAX_CURSOR_LENGTH = 4096
"""Characters in a cursor; runstore's own are far shorter."""

MAX_TREND_RUNS = 1000
"""The most runs a trend takes (``trend_runs(last=...)``)."""
