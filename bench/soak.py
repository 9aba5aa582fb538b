"""Soak test: Zentro as it runs in production, under a steady mixed load, for a fixed time.

    .venv/bin/python bench/soak.py [--seconds 600] [--workers 4] [--threads 4] [--rate 40] [--json-out out.json]

What it does:
  1. a throwaway PostgreSQL database (dropped at exit), migrated; --orgs organisations on the enterprise plan,
     each with an ingest token, an API key, a signed-in session, its service catalogue, --incidents incidents
     of history and a webhook endpoint (every event) pointing at a receiver this script runs on loopback;
  2. gunicorn with the repository's gunicorn.conf.py and --workers × gthread --threads, the scheduler on in every
     worker (one leader runs the jobs: the webhook outbox drains every 5 s), rate limits counted in Redis
     (127.0.0.1:6379, a key prefix of its own; memory:// with a note when Redis is not there), worker recycling
     off (a recycled worker would hide a memory leak);
  3. --clients threads send requests at --rate per second in total for --seconds (Poisson arrivals), going
     through one cycle of the mix (each kind as often as its weight, see schedule()):
     alert ingest (new keys, repeats of hot keys, resolves), the incidents list and detail through the API,
     the incidents page, an incident, the dashboard, services and compliance pages (session cookie), the
     HTMX poll, the audit CSV, the compliance evidence export and an incident's Markdown export, the digest
     preview and its cron delivery (webhook channel), a generated report now and then;
  4. every --sample seconds it records each worker's resident memory (VmRSS), the database's connection count
     and, from /metrics, the webhook outbox depth and scheduler leadership.

It reports, per kind and overall: requests, statuses, p50/p95/p99/max latency; the 5xx and transport-error
counts (the aim is zero); 429s (the load stays under the plan limit, so also zero); the memory trend of each
worker (least-squares slope over the run after the first quarter, in MiB per 10 minutes, and the growth from
the first sample after warm-up to the last); webhook deliveries received. Exit status 0 when there were no 5xx,
no transport errors and the workers' memory shows no growth trend (slope under --max-slope MiB/10 min), else 1.
Everything it starts is killed at exit; the run stops itself after --seconds plus set-up time.
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import http.client
import http.server
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from run import HOST, Database, Server, _kill_all, _migrate, _vm_hwm, request  # noqa: E402
from seed import SERVICES  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
HOT_KEYS = 20  # per org: the dedupe keys that repeat, so alerts fold into open incidents

# (kind, weight): what share of the requests each kind gets
MIX = (
    ("ingest_new", 14), ("ingest_repeat", 16), ("ingest_resolve", 3),
    ("api_incident_list", 8), ("api_incident", 6),
    ("page_incidents", 10), ("page_incident", 8), ("page_dashboard", 4), ("page_services", 3),
    ("page_compliance", 3), ("htmx_poll", 8),
    ("export_audit_csv", 3), ("export_compliance", 3), ("export_incident_md", 3),
    ("digest_preview", 4), ("digest_deliver", 2), ("report_generate", 1),
)


# --------------------------------------------------------------------------- the webhook receiver

class Receiver:
    """Counts the webhook deliveries the outbox sends (answers 204)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.count += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{HOST}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="soak-receiver").start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- the load

class Org:
    def __init__(self, seeded: dict):
        self.id = seeded["org_id"]
        self.ingest = {"Authorization": f"Bearer {seeded['ingest_token']}", "Content-Type": "application/json"}
        self.api = {"Authorization": f"Bearer {seeded['api_key']}"}
        self.session = {"Cookie": seeded["cookie"]}
        self.incidents: list[int] = []  # ids seen in answers (newest last), for detail requests
        self.lock = threading.Lock()

    def some_incident(self, rng: random.Random) -> int | None:
        with self.lock:
            if not self.incidents:
                return None
            return self.incidents[-1 - min(int(rng.expovariate(0.05)), len(self.incidents) - 1)]

    def saw(self, incident_id) -> None:
        if isinstance(incident_id, int):
            with self.lock:
                self.incidents.append(incident_id)
                del self.incidents[:-500]


