"""The results tables and docs/benchmarks.md, whose prose is ``bench/template.md``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Literal

Unit = Literal["us", "ms", "s", "MB"]
_SCALE: dict[Unit, float] = {"us": 1e6, "ms": 1e3, "s": 1.0, "MB": 1.0 / 2**20}
_LABEL: dict[Unit, str] = {"us": "µs", "ms": "ms", "s": "s", "MB": "MB"}
HERE = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class Target:
    """``ratio``: runstore ÷ raw at most ``limit``; ``relative``: runstore at most ``limit``
    times runstore's value in the row ``relative_to``; ``below``: under ``limit`` units."""

    kind: Literal["ratio", "relative", "below"]
    limit: float
    relative_to: str = ""
    relative_name: str = "runstore's first page"
    """How the target cell names the row ``relative_to``."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One row of the results table: medians in seconds (bytes for ``MB``)."""

    operation: str
    backend: str
    unit: Unit
    runstore: float
    raw: float
    target: Target | None = None
    details: str = ""

    @property
    def ratio(self) -> float:
        return self.runstore / self.raw if self.raw else math.inf

    def cells(self) -> str:
        ours, theirs = _number(self.runstore, self.unit), _number(self.raw, self.unit)
        return f"runstore {ours}, raw {theirs}, {self.ratio:.2f}x"


@dataclass(frozen=True, slots=True)
class PeerRow:
    operation: str
    runstore: float
    peer: float


def _number(value: float, unit: Unit) -> str:
    scaled = value * _SCALE[unit]
    digits = 0 if scaled >= 100 else 1 if scaled >= 10 else 2
    return f"{scaled:,.{digits}f} {_LABEL[unit]}"


def _target_cell(row: Measurement, rows: list[Measurement]) -> str:
    target = row.target
    if target is None:
        return "report"
    if target.kind == "ratio":
        goal, value = f"≤ {target.limit:g}x raw", row.ratio
    elif target.kind == "relative":
        (base,) = [
            r.runstore
            for r in rows
            if (r.operation, r.backend) == (target.relative_to, row.backend)
        ]
        value = row.runstore / base
        goal = f"≤ {target.limit:g}x {target.relative_name} (is {value:.2f}x)"
    else:
        goal, value = f"< {target.limit:g} {_LABEL[row.unit]}", row.runstore * _SCALE[row.unit]
    return f"{goal}: met" if value <= target.limit else f"{goal}: **missed**"


def render_table(rows: list[Measurement]) -> str:
    lines = ["| operation | backend | runstore median | raw median | ratio | target |"]
    lines.append("|---|---|--:|--:|--:|---|")
    for row in rows:
        lines.append(
            f"| {row.operation} | {row.backend} | {_number(row.runstore, row.unit)} "
            f"| {_number(row.raw, row.unit)} | {row.ratio:.2f}x | {_target_cell(row, rows)} |"
        )
    return "\n".join(lines)


PEER_TARGET = 0.9
"""Every call measured against the peer: at most this share of its time."""


def render_peer(rows: list[PeerRow]) -> str:
    lines = ["| operation (Postgres) | runstore median | peer median | runstore ÷ peer | target |"]
    lines.append("|---|--:|--:|--:|---|")
    for row in rows:
        unit: Unit = "ms" if max(row.runstore, row.peer) >= 1e-3 else "us"
        ratio = row.runstore / row.peer
        verdict = "met" if ratio <= PEER_TARGET else "missed"
        lines.append(
            f"| {row.operation} | {_number(row.runstore, unit)} | {_number(row.peer, unit)} "
            f"| {ratio:.2f}x | ≤ {PEER_TARGET}x: {verdict} |"
        )
    return "\n".join(lines)


def render_document(rows: list[Measurement], machine: list[tuple[str, str]], **fields: Any) -> str:
    """docs/benchmarks.md: ``bench/template.md`` filled in, with ``bench/analysis.md``."""
    details = [
        f"- **{row.operation}, {row.backend}**: {row.details}" for row in rows if row.details
    ]
    return (
        (HERE / "template.md")
        .read_text(encoding="utf-8")
        .format(
            machine="\n".join(f"| {label} | {value} |" for label, value in machine),
            table=render_table(rows),
            details="\n".join(details),
            analysis=(HERE / "analysis.md").read_text(encoding="utf-8").strip(),
            **fields,
        )
    )
