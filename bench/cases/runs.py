"""create_run and get_run_by_id: one statement each, in autocommit, on both sides."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

from bench.backends import Backend
from bench.data import RUN_KEYS
from bench.data import check_read_back
from bench.data import encode
from bench.data import new_id
from bench.data import run_fields
from bench.harness import Call
from bench.harness import check_params
from bench.harness import fixed
from bench.report import Target
from runstore import CreateRunInput

CREATE, GET = "create_run", "get_run_by_id"


def measure(b: Backend) -> None:
    storage = b.storage
    run, (insert,) = b.caught(CREATE, lambda s: s.create_run(CreateRunInput(**run_fields())))
    check_params(insert, b.bind(RUN_KEYS, encode(b.dialect, run.model_dump(), run=True)))
    b.show_raw(insert.sql)

    def raw_run() -> tuple[dict[str, Any], Any]:
        now = datetime.now(UTC)
        fields = run_fields() | {"id": new_id(), "status": "pending", "created_at": now}
        fields |= {"succeeded_count": 0, "failed_count": 0, "started_at": None}
        fields |= {"completed_at": None, "updated_at": now, "result_count": 0}
        fields |= {"description": None, "tags": ()}
        return fields, b.bind(RUN_KEYS, encode(b.dialect, fields, run=True))

    def raw_create() -> Call:
        params = raw_run()[1]
        return lambda: b.raw.execute(insert.sql, params)

    fields, params = raw_run()
    b.raw.execute(insert.sql, params)
    check_read_back(storage.get_run_by_id(fields["id"]), fields)
    b.measure(CREATE, fixed(lambda: storage.create_run(CreateRunInput(**run_fields()))), raw_create)

    found, (select,) = b.caught(GET, lambda s: s.get_run_by_id(run.id))
    assert found == run
    params = b.bind(("run_id",), {"run_id": run.id})
    check_params(select, params)
    b.show_raw(select.sql)
    b.measure(
        GET,
        fixed(lambda: storage.get_run_by_id(run.id)),
        fixed(lambda: b.raw.execute(select.sql, params).fetchone()),
        target=Target("ratio", 1.5 if b.postgres else 6),
    )
