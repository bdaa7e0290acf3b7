"""The call policy as a state machine: fed scripted outcomes, a fake clock and a fixed
random draw, with no database anywhere -- every decision it makes, the one budget every
retry spends, and :func:`~runstore.sql.running.conduct` carrying its moves out."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from runstore.errors import DatabaseError
from runstore.errors import DuplicateError
from runstore.plans import ATTEMPTS
from runstore.plans import BACKOFF
from runstore.plans import AnyQuery
from runstore.plans import Begin
from runstore.plans import Done
from runstore.plans import Mode
from runstore.plans import Plan
from runstore.plans import Query
from runstore.plans import Retry
from runstore.plans import Steps
from runstore.plans import begin
from runstore.plans import execute
from runstore.plans import proceed
from runstore.plans import retry
from runstore.sql.policy import Again
from runstore.sql.policy import CallPolicy
from runstore.sql.policy import Continue
from runstore.sql.policy import Raise
from runstore.sql.policy import Restart
from runstore.sql.policy import Return
from runstore.sql.policy import Throw
from runstore.sql.policy import backoff
from runstore.sql.replicas import DOWN_FOR
from runstore.sql.replicas import POLL
from runstore.sql.replicas import Ask
from runstore.sql.replicas import Pause
from runstore.sql.replicas import Replica
from runstore.sql.replicas import Replicas
from runstore.sql.replicas import Route
from runstore.sql.running import Transaction
from runstore.sql.running import conduct


def conflict() -> DatabaseError:
    """A serialization failure, as translated, with the driver's error chained."""
    error = DatabaseError("SerializationFailure: conflict", sqlstate="40001")
    error.__cause__ = RuntimeError("the driver's error")
    return error


def lost() -> DatabaseError:
    return DatabaseError("OperationalError: server closed the connection", connection_lost=True)


def cancelled() -> DatabaseError:
    return DatabaseError("QueryCanceled: canceling statement", sqlstate="57014")


def half() -> float:
    return 0.5


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replicas(clock: FakeClock, *servers: str, max_lag: float = 5.0) -> Replicas:
    return Replicas(
        [Replica(server, server) for server in servers], max_lag=max_lag, wait=0.25, clock=clock
    )


def decide(route: Route, answers: Iterator[Any], clock: FakeClock) -> tuple[Any, list[Any]]:
    """Carry out a replica decision with scripted answers (a pause moves the clock): the
    server it chose, and what it asked, in order."""
    asked: list[Any] = []
    reply: Any = None
    while True:
        try:
            request = route.send(reply)
        except StopIteration as decided:
            return decided.value, asked
        asked.append(request)
        if isinstance(request, Pause):
            clock.now += request.seconds
            reply = None
        else:
            reply = next(answers)


def caught_up(replayed: int = 0) -> tuple[bool, int, int, float | None]:
    """A replica's state: in recovery, all it received replayed."""
    return True, replayed, replayed, 0.0


# -- ending transactions ---------------------------------------------------------------


def test_a_transaction_that_returned_hands_the_value_over() -> None:
    policy = CallPolicy(Mode.READ)
    assert policy.ended(Done(7)) == Return(7)
    assert policy.attempt == 1


def test_beginning_anew_runs_the_next_steps_in_the_new_mode_on_the_same_server() -> None:
    policy = CallPolicy(Mode.READ)
    policy.routed("replica")
    assert policy.ended(Begin(Mode.SNAPSHOT)) == Continue(0.0)
    assert (policy.mode, policy.server) == (Mode.SNAPSHOT, "replica")
    assert policy.began(Begin(Mode.WRITE)) == Continue(0.0)  # nothing ran: nothing to run
    assert policy.mode is Mode.WRITE


def test_a_transient_failure_runs_the_call_again_after_a_growing_jittered_pause() -> None:
    policy = CallPolicy(Mode.SNAPSHOT, draw=half)
    assert policy.ended(Begin(Mode.WRITE)) == Continue()  # a read: nothing committed
    for attempt in (1, 2, 3):
        assert policy.ended(conflict()) == Restart(0.5 * BACKOFF * 2.0 ** (attempt - 1))
        assert policy.attempt == attempt + 1
        assert policy.mode is Mode.SNAPSHOT  # the plan's first transaction again
    assert policy.ended(Begin(Mode.WRITE)) == Continue()
    assert policy.ended(Done(None)) == Return(None)


