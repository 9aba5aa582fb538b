"""The workload registry: what bench/run.py measures, each against its bare-Flask baseline.

A workload is one request, sent over and over on keep-alive connections: to Zentro at ``path``
and, in the same run and with the same worker settings, to the bare app (bench/bare_app.py) at
``baseline_path``. Only responses with ``expect_status`` count as throughput; anything else is
an error. With ``body_template`` the body differs per request (``{n}``, ``{ts_ms}``: see
bench/loadgen.py). ``aims`` are the targets an issue set; the run's summary says whether each
was met (nothing asserts them).

To add one (see bench/README.md): ``register`` a ``Workload`` and, if its baseline path is new,
add that endpoint to bench/bare_app.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BARE_AUTH = {"Authorization": "Bearer bench-baseline-token"}  # what bench/bare_app.py checks (BARE_TOKEN)


@dataclass(frozen=True)
class Aim:
    """A target on a ratio zentro/bare: ``metric`` is rps_ratio, p50_ratio or p95_ratio (latency), ``op`` >= or <=."""
    metric: str
    op: str
    threshold: float

    def met(self, value: float) -> bool:
        return value >= self.threshold if self.op == ">=" else value <= self.threshold


@dataclass(frozen=True)
class Workload:
    name: str
    path: str  # on Zentro (wsgi:app)
    baseline_path: str  # on the bare app (bench/bare_app.py)
    description: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)  # sent to both sides; setup's headers override them for Zentro
    body: bytes | None = None
    body_template: bool = False  # the body has {n} / {ts_ms} placeholders, rendered uniquely per request
    expect_status: int = 200
    # Optional: runs once after the temporary database is migrated and before any server starts.
    # Receives the environment the servers will get (ZENTRO_DATABASE_URL, ZENTRO_SECRET_KEY, ...)
    # and returns extra request headers for the Zentro side (e.g. {"Authorization": "Bearer zentro_pk_..."}),
    # typically after creating an org, user and API key in a subprocess (bench/seed.py).
    setup: Callable[[dict[str, str]], dict[str, str]] | None = None
    # A generous estimate of setup's time, counted against --max-total once per name (workloads that share
    # seeded data share the estimate): (name, seconds).
    setup_estimate: tuple[str, float] = ("", 0.0)
    # Settings the Zentro server needs for this workload, e.g. {"ZENTRO_RATELIMIT_ENABLED": "0"} for an
    # authenticated endpoint (plan limits would answer 429 within a second). One server serves every
    # workload of a run, so this applies to all of them; two workloads asking different values is an error.
    zentro_env: dict[str, str] = field(default_factory=dict)
    # (load processes, connections each) instead of --load-procs / --connections; latency workloads use
    # (1, 1): one client at a time, so latency is the server's time, not time queued behind other clients.
    load: tuple[int, int] | None = None
    aims: tuple[Aim, ...] = ()


WORKLOADS: dict[str, Workload] = {}
GROUPS: dict[str, list[str]] = {}  # a name on the command line that stands for several workloads


def register(w: Workload) -> Workload:
    if w.name in WORKLOADS or w.name in GROUPS:
        raise ValueError(f"duplicate workload {w.name!r}")
    WORKLOADS[w.name] = w
    return w


def expand(names: list[str]) -> list[str]:
    """Workload and group names, in order, groups expanded, each workload once."""
    out: list[str] = []
    for name in names:
        for n in GROUPS.get(name, [name]):
            if n not in out:
                out.append(n)
    return out


# --------------------------------------------------------------------------- setup helpers

_seeded: dict[tuple, dict] = {}


def seed(env: dict[str, str], *args: str, timeout: float = 240) -> dict:
    """Run bench/seed.py once per (database, arguments) in a subprocess with the servers' environment."""
    key = (env["ZENTRO_DATABASE_URL"], args)
    if key not in _seeded:
        r = subprocess.run([sys.executable, str(BENCH / "seed.py"), *args], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"bench/seed.py {' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
        _seeded[key] = json.loads(r.stdout)
        print(f"bench: seeded {' '.join(args)} in {_seeded[key]['seconds']:.1f} s", flush=True)
    return _seeded[key]


INGEST_ORG = ("--org", "bench", "--ingest-token", "--services")
LIST_ORG = ("--org", "bench-list", "--api-key", "--session", "--incidents", "100000")


def ingest_token(env: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {seed(env, *INGEST_ORG)['ingest_token']}"}


def list_api_key(env: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {seed(env, *LIST_ORG)['api_key']}"}


def list_session(env: dict[str, str]) -> dict[str, str]:
    return {"Cookie": seed(env, *LIST_ORG)["cookie"]}


# --------------------------------------------------------------------------- the workloads

NO_RATE_LIMIT = {"ZENTRO_RATELIMIT_ENABLED": "0"}  # plan limits would answer 429 within a second

register(Workload(
    name="health",
    path="/api/health",
    baseline_path="/api/health",
    description="Liveness JSON, anonymous, exempt from rate limits: the fixed cost of Zentro's "
                "request pipeline (request id, auth resolution, limiter, security headers) over bare Flask.",
))


def _alert(dedupe_key: str, labels: dict) -> bytes:
    # {ts_ms}: a distinct start time per request, so every request is a new delivery (delivery keys hash
    # source, dedupe key, status and start) and never a stored duplicate answered from the cheap path.
    body = {"dedupe_key": dedupe_key, "status": "firing", "severity": "high", "title": "Checkout 5xx above 2%",
            "service": "checkout", "labels": {"region": "eu-west-1", "env": "production", **labels},
            "starts_at": "__TS__", "description": "5xx rate up since deploy 4121"}
    return json.dumps(body).replace('"__TS__"', "{ts_ms}").encode()


INGEST_HEADERS = {"Content-Type": "application/json", **BARE_AUTH}
INGEST_AIM = (Aim("rps_ratio", ">=", 0.5),)

register(Workload(
    name="ingest_new",
    path="/api/integrations/alerts",
    baseline_path="/api/integrations/alerts",
    method="POST",
    headers=INGEST_HEADERS,
    body=_alert("bench-new-{n}", {"pod": "checkout-{n}"}),
    body_template=True,
    expect_status=202,
    description="One Zentro-format alert per request with a new dedupe key every time: each request stores "
                "an alert and opens a new incident (number, timeline, audit), against a bare endpoint that "
                "checks the bearer header, parses the JSON and answers 202.",
    setup=ingest_token,
    setup_estimate=("ingest-org", 15),
    zentro_env=NO_RATE_LIMIT,
    aims=INGEST_AIM,
))

register(Workload(
    name="ingest_dedup",
    path="/api/integrations/alerts",
    baseline_path="/api/integrations/alerts",
    method="POST",
    headers=INGEST_HEADERS,
    body=_alert("bench-dedup", {"delivery": "{n}"}),
    body_template=True,
    expect_status=202,
    description="The same dedupe key with a new label and start time every request: distinct deliveries "
                "(each stored as an alert) folded into the one open incident (alert count, timeline event, "
                "audit).",
    setup=ingest_token,
    setup_estimate=("ingest-org", 15),
    zentro_env=NO_RATE_LIMIT,
    aims=INGEST_AIM,
))

LIST_AIMS = (Aim("p50_ratio", "<=", 5.0), Aim("p95_ratio", "<=", 5.0))

register(Workload(
    name="incident_list_100k_api",
    path="/api/v1/incidents?limit=50",
    baseline_path="/api/v1/incidents?limit=50",
    headers=dict(BARE_AUTH),
    description="First page (50, every status) of an org with 100,000 incidents, API key; the baseline "
                "returns 50 constant items of the same shape. One client at a time.",
    setup=list_api_key,
    setup_estimate=("list-org-100k", 90),
    zentro_env=NO_RATE_LIMIT,
    load=(1, 1),
    aims=LIST_AIMS,
))

register(Workload(
    name="incident_list_100k_page",
    path="/incidents",
    baseline_path="/incidents",
    description="The incidents page (first 25 active, status counts, filters) of the same org, signed-in "
                "session cookie; the baseline renders 25 constant rows with Jinja. One client at a time.",
    setup=list_session,
    setup_estimate=("list-org-100k", 90),
    zentro_env=NO_RATE_LIMIT,
    load=(1, 1),
    aims=LIST_AIMS,
))

GROUPS["incident_list_100k"] = ["incident_list_100k_api", "incident_list_100k_page"]
GROUPS["ingest"] = ["ingest_new", "ingest_dedup"]
