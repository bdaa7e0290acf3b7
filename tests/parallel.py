"""Workers of a test, all at once: threads whose failures are collected and reported, and
spawned processes (a fresh interpreter each, as separate workers would be) whose exit
codes are checked."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any


def in_threads(target: Callable[..., object], arguments: Sequence[tuple[Any, ...]]) -> None:
    """``target(*each)`` for each of ``arguments``, each in a thread, all at once; fails
    with every exception the threads raised."""
    errors: list[BaseException] = []

    def run(*each: Any) -> None:
        try:
            target(*each)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=each) for each in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], errors


def in_processes(
    target: Callable[..., object], arguments: Sequence[tuple[Any, ...]], timeout: float = 300
) -> None:
    """``target(*each)`` for each of ``arguments``, each in a spawned process, all at
    once; fails unless every process exits 0 within ``timeout`` seconds."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=each) for each in arguments]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=timeout)
    assert [process.exitcode for process in processes] == [0] * len(processes)
