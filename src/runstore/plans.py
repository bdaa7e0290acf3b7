"""The protocol between runstore's SQL operations and the runners that execute them.

runstore's SQL core is sans-I/O: an **operation** (in :mod:`runstore.sql`) is a generator
that yields the statements of one storage call and never touches a connection. Two
**runners** execute operations -- :class:`~runstore.sql.SqlRunsStorage` on blocking
SQLAlchemy connections and :class:`~runstore.sql.AsyncSqlRunsStorage` on asyncio ones --
so each call is written once for both. This module is the whole vocabulary between them:

* A :class:`Step` is what an operation yields: a :class:`Query` (one statement, its bind
  values, and what a constraint violation would mean for it), a :class:`CopyRows` (rows
  for Postgres' ``COPY``), or a :class:`Begin` (end this transaction, committing it, and
  go on in a new one of another :class:`Mode`).
* The runner sends back a :data:`Reply` -- the statement's SQLAlchemy result, ``None``
  for the other steps. Operations read it through the typed helpers :func:`execute`,
  :func:`rows`, :func:`first`, :func:`one`, :func:`scalars` and :func:`rowcount`
  (``row = yield from first(query)``), never by a bare ``yield``; a query made of a typed
  ``SELECT`` by :func:`reading` carries its rows' types (``Query[str, int]``), so the
  rows come back typed and mypy checks what an operation does with them.
* A :class:`Plan` is an operation ready to run: its :data:`Steps` and the :class:`Mode`
  its first transaction takes. :func:`operation` makes a plan-returning function of a
  generator function.
* The runners' steps are written here once, as pure functions both runners call:
  :func:`proceed` hands the operation the reply (or throws a failed step's error into it,
  where it failed) and takes its next step; :func:`writes` says whether a transaction
  writes, :func:`commits` whether it commits. What comes after a transaction ends --
  hand the value over, begin anew, run again, throw the error into the operation, which
  may handle it (its next step then begins a new transaction) or let it reach the caller
  -- is the call's policy's decision (:mod:`runstore.sql.policy`), within one budget of
  :data:`ATTEMPTS`; an operation that carries on from what it committed after a transient
  failure asks it for another attempt with :func:`retry`.
* A call that streams (``iter_*``) is a :data:`Walk`: a generator that yields plans, is
  sent each one's value (``rows = yield from run(plan)``), and yields :class:`Emit` with
  the items to hand to the caller, a batch at a time, each batch read on its own.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable
from collections.abc import Generator
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Generic
from typing import ParamSpec
from typing import TypeAlias
from typing import TypeVar
from typing import TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.engine import Row

from runstore.errors import StorageError

__all__ = [
    "ATTEMPTS",
    "BACKOFF",
    "AnyQuery",
    "Begin",
    "CopyRows",
    "Done",
    "Emit",
    "Mode",
    "Plan",
    "Query",
    "Reply",
    "Retry",
    "Step",
    "Steps",
    "Walk",
    "begin",
    "commits",
    "copy",
    "each",
    "execute",
    "first",
    "one",
    "operation",
    "proceed",
    "reading",
    "retry",
    "rowcount",
    "rows",
    "run",
    "scalars",
    "writes",
]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")


class Mode(enum.Enum):
    """How an operation's statements run."""

    READ = "read"
    """Each statement on its own, outside a transaction (a single statement is consistent
    by itself). Reads only; a lost connection is retried once on a fresh one."""
    SNAPSHOT = "snapshot"
    """Several reads that must see one snapshot: a read-only transaction (REPEATABLE READ
    on Postgres, a read transaction on SQLite)."""
    WRITE_ONE = "write one"
    """One statement that writes: a transaction of its own (connections are in
    autocommit)."""
    WRITE = "write"
    """Several statements in one write transaction (``BEGIN IMMEDIATE`` on SQLite, READ
    COMMITTED on Postgres: see :func:`runstore.engine.begin_statement`)."""


