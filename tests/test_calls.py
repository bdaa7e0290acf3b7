"""The table of calls, held against each adapter's table and both contracts."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import runstore
from runstore import AsyncRunsStorage
from runstore import RunsStorage
from runstore import calls
from runstore import memory
from runstore.sql import dispatch

SOURCE = Path(runstore.__file__).parent


def _public(contract: type) -> set[str]:
    return {
        name
        for name, member in vars(contract).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


def test_every_adapter_has_an_implementation_of_every_call() -> None:
    every = set(calls.EVERY_CALL)
    assert len(every) == 26
    assert set(dispatch.PLANS) | set(dispatch.WALKS) == every
    assert set(memory._CALLS) | set(memory._STREAMS) == every
    streams = {call for call in every if issubclass(call, calls.Stream)}
    assert set(dispatch.WALKS) == set(memory._STREAMS) == streams


def test_both_contracts_have_the_same_public_calls() -> None:
    lifecycle = {"init", "close"}
    assert _public(RunsStorage) - lifecycle == _public(AsyncRunsStorage) - lifecycle
    for name in _public(RunsStorage):
        blocking = inspect.signature(getattr(RunsStorage, name))
        awaited = inspect.signature(getattr(AsyncRunsStorage, name))
        assert list(blocking.parameters) == list(awaited.parameters), name
        for parameter in blocking.parameters.values():
            assert parameter.default == awaited.parameters[parameter.name].default, name


def test_every_call_record_is_made_by_a_contract_method() -> None:
    """Each record is the checked arguments of a public call: the blocking contract
    makes every one (and the async contract the same)."""
    for contract in ("base.py", "async_base.py"):
        text = (SOURCE / contract).read_text()
        made = set(re.findall(r"calls\.(\w+)(?:\.checked)?\(", text))
        assert made == {call.__name__ for call in calls.EVERY_CALL}, contract


def test_the_api_is_written_out_in_the_contracts_only() -> None:
    """A public call's signature stands in the two contracts; adapters implement the
    hooks, under the calls' own names with a leading underscore. (The command line has
    commands of the same names.)"""
    sources = [path for path in SOURCE.rglob("*.py") if path.parent.name != "cli"]
    for name in _public(RunsStorage) - {"init", "close"}:
        written = [
            path.relative_to(SOURCE).as_posix()
            for path in sources
            if re.search(rf"^\s*(async )?def {name}\(", path.read_text(), re.MULTILINE)
        ]
        assert sorted(written) == ["async_base.py", "base.py"], (name, written)
