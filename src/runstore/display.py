"""How figures read as text -- instants, numbers, differences, p-values, shares -- the same
in the command line's tables and the viewer's pages (both use this module; it uses
neither)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

__all__ = ["moment", "number", "p_value", "percent", "signed"]


def moment(value: datetime | None) -> str:
    """A timestamp in UTC to the second, or ``-``."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def number(value: float | int | None, digits: int = 3) -> str:
    """A figure with at most ``digits`` decimals (trailing zeros dropped), or ``-``."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def signed(value: float | None, digits: int = 3) -> str:
    """A difference, with its sign (``+0.25``, ``-3``), or ``-``."""
    if value is None:
        return "-"
    text = number(value, digits)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def p_value(value: float | None) -> str:
    """A p-value to three decimals, ``<0.001`` below that, or ``-``."""
    if value is None:
        return "-"
    return "<0.001" if value < 0.0005 else number(value, 3)


def percent(share: float) -> str:
    """A share as a percentage, without trailing zeros (``0.95``: ``95%``)."""
    return f"{share * 100:.10g}%"
