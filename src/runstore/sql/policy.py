"""How a call's transactions run: on which server, how often, after which pause -- one
state machine for both SQL runners, told what happened and answering what to do next.

A :class:`CallPolicy` does no I/O and never touches the operation (as h11's connection
never touches a socket): :func:`runstore.sql.running.conduct` runs the operation's
transactions, feeds the policy how each ended, and does what it answers. It is told:

* :meth:`CallPolicy.ended`: a transaction ended -- the operation returned
  (:class:`~runstore.plans.Done`), began anew (:class:`~runstore.plans.Begin`; a writing
  transaction that ends so has committed), or a step failed (the error translated, the
  transaction rolled back);
* :meth:`CallPolicy.failed`: connecting, beginning or committing failed;
* :meth:`CallPolicy.began`: the operation began anew before a statement of the new
  transaction ran (after an error thrown into it): there is nothing to run or commit.

It answers with a :data:`Move`: :class:`Return` the value, :class:`Continue` in a new
transaction, run the same step :class:`Again`, :class:`Restart` the whole call from a
fresh plan, :class:`Throw` an error into the operation, or :class:`Raise` one to the
caller -- the transaction to run next is always on :attr:`CallPolicy.server`, in
:attr:`CallPolicy.mode`.

It holds the call's one budget of :data:`~runstore.plans.ATTEMPTS`: every run beyond the
first spends one -- the whole call again after a transient failure (after a jittered
pause: :func:`backoff`), a read again on the primary after a replica failed it, a read's
step again after its connection was lost, a transaction run again by an operation that
carries on from what it committed (:class:`~runstore.plans.Retry`: pruning). A write
that committed is never run again by the policy itself. Jitter comes from ``draw``,
time (where replicas are chosen) from the :class:`~runstore.sql.replicas.Replicas`'
clock, so tests drive it with scripted outcomes and no database.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Generic
from typing import TypeAlias
from typing import TypeVar

from runstore.errors import DatabaseError
from runstore.errors import StorageError
from runstore.plans import ATTEMPTS
from runstore.plans import BACKOFF
from runstore.plans import Begin
from runstore.plans import Done
from runstore.plans import Mode
from runstore.plans import Retry
from runstore.plans import writes
from runstore.sql.replicas import Replicas
from runstore.sql.replicas import Route
from runstore.sql.replicas import reads_only

__all__ = [
    "Again",
    "CallPolicy",
    "Continue",
    "Move",
    "Outcome",
    "Raise",
    "Restart",
    "Return",
    "Throw",
    "backoff",
]

_T = TypeVar("_T")

Outcome: TypeAlias = "Done[Any] | Begin | StorageError"
"""How a transaction ended: the operation returned, began anew, or a step failed."""


@dataclass(frozen=True, slots=True)
class Return(Generic[_T]):
    """Hand ``value`` to the caller: the call is done."""

    value: _T


@dataclass(frozen=True, slots=True)
class Continue:
    """Send the operation ``None`` and, after ``pause`` seconds, run its next steps in a
    new transaction."""

    pause: float = 0.0


@dataclass(frozen=True, slots=True)
class Again:
    """Run the step that failed again, in a new transaction (on a fresh connection)."""


@dataclass(frozen=True, slots=True)
class Restart:
    """Make the plan afresh (:attr:`~runstore.plans.Plan.again`) and, after ``pause``
    seconds, run it from the start."""

    pause: float = 0.0


@dataclass(frozen=True, slots=True)
class Throw:
    """Throw ``error`` into the operation at the step that failed; if it handles it, its
    next steps run in a new transaction."""

    error: StorageError


@dataclass(frozen=True, slots=True)
class Raise:
    """Raise ``error`` to the caller: the call failed."""

    error: StorageError


Move: TypeAlias = "Return[Any] | Continue | Again | Restart | Throw | Raise"
"""What the runner does next."""


def backoff(attempt: int, draw: Callable[[], float] = random.random) -> float:
    """The pause before attempt ``attempt + 1``, after ``attempt`` failed: up to
    :data:`~runstore.plans.BACKOFF` doubled with each attempt, drawn at random below it
    ("full jitter", ``draw`` in [0, 1)), so that writers that collided do not collide
    again."""
    return draw() * BACKOFF * 2.0 ** (attempt - 1)


class CallPolicy:
    """Where and how often the transactions of one call run (see the module's
    description).

    Args:
        mode: the mode of the plan's first transaction.
        replicas: the storage's read replicas, if it has some.
        attempts: the budget: how many times, at most, the call's transactions are tried.
        draw: the random draw of the pauses' jitter, in [0, 1).
    """

    def __init__(
        self,
        mode: Mode,
        replicas: Replicas | None = None,
        *,
        attempts: int = ATTEMPTS,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.server: Any = None
        """Where the next transaction runs: a replica's engine, or None for the primary."""
        self.mode = mode
        """The mode of the next transaction."""
        self.attempt = 1
        """Which attempt is running: 1, plus the attempts spent."""
        self._first_mode = mode
        self._replicas = replicas
        self._attempts = attempts
        self._draw = draw
        self._committed = False
        """Whether a transaction of the call committed a write: the call is never run
        again from the start."""
        self._retried = False
        """Whether the step that runs was run again after its connection was lost."""
        self._failure: DatabaseError | None = None
        """The last transient failure, for the error that gives up on it."""

    def route(self) -> Route | None:
        """The decision of the server of a read, for the runner to carry out and tell
        :meth:`routed`; None when the call runs on the primary without asking."""
        if self._replicas is None or not reads_only(self._first_mode):
            return None
        return self._replicas.route()

    def routed(self, server: Any) -> None:
        """The call's transactions run on ``server`` (None: the primary)."""
        self.server = server

    def ended(self, outcome: Outcome) -> Move:
        """A transaction ended with ``outcome``: what now."""
        if isinstance(outcome, StorageError):
            return self._step_failed(outcome)
        self._retried = False
        if writes(self.mode):  # the transaction committed (it ended without an error)
            self._committed = True
            if self._replicas is not None:
                self._replicas.wrote()
        if isinstance(outcome, Done):
            return Return(outcome.value)
        return self.began(outcome)

    def began(self, begin: Begin) -> Move:
        """The operation began anew, in a transaction of ``begin.mode``: run its next steps
        -- after a pause, if it runs again what failed (:class:`~runstore.plans.Retry`),
        while attempts are left; else the failure, given up, is thrown into it."""
        self.mode = begin.mode
        if not isinstance(begin, Retry) or self._failure is None:
            return Continue()
        pause = backoff(self.attempt, self._draw)
        if not self._spend():
            return Throw(self._given_up(self._failure))
        return Continue(pause)

    def failed(self, error: StorageError) -> Move:
        """Connecting, beginning or committing failed with ``error``: nothing of the
        transaction was kept. A replica's failure sends the read to the primary; a
        transient failure runs the call again, if nothing of it committed and attempts
        are left; anything else reaches the caller."""
        if self._replica_failed(error) and self._fall_back(error):
            return Restart()
        if isinstance(error, DatabaseError) and error.transient:
            restart = self._restart(error)
            return Raise(self._given_up(error)) if restart is None else restart
        return Raise(error)

    def _step_failed(self, error: StorageError) -> Move:
        if self._replica_failed(error) and self._fall_back(error):
            return Restart()
        lost = isinstance(error, DatabaseError) and error.connection_lost
        if lost and self.mode is Mode.READ and not self._retried and self._spend():
            self._retried = True
            return Again()  # the pool was reset: a fresh connection serves the step
        self._retried = False
        if isinstance(error, DatabaseError) and error.transient:
            restart = self._restart(error)
            return Throw(self._given_up(error)) if restart is None else restart
        return Throw(error)

    def _restart(self, error: DatabaseError) -> Restart | None:
        """The whole call again after a pause, if nothing of it committed and an attempt
        is left; None otherwise (the operation may carry on from what it committed)."""
        self._failure = error
        if self._committed:
            return None
        pause = backoff(self.attempt, self._draw)
        if not self._spend():
            return None
        self.mode, self._retried = self._first_mode, False
        return Restart(pause)

    def _replica_failed(self, error: StorageError) -> bool:
        """Whether a replica failed a read in a way the primary would not: its connection
        was lost, or recovery cancelled the query (a transient error)."""
        return (
            self.server is not None
            and isinstance(error, DatabaseError)
            and (error.connection_lost or error.transient)
        )

    def _fall_back(self, error: StorageError) -> bool:
        """Leave the replica that failed; whether an attempt is left to run the whole read
        again on the primary (no pause: another server)."""
        if isinstance(error, DatabaseError) and error.connection_lost:
            assert self._replicas is not None
            self._replicas.lost(self.server)
        self.server = None
        if not self._spend():
            return False
        self.mode, self._retried = self._first_mode, False
        return True

    def _spend(self) -> bool:
        """Spend an attempt; whether one was left."""
        if self.attempt >= self._attempts:
            return False
        self.attempt += 1
        return True

    def _given_up(self, error: DatabaseError) -> DatabaseError:
        """``error`` as it reaches the operation or the caller: after more than one
        attempt, saying how many."""
        if self.attempt == 1:
            return error
        given_up = DatabaseError(
            f"{error} (SQLSTATE {error.sqlstate}: still failing after {self.attempt} attempts)",
            connection_lost=error.connection_lost,
            sqlstate=error.sqlstate,
            attempts=self.attempt,
        )
        given_up.__cause__ = error.__cause__
        return given_up
