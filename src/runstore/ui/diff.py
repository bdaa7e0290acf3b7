"""Two outputs side by side, their differing lines marked.

Each output is shown as pretty JSON, cut to :data:`MAX_LINES` lines of at most
:data:`MAX_WIDTH` characters (a page holds many items: nothing on it grows with an
output's size), and the two are aligned line by line by :mod:`difflib`.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any
from typing import Literal

__all__ = ["MAX_LINES", "MAX_WIDTH", "Line", "pretty", "short", "side_by_side"]

MAX_LINES = 40
MAX_WIDTH = 200

Kind = Literal["same", "changed", "removed", "added", "empty"]


@dataclass(frozen=True)
class Line:
    baseline: str
    candidate: str
    kind: Kind


def pretty(value: Any, none: str = "-") -> str:
    """A JSON value as indented JSON (``none`` for None: an output there is none of)."""
    if value is None:
        return none
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def short(value: Any, width: int = 120) -> str:
    """A JSON value on one line, cut to ``width`` characters (``-`` for none)."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _lines(value: Any) -> list[str]:
    lines = pretty(value).splitlines() or [""]
    cut = [line if len(line) <= MAX_WIDTH else line[: MAX_WIDTH - 1] + "…" for line in lines]
    if len(cut) > MAX_LINES:
        cut = [*cut[: MAX_LINES - 1], f"… {len(cut) - MAX_LINES + 1} more lines"]
    return cut


def side_by_side(baseline: Any, candidate: Any) -> list[Line]:
    """Aligned lines of both outputs: equal ones ``same``; replaced ones ``changed``;
    a line in one only ``removed`` (the baseline's) or ``added`` (the candidate's)."""
    before, after = _lines(baseline), _lines(candidate)
    shown: list[Line] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            shown += [Line(line, line, "same") for line in before[i1:i2]]
            continue
        old, new = before[i1:i2], after[j1:j2]
        for index in range(max(len(old), len(new))):
            left = old[index] if index < len(old) else ""
            right = new[index] if index < len(new) else ""
            kind: Kind = (
                "changed"
                if index < len(old) and index < len(new)
                else ("removed" if index < len(old) else "added")
            )
            shown.append(Line(left, right, kind))
    return shown
