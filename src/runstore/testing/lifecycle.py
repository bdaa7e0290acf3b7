"""The contract for a storage's own life: used after it was closed, as a context manager,
and emptied for tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runstore import ListRunsInput
from runstore import RunsStorage
from runstore import StorageClosedError
from runstore.testing.inputs import result_input
from runstore.testing.inputs import run_input

__all__ = ["LifecycleContract"]


class LifecycleContract:
    """A storage's lifecycle: closing it, entering it, emptying it."""

    def test_dangerously_clear_all_empties_both_tables_and_keeps_working(
        self,
        storage: RunsStorage,
    ) -> None:
        run = storage.create_run(run_input())
        result = storage.add_result(result_input(run))
        storage.dangerously_clear_all()
        assert storage.get_run_by_id(run.id) is None
        assert storage.get_result_by_id(result.id) is None
        assert storage.list_runs(ListRunsInput()).pagination.total == 0
        again = storage.create_run(run_input(id=run.id))
        storage.add_result(result_input(again, id=result.id))

    def test_a_closed_storage_refuses_use(self, storage: RunsStorage) -> None:
        storage.close()
        with pytest.raises(StorageClosedError):
            storage.get_run_by_id("x")
        with pytest.raises(StorageClosedError):
            storage.create_run(run_input())

    def test_context_manager_closes(self, make_storage: Callable[..., RunsStorage]) -> None:
        storage = make_storage()
        with storage as entered:
            assert entered is storage
            entered.create_run(run_input())
        with pytest.raises(StorageClosedError):
            storage.list_runs(ListRunsInput())