def _alert(key: str, status: str, rng: random.Random) -> bytes:
    return json.dumps({
        "dedupe_key": key, "status": status, "severity": rng.choice(("critical", "high", "medium", "low")),
        "title": f"{key.split(':')[1]} error rate above threshold", "service": key.split(":")[1],
        "labels": {"env": "production", "delivery": uuid.uuid4().hex},
        "starts_at": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=rng.randint(0, 600))).isoformat(),
        "description": "soak test alert",
    }).encode()


def build(kind: str, org: Org, rng: random.Random, cron: str) -> tuple[str, str, dict, bytes | None, tuple[int, ...]]:
    """(method, path, headers, body, expected statuses) of one request of this kind."""
    hot = f"soak:{rng.choice(SERVICES)}:{rng.randrange(HOT_KEYS)}"
    if kind == "ingest_new":
        return "POST", "/api/integrations/alerts", org.ingest, \
            _alert(f"soak:{rng.choice(SERVICES)}:{uuid.uuid4().hex[:12]}", "firing", rng), (202,)
    if kind == "ingest_repeat":
        return "POST", "/api/integrations/alerts", org.ingest, _alert(hot, "firing", rng), (202,)
    if kind == "ingest_resolve":
        return "POST", "/api/integrations/alerts", org.ingest, _alert(hot, "resolved", rng), (202,)
    if kind == "api_incident_list":
        status = rng.choice(("", "&status=open", "&status=resolved"))
        return "GET", f"/api/v1/incidents?limit=50{status}", org.api, None, (200,)
    incident = org.some_incident(rng)
    if kind == "api_incident":
        return ("GET", f"/api/v1/incidents/{incident}", org.api, None, (200,)) if incident else \
            ("GET", "/api/v1/incidents?limit=5", org.api, None, (200,))
    if kind == "page_incidents":
        return "GET", rng.choice(("/incidents", "/incidents?status=all", "/incidents?severity=high")), \
            org.session, None, (200,)
    if kind == "page_incident":
        return "GET", f"/incidents/{incident}" if incident else "/incidents", org.session, None, (200,)
    if kind == "page_dashboard":
        return "GET", "/", org.session, None, (200,)
    if kind == "page_services":
        return "GET", "/services", org.session, None, (200,)
    if kind == "page_compliance":
        return "GET", "/compliance", org.session, None, (200,)
    if kind == "htmx_poll":
        return "GET", "/incidents", {**org.session, "HX-Request": "true"}, None, (200, 204)
    if kind == "export_audit_csv":
        return "GET", "/api/audit/export?window=24h", org.api, None, (200,)
    if kind == "export_compliance":
        return "GET", "/api/governance/compliance/export", org.api, None, (200,)
    if kind == "export_incident_md":
        return ("GET", f"/api/incidents/{incident}/export", org.api, None, (200,)) if incident else \
            ("GET", "/api/audit/export?window=24h", org.api, None, (200,))
    if kind == "digest_preview":
        return "GET", "/api/governance/compliance/digest", org.api, None, (200,)
    if kind == "digest_deliver":
        return "POST", "/api/governance/compliance/digest/scheduled", \
            {"Authorization": f"Bearer {cron}", "Content-Type": "application/json"}, \
            json.dumps({"orgId": org.id, "force": True, "channels": ["webhook"]}).encode(), (200,)
    if kind == "report_generate":
        now = dt.datetime.now(dt.timezone.utc)
        body = {"kind": "incident-summary", "start": (now - dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return "POST", "/api/v1/reports/generate", {**org.api, "Content-Type": "application/json"}, \
            json.dumps(body).encode(), (202,)
    raise ValueError(kind)


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.unexpected: collections.Counter = collections.Counter()  # (kind, status) outside the expected set
        self.errors: collections.Counter = collections.Counter()  # (kind, exception name)
        self.samples_5xx: list[str] = []

    def add(self, kind: str, status: int, ms: float, expected: tuple[int, ...], body: bytes) -> None:
        with self.lock:
            self.latencies[kind].append(ms)
            self.statuses[kind][status] += 1
            if status not in expected:
                self.unexpected[(kind, status)] += 1
                if status >= 500 and len(self.samples_5xx) < 10:
                    self.samples_5xx.append(f"{kind} {status}: {body[:300]!r}")


def schedule() -> list[str]:
    """One cycle of the mix: every kind as often as its weight, in a fixed shuffled order. Client i starts
    i/clients of the way into the cycle, so even a short run with a few clients covers every kind."""
    cycle = [kind for kind, weight in MIX for _ in range(weight)]
    random.Random(0).shuffle(cycle)
    return cycle


def client(index: int, port: int, orgs: list[Org], cron: str, interval: float, t_end: float, results: Results,
           stop: threading.Event, clients: int) -> None:
    rng = random.Random(index)
    cycle = schedule()
    position = index * len(cycle) // clients
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    next_at = time.monotonic() + rng.random() * interval
    while not stop.is_set():
        now = time.monotonic()
        if now >= t_end:
            break
        if next_at > now:
            time.sleep(min(next_at - now, t_end - now))
            continue
        # Poisson arrivals at the client's share of the rate; a slow answer delays only this client
        next_at += rng.expovariate(1.0 / interval)
        kind = cycle[position % len(cycle)]
        position += 1
        org = rng.choice(orgs)
        method, path, headers, body, expected = build(kind, org, rng, cron)
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except Exception as exc:
            with results.lock:
                results.errors[(kind, type(exc).__name__)] += 1
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=60)
            continue
        results.add(kind, resp.status, (time.perf_counter() - t0) * 1000, expected, data)
        if kind.startswith("ingest") and resp.status == 202:
            for r in json.loads(data).get("results", []):
                org.saw(r.get("incident_id"))
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=60)
    conn.close()


