"""runstore's SQL core and its two adapters, for SQLite and Postgres.

Every call of the public API is planned here once, as an **operation**: a generator that
yields its statements and never touches a connection (the protocol:
:mod:`runstore.plans`). The blocking adapter (:class:`SqlRunsStorage`, :mod:`.storage`)
and the asyncio one (:class:`AsyncSqlRunsStorage`, :mod:`.async_storage`) run them.

By feature, each module its statements first and its operations below them:

* :mod:`.runs` -- creating, updating, counting, deleting and pruning runs;
* :mod:`.results` -- recording results (one, a batch, over what is stored), reading one;
* :mod:`.scores` -- recording and reading scores;
* :mod:`.lists` -- pages of runs and results, and the ``iter_*`` walks through them;
* :mod:`.answers` -- summaries and comparisons, computed in the database.

And what they share: :mod:`.compiler` (SQL constructs that differ by database),
:mod:`.rows` (rows to models and back), :mod:`.database` (what an operation knows of its
storage), :mod:`.table` (which operation plans each call), :mod:`.errors` (database
errors to runstore's), :mod:`.copy` (Postgres ``COPY``) and :mod:`.adapter` (what both
adapters hold).
"""

from __future__ import annotations

from runstore.sql.async_storage import AsyncSqlRunsStorage
from runstore.sql.storage import SqlRunsStorage

__all__ = ["AsyncSqlRunsStorage", "SqlRunsStorage"]
