"""The workload registry: what bench/run.py measures, each against its bare-Flask baseline.

A workload is one request, sent over and over on keep-alive connections: to Zentro at ``path``
and, in the same run and with the same worker settings, to the bare app (bench/bare_app.py) at
``baseline_path``. Only responses with ``expect_status`` count as throughput; anything else is
an error.

To add one (see bench/README.md): append a ``Workload`` to ``WORKLOADS`` and, if its baseline
path is new, add that endpoint to bench/bare_app.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Workload:
    name: str
    path: str  # on Zentro (wsgi:app)
    baseline_path: str  # on the bare app (bench/bare_app.py)
    description: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    expect_status: int = 200
    # Optional: runs once after the temporary database is migrated and before any server starts.
    # Receives the environment the servers will get (ZENTRO_DATABASE_URL, ZENTRO_SECRET_KEY, ...)
    # and returns extra request headers for the Zentro side (e.g. {"Authorization": "Bearer zentro_pk_..."}),
    # typically after creating an org, user and API key with the `zentro` CLI in a subprocess.
    setup: Callable[[dict[str, str]], dict[str, str]] | None = None
    # Settings the Zentro server needs for this workload, e.g. {"ZENTRO_RATELIMIT_ENABLED": "0"} for an
    # authenticated endpoint (plan limits would answer 429 within a second). One server serves every
    # workload of a run, so this applies to all of them; two workloads asking different values is an error.
    zentro_env: dict[str, str] = field(default_factory=dict)


WORKLOADS: dict[str, Workload] = {}


def register(w: Workload) -> Workload:
    if w.name in WORKLOADS:
        raise ValueError(f"duplicate workload {w.name!r}")
    WORKLOADS[w.name] = w
    return w


register(Workload(
    name="health",
    path="/api/health",
    baseline_path="/api/health",
    description="Liveness JSON, anonymous, exempt from rate limits: the fixed cost of Zentro's "
                "request pipeline (request id, auth resolution, limiter, security headers) over bare Flask.",
))
