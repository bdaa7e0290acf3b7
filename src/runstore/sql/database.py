"""What an operation knows of the storage that runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import TypeAlias

from runstore.clock import Clock
from runstore.plans import Plan
from runstore.plans import Walk

__all__ = ["Database", "Plans", "Walks"]


@dataclass(frozen=True, slots=True)
class Database:
    """The database an operation's statements go to, and the storage's clock."""

    dialect: str
    """SQLAlchemy's name for it: ``"sqlite"`` or ``"postgresql"``."""
    clock: Clock
    replicated: bool = False
    """Whether its reads go to read replicas: a read may then run on one, and so must not
    write (a summary is not kept on the way)."""

    def now(self) -> datetime:
        return self.clock()

    @property
    def postgres(self) -> bool:
        """Postgres: batches stream with ``COPY``, and one statement can count a result."""
        return self.dialect == "postgresql"

    @property
    def scores_apart(self) -> bool:
        """Whether reads of results take their scores from a statement of their own, after
        the results' (SQLite, which has no exact text for a REAL: see
        :class:`runstore.sql.compiler.score_map`)."""
        return self.dialect == "sqlite"

    @property
    def ungrouped_items(self) -> bool:
        """Whether a comparison of two runs without repetitions reads each result as its
        item's means, with no grouping (SQLite, where the grouping sorts every result, and
        the statements took 2.6 times as long with it). Postgres groups by hashing, and
        without the grouping its planner joined the items' rows far worse."""
        return self.dialect == "sqlite"


Plans: TypeAlias = dict[type[Any], Callable[[Any, "Database"], Plan[Any]]]
"""A table of operations: by the class of the call (:mod:`runstore.calls`) each plans."""
Walks: TypeAlias = dict[type[Any], Callable[[Any, "Database"], Walk[Any]]]
"""A table of walks: by the class of the ``iter_*`` call each streams."""