@dataclass(frozen=True, slots=True)
class Query(Generic[*_Ts]):
    """One statement, the values it binds, and what a constraint violation means for it.

    ``values`` is one mapping, or a list of them to run the statement once per mapping.
    A query of a typed ``SELECT`` (made by :func:`reading`) carries the types of its
    rows' columns, ``Query[str, int]``, so the helpers below hand operations typed rows.
    """

    statement: sa.Executable
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    duplicate: str | None = None
    """What a unique-constraint violation means (for the ``DuplicateError``)."""
    missing_run: str | None = None
    """The run a foreign-key violation means is missing (a ``RunNotFoundError``)."""


@dataclass(frozen=True, slots=True)
class CopyRows:
    """Rows for Postgres' ``COPY ... FROM STDIN``, as values by column key.

    The one stream runstore hands to the driver itself: SQLAlchemy has no COPY, and it
    records a large batch several times faster than any INSERT (see
    :mod:`runstore.sql.copy`). Values go through the columns' own bind processors.
    """

    table: sa.Table
    rows: Sequence[Mapping[str, Any]]
    duplicate: str | None = None


@dataclass(frozen=True, slots=True)
class Begin:
    """A step that ends the operation's transaction (committing what it wrote) and runs the
    steps after it in a new one, of this mode."""

    mode: Mode


def reading(statement: sa.Select[*_Ts], values: Mapping[str, Any] | None = None) -> Query[*_Ts]:
    """The query of a ``SELECT``, typed as its rows."""
    return Query(statement, values)


AnyQuery: TypeAlias = Query[*tuple[Any, ...]]
"""A query whose rows are not typed: a write, or a read of whole rows for models."""

Step: TypeAlias = AnyQuery | CopyRows | Begin
"""What an operation yields."""

Reply: TypeAlias = CursorResult[Any] | None
"""What a runner sends back for a step: a :class:`Query`'s result, else ``None``."""

Steps: TypeAlias = Generator[Step, Reply, _T]
"""An operation's statements, as a generator that returns what the call returns."""


@dataclass(frozen=True, slots=True)
class Plan(Generic[_T]):
    """An operation ready to run, the mode of its first transaction, and how to make it
    afresh -- to run it again from the start after a transient failure (see
    :mod:`runstore.sql.policy`)."""

    mode: Mode
    steps: Steps[_T]
    again: Callable[[], Plan[_T]]


def operation(
    mode: Mode | Callable[[Any], Mode],
) -> Callable[[Callable[_P, Steps[_T]]], Callable[_P, Plan[_T]]]:
    """Make a generator function of steps into a function that returns its :class:`Plan`.

    ``mode`` is the mode of the first transaction -- or, where that depends on the
    database, a function of the operation's argument named ``database`` that says which.
    """

    def planned(steps: Callable[_P, Steps[_T]]) -> Callable[_P, Plan[_T]]:
        choose = _chooser(mode, steps)

        @functools.wraps(steps)
        def plan(*args: _P.args, **kwargs: _P.kwargs) -> Plan[_T]:
            chosen = choose(args, kwargs)
            return Plan(chosen, steps(*args, **kwargs), lambda: plan(*args, **kwargs))

        return plan

    return planned