# --------------------------------------------------------------------------- sampling

def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _metric(text: str, name: str, labels: str = "") -> float | None:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.eE+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def sample(server: Server, database: Database, metrics_token: str, t0: float) -> dict:
    workers = {pid: _rss_kib(pid) for pid in _children(server.proc.pid)}
    out = {"t": round(time.monotonic() - t0, 1), "workers_rss_kib": {str(k): v for k, v in workers.items()}}
    try:
        status, _, body = request(server.port, "GET", "/metrics", {"Authorization": f"Bearer {metrics_token}"})
        text = body.decode()
        out["metrics_status"] = status
        out["outbox_pending"] = _metric(text, "zentro_webhook_outbox_depth", '{status="pending"}')
        out["outbox_oldest_due_s"] = _metric(text, "zentro_webhook_outbox_oldest_due_seconds")
        out["scheduler_leader"] = _metric(text, "zentro_scheduler_leader")
    except OSError as exc:
        out["metrics_status"] = type(exc).__name__
    if database._admin is not None:
        try:
            with database._lock:
                out["db_connections"] = database._admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database.name,)).fetchone()[0]
        except Exception:
            pass
    return out


def slope_mib_per_10min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, KiB) points, as MiB per 10 minutes."""
    if len(points) < 3:
        return None
    xs, ys = zip(*points)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx * 600 / 1024


def memory_trend(samples: list[dict], warmup: float) -> dict:
    """Per worker alive for the whole run: slope after warm-up, first/last RSS after warm-up, peak (VmHWM)."""
    series: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for s in samples:
        for pid, kib in s["workers_rss_kib"].items():
            if kib is not None and s["t"] >= warmup:
                series[pid].append((s["t"], kib))
    out = {}
    for pid, points in series.items():
        if len(points) < 3:
            continue
        out[pid] = {"slope_mib_per_10min": round(slope_mib_per_10min(points) or 0.0, 2),
                    "first_mib": round(points[0][1] / 1024, 1), "last_mib": round(points[-1][1] / 1024, 1),
                    "samples": len(points)}
    return out


def quarter_slopes(samples: list[dict], seconds: float) -> dict[str, list[float | None]]:
    """Per worker, the slope of each quarter of the run (MiB per 10 min): warm-up shows as slopes that shrink
    quarter after quarter, a leak as slopes that stay."""
    out: dict[str, list[float | None]] = {}
    q = seconds / 4
    for pid in {pid for s in samples for pid in s["workers_rss_kib"]}:
        points = [(s["t"], s["workers_rss_kib"][pid]) for s in samples if s["workers_rss_kib"].get(pid) is not None]
        slopes = [slope_mib_per_10min([p for p in points if i * q <= p[0] <= (i + 1) * q]) for i in range(4)]
        out[pid] = [None if v is None else round(v, 1) for v in slopes]
    return out


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))], 1)


# --------------------------------------------------------------------------- the run

def _redis_ok(url: str) -> bool:
    try:
        import redis
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600, help="length of the load (default 600)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rate", type=float, default=40, help="requests per second, all clients together (default 40)")
    ap.add_argument("--clients", type=int, default=12, help="client threads (default 12)")
    ap.add_argument("--orgs", type=int, default=3)
    ap.add_argument("--incidents", type=int, default=2000, help="history per org (default 2000)")
    ap.add_argument("--sample", type=float, default=10, help="seconds between memory samples (default 10)")
    ap.add_argument("--max-slope", type=float, default=8.0,
                    help="memory slope per worker above which the run fails, MiB per 10 min (default 8)")
    ap.add_argument("--redis", default=os.environ.get("ZENTRO_BENCH_REDIS_URL", REDIS_URL))
    ap.add_argument("--json-out", type=Path, help="write the results here (JSON)")
    a = ap.parse_args(argv)
    if a.rate / a.orgs > 15:
        ap.error("keep --rate/--orgs at or under 15 per second: the enterprise plan allows 1000 API calls a minute "
                 "per org, and the soak measures steady service, not 429s")

    tmp = Path(tempfile.mkdtemp(prefix="zentro-soak-"))
    database = Database("postgres", tmp)
    receiver = Receiver()
    server = None
    started = dt.datetime.now(dt.timezone.utc)
    try:
        database.create()
        redis_ok = _redis_ok(a.redis)
        cron, metrics_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        multiproc = tmp / "prometheus"
        multiproc.mkdir()
        env = {**os.environ, "ZENTRO_DATABASE_URL": database.url, "ZENTRO_SECRET_KEY": secrets.token_urlsafe(32),
               "ZENTRO_STORAGE_DIR": str(tmp / "storage"), "ZENTRO_SCHEDULER": "1",
               "ZENTRO_WEBHOOK_ALLOW_PRIVATE": "1", "ZENTRO_DIGEST_CRON_SECRET": cron,
               "ZENTRO_METRICS_TOKEN": metrics_token, "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
               "ZENTRO_RATELIMIT_STORAGE_URI": a.redis if redis_ok else "memory://",
               "ZENTRO_RATELIMIT_KEY_PREFIX": f"zentro-soak-{secrets.token_hex(4)}",
               "ZENTRO_LOG_LEVEL": "WARNING"}
        _migrate(env)
        t_setup = time.monotonic()
        orgs = []
        for i in range(a.orgs):
            r = subprocess.run([sys.executable, str(BENCH / "seed.py"), "--org", f"soak-{i + 1}", "--ingest-token",
                                "--api-key", "--session", "--incidents", str(a.incidents), "--webhook", receiver.url],
                               env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                raise RuntimeError(f"seed failed:\n{r.stderr[-3000:]}")
            orgs.append(Org(json.loads(r.stdout)))
        print(f"soak: seeded {a.orgs} orgs × {a.incidents} incidents in {time.monotonic() - t_setup:.1f} s; "
              f"rate limits in {'Redis ' + a.redis if redis_ok else 'memory:// (Redis unreachable)'}", flush=True)
        server = Server("zentro", "wsgi:app", ROOT,
                        argparse.Namespace(workers=a.workers, worker_class="gthread", threads=a.threads),
                        env, tmp)
        server.wait_ready("/api/health", 60)
        server.wait_idle(30)
        workers_at_start = sorted(_children(server.proc.pid))

        results = Results()
        stop = threading.Event()
        t0 = time.monotonic()
        t_end = t0 + a.seconds
        interval = a.clients / a.rate
        threads = [threading.Thread(target=client, daemon=True, name=f"soak-client-{i}",
                                    args=(i, server.port, orgs, cron, interval, t_end, results, stop, a.clients))
                   for i in range(a.clients)]
        for t in threads:
            t.start()
        samples = []
        next_sample = t0
        while time.monotonic() < t_end:
            if time.monotonic() >= next_sample:
                samples.append(sample(server, database, metrics_token, t0))
                next_sample += a.sample
                done = sum(len(v) for v in results.latencies.values())
                print(f"soak: {samples[-1]['t']:6.0f} s  {done} requests  "
                      f"5xx {sum(n for (k, s), n in results.unexpected.items() if s >= 500)}  "
                      f"rss MiB {[round(v / 1024) for v in samples[-1]['workers_rss_kib'].values() if v]}  "
                      f"outbox {samples[-1].get('outbox_pending')}", flush=True)
            time.sleep(0.2)
        for t in threads:
            t.join(timeout=90)
        stop.set()
        samples.append(sample(server, database, metrics_token, t0))
        # let the leader drain what the last seconds queued, then read the final outbox depth
        for _ in range(30):
            last = sample(server, database, metrics_token, t0)
            if not last.get("outbox_pending"):
                break
            time.sleep(1)
        workers_at_end = sorted(_children(server.proc.pid))
        peak = {str(p): _vm_hwm(p) for p in workers_at_end}
        server_log = server.log_tail(200)
    finally:
        _kill_all()
        receiver.close()
        database.drop()
        shutil.rmtree(tmp, ignore_errors=True)

    elapsed = a.seconds
    kinds = {}
    all_ms: list[float] = []
    for kind, _ in MIX:
        ms = results.latencies.get(kind, [])
        all_ms += ms
        kinds[kind] = {"requests": len(ms), "statuses": dict(sorted(results.statuses[kind].items())),
                       "p50_ms": _pct(ms, .50), "p95_ms": _pct(ms, .95), "p99_ms": _pct(ms, .99),
                       "max_ms": round(max(ms), 1) if ms else None}
    n5xx = sum(n for (k, s), n in results.unexpected.items() if s >= 500)
    n429 = sum(n for (k, s), n in results.unexpected.items() if s == 429)
    trend = memory_trend(samples, warmup=a.seconds / 4)
    for pid, slopes in quarter_slopes(samples, a.seconds).items():
        if pid in trend:
            trend[pid]["quarters"] = slopes
    worst = max((w["slope_mib_per_10min"] for w in trend.values()), default=None)
    out = {
        "started": started.isoformat(timespec="seconds"), "seconds": a.seconds, "workers": a.workers,
        "threads": a.threads, "rate_target": a.rate, "clients": a.clients, "orgs": a.orgs,
        "incidents_per_org": a.incidents, "rate_limit_storage": "redis" if redis_ok else "memory",
        "requests": len(all_ms), "rate_achieved": round(len(all_ms) / elapsed, 1),
        "p50_ms": _pct(all_ms, .50), "p95_ms": _pct(all_ms, .95), "p99_ms": _pct(all_ms, .99),
        "max_ms": round(max(all_ms), 1) if all_ms else None,
        "5xx": n5xx, "429": n429, "transport_errors": sum(results.errors.values()),
        "unexpected": {f"{k} {s}": n for (k, s), n in sorted(results.unexpected.items())},
        "errors": {f"{k} {e}": n for (k, e), n in sorted(results.errors.items())},
        "samples_5xx": results.samples_5xx, "kinds": kinds,
        "memory": {"trend": trend, "worst_slope_mib_per_10min": worst, "max_slope": a.max_slope,
                   "peak_rss_kib": peak, "workers_replaced": workers_at_start != workers_at_end},
        "webhooks_received": receiver.count, "outbox_pending_at_end": last.get("outbox_pending"),
        "scheduler_leader_seen": any(s.get("scheduler_leader") == 1 for s in samples),
        "db_connections_max": max((s.get("db_connections") or 0 for s in samples), default=None),
        "samples": samples,
        "server_log_errors": [l for l in server_log.splitlines() if "Traceback" in l or "ERROR" in l][:20],
    }
    ok = (n5xx == 0 and not results.errors and worst is not None and worst < a.max_slope
          and not out["memory"]["workers_replaced"])
    out["ok"] = ok
    if a.json_out:
        a.json_out.parent.mkdir(parents=True, exist_ok=True)
        a.json_out.write_text(json.dumps(out, indent=1))
    print(f"soak: {out['requests']} requests in {elapsed:.0f} s ({out['rate_achieved']}/s), 5xx {n5xx}, 429 {n429}, "
          f"transport errors {out['transport_errors']}, p50/p95/p99 {out['p50_ms']}/{out['p95_ms']}/{out['p99_ms']} ms; "
          f"worst worker memory slope {worst} MiB/10 min; webhooks received {receiver.count}; "
          f"{'OK' if ok else 'FAILED'}")
    for k, v in out["unexpected"].items():
        print(f"soak: unexpected {k}: {v}")
    for s in results.samples_5xx:
        print(f"soak: 5xx sample: {s}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