def test_after_the_last_attempt_the_failure_says_how_many_there_were() -> None:
    policy = CallPolicy(Mode.WRITE, draw=half)
    failure = conflict()
    moves = [policy.ended(failure) for _ in range(ATTEMPTS)]
    assert all(isinstance(move, Restart) for move in moves[:-1])
    last = moves[-1]
    assert isinstance(last, Throw)  # into the operation, where it failed
    given_up = last.error
    assert isinstance(given_up, DatabaseError)
    assert given_up.attempts == ATTEMPTS
    assert given_up.sqlstate == "40001"
    assert given_up.transient
    assert str(given_up) == (f"{failure} (SQLSTATE 40001: still failing after {ATTEMPTS} attempts)")
    assert given_up.__cause__ is failure.__cause__


def test_a_budget_of_one_attempt_hands_a_transient_failure_over_as_it_is() -> None:
    policy = CallPolicy(Mode.WRITE, attempts=1)
    failure = conflict()
    assert policy.ended(failure) == Throw(failure)


def test_other_errors_are_thrown_into_the_operation_as_they_are() -> None:
    for mode in Mode:
        policy = CallPolicy(mode)
        for error in (cancelled(), DuplicateError("run 'a' exists"), DatabaseError("no code")):
            move = policy.ended(error)
            assert isinstance(move, Throw)
            assert move.error is error
    assert policy.attempt == 1


def test_a_read_that_lost_its_connection_runs_its_step_again_once() -> None:
    policy = CallPolicy(Mode.READ)
    assert policy.ended(lost()) == Again()
    assert policy.attempt == 2  # from the same budget
    second = lost()
    assert policy.ended(second) == Throw(second)
    assert policy.ended(Begin(Mode.READ)) == Continue()
    assert policy.ended(lost()) == Again()  # once per transaction


def test_a_lost_connection_is_never_run_again_in_a_transaction_or_a_write() -> None:
    for mode in (Mode.SNAPSHOT, Mode.WRITE, Mode.WRITE_ONE):
        error = lost()
        assert CallPolicy(mode).ended(error) == Throw(error)
        assert CallPolicy(mode).failed(error) == Raise(error)


def test_a_failure_to_connect_begin_or_commit() -> None:
    policy = CallPolicy(Mode.WRITE, draw=half)
    assert policy.failed(conflict()) == Restart(0.5 * BACKOFF)  # nothing was kept
    error = cancelled()
    assert policy.failed(error) == Raise(error)  # to the caller, not the operation
    error = lost()
    assert CallPolicy(Mode.READ).failed(error) == Raise(error)  # no step to run again
    policy = CallPolicy(Mode.WRITE, attempts=2)
    failure = conflict()
    assert isinstance(policy.failed(failure), Restart)
    given_up = policy.failed(failure)
    assert isinstance(given_up, Raise)
    assert isinstance(given_up.error, DatabaseError)
    assert given_up.error.attempts == 2
    assert "still failing after 2 attempts" in str(given_up.error)


@pytest.mark.parametrize("mode", [Mode.WRITE, Mode.WRITE_ONE])
def test_a_committed_write_is_never_run_again(mode: Mode) -> None:
    policy = CallPolicy(mode, draw=half)
    assert policy.ended(Begin(Mode.WRITE)) == Continue()  # the first transaction committed
    failure = conflict()
    assert policy.ended(failure) == Throw(failure)  # the operation decides
    assert policy.attempt == 1
    commit = conflict()
    assert policy.failed(commit) == Raise(commit)


# -- one budget, shared with the operation that carries on from what it committed -------


def test_an_operation_that_runs_a_failed_batch_again_spends_the_calls_budget() -> None:
    policy = CallPolicy(Mode.WRITE, draw=half)
    failure = conflict()
    assert isinstance(policy.ended(failure), Restart)  # the first batch: the whole call
    assert isinstance(policy.ended(failure), Restart)
    assert policy.ended(Begin(Mode.WRITE)) == Continue()  # the first batch committed
    thrown = policy.ended(failure)
    assert isinstance(thrown, Throw)
    assert isinstance(thrown.error, DatabaseError)
    assert thrown.error.attempts == 3  # the call ran three times so far
    pauses = []
    while True:
        move = policy.began(Retry(Mode.WRITE))  # the operation runs the batch again
        if not isinstance(move, Continue):
            break
        pauses.append(move.pause)
        assert isinstance(policy.ended(failure), Throw)
    assert pauses == [0.5 * BACKOFF * 2.0 ** (attempt - 1) for attempt in range(3, ATTEMPTS)]
    assert isinstance(move, Throw)
    assert isinstance(move.error, DatabaseError)
    assert move.error.attempts == ATTEMPTS
    assert f"still failing after {ATTEMPTS} attempts" in str(move.error)


