"""What the two SQL backends (SQLite, PostgreSQL) share: the column lists of their rows, the
upsert statement, the decoding of a row into a Family or Task (tensors from float32 blobs), and
the change feed merged from the three tables' rows."""

from __future__ import annotations

import json

from mpt_core.artifacts import Family, Task
from mpt_core.errors import InvalidArtifact

from ..blobs import from_blob
from ..records import Change, FamilyInfo

FAMILY_COLS = "name, l, d, fingerprint, created_at, source, seq, shared"
TASK_COLS = "name, family, rank, l, d, created_at, source, seq, u, v"
TASK_INFO_COLS = "name, family, rank, l, d, created_at, source, seq"
FAMILY_INFO_COLS = "name, l, d, fingerprint, created_at, source, seq"


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


def family_info_from_row(row: tuple) -> FamilyInfo:
    """A ``FAMILY_INFO_COLS`` row as a FamilyInfo."""
    name, l, d, fingerprint, *rest = row
    return FamilyInfo(name, l, d, json.loads(fingerprint), *rest)


def changes_from_rows(
    families: list[tuple], tasks: list[tuple], tombstones: list[tuple], limit: int | None
) -> list[Change]:
    """The change feed from the rows written after one sequence: ``families`` (``FAMILY_COLS`` +
    committed_at), ``tasks`` (``TASK_COLS`` + committed_at) and ``tombstones`` (seq, kind, name,
    committed_at), each in sequence order and read in one snapshot. Merged by sequence, cut at
    ``limit``; a row that fails to decode is a change with its error (served as absent)."""
    merged = [(r[6], "family", r[:-1], r[-1]) for r in families] + [(r[7], "task", r[:-1], r[-1]) for r in tasks]
    merged += [(seq, kind, name, at) for seq, kind, name, at in tombstones]
    merged.sort(key=lambda e: e[0])
    if limit is not None:
        merged = merged[:limit]
    out = []
    for seq, kind, row, at in merged:
        if isinstance(row, str):  # a tombstone: the name was deleted
            out.append(Change(seq, kind, row, None, committed_at=at))
            continue
        try:
            value = family_from_row(row) if kind == "family" else task_from_row(row)
            out.append(Change(seq, kind, row[0], value, committed_at=at))
        except InvalidArtifact as e:
            out.append(Change(seq, kind, row[0], None, str(e), committed_at=at))
    return out
