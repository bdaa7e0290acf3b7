"""Benchmarks: runstore against the raw drivers (sqlite3, psycopg 3) on the same schema.

Run ``python -m bench.run`` from the repository root; see ``docs/benchmarks.md``.
"""
