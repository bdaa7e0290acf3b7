"""The asyncio contract's docstrings are the blocking contract's, written in its source.

``.ci/async_docstrings.py --write`` writes them; these tests fail while one is stale.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

from runstore import AsyncRunsStorage
from runstore import RunsStorage

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "async_docstrings.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("async_docstrings", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_async_method_is_documented_as_its_blocking_twin() -> None:
    own = _script().OWN_TEXT
    compared = 0
    for name, member in vars(AsyncRunsStorage).items():
        twin = vars(RunsStorage).get(name)
        if not inspect.isfunction(member) or twin is None or twin.__doc__ is None:
            continue
        if member.__doc__ is not None and inspect.cleandoc(member.__doc__).startswith(
            own.format(name=name)
        ):
            continue  # what differs for asyncio, said in its own words
        assert member.__doc__ == twin.__doc__, f"AsyncRunsStorage.{name}"
        compared += 1
    assert compared >= 30


def test_the_source_holds_the_docstrings_the_script_writes() -> None:
    script = _script()
    text = script.ASYNCHRONOUS.read_text()
    written, stale = script.written(script.BLOCKING.read_text(), text)
    assert stale == [], "run: python3 .ci/async_docstrings.py --write"
    assert written == text


def test_the_script_writes_a_missing_or_stale_docstring() -> None:
    script = _script()
    blocking = '''class RunsStorage:
    def get(self) -> None:
        """One line."""

    def put(self) -> None:
        """Two
        lines."""

    def mine(self) -> None:
        """Blocking words."""
'''
    asynchronous = '''class AsyncRunsStorage:
    async def get(self) -> None:
        return None

    async def put(self) -> None:
        """Stale."""
        return None

    async def mine(self) -> None:
        """As :meth:`runstore.base.RunsStorage.mine`, awaited."""
'''
    written, stale = script.written(blocking, asynchronous)
    assert stale == ["get", "put"]
    expected = '''class AsyncRunsStorage:
    async def get(self) -> None:
        """One line."""
        return None

    async def put(self) -> None:
        """Two
        lines."""
        return None

    async def mine(self) -> None:
        """As :meth:`runstore.base.RunsStorage.mine`, awaited."""
'''
    assert written == expected
    assert script.written(blocking, written) == (written, [])
