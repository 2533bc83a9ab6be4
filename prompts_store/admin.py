"""Operations on whole stores, for ``mpt store copy|stats|init``: plain functions over store URLs
(or open :class:`Store` objects, which are left open)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

from .store import Store
from .urls import open_store

BATCH = 5_000  # tasks per write transaction when copying


@contextlib.contextmanager
def _opened(store: Store | str | os.PathLike, create: bool) -> Iterator[Store]:
    if isinstance(store, Store):
        yield store
        return
    s = open_store(store, create=create)
    try:
        yield s
    finally:
        s.close()


def copy_store(
    src: Store | str | os.PathLike,
    dst: Store | str | os.PathLike,
    overwrite: bool = False,
    progress: bool = True,
    batch_size: int = BATCH,
) -> dict:
    """Copy every family, then every task, from ``src`` to ``dst`` (any two backends), streaming in
    chunks: factors byte-identical, ``created_at`` and ``source`` preserved.

    Each batch of ``batch_size`` tasks is one all-or-nothing write, so an interrupted copy leaves
    whole batches. Without ``overwrite`` a name already in ``dst`` raises Conflict. Records of
    ``src`` that fail the load checks are not copied; they are returned under ``"skipped"``
    (name -> reason), and the caller should report them. Progress goes to stderr.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    skipped: dict[str, str] = {}
    families = tasks = 0
    with _opened(src, create=False) as s, _opened(dst, create=True) as d:
        for chunk in s.iter_family_chunks():
            skipped.update({f"family/{n}": why for n, why in chunk.rejected.items()})
            for i in range(len(chunk)):
                d.put_family(chunk.family(i), overwrite=overwrite)
                families += 1
        total = s.count_tasks()
        with tqdm(total=total, unit="task", file=sys.stderr, disable=not progress, desc=f"{s.url} -> {d.url}") as bar:
            for chunk in s.iter_task_chunks():
                skipped.update({f"task/{n}": why for n, why in chunk.rejected.items()})
                for start in range(0, len(chunk), batch_size):
                    batch = chunk.rows(start, min(start + batch_size, len(chunk)))
                    d.put_task_chunk(batch, overwrite=overwrite)
                    tasks += len(batch)
                    bar.update(len(batch))
        head = d.head()
    return {
        "families": families,
        "tasks": tasks,
        "skipped": skipped,
        "dst_head": head,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def store_stats(store: Store | str | os.PathLike) -> dict:
    """Counts and sizes of an existing store (see :meth:`Store.stats`)."""
    with _opened(store, create=False) as s:
        return s.stats()


def init_store(store: str | os.PathLike) -> dict:
    """Create the store if needed and bring its schema up to date (what ``mpt store init`` runs)."""
    with _opened(store, create=True) as s:
        out = {"backend": s.backend, "url": s.url, "head": s.head()}
        version = getattr(s, "schema_version", None)
        if callable(version):
            out["schema_version"] = version()
        return out
