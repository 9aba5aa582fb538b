"""Compliance at a million audit rows, on PostgreSQL (issue 4's aims).

    .venv/bin/python bench/compliance.py [--rows 1000000] [--small-days 36] [--rounds 3]

1. Creates a throwaway PostgreSQL database (same rules as bench/run.py: ZENTRO_BENCH_POSTGRES_URL or the
   local server; dropped at exit), migrates it, seeds an org with an API key (bench/seed.py), then inserts
   ``--rows`` audit events spread evenly over the last 365 days with control tags, and their audit_tags rows,
   in SQL (INSERT … SELECT generate_series). The rows are not hash-chained: nothing here verifies the chain.
2. CSV export throughput: PostgreSQL's own ``COPY (SELECT <the audit columns> …) TO STDOUT WITH CSV`` of the
   rows the export holds (the org's tagged rows in the window) (the baseline; read through psycopg in this process) against Zentro's
   ``GET /api/governance/compliance/export?format=csv&periodDays=365`` served by gunicorn (one sync worker)
   on loopback, read to the end. Ratio = Zentro rows/s ÷ COPY rows/s (aim ≥ 0.3), in ABBA order per round.
3. Peak memory: a fresh gunicorn worker per measurement; its VmHWM (peak resident set, /proc) after one tiny
   request, then after exporting the last ``--small-days`` days (about a tenth of the rows) or all of them.
   Flat means the growth for all rows is about the growth for a tenth.
4. Program readiness across every framework: ``GET /api/governance/compliance/program`` on the same server
   (30-day window over the million rows), median of ``--rounds`` (aim under 2 s), plus the in-process time of
   ``engine.assess_all`` for 30 and 365 days.
Writes bench/results/<UTC>-compliance.json. Nothing asserts; the aims are reported.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from run import HOST, Database, _free_port, _kill_group, _migrate, _spawn  # noqa: E402

TAG_SETS = (  # what real Zentro actions carry (see the *_TAGS constants in zentro/)
    "SOC2:CC7.2 ISO27001:A.8.16", "SOC2:CC7.3 SOC2:CC7.4 ISO27001:A.5.24 ISO27001:A.5.26",
    "SOC2:CC7.4 SOC2:CC7.5 ISO27001:A.5.26 ISO27001:A.5.27", "SOC2:CC8.1 ISO27001:A.8.32",
    "SOC2:CC6.1 ISO27001:A.5.9", "SOC2:CC6.2 ISO27001:A.5.18", "SOC2:CC7.1 ISO27001:A.8.8", "",
)
ACTIONS = ("alerts.ingested", "incident.opened", "incident.resolved", "service.change_recorded", "service.updated",
           "membership.added", "findings.ingested", "session.signed_in")
EXPORT_COLUMNS = ("seq", "id", "created_at", "actor_type", "actor_id", "actor_label", "action", "target_type",
                  "target_id", "control_tags", "request_id", "data", "prev_hash", "hash")


def seed_audit(conn, org_id: int, rows: int, now: dt.datetime) -> float:
    started = time.monotonic()
    n_sets, n_actions = len(TAG_SETS), len(ACTIONS)
    base = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_events WHERE org_id = %s", (org_id,)).fetchone()[0]
    conn.execute(
        """
        INSERT INTO audit_events (org_id, seq, created_at, actor_type, actor_id, actor_label, action, target_type,
                                  target_id, control_tags, request_id, data, prev_hash, hash)
        SELECT %(org)s, %(base)s + n, %(now)s - make_interval(secs => (%(rows)s - n) * (31536000.0 / %(rows)s)),
               'system', '', 'zentro', (%(actions)s::text[])[1 + n %% %(n_actions)s], 'incident', (n %% 5000)::text,
               (%(tags)s::text[])[1 + n %% %(n_sets)s], md5(n::text),
               '{"n":' || n || ',"note":"bench row"}', md5((n - 1)::text) || md5((n - 1)::text),
               md5(n::text) || md5(n::text)
        FROM generate_series(1, %(rows)s) AS n
        """, {"org": org_id, "base": base, "now": now, "rows": rows, "actions": list(ACTIONS), "n_actions": n_actions,
              "tags": list(TAG_SETS), "n_sets": n_sets})
    conn.execute(
        """
        INSERT INTO audit_tags (org_id, event_id, tag, created_at, day)
        SELECT e.org_id, e.id, t.tag, e.created_at, floor(extract(epoch FROM e.created_at) / 86400)::int
        FROM audit_events e, unnest(string_to_array(e.control_tags, ' ')) AS t(tag)
        WHERE e.org_id = %(org)s AND e.control_tags <> ''
        """, {"org": org_id})
    conn.commit()
    conn.execute("ANALYZE audit_events")
    conn.execute("ANALYZE audit_tags")
    conn.commit()
    return time.monotonic() - started


def copy_baseline(conn, org_id: int, since: dt.datetime) -> tuple[int, int, float]:
    """(rows, bytes, seconds) of COPY … TO STDOUT WITH CSV of the export's columns."""
    cols = ", ".join(EXPORT_COLUMNS)
    sql = (f"COPY (SELECT {cols} FROM audit_events WHERE org_id = {int(org_id)} AND created_at >= "
           f"'{since.isoformat()}' AND control_tags <> '' ORDER BY seq) TO STDOUT WITH CSV HEADER")  # the export's rows
    started = time.monotonic()
    size = lines = 0
    with conn.cursor() as cur:
        with cur.copy(sql) as copy:
            for block in copy:
                size += len(block)
                lines += bytes(block).count(b"\n")
    return lines - 1, size, time.monotonic() - started


