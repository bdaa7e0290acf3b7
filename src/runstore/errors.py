"""The exceptions runstore raises.

Every failure of the storage is a :class:`StorageError`. Invalid input is refused with a
``ValueError`` before anything is written: pydantic's ``ValidationError`` for the models,
:class:`InvalidInputError` for the checks the storage itself makes.
"""

from __future__ import annotations

__all__ = [
    "TRANSIENT_SQLSTATES",
    "DatabaseError",
    "DuplicateError",
    "InvalidInputError",
    "ResultNotFoundError",
    "RunNotFoundError",
    "SchemaOutOfDateError",
    "StorageClosedError",
    "StorageError",
]


class StorageError(Exception):
    """Base class of every error runstore raises on purpose."""


def _at(position: int | None) -> str:
    return "" if position is None else f"inputs[{position}]: "


class RunNotFoundError(StorageError, LookupError):
    """The run named by an id does not exist.

    ``position`` is the index of the offending input when a batch was refused.
    """

    def __init__(self, run_id: str, *, position: int | None = None) -> None:
        super().__init__(f"{_at(position)}run {run_id!r} does not exist")
        self.run_id = run_id
        self.position = position


class ResultNotFoundError(StorageError, LookupError):
    """The result named by an id does not exist.

    ``position`` is the index of the offending input when a batch was refused.
    """

    def __init__(self, result_id: str, *, position: int | None = None) -> None:
        super().__init__(f"{_at(position)}result {result_id!r} does not exist")
        self.result_id = result_id
        self.position = position


class DuplicateError(StorageError):
    """A row with the same identity already exists; nothing was overwritten.

    ``position`` is the index of the offending input when a batch was refused.
    """

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(f"{_at(position)}{message}")
        self.position = position


class InvalidInputError(StorageError, ValueError):
    """Input the storage refuses before touching the database."""


class SchemaOutOfDateError(StorageError):
    """The database schema is missing, behind, or ahead of this version of runstore."""


class StorageClosedError(StorageError):
    """The storage was used after :meth:`close`."""


TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
"""Serialization failure (also a query a hot standby cancelled for recovery) and deadlock:
the transaction was rolled back whole, and running it again can succeed."""


class DatabaseError(StorageError):
    """Any other database failure; the driver's exception is chained as ``__cause__``.

    ``connection_lost`` is true when the connection to the database was lost during the
    call (the server restarted, say): the pool has been reset, so the next call connects
    afresh. A read can simply be retried; a write may or may not have been applied.
    ``sqlstate`` is the server's error code, where it gave one. ``attempts`` is how many
    times runstore ran the call: a transient failure (:attr:`transient`) is run again, a
    few times, before it reaches the caller.
    """

    def __init__(
        self,
        message: str,
        *,
        connection_lost: bool = False,
        sqlstate: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost
        self.sqlstate = sqlstate
        self.attempts = attempts

    @property
    def transient(self) -> bool:
        """A serialization failure or a deadlock: nothing of the transaction was kept."""
        return self.sqlstate in TRANSIENT_SQLSTATES
