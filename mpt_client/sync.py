"""The synchronous client."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from .calls import Call, Calls, task_from_store, task_json
from .errors import MptError


class Client:
    """The mpt-serve API over one httpx connection pool. ``token``: the admin token for uploads and deletes."""

    def __init__(
        self, url: str, token: str | None = None, timeout: float = 60.0, transport: httpx.BaseTransport | None = None
    ):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._calls = Calls()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, call: Call) -> Any:
        try:
            r = self._http.request(
                call.method, call.path, params=call.params, json=call.json, content=call.content, headers=call.headers
            )
        except httpx.TransportError as e:
            raise MptError.from_transport(e, self.url + call.path) from None
        if r.status_code >= 400:
            raise MptError.from_response(r)
        return call.read(r)

    # ---- predictions ---------------------------------------------------------------------------
    def predict(
        self,
        task: str,
        inputs: str | Sequence[str],
        *,
        max_new_tokens: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> dict:
        """``{"task", "outputs": [str, ...], "scores"?}``: one output per input."""
        return self._send(self._calls.predict(task, inputs, max_new_tokens, candidates))

    # ---- tasks ---------------------------------------------------------------------------------
    def tasks_page(self, *, limit: int | None = None, after: str | None = None, family: str | None = None) -> dict:
        """One page: ``{"tasks": [...], "next": name or None}``."""
        return self._send(self._calls.page("tasks", limit, after, family))

    def tasks(self, *, family: str | None = None, page_size: int | None = None) -> Iterator[dict]:
        """Every task (sorted by name), page after page."""
        after = None
        while True:
            page = self.tasks_page(limit=page_size, after=after, family=family)
            yield from page["tasks"]
            if not page["next"] or not page["tasks"]:
                return
            after = page["next"]

    def get_task(self, name: str) -> dict:
        return self._send(self._calls.get("tasks", name))

    def upload_task(self, name: str, family: str, u: Any, v: Any, *, source: str = "", replace: bool = False) -> dict:
        """Upload factors (lists, tensors or arrays: ``u`` (l,) or (l, r), ``v`` (d,) or (d, r)) as JSON.
        ``replace``: create or replace (PUT); otherwise 409 when the name is taken."""
        return self._send(self._calls.upload_task(task_json(name, family, u, v, source), replace))

    def upload_task_bytes(
        self, data: bytes, *, name: str | None = None, family: str | None = None, replace: bool = False
    ) -> dict:
        """Upload a safetensors file (tensors ``u``, ``v``; metadata ``family``, ``name``; arguments override)."""
        return self._send(self._calls.upload_task_bytes(data, name, family, replace))

    def push_task(self, store: str, name: str, *, as_name: str | None = None, replace: bool = False) -> dict:
        """Upload task ``name`` read from a local store (a store URL or directory), as ``as_name`` if given."""
        return self.upload_task_bytes(task_from_store(store, name), name=as_name or name, replace=replace)

    def upload_tasks(self, tasks: Sequence[dict]) -> dict:
        """Many tasks in one all-or-nothing request (``POST /tasks/batch``); each a dict like
        :func:`mpt_client.calls.task_json` makes."""
        return self._send(self._calls.upload_tasks(tasks))

    def delete_task(self, name: str) -> None:
        self._send(self._calls.delete("tasks", name))

    # ---- families ------------------------------------------------------------------------------
    def families(self, *, page_size: int | None = None) -> Iterator[dict]:
        after = None
        while True:
            page = self._send(self._calls.page("families", page_size, after))
            yield from page["families"]
            if not page["next"] or not page["families"]:
                return
            after = page["next"]

    def get_family(self, name: str) -> dict:
        return self._send(self._calls.get("families", name))

    def upload_family(self, name: str, shared: Any, *, fingerprint: dict | None = None, source: str = "") -> dict:
        """Upload a shared prompt (l, d) as JSON; without a fingerprint it is bound to the server's backbone."""
        return self._send(self._calls.upload_family(name, shared, fingerprint, source))

    def upload_family_bytes(self, data: bytes, *, name: str | None = None) -> dict:
        return self._send(self._calls.upload_family_bytes(data, name))

    def delete_family(self, name: str) -> None:
        self._send(self._calls.delete("families", name))

    # ---- operations ----------------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether the server answers ``/health/ready`` with 200."""
        try:
            self._send(self._calls.ready())
        except MptError:
            return False
        return True
