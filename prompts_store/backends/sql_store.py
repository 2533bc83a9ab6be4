"""What the two SQL backends (SQLite, PostgreSQL) do alike: the reads of a :class:`.store.Store`
and the writes of a :class:`.transaction.Transaction`, over a DB-API connection, parameterised by
:class:`StoreSql` (the tables' names, the driver's parameter marker, how "no limit" is written).

A backend keeps what really differs: connections, snapshots and errors, the bulk task read (a
cursor of its own), the sequence (``bump``), and how a set of names is matched (SQLite: ``IN``
batches; PostgreSQL: ``= ANY``). Row layouts and decoders are :mod:`.sql_rows`'.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from mpt_core.artifacts import Family, Task

from ..blobs import family_chunks, to_blob
from ..records import Change, FamilyChunk, FamilyInfo, TaskChunk, TaskInfo
from .sql_rows import (
    FAMILY_COLS,
    FAMILY_INFO_COLS,
    TASK_COLS,
    TASK_INFO_COLS,
    changes_from_rows,
    family_from_row,
    family_info_from_row,
    task_from_row,
    upsert,
)

Read = Callable[[str, Sequence], list[tuple]]  # (query, params) -> every row


@dataclass(frozen=True)
class StoreSql:
    """The names a backend gives its tables (SQLite ``tasks``; PostgreSQL ``mpt_tasks``), its
    parameter marker (``?`` / ``%s``) and its LIMIT for "all rows" (SQLite -1; PostgreSQL NULL)."""

    prefix: str
    mark: str
    unlimited: int | None

    def table(self, name: str) -> str:
        return self.prefix + name

    def limit(self, limit: int | None) -> int | None:
        return self.unlimited if limit is None else limit

    def by_name(self, cols: str, table: str) -> str:
        return f"SELECT {cols} FROM {self.table(table)} WHERE name = {self.mark}"

    def since(self, cols: str, table: str) -> str:
        """The rows written after a sequence, in sequence order, with their commit time last."""
        m = self.mark
        return f"SELECT {cols}, committed_at FROM {self.table(table)} WHERE seq > {m} ORDER BY seq LIMIT {m}"

    def upsert(self, table: str, cols: str, key: str) -> str:
        return upsert(self.table(table), cols, key, self.mark)


class SqlReads:
    """Mixin of a SQL :class:`.store.Store`: its reads through ``_read`` (one statement) and
    ``_snapshot_reads`` (several that see one state)."""

    sql: StoreSql

    def _read(self, query: str, params: Sequence = ()) -> list[tuple]:
        raise NotImplementedError

    def _snapshot_reads(self) -> contextlib.AbstractContextManager[Read]:
        raise NotImplementedError

    def head(self) -> int:
        return int(self._read(f"SELECT value FROM {self.sql.table('meta')} WHERE key = 'seq'")[0][0])

    def _changes(self, since: int, limit: int | None) -> list[Change]:
        sql, params = self.sql, (since, self.sql.limit(limit))
        with self._snapshot_reads() as read:
            families = read(sql.since(FAMILY_COLS, "families"), params)
            tasks = read(sql.since(TASK_COLS, "tasks"), params)
            tombstones = read(sql.since("seq, kind, name", "tombstones"), params)
        return changes_from_rows(families, tasks, tombstones, limit)

    def _get_family(self, name: str) -> Family | None:
        rows = self._read(self.sql.by_name(FAMILY_COLS, "families"), (name,))
        return family_from_row(rows[0]) if rows else None

    def _get_task(self, name: str) -> Task | None:
        rows = self._read(self.sql.by_name(TASK_COLS, "tasks"), (name,))
        return task_from_row(rows[0]) if rows else None

    def _family_info(self, name: str) -> FamilyInfo | None:
        rows = self._read(self.sql.by_name(FAMILY_INFO_COLS, "families"), (name,))
        return family_info_from_row(rows[0]) if rows else None

    def _task_info(self, name: str) -> TaskInfo | None:
        rows = self._read(self.sql.by_name(TASK_INFO_COLS, "tasks"), (name,))
        return TaskInfo(*rows[0]) if rows else None

    def _list_families(self, after: str | None, limit: int | None) -> list[str]:
        m = self.sql.mark
        query = f"SELECT name FROM {self.sql.table('families')} WHERE name > {m} ORDER BY name LIMIT {m}"
        return [r[0] for r in self._read(query, (after or "", self.sql.limit(limit)))]

    def _list_tasks(self, after: str | None, limit: int | None, family: str | None) -> list[str]:
        m = self.sql.mark
        where, params = f"name > {m}", [after or ""]
        if family is not None:
            where, params = f"family = {m} AND {where}", [family, *params]
        query = f"SELECT name FROM {self.sql.table('tasks')} WHERE {where} ORDER BY name LIMIT {m}"
        return [r[0] for r in self._read(query, (*params, self.sql.limit(limit)))]

    def count_families(self) -> int:
        return int(self._read(f"SELECT count(*) FROM {self.sql.table('families')}")[0][0])

    def _count_tasks(self, family: str | None) -> int:
        query = f"SELECT count(*) FROM {self.sql.table('tasks')}"
        if family is None:
            return int(self._read(query)[0][0])
        return int(self._read(f"{query} WHERE family = {self.sql.mark}", (family,))[0][0])

    def _family_chunks(self) -> Iterator[FamilyChunk]:
        families = self.sql.table("families")
        rows = self._read(f"SELECT name, fingerprint, l, d, created_at, source, shared FROM {families}")
        yield from family_chunks([(r[0], json.loads(r[1]), *r[2:]) for r in rows])

    def _task_totals(self) -> dict[str, tuple[int, int]]:
        tasks = self.sql.table("tasks")
        rows = self._read(f"SELECT family, count(*), sum((l + d) * rank * 4) FROM {tasks} GROUP BY family")
        return {f: (int(n), int(b)) for f, n, b in rows}


class SqlTransaction:
    """Mixin of a SQL write :class:`.transaction.Transaction` over ``self.c`` (its connection),
    stamping each row with ``self.now`` (the commit time readers measure their lag from)."""

    c: object
    sql: StoreSql
    now: float

    def _write_task_rows(self, rows: Iterable[tuple], names: Sequence[str]) -> None:
        """Upsert ``rows`` (``TASK_COLS`` + committed_at) and drop the tombstones of ``names``."""
        raise NotImplementedError

    def read_family(self, name: str) -> Family | None:
        row = self.c.execute(self.sql.by_name(FAMILY_COLS, "families"), (name,)).fetchone()
        return None if row is None else family_from_row(row)

    def family_users(self, name: str, examples: int) -> tuple[int, list[str]]:
        tasks, m = self.sql.table("tasks"), self.sql.mark
        n = self.c.execute(f"SELECT count(*) FROM {tasks} WHERE family = {m}", (name,)).fetchone()[0]
        some = self.c.execute(f"SELECT name FROM {tasks} WHERE family = {m} ORDER BY name LIMIT {m}", (name, examples))
        return int(n), [r[0] for r in some]

    def write_family(self, family: Family, seq: int) -> None:
        fingerprint = json.dumps(family.fingerprint, sort_keys=True)
        self.c.execute(
            self.sql.upsert("families", FAMILY_COLS + ", committed_at", "name"),
            (family.name, family.length, family.d, fingerprint, family.created_at, family.source, seq)
            + (to_blob(family.shared), self.now),
        )
        self._drop_tombstone("family", family.name)

    def write_tasks(self, tasks: Sequence[Task], first_seq: int) -> None:
        rows = (
            (t.name, t.family, t.rank, t.u.shape[0], t.v.shape[0], t.created_at, t.source, first_seq + i)
            + (to_blob(t.u), to_blob(t.v), self.now)
            for i, t in enumerate(tasks)
        )
        self._write_task_rows(rows, [t.name for t in tasks])

    def write_task_chunk(self, chunk: TaskChunk, first_seq: int) -> None:
        """The stack's bytes sliced per row: no tensor and no Task object per row."""
        n, l, d, r = len(chunk), chunk.l, chunk.d, chunk.rank
        u, v = memoryview(to_blob(chunk.u.reshape(n * l, r))), memoryview(to_blob(chunk.v.reshape(n * d, r)))
        su, sv = l * r * 4, d * r * 4
        rows = (
            (chunk.names[i], chunk.families[i], r, l, d, chunk.created_at[i], chunk.source[i], first_seq + i)
            + (u[i * su : (i + 1) * su], v[i * sv : (i + 1) * sv], self.now)
            for i in range(n)
        )
        self._write_task_rows(rows, chunk.names)

    def delete_family(self, name: str, seq: int) -> None:
        self._delete("family", "families", name, seq)

    def delete_task(self, name: str, seq: int) -> None:
        self._delete("task", "tasks", name, seq)

    def _delete(self, kind: str, table: str, name: str, seq: int) -> None:
        """Remove the row and leave its tombstone at ``seq``."""
        self.c.execute(f"DELETE FROM {self.sql.table(table)} WHERE name = {self.sql.mark}", (name,))
        self.c.execute(
            self.sql.upsert("tombstones", "kind, name, seq, committed_at", "kind, name"), (kind, name, seq, self.now)
        )

    def _drop_tombstone(self, kind: str, name: str) -> None:
        m = self.sql.mark
        self.c.execute(f"DELETE FROM {self.sql.table('tombstones')} WHERE kind = {m} AND name = {m}", (kind, name))
