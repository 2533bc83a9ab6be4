"""What the two SQL schemas (:mod:`.sqlite_schema`, :mod:`.postgres_schema`) do alike: refuse a
store written by a newer mpt-serve, read the version, and apply an ordered list of migrations
(each a script of ``;``-separated statements, recorded in the version table as it is applied).
Each backend keeps its own migrations and how it makes migrating exclusive (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: an advisory lock)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mpt_core.errors import StoreError

Migrations = list[tuple[str, str]]  # (description, script), append only


def checked(version: int, latest: int, where: str) -> int:
    """``version``, unless it is newer than this mpt-serve understands."""
    if version > latest:
        raise StoreError(
            f"{where}: schema version {version} is newer than this mpt-serve understands ({latest}); upgrade mpt-serve"
        )
    return version


def read_version(conn, has_table: str, table: str) -> int:
    """The schema version recorded in ``table`` (0 when ``has_table``, a query, answers false)."""
    row = conn.execute(has_table).fetchone()
    if not row or not row[0]:
        return 0
    return int(conn.execute(f"SELECT coalesce(max(version), 0) FROM {table}").fetchone()[0])


def apply_migrations(
    execute: Callable[..., object], migrations: Migrations, current: int, table: str, mark: str
) -> int:
    """Run the migrations after ``current``, statement by statement (a script run whole would end
    the caller's transaction in SQLite), each recorded in ``table``; returns how many ran."""
    for version in range(current + 1, len(migrations) + 1):
        description, script = migrations[version - 1]
        for statement in statements(script):
            execute(statement)
        execute(f"INSERT INTO {table} (version, description) VALUES ({mark}, {mark})", (version, description))
    return len(migrations) - current


def statements(script: str) -> Sequence[str]:
    """The statements of a migration script."""
    return [s.strip() for s in script.split(";") if s.strip()]
