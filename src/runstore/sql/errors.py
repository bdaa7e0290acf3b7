"""The one place where database errors become runstore errors.

Errors are recognised by SQLSTATE (psycopg) and by SQLite's extended error name, never by
their message; the original error is always chained as ``__cause__`` and its message kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import sqlalchemy as sa

from runstore.errors import DatabaseError
from runstore.errors import DuplicateError
from runstore.errors import InvalidInputError
from runstore.errors import RunNotFoundError
from runstore.errors import StorageError

__all__ = ["step_error", "storage_error", "translated_errors"]

_IntegrityKind = Literal["unique", "foreign_key", "other"]
_SQLSTATE_KINDS: dict[str, _IntegrityKind] = {"23505": "unique", "23503": "foreign_key"}


def _integrity_kind(original: BaseException | None) -> _IntegrityKind:
    sqlstate = getattr(original, "sqlstate", None)  # psycopg
    if sqlstate is not None:
        return _SQLSTATE_KINDS.get(sqlstate, "other")
    name = getattr(original, "sqlite_errorname", "")  # sqlite3
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        return "unique"
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return "foreign_key"
    return "other"


def _sqlstate(original: BaseException | None) -> str | None:
    sqlstate = getattr(original, "sqlstate", None)  # psycopg; SQLite has none
    return sqlstate if isinstance(sqlstate, str) else None


def _describe(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return f"{type(original).__name__}: {str(original).strip()}"


def storage_error(
    exc: BaseException,
    *,
    driver_error: type[BaseException] | tuple[type[BaseException], ...] = (),
    duplicate: str | None = None,
    missing_run: str | None = None,
) -> StorageError | None:
    """The runstore error for ``exc``, or None if it is not a database error.

    Args:
        driver_error: the DBAPI driver's base exception, for the one stream runstore
            hands to the driver itself (Postgres ``COPY``).
        duplicate: what a unique-constraint violation means here, for the message.
        missing_run: the run a foreign-key violation refers to (it becomes
            :class:`RunNotFoundError`).
    """
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sa.exc.StatementError):
        if isinstance(exc, sa.exc.IntegrityError):
            return _integrity_error(exc, exc.orig, duplicate, missing_run)
        if not isinstance(exc, sa.exc.DBAPIError) and isinstance(
            exc.orig, ValueError | TypeError | OverflowError
        ):  # a value a column type or the driver could not bind
            return InvalidInputError(_describe(exc))
        lost = isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
        return DatabaseError(_describe(exc), connection_lost=lost, sqlstate=_sqlstate(exc.orig))
    if isinstance(exc, sa.exc.SQLAlchemyError):
        return DatabaseError(_describe(exc))
    if driver_error and isinstance(exc, driver_error):
        return _integrity_error(exc, exc, duplicate, missing_run)
    return None


def step_error(exc: Exception, step: object, driver_error: type[BaseException]) -> StorageError:
    """The runstore error for a failed step of an operation (a
    :class:`~runstore.plans.Query` says what its constraint violations mean), with
    ``exc`` chained; ``exc`` itself is raised again when it is no database error."""
    error = storage_error(
        exc,
        driver_error=driver_error,
        duplicate=getattr(step, "duplicate", None),
        missing_run=getattr(step, "missing_run", None),
    )
    if error is None:
        raise exc
    if error is not exc:
        error.__cause__ = exc
    return error


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise database errors as :class:`StorageError` (see :func:`storage_error`), for
    what runs outside operations: migrations and the schema check."""
    try:
        yield
    except Exception as exc:
        error = storage_error(exc)
        if error is None or error is exc:
            raise
        raise error from exc


def _integrity_error(
    exc: BaseException, original: BaseException | None, duplicate: str | None, run_id: str | None
) -> StorageError:
    kind = _integrity_kind(original)
    if kind == "unique":
        return DuplicateError(f"{duplicate or 'the row already exists'} ({_describe(exc)})")
    if kind == "foreign_key" and run_id is not None:
        return RunNotFoundError(run_id)
    return DatabaseError(_describe(exc), sqlstate=_sqlstate(original))
