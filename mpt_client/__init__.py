"""A Python client of the mpt-serve HTTP API (sync :class:`Client` and async :class:`AsyncClient`, on httpx).

    from mpt_client import Client, MptError
    with Client("http://127.0.0.1:8000", token="...") as c:
        c.predict("review", "a wonderful film")          # {"task": ..., "outputs": [...]}
        for task in c.tasks(family="lab"):                # every page, following "next"
            ...
        c.push_task("sqlite:///runs/store.db", "review")  # a task read from a local store

Every error is one exception type, :class:`MptError`, carrying the server's status, code, message
and Retry-After. Needs only httpx (reading a local store also needs this project's prompts_store).
"""

from .aio import AsyncClient
from .errors import MptError
from .sync import Client

__all__ = ["AsyncClient", "Client", "MptError"]
