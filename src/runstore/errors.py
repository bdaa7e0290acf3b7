"""The exceptions runstore raises.

Every failure of the storage is a :class:`StorageError`. Invalid input is refused with a
``ValueError`` before anything is written: pydantic's ``ValidationError`` for the models,
:class:`InvalidInputError` for the checks the storage itself makes.

The errors every adapter raises alike are made by the functions below the classes
(:func:`run_exists`, :func:`item_taken`, ...), so that each message is written once and
reads the same from every adapter.
"""

from __future__ import annotations

from runstore.limits import MAX_COUNT

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
    "batch_duplicate",
    "counter_overflow",
    "item_taken",
    "result_exists",
    "result_or_item_exists",
    "run_exists",
    "score_exists",
    "score_taken",
    "storage_closed",
]


class StorageError(Exception):
    """Base class of every error runstore raises on purpose."""


def _at(position: int | None) -> str:
    return "" if position is None else f"inputs[{position}]: "


class _NotFoundError(StorageError, LookupError):
    """Something named by an id (``what``) does not exist."""

    def __init__(self, what: str, id: str, position: int | None) -> None:
        super().__init__(f"{_at(position)}{what} {id!r} does not exist")
        self.position = position


class RunNotFoundError(_NotFoundError):
    """The run named by an id does not exist.

    ``position`` is the index of the offending input when a batch was refused.
    """

    def __init__(self, run_id: str, *, position: int | None = None) -> None:
        super().__init__("run", run_id, position)
        self.run_id = run_id


class ResultNotFoundError(_NotFoundError):
    """The result named by an id does not exist.

    ``position`` is the index of the offending input when a batch was refused.
    """

    def __init__(self, result_id: str, *, position: int | None = None) -> None:
        super().__init__("result", result_id, position)
        self.result_id = result_id


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


def storage_closed(storage: str) -> StorageClosedError:
    """The error for a call on ``storage`` (as named in the message) after it was closed."""
    return StorageClosedError(f"{storage} was closed")


def run_exists(run_id: str, differences: str | None = None) -> DuplicateError:
    """The error for creating a run whose id is taken; ``differences`` describes how the
    stored run's creation fields differ from those given, when they do."""
    others = "" if differences is None else f" with other fields: {differences}"
    return DuplicateError(f"run {run_id!r} already exists{others}")


def result_exists(result_id: str, *, position: int | None = None) -> DuplicateError:
    """The error for a result whose id is taken."""
    return DuplicateError(f"result {result_id!r} already exists", position=position)


def item_taken(
    run_id: str, item_id: str, repetition: int, *, position: int | None = None
) -> DuplicateError:
    """The error for a result whose place -- (run, item, repetition) -- is taken."""
    repeated = f" (repetition {repetition})" if repetition else ""
    return DuplicateError(
        f"run {run_id!r} already has a result for item {item_id!r}{repeated}", position=position
    )


def result_or_item_exists(result_id: str, run_id: str, item_id: str) -> DuplicateError:
    """The error for a result whose id or place is taken, not known which."""
    return DuplicateError(
        f"result {result_id!r} or a result of run {run_id!r} for item {item_id!r} already exists"
    )


def batch_duplicate(kind: str) -> DuplicateError:
    """The error for a batch of ``kind`` (``"result"``, ``"score"``) with an item whose
    identity is taken, not known which."""
    return DuplicateError(f"a {kind} of this batch already exists")


def score_exists(score_id: str, *, position: int | None = None) -> DuplicateError:
    """The error for a score whose id is taken."""
    return DuplicateError(f"score {score_id!r} already exists", position=position)


def score_taken(result_id: str, name: str, *, position: int | None = None) -> DuplicateError:
    """The error for a score of a name its result already has a score of."""
    return DuplicateError(f"result {result_id!r} already has a score {name!r}", position=position)


def counter_overflow(run_id: str, position: int | None) -> InvalidInputError:
    """The error for counts that would take a run's counter past the limit."""
    return InvalidInputError(
        f"{_at(position)}run {run_id!r}: a counter would pass {MAX_COUNT:,}; nothing was written"
    )
