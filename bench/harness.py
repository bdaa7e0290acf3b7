"""Timing (warm-up, interleaved blocks, medians) and the statements runstore sends."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Jsonb

Call = Callable[[], object]
Prepare = Callable[[], Call]
"""Prepares one sample (not timed: a fresh run, ids, encoded rows) and returns its call."""


def fixed(call: Call) -> Prepare:
    return lambda: call


def compare(
    runstore: Prepare, raw: Prepare, *, samples: int, warmup: int, rounds: int = 4
) -> tuple[float, float]:
    """Median seconds of each side's call, after ``warmup`` calls of each.

    Samples are taken in ``rounds`` alternating blocks (runstore then raw, then raw then
    runstore, ...) so that drift -- a checkpoint, a cache warming up -- falls on both sides
    alike. Garbage collection stays on: what it costs is part of each side's cost.
    """
    for _ in range(warmup):
        runstore()()
        raw()()
    sides = (runstore, raw)
    times: tuple[list[float], list[float]] = ([], [])
    rounds = max(1, min(rounds, samples))
    for number in range(rounds):
        gc.collect()
        for side in (0, 1) if number % 2 == 0 else (1, 0):
            for _ in range(samples // rounds + (number < samples % rounds)):
                call = sides[side]()
                started = time.perf_counter()
                call()
                times[side].append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement as SQLAlchemy handed it to the driver, with its parameters."""

    sql: str
    params: Any
    many: bool

    def __str__(self) -> str:
        text = " ".join(self.sql.split())
        return f"{text}  [executemany, {len(self.params)} rows]" if self.many else text


@contextmanager
def capture(engine: sa.Engine) -> Iterator[list[Statement]]:
    """Every statement sent through ``engine`` meanwhile (``before_cursor_execute``)."""
    caught: list[Statement] = []

    def listen(_c: Any, _k: Any, sql: str, params: Any, _x: Any, many: bool) -> None:
        caught.append(Statement(sql, params, many))

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield caught
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)


def _plain(value: Any) -> Any:
    if isinstance(value, Jsonb):
        return ("jsonb", value.obj)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return [_plain(item) for item in value] if isinstance(value, list | tuple) else value


def check_params(statement: Statement, params: Any) -> None:
    """The raw side's parameters for runstore's own call are exactly what runstore sent."""
    sent = statement.params[0] if statement.many else statement.params
    assert _plain(sent) == _plain(params), (statement.sql, sent, params)
