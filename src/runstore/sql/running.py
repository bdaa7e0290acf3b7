"""How a plan runs, decided once for both SQL adapters: on which server each of its
transactions runs, when it runs again, and when it waits.

:func:`conduct` is a generator of requests -- :class:`Transaction` (run these steps in one
transaction on this server and send back how it ended) and
:class:`~runstore.sql.replicas.Pause` (wait) -- that each runner carries out with its own
connections and its own way of sleeping. It:

* sends a read to a read replica when the storage has some and one may serve it
  (:meth:`~runstore.sql.replicas.Replicas.route`), and runs the whole read afresh on the
  primary when the replica fails it -- unreachable, or a query cancelled by recovery;
* tells the replicas when a write committed, so the storage's next read sees it;
* runs a call again from the start after a transient failure (:func:`next_move`), after
  a pause; and otherwise follows :func:`~runstore.plans.next_move`.

A failure to connect, begin or commit is thrown into it (``generator.throw``): a transient
one is retried like a failed step, a replica's sends the read to the primary, any other
reaches the caller as it is.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from runstore.errors import DatabaseError, StorageError
from runstore.plans import (
    Again,
    Begin,
    Done,
    Mode,
    Plan,
    Retry,
    Step,
    Steps,
    commits,
    next_move,
    proceed,
    writes,
)
from runstore.sql.replicas import Pause, Replicas, Route, read_plan

__all__ = ["Conduct", "Outcome", "Transaction", "conduct"]

_T = TypeVar("_T")

Outcome: TypeAlias = "Done[Any] | Begin | StorageError"
"""How a transaction ended: the operation returned, began anew, or a step failed."""


@dataclass(frozen=True, slots=True)
class Transaction:
    """Run ``steps`` from ``step`` in one transaction of ``mode`` on ``server`` (None: the
    primary) and send back its :data:`Outcome`; throw in a failure to connect, begin or
    commit, translated."""

    server: Any
    mode: Mode
    steps: Steps[Any]
    step: Step


Conduct: TypeAlias = Generator["Transaction | Pause", Any, _T]


def conduct(plan: Plan[_T], step: Step, replicas: Replicas | None) -> Conduct[_T]:
    """Run ``plan``, whose operation took its first step, ``step``, already."""
    server: Any = None
    if replicas is not None and read_plan(plan):
        server = yield from _routed(replicas.route())
    mode, steps, retried, attempt, committed = plan.mode, plan.steps, False, 1, False
    while True:
        failed: StorageError | None = None
        try:
            outcome: Outcome = yield Transaction(server, mode, steps, step)
        except StorageError as error:  # connecting, beginning, committing
            outcome, failed = error, error
        if server is not None and _replica_failed(outcome):
            assert replicas is not None
            if isinstance(outcome, DatabaseError) and outcome.connection_lost:
                replicas.lost(server)
            server, plan = None, plan.again()  # the whole read again, on the primary
            mode, steps, retried = plan.mode, plan.steps, False
            first = proceed(steps, None)
            if isinstance(first, Done):
                return first.value
            step = first
            continue
        if writes(mode) and not isinstance(outcome, StorageError):
            committed = committed or commits(mode, outcome) or mode is Mode.WRITE_ONE
            if replicas is not None:
                replicas.wrote()
        move = next_move(
            mode,
            outcome,
            retried=retried or failed is not None,
            attempt=attempt,
            committed=committed,
        )
        if isinstance(move, Retry):
            yield Pause(move.delay)
            attempt, plan = attempt + 1, plan.again()
            mode, steps, retried, committed = plan.mode, plan.steps, False, False
            following = proceed(steps, None)
        elif failed is not None:
            raise move if isinstance(move, StorageError) else failed
        elif isinstance(move, Done):
            value: _T = move.value
            return value
        elif isinstance(move, Again):
            retried = True
            continue
        elif isinstance(move, Begin):
            mode, retried = move.mode, False
            following = proceed(steps, None)
        else:
            following = proceed(steps, move)
        if isinstance(following, Done):
            return following.value
        step = following


def _replica_failed(outcome: Outcome) -> bool:
    """Whether a replica failed a read in a way the primary would not: its connection was
    lost, or recovery cancelled the query (a transient error)."""
    return isinstance(outcome, DatabaseError) and (outcome.connection_lost or outcome.transient)


def _routed(route: Route) -> Generator[Transaction | Pause, Any, Any]:
    """Carry out what deciding a read's server asks, to the server it decided on."""
    reply: Any = None
    error: StorageError | None = None
    while True:
        try:
            request = route.send(reply) if error is None else route.throw(error)
        except StopIteration as decided:
            return decided.value
        reply, error = None, None
        if isinstance(request, Pause):
            yield request
            continue
        try:
            reply = yield from _on(request.server, request.plan)
        except StorageError as exc:
            error = exc


def _on(server: Any, plan: Plan[_T]) -> Generator[Transaction | Pause, Any, _T]:
    """Run a plan of one transaction on ``server`` as it is: no retry, no other server."""
    step = proceed(plan.steps, None)
    while not isinstance(step, Done):
        outcome: Outcome = yield Transaction(server, plan.mode, plan.steps, step)
        if isinstance(outcome, StorageError):
            raise outcome
        if isinstance(outcome, Done):
            value: _T = outcome.value
            return value
        step = proceed(plan.steps, None)
    return step.value
