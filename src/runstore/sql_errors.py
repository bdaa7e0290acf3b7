"""The one place where database errors become runstore errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import sqlalchemy as sa

from runstore.errors import (
    DatabaseError,
    DuplicateError,
    InvalidInputError,
    RunNotFoundError,
    StorageError,
)

__all__ = ["translated_errors"]

_IntegrityKind = Literal["unique", "foreign_key", "other"]


def _integrity_kind(original: BaseException | None) -> _IntegrityKind:
    sqlstate = getattr(original, "sqlstate", None)  # psycopg
    if sqlstate is not None:
        return {"23505": "unique", "23503": "foreign_key"}.get(sqlstate, "other")  # type: ignore[return-value]
    name = getattr(original, "sqlite_errorname", "")  # sqlite3
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        return "unique"
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return "foreign_key"
    return "other"


def _describe(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return f"{type(original).__name__}: {str(original).strip()}"


@contextmanager
def translated_errors(
    *,
    driver_error: type[BaseException] | tuple[type[BaseException], ...] = (),
    duplicate: str = "the row already exists",
    run_id: str | None = None,
) -> Iterator[None]:
    """Re-raise SQLAlchemy and driver errors as :class:`StorageError`, cause chained.

    Args:
        driver_error: the DBAPI driver's base exception, for statements runstore sends
            to the driver itself (:mod:`runstore.driver`).
        duplicate: what a unique-constraint violation means here, for the message.
        run_id: the run a foreign-key violation refers to (it becomes
            :class:`RunNotFoundError`).
    """
    try:
        yield
    except StorageError:
        raise
    except sa.exc.StatementError as exc:
        if isinstance(exc, sa.exc.IntegrityError):
            raise _integrity_error(exc, exc.orig, duplicate, run_id) from exc
        if isinstance(exc.orig, ValueError) and not isinstance(exc, sa.exc.DBAPIError):
            raise InvalidInputError(_describe(exc)) from exc
        raise DatabaseError(_describe(exc)) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseError(_describe(exc)) from exc
    except driver_error as exc:
        raise _integrity_error(exc, exc, duplicate, run_id) from exc


def _integrity_error(
    exc: BaseException, original: BaseException | None, duplicate: str, run_id: str | None
) -> StorageError:
    kind = _integrity_kind(original)
    if kind == "unique":
        return DuplicateError(f"{duplicate} ({_describe(exc)})")
    if kind == "foreign_key" and run_id is not None:
        return RunNotFoundError(run_id)
    return DatabaseError(_describe(exc))
