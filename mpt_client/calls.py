"""What each API call sends and how its answer is read, once for both clients.

A method of :class:`Calls` returns a :class:`Call` (method, path, query, body, how to read the
answer); :class:`.sync.Client` and :class:`.aio.AsyncClient` only send it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

SAFETENSORS = "application/octet-stream"
DEFAULT_PAGE = 100


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    read: Callable[[httpx.Response], Any] = lambda r: r.json()


def _none(_: httpx.Response) -> None:
    return None


def _name(value: str) -> str:
    return quote(value, safe="")


def _numbers(x: Any) -> Any:
    """A tensor / ndarray / nested sequence as JSON numbers."""
    tolist = getattr(x, "tolist", None)
    if callable(tolist):
        if hasattr(x, "detach"):  # a torch tensor
            x = x.detach().cpu().float()
            tolist = x.tolist
        return tolist()
    if isinstance(x, (list, tuple)):
        return [_numbers(v) for v in x]
    return x


def task_json(name: str, family: str, u: Any, v: Any, source: str = "") -> dict:
    """One task as the JSON the server takes: ``u`` (l,) or (l, r), ``v`` (d,) or (d, r)."""
    body = {"name": name, "family": family, "u": _numbers(u), "v": _numbers(v)}
    if source:
        body["source"] = source
    return body


def _metadata(data: bytes) -> dict:
    """The ``__metadata__`` of a safetensors header (no tensor is read)."""
    try:
        size = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
    except (ValueError, AttributeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def task_from_store(store: str, name: str) -> bytes:
    """Task ``name`` of a local store (any store URL or directory) as a safetensors body."""
    from prompts_store import open_store, task_to_bytes  # torch: only for this

    with open_store(store, create=False) as s:
        return task_to_bytes(s.get_task(name))


class Calls:
    """The requests of the API (see the server's /docs)."""

    def predict(
        self,
        task: str,
        inputs: str | Sequence[str],
        max_new_tokens: int | None = None,
        candidates: Sequence[str] | None = None,
    ) -> Call:
        body: dict[str, Any] = {"inputs": inputs if isinstance(inputs, str) else list(inputs)}
        if max_new_tokens is not None:
            body["max_new_tokens"] = max_new_tokens
        if candidates is not None:
            body["candidates"] = list(candidates)
        return Call("POST", "/predict", params={"task": task}, json=body)

    def page(self, kind: str, limit: int | None, after: str | None, family: str | None = None) -> Call:
        """One page of ``/tasks`` or ``/families``: ``{kind: [...], "next": cursor or None}``."""
        params = {"limit": limit or DEFAULT_PAGE}
        if after is not None:
            params["after"] = after
        if family is not None:
            params["family"] = family
        return Call("GET", f"/{kind}", params=params, read=lambda r: _page(r.json(), kind))

    def get(self, kind: str, name: str) -> Call:
        return Call("GET", f"/{kind}/{_name(name)}")

    def upload_task(self, body: dict, replace: bool) -> Call:
        if replace:
            return Call("PUT", f"/tasks/{_name(body['name'])}", json=body)
        return Call("POST", "/tasks", json=body)

    def upload_task_bytes(self, data: bytes, name: str | None, family: str | None, replace: bool) -> Call:
        params = {k: v for k, v in (("name", name), ("family", family)) if v is not None}
        headers = {"content-type": SAFETENSORS}
        if replace:
            name = name or _metadata(data).get("name")
            if not name:
                raise ValueError("replacing a task needs its name (give name=, or metadata 'name' in the file)")
            return Call("PUT", f"/tasks/{_name(name)}", params=params, content=data, headers=headers)
        return Call("POST", "/tasks", params=params, content=data, headers=headers)

    def upload_tasks(self, tasks: Sequence[dict]) -> Call:
        return Call("POST", "/tasks/batch", json={"tasks": list(tasks)})

    def delete(self, kind: str, name: str) -> Call:
        return Call("DELETE", f"/{kind}/{_name(name)}", read=_none)

    def upload_family(self, name: str, shared: Any, fingerprint: dict | None, source: str) -> Call:
        body: dict[str, Any] = {"name": name, "shared": _numbers(shared)}
        if fingerprint is not None:
            body["fingerprint"] = fingerprint
        if source:
            body["source"] = source
        return Call("POST", "/families", json=body)

    def upload_family_bytes(self, data: bytes, name: str | None) -> Call:
        params = {"name": name} if name is not None else {}
        return Call("POST", "/families", params=params, content=data, headers={"content-type": SAFETENSORS})

    def ready(self) -> Call:
        return Call("GET", "/health/ready")


def _page(body: dict, kind: str) -> dict:
    """A page as ``{kind: [...], "next": ...}``; a server without pagination (no "next") is one last page."""
    return {kind: body.get(kind, []), "next": body.get("next")}
