"""The exceptions runstore raises.

Every failure of the storage is a :class:`StorageError`. Invalid input is refused with a
``ValueError`` before anything is written: pydantic's ``ValidationError`` for the models,
:class:`InvalidInputError` for the checks the storage itself makes.
"""

from __future__ import annotations

__all__ = [
    "DatabaseError",
    "DuplicateError",
    "InvalidInputError",
    "RunNotFoundError",
    "SchemaOutOfDateError",
    "StorageClosedError",
    "StorageError",
]


class StorageError(Exception):
    """Base class of every error runstore raises on purpose."""


class RunNotFoundError(StorageError, LookupError):
    """The run named by an id does not exist."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} does not exist")
        self.run_id = run_id


class DuplicateError(StorageError):
    """A row with the same identity already exists; nothing was overwritten."""


class InvalidInputError(StorageError, ValueError):
    """Input the storage refuses before touching the database."""


class SchemaOutOfDateError(StorageError):
    """The database schema is missing, behind, or ahead of this version of runstore."""


class StorageClosedError(StorageError):
    """The storage was used after :meth:`close`."""


class DatabaseError(StorageError):
    """Any other database failure; the driver's exception is chained as ``__cause__``."""