class Server:
    def __init__(self, env: dict, logdir: Path):
        self.port = _free_port()
        self.log = logdir / f"gunicorn-{self.port}.log"
        self.proc = _spawn([sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{self.port}", "--workers", "1",
                            "--worker-class", "sync", "--timeout", "600", "--chdir", str(ROOT), "--log-level",
                            "warning", "--error-logfile", str(self.log), "wsgi:app"],
                           env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get(self.port, "/api/health", {})[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def worker_pid(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return int(children[0])

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def stop(self) -> None:
        _kill_group(self.proc)


def get(port: int, path: str, headers: dict) -> tuple[int, int, int, float]:
    """(status, bytes, lines, seconds) of one GET read to the end."""
    conn = http.client.HTTPConnection(HOST, port, timeout=600)
    started = time.monotonic()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    size = lines = 0
    while True:
        chunk = resp.read(1 << 16)
        if not chunk:
            break
        size += len(chunk)
        lines += chunk.count(b"\n")
    elapsed = time.monotonic() - started
    conn.close()
    return resp.status, size, lines, elapsed


def in_process_assess(env: dict, org_id: int) -> dict:
    code = (
        "import json, time, datetime as dt\n"
        "from zentro import create_app\n"
        "from zentro.compliance import engine\n"
        "app = create_app()\n"
        "out = {}\n"
        "with app.app_context():\n"
        f"    engine.assess_all({org_id}, period_days=30)\n"  # warm the catalog and the statement cache
        "    for days in (30, 365):\n"
        "        t = time.monotonic()\n"
        f"        engine.assess_all({org_id}, period_days=days)\n"
        "        out[str(days)] = round(time.monotonic() - t, 3)\n"
        "print(json.dumps(out))\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return {"error": r.stderr[-1500:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--small-days", type=int, default=36, help="window of the small export for the memory check")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json-out", type=Path, help="write the JSON here instead of bench/results/<UTC>-compliance.json")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="zentro-bench-compliance-"))
    database = Database("postgres", tmp)
    database.create()
    result: dict = {"rows": args.rows, "database": database.describe(), "started": dt.datetime.now(dt.timezone.utc).isoformat()}
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZENTRO_")}
        env.update(ZENTRO_DATABASE_URL=database.url, ZENTRO_SECRET_KEY=secrets.token_hex(16),
                   ZENTRO_RATELIMIT_ENABLED="0", ZENTRO_STORAGE_DIR=str(tmp / "storage"))
        _migrate(env)
        seeded = json.loads(subprocess.run([sys.executable, str(BENCH / "seed.py"), "--org", "bench-compliance",
                                            "--api-key"], env=env, cwd=ROOT, capture_output=True, text=True,
                                           check=True, timeout=300).stdout.strip().splitlines()[-1])
        headers = {"Authorization": f"Bearer {seeded['api_key']}"}
        import psycopg
        conn = psycopg.connect(database.url.replace("postgresql+psycopg://", "postgresql://"))
        org_id = conn.execute("SELECT id FROM orgs WHERE slug = 'bench-compliance'").fetchone()[0]
        now = dt.datetime.now(dt.timezone.utc)
        result["seed_seconds"] = round(seed_audit(conn, org_id, args.rows, now), 1)
        print(f"bench: seeded {args.rows:,} audit rows in {result['seed_seconds']} s", file=sys.stderr)

        since_all = now - dt.timedelta(days=365)
        server = Server(env, tmp)
        try:
            export_path = "/api/governance/compliance/export?format=csv&periodDays=365"
            get(server.port, "/api/governance/compliance/export?format=csv&periodDays=1", headers)  # warm
            rounds = []
            for r in range(args.rounds):
                order = ("copy", "zentro") if r % 2 == 0 else ("zentro", "copy")
                got = {}
                for side in order:
                    if side == "copy":
                        rows, size, secs = copy_baseline(conn, org_id, since_all)
                    else:
                        status, size, lines, secs = get(server.port, export_path, headers)
                        if status != 200:
                            raise RuntimeError(f"export answered {status}")
                        rows = lines - 1
                    got[side] = {"rows": rows, "bytes": size, "seconds": round(secs, 3), "rows_per_s": round(rows / secs)}
                got["ratio"] = round(got["zentro"]["rows_per_s"] / got["copy"]["rows_per_s"], 3)
                rounds.append(got)
                print(f"bench: export round {r + 1}: zentro {got['zentro']['rows']:,} rows in {got['zentro']['seconds']} s, "
                      f"COPY {got['copy']['rows']:,} rows in {got['copy']['seconds']} s, ratio {got['ratio']}", file=sys.stderr)
            result["export"] = {"rounds": rounds, "ratio_median": statistics.median(r["ratio"] for r in rounds)}

            times = []
            for _ in range(args.rounds):
                status, _, _, secs = get(server.port, "/api/governance/compliance/program", headers)
                if status != 200:
                    raise RuntimeError(f"program answered {status}")
                times.append(round(secs, 3))
            result["program_http_seconds"] = {"rounds": times, "median": statistics.median(times)}
        finally:
            server.stop()

        memory = {}
        for label, days in (("small", args.small_days), ("all", 365)):
            server = Server(env, tmp)
            try:
                get(server.port, "/api/governance/compliance/export?format=csv&periodDays=1", headers)
                before = server.peak_rss_kib()
                status, size, lines, secs = get(server.port, f"/api/governance/compliance/export?format=csv&periodDays={days}", headers)
                after = server.peak_rss_kib()
                memory[label] = {"days": days, "rows": lines - 1, "peak_rss_before_kib": before,
                                 "peak_rss_after_kib": after, "growth_kib": after - before}
            finally:
                server.stop()
        result["export_memory"] = memory
        result["assess_all_in_process_seconds"] = in_process_assess(env, org_id)
        conn.close()
    finally:
        database.drop()

    ratio = result["export"]["ratio_median"]
    prog = result["program_http_seconds"]["median"]
    mem = result["export_memory"]
    print(json.dumps(result, indent=2))
    print(f"\naims: CSV export / COPY rows/s {ratio:.3f} ≥ 0.3: {'met' if ratio >= 0.3 else 'NOT met'}; "
          f"program readiness {prog:.2f} s < 2 s: {'met' if prog < 2 else 'NOT met'}; peak-memory growth "
          f"{mem['small']['growth_kib']} KiB for {mem['small']['rows']:,} rows vs {mem['all']['growth_kib']} KiB "
          f"for {mem['all']['rows']:,} rows")
    out = args.json_out or BENCH / "results" / f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-compliance.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"bench: results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
