"""How a plan runs, for both SQL adapters: its operation's transactions carried out as
the call's policy (:class:`~runstore.sql.policy.CallPolicy`) decides.

:func:`conduct` is a generator of requests -- :class:`Transaction` (run these steps in one
transaction on this server and send back how it ended) and
:class:`~runstore.sql.replicas.Pause` (wait) -- that each runner carries out with its own
connections and its own way of sleeping. It asks a read's server of the replicas when the
policy says so, tells the policy how each transaction ended, and does what it answers
with the operation: send it ``None`` or throw an error into it, make its plan afresh, run
a step again, return its value or raise.

A failure to connect, begin or commit is thrown into it (``generator.throw``), translated,
and handed to the policy as such (:meth:`~runstore.sql.policy.CallPolicy.failed`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any
from typing import TypeAlias
from typing import TypeVar

from runstore.errors import StorageError
from runstore.plans import Begin
from runstore.plans import Done
from runstore.plans import Mode
from runstore.plans import Plan
from runstore.plans import Step
from runstore.plans import Steps
from runstore.plans import proceed
from runstore.sql.policy import Again
from runstore.sql.policy import CallPolicy
from runstore.sql.policy import Move
from runstore.sql.policy import Outcome
from runstore.sql.policy import Raise
from runstore.sql.policy import Restart
from runstore.sql.policy import Return
from runstore.sql.policy import Throw
from runstore.sql.replicas import Pause
from runstore.sql.replicas import Replicas
from runstore.sql.replicas import Route

__all__ = ["Conduct", "Outcome", "Transaction", "conduct"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Transaction:
    """Run ``steps`` from ``step`` in one transaction of ``mode`` on ``server`` (None: the
    primary) and send back its :data:`~runstore.sql.policy.Outcome`; throw in a failure to
    connect, begin or commit, translated."""

    server: Any
    mode: Mode
    steps: Steps[Any]
    step: Step


Conduct: TypeAlias = Generator["Transaction | Pause", Any, _T]


def conduct(
    plan: Plan[_T],
    step: Step,
    replicas: Replicas | None,
    *,
    draw: Callable[[], float] = random.random,
) -> Conduct[_T]:
    """Run ``plan``, whose operation took its first step, ``step``, already."""
    policy = CallPolicy(plan.mode, replicas, draw=draw)
    route = policy.route()
    if route is not None:
        policy.routed((yield from _routed(route)))
    steps = plan.steps
    while True:
        move: Move
        if isinstance(step, Begin):  # begun anew before any statement: nothing to run
            move = policy.began(step)
        else:
            try:
                outcome: Outcome = yield Transaction(policy.server, policy.mode, steps, step)
            except StorageError as error:  # connecting, beginning, committing
                move = policy.failed(error)
            else:
                move = policy.ended(outcome)
        if isinstance(move, Again):
            continue
        if isinstance(move, Return):
            value: _T = move.value
            return value
        if isinstance(move, Raise):
            raise move.error
        if isinstance(move, Throw):
            following = proceed(steps, move.error)
        else:
            if move.pause > 0:
                yield Pause(move.pause)
            if isinstance(move, Restart):
                plan = plan.again()
                steps = plan.steps
            following = proceed(steps, None)
        if isinstance(following, Done):
            return following.value
        step = following


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
