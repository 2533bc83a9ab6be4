"""What the two SQL backends (SQLite, PostgreSQL) share: the column lists of their rows, the
upsert statement, and the decoding of a row into a Family or Task (tensors from float32 blobs)."""

from __future__ import annotations

import json

from .artifacts import Family, Task
from .blobs import from_blob

FAMILY_COLS = "name, l, d, fingerprint, created_at, source, seq, shared"
TASK_COLS = "name, family, rank, l, d, created_at, source, seq, u, v"
TASK_INFO_COLS = "name, family, rank, l, d, created_at, source, seq"


def upsert(table: str, cols: str, key: str, mark: str) -> str:
    """INSERT of ``cols`` that replaces the other columns of an existing row with the same ``key``;
    ``mark`` is the driver's parameter marker (``?`` for sqlite3, ``%s`` for psycopg)."""
    names = [c.strip() for c in cols.split(",")]
    keys = {k.strip() for k in key.split(",")}
    updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in keys)
    marks = ", ".join([mark] * len(names))
    return f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET {updates}"


def family_from_row(row: tuple) -> Family:
    """A ``FAMILY_COLS`` row as a Family."""
    name, l, d, fingerprint, created_at, source, _seq, shared = row
    return Family(name, from_blob(shared, l, d, f"family {name!r}"), json.loads(fingerprint), created_at, source)


def task_from_row(row: tuple) -> Task:
    """A ``TASK_COLS`` row as a Task."""
    name, family, rank, l, d, created_at, source, _seq, u, v = row
    what = f"task {name!r}"
    return Task(
        name, family, from_blob(u, l, rank, f"{what}: u"), from_blob(v, d, rank, f"{what}: v"), created_at, source
    )
