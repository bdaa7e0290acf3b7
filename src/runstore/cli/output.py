"""How the ``runstore`` command prints: aligned tables for people, JSON for machines."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import click

from runstore.display import moment
from runstore.display import number
from runstore.display import p_value
from runstore.display import percent
from runstore.display import signed

__all__ = [
    "COST_DIGITS",
    "SPARKS",
    "SPARK_NOISE",
    "echo_json",
    "echo_json_line",
    "echo_pairs",
    "echo_table",
    "finite",
    "moment",
    "number",
    "one_line",
    "p_value",
    "percent",
    "signed",
    "sparkline",
]

COST_DIGITS = 6
"""Decimals of a cost as printed: costs are often fractions of a cent."""


def finite(value: Any) -> Any:
    """``value`` (JSON-ready) with each float that is not finite -- a ratio to a baseline
    of 0 -- as None: JSON has no infinity, and a parser refuses Python's ``Infinity``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def echo_json(value: Any) -> None:
    """Print ``value`` (JSON-ready: a ``model_dump(mode="json")``) as indented JSON, a
    float that is not finite as null (see :func:`finite`)."""
    click.echo(json.dumps(finite(value), indent=2, ensure_ascii=False, allow_nan=False))


def echo_json_line(value: Any) -> None:
    """Print ``value`` (JSON-ready) as JSON on one line, a float that is not finite as
    null: for a stream of records, a JSON object a line."""
    click.echo(json.dumps(finite(value), ensure_ascii=False, allow_nan=False))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: int = 0) -> None:
    """Print rows under their headers in aligned columns, two spaces apart.

    The last ``right`` columns (numbers) are aligned to the right, the others to the left.
    """
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    first_right = len(headers) - right

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if column >= first_right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    click.echo(line(headers))
    for row in rows:
        click.echo(line(row))


def echo_pairs(pairs: Sequence[tuple[str, str]]) -> None:
    """Print ``label  value`` lines, the values aligned; a value of several lines goes on
    in the value's column."""
    width = max((len(label) for label, _ in pairs), default=0)
    for label, value in pairs:
        first, *rest = value.splitlines() or [""]
        click.echo(f"{label.ljust(width)}  {first}".rstrip())
        for line in rest:
            click.echo(f"{'':{width}}  {line}".rstrip())


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(text: str) -> str:
    """``text`` for a table's cell: each run of control characters (line breaks, tabs) as
    one space, so that a row stays one line."""
    return _CONTROL.sub(" ", text)


SPARKS = "▁▂▃▄▅▆▇█"
"""A sparkline's bars, lowest to highest."""

SPARK_NOISE = 1e-9
"""Values closer than this share of their magnitude draw as equal in a sparkline: a
mean or a sum rounds differently from one run to the next (0.44 and
0.43999999999999995), and a drift the table cannot show is none."""


def sparkline(values: Sequence[float | None]) -> str:
    """``values`` as bars, one character each, in order: the range from the least value
    to the greatest cut into eight equal parts, the least value the lowest bar and the
    greatest the highest -- so that a drift shows at a glance.

    A missing value (None), or one that is not finite, is a space. Where every value is
    the same (within :data:`SPARK_NOISE`), each is the middle bar ▄. Any finite
    floats will do, the greatest and least ones too: their span is taken in halves where
    it would overflow.
    """
    shown = [value for value in values if value is not None and math.isfinite(value)]
    if not shown:
        return " " * len(values)
    low, high = min(shown), max(shown)
    span = high - low
    halved = not math.isfinite(span)  # from near -max to near +max: halves do not overflow
    if halved:
        span = high / 2 - low / 2
    flat = not halved and span <= SPARK_NOISE * max(abs(low), abs(high))
    bars = []
    for value in values:
        if value is None or not math.isfinite(value):
            bars.append(" ")
        elif flat:
            bars.append(SPARKS[3])
        else:
            offset = value / 2 - low / 2 if halved else value - low
            level = min(int(offset / span * len(SPARKS)), len(SPARKS) - 1)
            bars.append(SPARKS[level])
    return "".join(bars)
