"""Timing: warm-up, interleaved samples, medians."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Call", "Paired", "Prepare", "compare", "fixed"]

Call = Callable[[], object]
"""The measured call."""
Prepare = Callable[[], Call]
"""Prepares one sample (not measured: fresh ids, input rows) and returns its call."""


@dataclass(frozen=True, slots=True)
class Paired:
    """Medians in seconds of one operation through runstore and through the raw driver."""

    runstore: float
    raw: float
    samples: int


def fixed(call: Call) -> Prepare:
    """For calls that need no preparation: the same call every sample."""
    return lambda: call


def _time(prepare: Prepare, count: int, into: list[float]) -> None:
    clock = time.perf_counter
    for _ in range(count):
        call = prepare()
        started = clock()
        call()
        into.append(clock() - started)


def compare(
    runstore: Prepare, raw: Prepare, *, samples: int, warmup: int, rounds: int = 4
) -> Paired:
    """Median duration of each side's call, after ``warmup`` calls of each.

    The samples are taken in ``rounds`` alternating blocks (runstore then raw, then raw then
    runstore, ...) so that drift in the machine or the database -- a checkpoint, a cache
    warming up -- falls on both sides alike. Garbage collection stays on: what it costs is
    part of what each side costs.
    """
    for _ in range(warmup):
        runstore()()
        raw()()
    rounds = max(1, min(rounds, samples))
    runstore_times: list[float] = []
    raw_times: list[float] = []
    for number in range(rounds):
        count = samples // rounds + (1 if number < samples % rounds else 0)
        gc.collect()
        if number % 2 == 0:
            _time(runstore, count, runstore_times)
            _time(raw, count, raw_times)
        else:
            _time(raw, count, raw_times)
            _time(runstore, count, runstore_times)
    return Paired(
        runstore=statistics.median(runstore_times),
        raw=statistics.median(raw_times),
        samples=samples,
    )
