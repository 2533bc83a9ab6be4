"""Crash-safe file writes: temp file in the same directory, fsync, os.replace, fsync the directory.

A reader never sees a partial file; a crash loses at most the write in flight. Temp files are
dot-files ending in ``.tmp`` so listings skip them and :func:`remove_stale_temp_files` can
clean up after a crash.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old or its new contents."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_many(items: Iterable[tuple[Path, bytes]]) -> None:
    """Write several files, each atomically: first every temp file (written and fsynced), then every
    ``os.replace``, then one fsync per directory.

    A crash while the temp files are written changes nothing (they are cleaned up at the next open);
    a crash during the renames leaves the first files new and the rest old, each one whole.
    """
    staged: list[tuple[Path, Path]] = []
    renamed = 0
    try:
        for path, data in items:
            path = Path(path)
            tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
            staged.append((tmp, path))
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
            renamed += 1
    except BaseException:
        for tmp, _ in staged[renamed:]:
            tmp.unlink(missing_ok=True)
        raise
    for directory in {path.parent for _, path in staged}:
        fsync_dir(directory)


def atomic_delete(path: Path) -> bool:
    """Remove ``path`` durably; False when it did not exist."""
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def remove_stale_temp_files(directory: Path) -> int:
    """Delete leftover temp files of interrupted writes; returns how many were removed."""
    removed = 0
    for p in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        p.unlink(missing_ok=True)
        removed += 1
    return removed
