"""The results table, the targets, and docs/benchmarks.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["Measurement", "Target", "render_document", "render_table"]

Unit = Literal["us", "ms", "s", "MB"]
_SCALE: dict[Unit, float] = {"us": 1e6, "ms": 1e3, "s": 1.0, "MB": 1.0 / (1024 * 1024)}
_LABEL: dict[Unit, str] = {"us": "µs", "ms": "ms", "s": "s", "MB": "MB"}


@dataclass(frozen=True, slots=True)
class Target:
    """A goal for one row.

    ``kind`` is ``ratio`` (runstore ÷ raw at most ``limit``), ``relative`` (runstore at
    most ``limit`` times the runstore value of the row named ``relative_to``), or
    ``below`` (the runstore value under ``limit`` in the row's unit).
    """

    kind: Literal["ratio", "relative", "below"]
    limit: float
    relative_to: str = ""
    relative_label: str = ""
    """How the target cell names ``relative_to`` (short)."""


@dataclass(slots=True)
class Measurement:
    """One row of the table. Values are seconds (bytes for ``MB``); None when not measured."""

    operation: str
    backend: str
    unit: Unit
    runstore: float | None
    raw: float | None
    target: Target | None = None
    note: str = ""
    details: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.runstore is None or self.raw is None or self.raw == 0:
            return None
        return self.runstore / self.raw


def _number(value: float | None, unit: Unit) -> str:
    if value is None:
        return "n/a"
    scaled = value * _SCALE[unit]
    digits = 0 if scaled >= 100 else 1 if scaled >= 10 else 2
    return f"{scaled:,.{digits}f} {_LABEL[unit]}"


def _target_cell(row: Measurement, rows: list[Measurement]) -> str:
    target = row.target
    if target is None:
        return "—"
    if target.kind == "ratio":
        goal = f"≤ {target.limit:g}x raw"
        value = row.ratio
    elif target.kind == "relative":
        goal = f"≤ {target.limit:g}x {target.relative_label or target.relative_to}"
        base = next(
            (
                other.runstore
                for other in rows
                if other.operation == target.relative_to and other.backend == row.backend
            ),
            None,
        )
        value = None if base is None or row.runstore is None else row.runstore / base
        if value is not None:
            goal += f" (is {value:.2f}x)"
    else:
        goal = f"< {target.limit:g} {_LABEL[row.unit]}"
        value = None if row.runstore is None else row.runstore * _SCALE[row.unit]
    if value is None:
        return f"{goal}: n/a"
    return f"{goal}: met" if value <= target.limit else f"{goal}: **missed**"


def render_table(rows: list[Measurement]) -> str:
    """The markdown table of medians, ratios and targets."""
    lines = [
        "| operation | backend | runstore median | raw median | ratio | target |",
        "|---|---|--:|--:|--:|---|",
    ]
    for row in rows:
        ratio = "n/a" if row.ratio is None else f"{row.ratio:.2f}x"
        operation = row.operation + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {operation} | {row.backend} | {_number(row.runstore, row.unit)} "
            f"| {_number(row.raw, row.unit)} | {ratio} | {_target_cell(row, rows)} |"
        )
    return "\n".join(lines)


ANALYSIS = Path(__file__).with_name("analysis.md")
"""Where the time goes: written by hand from profiles, kept beside the code it explains."""


def render_document(
    *,
    rows: list[Measurement],
    machine: list[tuple[str, str]],
    date: str,
    command: str,
    mode: str,
    duration: str,
    method: list[str],
    remarks: list[str],
) -> str:
    """docs/benchmarks.md."""
    machine_lines = "\n".join(f"| {label} | {value} |" for label, value in machine)
    details = [
        f"- **{row.operation}, {row.backend}**: {detail}" for row in rows for detail in row.details
    ]
    parts = [
        "# Benchmarks",
        "",
        "runstore against the raw drivers it runs on — `sqlite3` and psycopg 3 — doing the "
        "same work: the same statements, settings, value encoding, transaction boundaries and "
        "rows, on a SQLite file and on Postgres. The ratio is runstore's median divided by the "
        "raw driver's, so it is what runstore costs on top of the database.",
        "",
        "## How to run",
        "",
        "From the repository root, with the development install (`pip install -e '.[dev]'`) "
        "and a Postgres server:",
        "",
        "```sh",
        ".venv/bin/python -m bench.run                    # full run; writes this file",
        ".venv/bin/python -m bench.run --quick            # smoke run: fewer rows and samples",
        ".venv/bin/python -m bench.run --only sqlite      # or --only postgres",
        ".venv/bin/python -m bench.run --output /tmp/b.md --postgres-url postgresql+psycopg://…",
        "```",
        "",
        "Postgres comes from `--postgres-url` (default: `RUNSTORE_BENCH_POSTGRES_URL`, else "
        "`postgresql+psycopg://postgres@127.0.0.1:5432/test`); the benchmark creates a "
        "database `runstore_bench_*` there and drops it at the end. SQLite uses a file in a "
        "temporary directory. Nothing else is touched.",
        "",
        "## What is measured",
        "",
        *method,
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        machine_lines,
        "",
        "## Results",
        "",
        f"Measured {date}, {mode}, with `{command}`; the whole run took {duration}.",
        "",
        render_table(rows),
        "",
        *([*details, ""] if details else []),
        *([*remarks, ""] if remarks else []),
        "## Targets",
        "",
        "- Postgres single `add_result`: at most 1.3x raw; SQLite: at most 2.5x raw.",
        "- `add_results`, per row: at most 1.5x raw on both.",
        "- First `list_results` page: at most 1.5x raw on both.",
        "- `list_results` page at 90% depth by cursor: at most 1.2x runstore's own first "
        "page (keyset pagination must not slow down with depth).",
        "- Iterating 1,000,000 results: peak RSS of the iterating process under 150 MB.",
        "",
        "## Where the time goes",
        "",
        ANALYSIS.read_text(encoding="utf-8").strip(),
        "",
    ]
    return "\n".join(parts)
