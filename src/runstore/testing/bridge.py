"""An asyncio storage behind the blocking API, so the one contract suite proves both.

:class:`BlockingRunsStorage` stands for a :class:`~runstore.base.RunsStorage`: each public
method of the :class:`~runstore.async_base.AsyncRunsStorage` it wraps -- whatever the
method, taken by name, with the arguments given -- runs on an event loop of its own, in a
thread of its own, and is waited for; what an ``iter_*`` method returns (an async
iterator) is pulled one item at a time. The async methods themselves are what the suite
exercises, their signatures and checks included. The contract suite then runs unchanged
against any async adapter::

    class TestMyAsyncStorage(RunsStorageContract):
        @pytest.fixture
        def storage_factory(self):
            return lambda **options: BlockingRunsStorage(MyAsyncStorage(**options))
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Iterator
from typing import Any
from typing import Self
from typing import TypeVar

from runstore.async_base import AsyncRunsStorage

__all__ = ["BlockingRunsStorage"]

_T = TypeVar("_T")


class BlockingRunsStorage:
    """The blocking contract, kept by an asyncio storage running on a loop of its own."""

    def __init__(self, storage: AsyncRunsStorage) -> None:
        self.storage = storage
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    def __repr__(self) -> str:
        return f"BlockingRunsStorage({self.storage!r})"

    def __getattr__(self, name: str) -> Any:
        """The async storage's public method ``name``, made blocking."""
        method = getattr(self.storage, name)
        if name.startswith("_") or not callable(method):
            return method

        def blocking(*args: Any, **kwargs: Any) -> Any:
            returned = method(*args, **kwargs)  # its own checks raise here, at once
            if inspect.isawaitable(returned):
                return self._wait(_awaited(returned))
            if isinstance(returned, AsyncIterator):
                return self._pull(returned)
            return returned

        blocking.__name__ = name
        return blocking

    def __enter__(self) -> Self:
        self.init()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def init(self) -> None:
        self._wait(self.storage.init())

    def close(self) -> None:
        if self._stopped:
            return
        try:
            self._wait(self.storage.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            self._stopped = True

    def on_loop(self, call: Coroutine[Any, Any, _T]) -> _T:
        """Await ``call`` on the storage's own loop and return what it returns: for a test
        that reaches past the public API, e.g. to the connections of the storage's
        engine, which belong to that loop."""
        return self._wait(call)

    def _wait(self, call: Coroutine[Any, Any, _T]) -> _T:
        if self._stopped:  # closed: the storage refuses every call, on any loop
            return asyncio.run(call)
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def _pull(self, items: AsyncIterator[_T]) -> Iterator[_T]:
        try:
            while True:
                try:
                    yield self._wait(_next(items))
                except StopAsyncIteration:
                    return
        finally:  # also when the caller stops early
            close: Callable[[], Coroutine[Any, Any, None]] | None = getattr(items, "aclose", None)
            if close is not None and not self._stopped:
                self._wait(close())


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def _next(items: AsyncIterator[_T]) -> _T:
    return await anext(items)
