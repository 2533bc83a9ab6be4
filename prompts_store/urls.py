"""Opening a store from its URL (``MPT_STORE``, ``--store``).

    sqlite:///relative/path.db    sqlite:////absolute/path.db    -> SQLite (the embedded default)
    postgresql://user:pw@host/db  (also postgres://; libpq URL)   -> PostgreSQL (the ``postgres`` extra)
    some/dir    /abs/dir    file:///abs/dir                      -> a directory of safetensors files

A new backend is one module plus one line in ``_BACKENDS``: a class ``cls(location, create=...)``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mpt_core.errors import StoreError, UnsupportedStore

from .store import Store

_BACKENDS = {
    "sqlite": "prompts_store.backends.sqlite_store:SQLiteStore",
    "file": "prompts_store.backends.directory:DirectoryStore",
    "postgresql": "prompts_store.backends.postgres_store:PostgresStore",
}


def parse_store_url(url: str | os.PathLike) -> tuple[str, str]:
    """``(scheme, location)``: ``("sqlite", path)``, ``("file", directory)``, ``("postgresql", url)``."""
    text = os.fspath(url)
    if not isinstance(text, str) or not text.strip():
        raise UnsupportedStore(f"empty store location {url!r}")
    if "://" not in text:
        return "file", text  # a plain path is a directory store
    scheme = text.split("://", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        return "postgresql", text  # libpq reads the whole URL
    if scheme == "sqlite":
        rest = text[len("sqlite://") :]
        if not rest.startswith("/") or rest == "/" or rest.startswith("/:memory:"):
            raise UnsupportedStore(
                f"store URL {text!r}: a SQLite store needs a file: sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (an in-memory database cannot be shared)"
            )
        return "sqlite", unquote(rest[1:])  # sqlite:///x -> "x", sqlite:////x -> "/x"
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedStore(f"store URL {text!r}: a file:// store must be on this host")
        return "file", unquote(parts.path)
    known = sorted(set(_BACKENDS) | {"postgres"})
    raise UnsupportedStore(
        f"store URL {text!r}: unknown scheme {scheme!r} (known: {', '.join(known)}, or a plain path)"
    )


def open_store(url: str | os.PathLike, create: bool = True) -> Store:
    """Open the store at ``url``; ``create=False`` raises NotFound when there is none.

    Opening a SQLite or PostgreSQL store applies its pending schema migrations. A plain path that is an existing
    file is refused (it is not a directory store; a SQLite file is opened as ``sqlite:///PATH``).
    """
    scheme, location = parse_store_url(url)
    if scheme == "file" and Path(location).is_file():
        raise StoreError(f"{location} is a file, not a store directory; for a SQLite store write sqlite:///{location}")
    module, cls = _BACKENDS[scheme].split(":")
    return getattr(importlib.import_module(module), cls)(location, create=create)
