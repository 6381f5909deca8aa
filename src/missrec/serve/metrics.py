"""Request counters and a latency histogram in the Prometheus text exposition format (0.0.4)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Requests by (method, route, status) and latency by (method, route)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self._sum: dict[tuple[str, str], float] = defaultdict(float)
        self._count: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            self._requests[(method, route, status)] += 1
            buckets = self._buckets[key]
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    buckets[i] += 1
            self._sum[key] += seconds
            self._count[key] += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The exposition text; ``gauges`` maps a metric name to (help, value)."""
        lines = ["# HELP missrec_requests_total HTTP requests by method, route and status.",
                 "# TYPE missrec_requests_total counter"]
        with self._lock:
            for (method, route, status), n in sorted(self._requests.items()):
                lines.append(f'missrec_requests_total{{method="{method}",route="{route}",'
                             f'status="{status}"}} {n}')
            lines += ["# HELP missrec_request_seconds HTTP request latency.",
                      "# TYPE missrec_request_seconds histogram"]
            for (method, route), buckets in sorted(self._buckets.items()):
                labels = f'method="{method}",route="{route}"'
                for le, n in zip(BUCKETS, buckets):
                    lines.append(f'missrec_request_seconds_bucket{{{labels},le="{le}"}} {n}')
                count = self._count[(method, route)]
                lines.append(f'missrec_request_seconds_bucket{{{labels},le="+Inf"}} {count}')
                lines.append(f"missrec_request_seconds_sum{{{labels}}} {self._sum[(method, route)]:.6f}")
                lines.append(f"missrec_request_seconds_count{{{labels}}} {count}")
        for name, (help_text, value) in gauges.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"


class Observed:
    """ASGI middleware: every HTTP request's method, route template, status and latency go
    to ``metrics`` (a plain ASGI wrapper: no per-request task or stream, unlike Starlette's
    ``BaseHTTPMiddleware``)."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # the router records the matched route in the scope; unmatched paths share one
            # label, so arbitrary URLs cannot grow the metrics
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(scope.get("method", ""), route, status, time.perf_counter() - start)
