"""The RunsStorage contract as a test suite, for runstore's adapters and anyone else's.

Subclass :class:`RunsStorageContract` in a pytest module and give it a
``storage_factory`` fixture: a callable that returns a new, *empty* storage each time,
passing on the keyword arguments it is given (``clock=`` at least; see
:class:`~runstore.base.RunsStorage`). Every test of the contract then runs against it::

    import pytest
    from runstore.testing import RunsStorageContract

    class TestMyStorage(RunsStorageContract):
        @pytest.fixture
        def storage_factory(self, tmp_path):
            return lambda **options: MyStorage(tmp_path / "runs", **options)

runstore's own adapters run exactly this suite (memory, a SQLite file, SQLite in memory,
Postgres). It needs pytest and hypothesis: ``pip install "runstore[testing]"``.
:mod:`runstore.testing.inputs` has the inputs the suite uses, for tests of your own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

# Rewrite the suite's asserts, as pytest does for test modules, so failures explain themselves.
pytest.register_assert_rewrite(
    "runstore.testing.answers",
    "runstore.testing.batches_and_lists",
    "runstore.testing.exports",
    "runstore.testing.fuzz",
    "runstore.testing.lifecycle",
    "runstore.testing.properties",
    "runstore.testing.refusals",
    "runstore.testing.runs_and_results",
)

from runstore.base import RunsStorage
from runstore.testing.answers import AnswersContract
from runstore.testing.batches_and_lists import BatchesAndListsContract
from runstore.testing.exports import ExportsContract
from runstore.testing.fuzz import FuzzContract
from runstore.testing.lifecycle import LifecycleContract
from runstore.testing.properties import PropertiesContract
from runstore.testing.refusals import RefusalsContract
from runstore.testing.runs_and_results import RunsAndResultsContract

__all__ = ["RunsStorageContract", "StorageFactory"]

StorageFactory = Callable[..., RunsStorage]
"""Makes a new, empty storage; keyword arguments go to the storage (``clock=``)."""


class RunsStorageContract(
    RunsAndResultsContract,
    BatchesAndListsContract,
    AnswersContract,
    ExportsContract,
    LifecycleContract,
    RefusalsContract,
    PropertiesContract,
    FuzzContract,
):
    """Every test of the RunsStorage contract; provide a ``storage_factory`` fixture."""

    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        raise NotImplementedError(
            "define a storage_factory fixture that returns a new, empty storage "
            "(see runstore.testing)"
        )

    @pytest.fixture
    def make_storage(self, storage_factory: StorageFactory) -> Iterator[StorageFactory]:
        """``storage_factory``, with every storage it made closed after the test."""
        made: list[RunsStorage] = []

        def make(**options: object) -> RunsStorage:
            storage = storage_factory(**options)
            made.append(storage)
            return storage

        yield make
        for storage in made:
            storage.close()

    @pytest.fixture
    def storage(self, make_storage: StorageFactory) -> RunsStorage:
        """A new, empty storage with the system clock."""
        return make_storage()