def test_a_retry_with_nothing_failed_is_a_plain_begin() -> None:
    policy = CallPolicy(Mode.WRITE)
    assert policy.began(Retry(Mode.WRITE)) == Continue()
    assert policy.attempt == 1


def test_the_jitter_stays_below_the_growing_bound() -> None:
    assert backoff(1, lambda: 0.0) == 0.0
    assert backoff(3, lambda: 1.0) == 4 * BACKOFF
    draws = random.Random(7)
    for attempt in range(1, ATTEMPTS):
        pauses = [backoff(attempt, draws.random) for _ in range(200)]
        assert all(0.0 <= pause < BACKOFF * 2.0 ** (attempt - 1) for pause in pauses)
        assert max(pauses) > 0.8 * BACKOFF * 2.0 ** (attempt - 1)  # drawn, not fixed
    worst = sum(backoff(attempt, lambda: 1.0) for attempt in range(1, ATTEMPTS))
    assert worst == pytest.approx(1.55)


# -- replicas ----------------------------------------------------------------------------


def test_a_read_goes_to_a_replica_that_is_caught_up_and_writes_never_ask() -> None:
    clock = FakeClock()
    read_replicas = replicas(clock, "r1")
    assert CallPolicy(Mode.WRITE, read_replicas).route() is None
    assert CallPolicy(Mode.READ).route() is None  # no replicas
    policy = CallPolicy(Mode.SNAPSHOT, read_replicas)
    route = policy.route()
    assert route is not None
    server, asked = decide(route, iter([caught_up()]), clock)
    assert server == "r1"
    assert [request.server for request in asked] == ["r1"]
    route = CallPolicy(Mode.READ, read_replicas).route()  # trusted for a second: not asked
    assert route is not None
    assert decide(route, iter([]), clock) == ("r1", [])


def test_a_replica_that_lags_is_skipped_for_the_primary() -> None:
    clock = FakeClock()
    read_replicas = replicas(clock, "r1", "r2", max_lag=5.0)
    behind = (True, 200, 100, 10.0)  # replayed less than received, 10 s old
    route = CallPolicy(Mode.READ, read_replicas).route()
    assert route is not None
    assert decide(route, iter([behind, caught_up()]), clock)[0] == "r2"
    for _ in range(2):  # either replica first: r1's lag is remembered for a second
        route = CallPolicy(Mode.READ, read_replicas).route()
        assert route is not None
        assert decide(route, iter([]), clock)[0] == "r2"
    clock.now += 1.0
    route = CallPolicy(Mode.READ, read_replicas).route()
    assert route is not None
    assert decide(route, iter([behind, behind]), clock)[0] is None  # the primary


def test_after_a_write_a_read_waits_for_a_replica_to_replay_it() -> None:
    clock = FakeClock()
    read_replicas = replicas(clock, "r1")
    writer = CallPolicy(Mode.WRITE, read_replicas)
    assert writer.route() is None
    assert writer.ended(Done(None)) == Return(None)  # a write committed
    route = CallPolicy(Mode.READ, read_replicas).route()
    assert route is not None
    answers = iter([500, caught_up(400), caught_up(500)])
    server, asked = decide(route, answers, clock)
    assert server == "r1"
    assert [type(request) for request in asked] == [Ask, Ask, Pause, Ask]
    assert [getattr(request, "server", None) for request in asked] == [None, "r1", None, "r1"]
    assert asked[2] == Pause(POLL)  # the first Ask: the primary's position
    # A second write the replica does not replay in time: the primary reads.
    assert CallPolicy(Mode.WRITE_ONE, read_replicas).ended(Begin(Mode.WRITE)) == Continue()
    route = CallPolicy(Mode.READ, read_replicas).route()
    assert route is not None
    waiting = iter([600] + [caught_up(500)] * 100)
    server, asked = decide(route, waiting, clock)
    assert server is None
    assert abs(asked.count(Pause(POLL)) - round(0.25 / POLL)) <= 1  # then it gave up