def _chooser(
    mode: Mode | Callable[[Any], Mode], steps: Callable[..., Any]
) -> Callable[[tuple[Any, ...], Mapping[str, Any]], Mode]:
    """How a call of ``steps`` (its positional and keyword arguments) finds the mode of its
    first transaction: ``mode``, or what ``mode`` says of the argument of ``steps``'
    parameter ``database`` -- named in the call, or else in that parameter's place."""
    if isinstance(mode, Mode):
        fixed = mode
        return lambda args, kwargs: fixed
    of_database = mode
    names = list(inspect.signature(steps).parameters)
    if "database" not in names:
        raise TypeError(f"{steps.__qualname__} has no parameter 'database' to choose a mode by")
    place = names.index("database")

    def chosen(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Mode:
        return of_database(kwargs["database"] if "database" in kwargs else args[place])

    return chosen


# -- what the runner sends back, typed ---------------------------------------------------


def execute(query: Query[*_Ts]) -> Steps[CursorResult[Any]]:
    """Run ``query``; its result."""
    reply = yield query
    if reply is None:
        raise TypeError("the runner sent no result for a query")
    return reply


def rows(query: Query[*_Ts]) -> Steps[Sequence[Row[*_Ts]]]:
    """Every row ``query`` reads."""
    return (yield from execute(query)).all()


def first(query: Query[*_Ts]) -> Steps[Row[*_Ts] | None]:
    """The first row ``query`` reads, or None."""
    return (yield from execute(query)).first()


def one(query: Query[*_Ts]) -> Steps[Row[*_Ts]]:
    """The one row ``query`` reads (an error if there is none, or more)."""
    return (yield from execute(query)).one()


def scalars(query: Query[_T, *_Ts]) -> Steps[Sequence[_T]]:
    """The first column of every row ``query`` reads."""
    return (yield from execute(query)).scalars().all()


def rowcount(query: Query[*_Ts]) -> Steps[int]:
    """How many rows ``query`` changed."""
    return (yield from execute(query)).rowcount


def each(queries: Iterable[AnyQuery]) -> Steps[None]:
    """Run ``queries`` one after the other."""
    for query in queries:
        yield from execute(query)


def copy(stream: CopyRows) -> Steps[None]:
    """Stream rows with ``COPY``."""
    yield stream


def begin(mode: Mode) -> Steps[None]:
    """Commit what was written and go on in a new transaction of ``mode``."""
    yield Begin(mode)


# -- streaming calls ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Emit(Generic[_T]):
    """Items a walk hands to the caller."""

    items: Sequence[_T]


Walk: TypeAlias = Generator[Plan[Any] | Emit[_T], Any, None]
"""A streaming call: yields plans (and is sent their values) and items to emit."""


def run(plan: Plan[_T]) -> Generator[Plan[_T], _T, _T]:
    """Inside a walk: run ``plan`` (in transactions of its own); its value."""
    return (yield plan)


# -- what both runners do, and do again ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done(Generic[_T]):
    """The operation returned ``value``: what the call returns."""

    value: _T


@dataclass(frozen=True, slots=True)
class Retry(Begin):
    """A :class:`Begin` that runs again what failed transiently after the call committed
    something: the policy spends an attempt of the call's budget and pauses first, or,
    with none left, throws the failure in again, given up."""


def retry(mode: Mode) -> Steps[None]:
    """After a transient failure thrown into the operation: go on in a new transaction of
    ``mode``, to run again what failed -- if the call has attempts left (else the failure
    is raised here, saying after how many)."""
    yield Retry(mode)


ATTEMPTS = 6
"""How many times, at most, a call's transactions are tried: the one budget of all its
retries -- after transient failures (serialization failures and deadlocks:
:data:`runstore.errors.TRANSIENT_SQLSTATES`), a replica that failed a read, a read's lost
connection (see :mod:`runstore.sql.policy`)."""
BACKOFF = 0.05
"""The longest pause before the first retry, in seconds; it doubles with each retry (the
pause itself is drawn at random up to it: "full jitter"), so that writers that collided
do not collide again. Six attempts wait 0.8 s on average, 1.55 s at most."""


def proceed(steps: Steps[_T], reply: Reply | StorageError) -> Step | Done[_T]:
    """Hand the operation what its last step gave -- the reply, or the error of the step,
    thrown in where it failed -- and take its next step, or :class:`Done` when it
    returned. (``None`` starts it: its own checks run before any I/O.)"""
    try:
        if isinstance(reply, StorageError):
            return steps.throw(reply)
        return steps.send(reply)
    except StopIteration as returned:
        return Done(returned.value)


def writes(mode: Mode) -> bool:
    """Whether a transaction of ``mode`` writes (and so, on SQLite, takes the write lock)."""
    return mode is Mode.WRITE or mode is Mode.WRITE_ONE


def commits(mode: Mode, outcome: Done[Any] | Begin | StorageError) -> bool:
    """Whether a transaction of ``mode`` that ended with ``outcome`` commits: a write
    transaction whose steps all ran. (A failed one rolls back; the others have nothing to
    commit: single statements commit themselves, reads write nothing.)"""
    return mode is Mode.WRITE and not isinstance(outcome, StorageError)
