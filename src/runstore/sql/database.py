"""What an operation knows of the storage that runs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from runstore.clock import Clock

__all__ = ["Database"]


@dataclass(frozen=True, slots=True)
class Database:
    """The database an operation's statements go to, and the storage's clock."""

    dialect: str
    """SQLAlchemy's name for it: ``"sqlite"`` or ``"postgresql"``."""
    clock: Clock

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