def test_a_replica_that_fails_a_read_sends_the_whole_read_to_the_primary() -> None:
    clock = FakeClock()
    read_replicas = replicas(clock, "r1")
    policy = CallPolicy(Mode.READ, read_replicas)
    policy.routed("r1")
    assert policy.ended(conflict()) == Restart(0.0)  # cancelled by recovery: no pause
    assert (policy.server, policy.mode, policy.attempt) == (None, Mode.READ, 2)
    assert read_replicas.replicas[0].down_until == 0.0  # still up
    policy = CallPolicy(Mode.SNAPSHOT, read_replicas)
    policy.routed("r1")
    assert policy.ended(Begin(Mode.SNAPSHOT)) == Continue()
    assert policy.ended(lost()) == Restart(0.0)  # not Again: the primary, afresh
    assert policy.server is None
    assert read_replicas.replicas[0].down_until == clock.now + DOWN_FOR
    policy = CallPolicy(Mode.READ, read_replicas)
    policy.routed("r1")
    assert policy.failed(lost()) == Restart(0.0)  # could not connect
    error = cancelled()
    policy.routed("r1")
    assert policy.ended(error) == Throw(error)  # the primary would fail it too


def test_a_read_on_the_primary_of_a_replicated_storage_is_retried_as_any_other() -> None:
    policy = CallPolicy(Mode.READ, replicas(FakeClock(), "r1"), draw=half)
    assert policy.ended(conflict()) == Restart(0.5 * BACKOFF)


# -- conduct: the policy's moves carried out on an operation -------------------------------

_STATEMENT: AnyQuery = Query(sa.text("SELECT 1"))
_RESULT: Any = object()  # what a fake runner sends back for a statement


def batches(count: int) -> Steps[int]:
    """A write in ``count`` transactions that runs a batch again after a transient
    failure once an earlier one committed, as pruning does."""
    written = 0
    while written < count:
        try:
            yield from execute(_STATEMENT)
        except DatabaseError as exc:
            if not exc.transient:
                raise
            yield from retry(Mode.WRITE)
            continue
        written += 1
        if written < count:
            yield from begin(Mode.WRITE)
    return written


def batches_plan(count: int) -> Plan[int]:
    return Plan(Mode.WRITE, batches(count), lambda: batches_plan(count))


def carry_out(plan: Plan[int], failures: list[bool]) -> tuple[int, list[Any]]:
    """Run ``plan`` as a runner would, its statements failing or not as ``failures`` says
    (then succeeding): its value, and the requests it made."""
    script = iter(failures)
    step = proceed(plan.steps, None)
    assert not isinstance(step, Done)
    conductor = conduct(plan, step, None, draw=half)
    requests: list[Any] = []
    try:
        request = next(conductor)
        while True:
            requests.append(request)
            if isinstance(request, Pause):
                request = conductor.send(None)
                continue
            assert isinstance(request, Transaction)
            outcome: Any = request.step
            while not isinstance(outcome, Begin | Done):
                if next(script, False):
                    outcome = conflict()
                    break
                outcome = proceed(request.steps, _RESULT)
            request = conductor.send(outcome)
    except StopIteration as done:
        return done.value, requests


def test_conduct_runs_the_first_batch_as_the_whole_call_and_a_later_one_alone() -> None:
    value, requests = carry_out(batches_plan(3), [True, False, True, True, False])
    assert value == 3
    pauses = [request.seconds for request in requests if isinstance(request, Pause)]
    assert pauses == [0.5 * BACKOFF, 0.5 * BACKOFF * 2, 0.5 * BACKOFF * 4]
    transactions = [request for request in requests if isinstance(request, Transaction)]
    assert len(transactions) == 6  # no empty transaction for a retried batch
    assert all(request.mode is Mode.WRITE for request in transactions)


def test_conduct_gives_up_on_a_batch_when_the_calls_budget_is_spent() -> None:
    with pytest.raises(DatabaseError) as raised:
        carry_out(batches_plan(3), [True, True, False] + [True] * ATTEMPTS)
    assert raised.value.attempts == ATTEMPTS
    assert f"still failing after {ATTEMPTS} attempts" in str(raised.value)


def test_conduct_hands_a_plain_value_over() -> None:
    assert carry_out(batches_plan(1), [])[0] == 1
