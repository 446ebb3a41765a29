"""Load generation against an OpenAI-compatible LSRec endpoint, and the statistics it reports.

Each concurrency level runs `concurrency` workers that send completion requests back to back (a closed
loop), until a request or time bound is reached. Latency is measured per request, from send to the
parsed response; throughput is successful requests over the level's wall time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

from lsrec.tokenizer.errors import LSRecError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def percentile(values, q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100 (got {q})")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class LevelResult:
    concurrency: int
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: int = 0
    wall: float = 0.0  # seconds from the first send to the last response
    error_examples: list[str] = field(default_factory=list)

    def summary(self, k: int) -> dict:
        ok = len(self.latencies)
        rate = ok / self.wall if self.wall > 0 else 0.0
        out = {"concurrency": self.concurrency, "requests": ok + self.errors, "errors": self.errors,
               "seconds": round(self.wall, 3), "requests_per_s": rate, "items_per_s": rate * k}
        for q in (50, 90, 99):
            out[f"p{q}_ms"] = percentile(self.latencies, q) * 1000 if ok else None
        if self.error_examples:
            out["error_examples"] = self.error_examples
        return out


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise LSRecError(f"lsrec-bench only drives loopback servers (127.0.0.1, localhost, ::1), not {host!r}")


async def _run_level(url: str, bodies: list[dict], concurrency: int, max_requests: int, max_seconds: float,
                     on_done=None) -> LevelResult:
    import httpx

    result = LevelResult(concurrency)
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + max_seconds

        async def worker():
            nonlocal next_index
            while next_index < max_requests and time.perf_counter() < deadline:
                body = bodies[next_index % len(bodies)]
                next_index += 1
                sent = time.perf_counter()
                try:
                    response = await client.post("/v1/completions", json=body)
                    response.json()
                    ok = response.status_code == 200
                    problem = f"HTTP {response.status_code}: {response.text[:200]}"
                except (httpx.HTTPError, ValueError) as e:
                    ok, problem = False, f"{type(e).__name__}: {e}"
                if ok:
                    result.latencies.append(time.perf_counter() - sent)
                else:
                    result.errors += 1
                    if len(result.error_examples) < 3:
                        result.error_examples.append(problem)
                if on_done:
                    on_done()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.wall = time.perf_counter() - started
    return result


def run_level(url: str, bodies: list[dict], concurrency: int, max_requests: int, max_seconds: float,
              on_done=None) -> LevelResult:
    check_loopback(url)
    return asyncio.run(_run_level(url, bodies, concurrency, max_requests, max_seconds, on_done))


def completion_bodies(model: str, prompts: list[str], k: int) -> list[dict]:
    """What LSRecClient sends: one answer token, top-k logprobs, greedy."""
    return [{"model": model, "prompt": p, "max_tokens": 1, "temperature": 0.0, "logprobs": k} for p in prompts]
