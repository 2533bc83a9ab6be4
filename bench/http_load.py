"""A lean closed-loop HTTP/1.1 load generator (asyncio streams, keep-alive), so that on a small
machine the client spends little of the CPU the server needs. httpx costs ~1 ms of CPU per
request; this costs a small fraction of that."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit


def post_json(host: str, path: str, params: dict, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    target = f"{path}?{urlencode(params)}" if params else path
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    return head + payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        n = len(lat)
        return {
            "requests": n,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "rps": round(n / self.seconds, 2) if self.seconds else 0.0,
            "p50_ms": round(1000 * lat[n // 2], 2) if n else None,
            "p99_ms": round(1000 * lat[min(n - 1, int(n * 0.99))], 2) if n else None,
        }


async def closed_loop(
    url: str, concurrency: int, seconds: float, request_for: Callable[[int, int], bytes]
) -> LoadResult:
    """``concurrency`` connections, each sending request_for(worker, k) when its last one returns."""
    parts = urlsplit(url)
    result = LoadResult()
    stop_at = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        k = 0
        try:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                writer.write(request_for(w, k))
                status, _ = await _read_response(reader)
                if status == 200:
                    result.latencies.append(time.perf_counter() - t0)
                else:
                    result.errors += 1
                k += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result
