"""Write the asyncio contract's docstrings out of the blocking contract's.

Each method of ``AsyncRunsStorage`` (``src/runstore/async_base.py``) carries, in its
source, the docstring of the method of the same name on ``RunsStorage``
(``src/runstore/base.py``), so that ``help()``, editors and type checkers show it. A
method whose asyncio behaviour needs words of its own keeps its docstring when it starts
with "As :meth:`runstore.base.RunsStorage.NAME`".

    python3 .ci/async_docstrings.py          # names each stale docstring; exit 1 if any
    python3 .ci/async_docstrings.py --write  # writes them

``tests/test_async_docstrings.py`` fails while one is stale.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "runstore"
BLOCKING = SOURCE / "base.py"
ASYNCHRONOUS = SOURCE / "async_base.py"
OWN_TEXT = "As :meth:`runstore.base.RunsStorage.{name}`"
"""How an asyncio method's docstring of its own starts."""

_Method = ast.FunctionDef | ast.AsyncFunctionDef


def methods(source: str, class_name: str) -> dict[str, _Method]:
    """The methods of ``class_name`` in ``source``, by name."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                item.name: item
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            }
    raise LookupError(f"no class {class_name}")


def docstring_lines(method: _Method) -> tuple[int, int] | None:
    """The lines (from, to: 0-based, end excluded) of ``method``'s docstring, if it has one."""
    first = method.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        assert first.end_lineno is not None
        return first.lineno - 1, first.end_lineno
    return None


def written(blocking_source: str, async_source: str) -> tuple[str, list[str]]:
    """``async_source`` with each docstring the blocking contract's, and the names of the
    methods whose docstring that changed."""
    blocking_lines = blocking_source.splitlines(keepends=True)
    lines = async_source.splitlines(keepends=True)
    blocking = methods(blocking_source, "RunsStorage")
    edits: list[tuple[int, int, list[str], str]] = []
    for name, method in methods(async_source, "AsyncRunsStorage").items():
        twin = blocking.get(name)
        wanted_at = None if twin is None else docstring_lines(twin)
        if wanted_at is None:
            continue
        wanted = blocking_lines[wanted_at[0] : wanted_at[1]]
        present_at = docstring_lines(method)
        if present_at is None:
            start = end = method.body[0].lineno - 1
        else:
            start, end = present_at
            own = ast.get_docstring(method, clean=True) or ""
            if own.startswith(OWN_TEXT.format(name=name)):
                continue
        if lines[start:end] != wanted:
            edits.append((start, end, wanted, name))
    for start, end, wanted, _ in sorted(edits, reverse=True):
        lines[start:end] = wanted
    return "".join(lines), sorted(name for *_, name in edits)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the docstrings")
    arguments = parser.parse_args()
    text, stale = written(BLOCKING.read_text(), ASYNCHRONOUS.read_text())
    if arguments.write:
        if stale:
            ASYNCHRONOUS.write_text(text)
        print(f"{ASYNCHRONOUS.name}: {len(stale)} docstring(s) written {stale}")
        return 0
    for name in stale:
        print(f"{ASYNCHRONOUS.name}: AsyncRunsStorage.{name}'s docstring is not RunsStorage's")
    if stale:
        print("run: python3 .ci/async_docstrings.py --write")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
