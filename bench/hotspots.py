"""Where a workload's time goes inside Zentro: SQL statements and Python functions, in one process.

    .venv/bin/python bench/hotspots.py --workload ingest_new [--database postgres] [--requests 200]

Builds the same throwaway database as bench/run.py (migrated, the workload's setup run), then sends
the workload's request --requests times through Flask's test client, in this process, one at a time
(no gunicorn, no concurrency: it shows the cost of one request, not contention). Prints:

  * wall time per request and the share spent in database round trips;
  * the statements, grouped by their SQL text, by total time (count per request, ms per request);
  * cProfile's top functions: Zentro's own by cumulative time, and every function by own time.

It measures Zentro alone; the ratio against bare Flask is bench/run.py's job.
"""
from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from loadgen import Template  # noqa: E402
from run import Database, _migrate  # noqa: E402
from workloads import WORKLOADS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--requests", type=int, default=200, help="profiled requests (default 200), after 20 unprofiled")
    ap.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
    a = ap.parse_args(argv)
    w = WORKLOADS[a.workload]

    tmp = Path(tempfile.mkdtemp(prefix="zentro-profile-"))
    database = Database(a.database, tmp)
    try:
        database.create()
        env = {k: v for k, v in os.environ.items() if k != "ZENTRO_BENCH_POSTGRES_URL"}
        env.update(ZENTRO_DATABASE_URL=database.url, ZENTRO_SECRET_KEY=secrets.token_urlsafe(48), **w.zentro_env)
        _migrate(env)
        headers = dict(w.headers)
        if w.setup is not None:
            headers.update(w.setup(dict(env)))
        os.environ.update({k: v for k, v in env.items() if k.startswith("ZENTRO_")})
        return _profile(w, headers, a, database)
    finally:
        database.drop()
        shutil.rmtree(tmp, ignore_errors=True)


def _profile(w, headers: dict, a: argparse.Namespace, database: Database) -> int:
    from sqlalchemy import event

    from zentro import create_app
    from zentro.extensions import db

    app = create_app()
    client = app.test_client()
    cookie = headers.pop("Cookie", None)
    if cookie:
        name, _, value = cookie.partition("=")
        client.set_cookie(name, value)  # the test client's jar would override a Cookie header
    template = Template(w.body, run_id=1, proc_index=0, procs=1, thread_index=0, threads=1,
                        base_ms=int(time.time() * 1000) - 30 * 86_400_000) if w.body_template else None
    counter = iter(range(10**9))

    def one():
        body = template.render(next(counter)) if template else w.body
        resp = client.open(w.path, method=w.method, headers=headers, data=body)
        if resp.status_code != w.expect_status:
            raise SystemExit(f"{w.method} {w.path} answered {resp.status_code}: {resp.get_data()[:300]!r}")

    stats: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, params, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, params, context, executemany):
        s = stats[" ".join(statement.split())]
        s[0] += 1
        s[1] += time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())

    for _ in range(20):
        one()
    stats.clear()
    n = a.requests
    t0 = time.perf_counter()
    for _ in range(n):
        one()
    wall = (time.perf_counter() - t0) / n * 1000
    sql_ms = sum(v[1] for v in stats.values()) / n * 1000
    statements = sum(v[0] for v in stats.values()) / n
    print(f"{w.name} on {database.describe()}: {wall:.2f} ms per request (one at a time, in-process); "
          f"SQL round trips {sql_ms:.2f} ms ({sql_ms / wall:.0%}) in {statements:.1f} statements per request\n")
    print(f"{'ms/req':>8} {'count/req':>9}  statement")
    for text, (count, total) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:a.top]:
        print(f"{total / n * 1000:8.3f} {count / n:9.2f}  {text[:150]}")

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        one()
    prof.disable()
    for title, order, restrict in (("Zentro's own functions by cumulative time", "cumulative", (f"{ROOT}/zentro/",)),
                                   ("every function by own time", "tottime", ())):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(order).print_stats(*restrict, a.top)
        text = out.getvalue().replace(f"{ROOT}/", "").replace(f"{sys.prefix}/lib/", "")
        print(f"\n--- cProfile, {n} requests (times include the profiler's overhead): {title} ---")
        print(text[text.index("ncalls"):].rstrip() if "ncalls" in text else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
