"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from pathlib import Path

__all__ = ["describe_machine"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kilobytes = int(line.split()[1])
                return f"{kilobytes / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                name = line.split("=", 1)[1].strip().strip('"')
                return f"{name} (Linux {platform.release()})"
    except OSError:
        pass
    return platform.platform()


def _revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (src/ modified)" if dirty else head


def describe_machine(postgres: dict[str, str] | None) -> list[tuple[str, str]]:
    """(label, value) pairs: hardware, OS, interpreter, databases and library versions."""
    import psycopg
    import pydantic
    import sqlalchemy

    rows = [
        ("CPU", _cpu_model()),
        ("Cores", str(os.cpu_count())),
        ("RAM", _memory()),
        ("OS", _os_name()),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("SQLite", sqlite3.sqlite_version),
    ]
    if postgres:
        rows.append(("PostgreSQL", postgres.pop("server_version", "unknown")))
        settings = ", ".join(f"{name}={value}" for name, value in postgres.items())
        rows.append(("PostgreSQL settings", settings))
    rows += [
        ("SQLAlchemy", sqlalchemy.__version__),
        ("psycopg", psycopg.__version__),
        ("pydantic", pydantic.VERSION),
        ("runstore revision", _revision()),
    ]
    return rows
