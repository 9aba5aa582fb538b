"""Zentro benchmark harness: throughput of each workload as a ratio against bare Flask, in one run.

    .venv/bin/python bench/run.py [--seconds 5] [--rounds 3] [--workload health] [--database postgres] ...
    make bench

What it does:
  1. makes a fresh database -- a SQLite file in a temporary directory, or (--database postgres) a
     throwaway PostgreSQL database that is dropped at exit -- migrates it (`zentro db upgrade`),
     picks a random ZENTRO_SECRET_KEY and runs the workloads' setup (bench/seed.py); nothing under
     instance/ is touched;
  2. starts two gunicorn servers on 127.0.0.1 (free ports) with identical worker settings:
     Zentro (`wsgi:app`) and the bare Flask baseline (`bench/bare_app.py`);
  3. for each workload and round, drives each server for --seconds with a closed-loop load
     generator (bench/loadgen.py, standard library, keep-alive), alternating which server goes
     first (ABBA) so drift on a shared machine cancels;
  4. prints per-run rps, p50/p95 latency, errors and server CPU per request, and the median over
     rounds of the per-round ratios zentro/bare (rps, CPU per request, p50/p95 latency), then whether
     each workload's aim is met; writes everything to bench/results/<timestamp>.json.

Ratios, not absolute numbers, are the result: the machine is shared and noisy. Every process
it starts is killed on exit (process groups), and the whole run stops itself after --max-total.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from loadgen import render_body  # noqa: E402
from workloads import GROUPS, WORKLOADS, Workload, expand  # noqa: E402

HOST = "127.0.0.1"  # loopback only, by rule
LEAD = 0.5  # seconds between launching the load processes and their first request
NOISY_SPREAD = 1.5  # max/min of the per-round rps ratios above which the run is called noisy
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"  # override: ZENTRO_BENCH_POSTGRES_URL
POSTGRES_ENV = "ZENTRO_BENCH_POSTGRES_URL"
TEMPLATE_AGE_MS = 30 * 86_400_000  # {ts_ms} counts up from 30 days before the run
METRIC_LABELS = {"rps_ratio": "rps ratio", "p50_ratio": "p50 latency ratio", "p95_ratio": "p95 latency ratio"}
OPS = {">=": "≥", "<=": "≤"}


# --------------------------------------------------------------------------- process bookkeeping

_children: list[subprocess.Popen] = []
_children_lock = threading.Lock()
_stopping = threading.Event()
_database: "Database | None" = None  # dropped by the normal cleanup, or by the backstop


class TimeCapReached(Exception):
    pass


def _spawn(cmd: list[str], **kw) -> subprocess.Popen:
    """Start a child in its own process group so it and everything it forks can be killed together."""
    with _children_lock:
        if _stopping.is_set():
            raise RuntimeError("stopping: no new processes")
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        _children.append(p)
    return p


def _kill_group(p: subprocess.Popen, grace: float = 5.0) -> None:
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=5)


def _kill_all() -> None:
    with _children_lock:
        _stopping.set()  # nothing new starts from here on
        children = list(_children)
    for p in children:
        try:
            _kill_group(p)
        except Exception as exc:  # keep killing the rest
            print(f"bench: could not stop pid {p.pid}: {exc}", file=sys.stderr)


def _time_cap(max_total: float) -> threading.Timer:
    """SIGALRM at the cap raises TimeCapReached in the main thread, so the normal cleanup runs; if
    that cleanup itself hangs, a backstop thread kills the children and exits 30 s later."""
    def on_alarm(*_):
        raise TimeCapReached(f"total time cap of {max_total:.0f} s reached")

    def backstop() -> None:
        print("bench: cleanup did not finish; killing children and exiting.", file=sys.stderr, flush=True)
        _kill_all()
        if _database is not None:
            _database.drop()
        os._exit(124)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max_total)
    t = threading.Timer(max_total + 30, backstop)
    t.daemon = True
    t.start()
    return t


# --------------------------------------------------------------------------- servers

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, app: str, pythonpath: Path, args: argparse.Namespace, env: dict, logdir: Path):
        self.name = name
        self.port = _free_port()
        self.log = logdir / f"gunicorn-{name}.log"
        cmd = [sys.executable, "-m", "gunicorn",
               "--bind", f"{HOST}:{self.port}",
               "--workers", str(args.workers),
               "--worker-class", args.worker_class,
               "--threads", str(args.threads),
               "--chdir", str(ROOT),
               "--pythonpath", str(pythonpath),
               "--graceful-timeout", "3",
               # gunicorn also reads the repository's gunicorn.conf.py (deploy settings) from the working directory;
               # its worker recycling would restart workers mid-measurement
               "--max-requests", "0",
               "--log-level", "warning",
               "--error-logfile", str(self.log),
               app]
        self.cmd = cmd
        self.proc = _spawn(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, _, _ = request(self.port, "GET", path)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def wait_idle(self, timeout: float, window: float = 0.5, busy: float = 0.05) -> None:
        """Answering is not enough: other workers may still be importing the app. Wait until the whole
        process tree burns less than `busy` CPU-seconds in `window` (or 2 s where /proc is missing)."""
        last = self.cpu_seconds()
        if last is None:
            time.sleep(2)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(window)
            now = self.cpu_seconds()
            if now is None or now - last < busy:
                return
            last = now
        print(f"bench: warning: {self.name} server still busy after {timeout:.0f} s", file=sys.stderr)

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the gunicorn master and all its descendants (Linux /proc), else None."""
        return _tree_cpu_seconds(self.proc.pid)

    def peak_rss_kib(self) -> dict | None:
        """VmHWM (peak resident set, KiB) of the master and of each worker alive now, read from /proc after the
        measured windows (a worker that was replaced during the run is not counted); None without /proc."""
        try:
            workers = [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
            return {"master": _vm_hwm(self.proc.pid), "workers": [_vm_hwm(p) for p in workers]}
        except (OSError, ValueError):
            return None


def _vm_hwm(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def _tree_cpu_seconds(root: int) -> float | None:
    try:
        tick = os.sysconf("SC_CLK_TCK")
        stats: dict[int, tuple[int, float]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
            stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    except (OSError, ValueError, AttributeError):
        return None
    if root not in stats:
        return None
    total, frontier = 0.0, [root]
    while frontier:
        pid = frontier.pop()
        total += stats[pid][1]
        frontier.extend(p for p, (ppid, _) in stats.items() if ppid == pid)
    return total


# --------------------------------------------------------------------------- the database

class Database:
    """The run's throwaway database: a SQLite file in the temporary directory, or a PostgreSQL database
    created on the server at ZENTRO_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres)
    and dropped at exit (WITH (FORCE): the servers' pooled connections may still be there)."""

    def __init__(self, kind: str, tmp: Path):
        self.kind = kind
        self.name: str | None = None
        self.url = f"sqlite:///{tmp / 'bench.db'}"
        self._server = None  # sqlalchemy URL of the PostgreSQL server, as given
        self._admin = None  # psycopg connection to the maintenance database (autocommit)
        self._lock = threading.Lock()
        self.dropped = kind == "sqlite"

    def create(self) -> None:
        if self.kind == "sqlite":
            return
        import psycopg
        from psycopg import sql
        from sqlalchemy.engine import make_url

        self._server = make_url(os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES)
        if not self._server.drivername.startswith("postgresql"):
            raise RuntimeError(f"{POSTGRES_ENV} must be a postgresql:// URL")
        admin = self._server.set(drivername="postgresql", database=self._server.database or "postgres")
        try:
            self._admin = psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True,
                                          connect_timeout=10)
        except psycopg.Error as exc:
            raise RuntimeError(f"cannot connect to PostgreSQL at {self.describe()}: {exc}") from None
        self.name = f"zentro_bench_{secrets.token_hex(6)}"
        self.dropped = False
        try:
            self._admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        except psycopg.Error as exc:
            raise RuntimeError(f"cannot create database {self.name}: {exc}") from None
        self.url = self._server.set(database=self.name).render_as_string(hide_password=False)

    def describe(self) -> str:
        if self.kind == "sqlite":
            return "SQLite (temporary file, WAL)"
        where = self._server.set(database=self.name or self._server.database)
        return f"PostgreSQL {where.render_as_string(hide_password=True)}"

    def drop(self) -> None:
        """Idempotent and safe from any thread (the backstop may race the normal cleanup)."""
        with self._lock:
            if self.dropped or self._admin is None or self.name is None:
                return
            from psycopg import sql
            try:
                try:
                    self._admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
                except Exception:  # PostgreSQL < 13 has no FORCE: end the connections, then drop
                    self._admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                                        (self.name,))
                    self._admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.name)))
                self.dropped = True
            except Exception as exc:
                print(f"bench: could not drop database {self.name}: {exc}; drop it by hand.", file=sys.stderr)
            finally:
                try:
                    self._admin.close()
                except Exception:
                    pass

    def backend_cpu(self) -> dict[int, float] | None:
        """{pid: CPU seconds} of the PostgreSQL backends connected to the run's database, when the server runs
        on this machine (its backends' CPU is Zentro's cost too, and competes for the same cores); else None."""
        if self.kind != "postgres" or self._admin is None or self._server.host not in (None, "", "127.0.0.1",
                                                                                         "localhost", "::1"):
            return None
        try:
            with self._lock:
                pids = [r[0] for r in self._admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)).fetchall()]
            tick = os.sysconf("SC_CLK_TCK")
            out = {}
            for pid in pids:
                try:
                    raw = Path(f"/proc/{pid}/stat").read_text()
                except OSError:
                    continue
                f = raw[raw.rindex(")") + 2:].split()
                out[pid] = (int(f[11]) + int(f[12])) / tick
            return out
        except Exception:
            return None


def _cpu_delta(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    if before is None or after is None:
        return None
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- load

_run_ids = iter(range(1, 1_000_000))  # every measured run gets its own, so template bodies never repeat


def load_of(w: Workload, args: argparse.Namespace) -> tuple[int, int]:
    return w.load or (args.load_procs, args.connections)


def drive(server: Server, w: Workload, path: str, headers: dict, args: argparse.Namespace, base_ms: int,
          database: Database | None = None) -> dict:
    """One measured run of workload `w` against one server; returns its summary. Only `w.expect_status`
    counts as done. With `database` (Zentro on a local PostgreSQL), the CPU of its backends is measured too."""
    method, body, expect_status = w.method, w.body, w.expect_status
    procs_n, conns = load_of(w, args)
    begin = time.time() + LEAD
    start = begin + args.warmup
    end = start + args.seconds
    cmd = [sys.executable, str(BENCH / "loadgen.py"), "--host", HOST, "--port", str(server.port),
           "--method", method, "--path", path, "--connections", str(conns),
           "--begin", repr(begin), "--start", repr(start), "--end", repr(end)]
    for k, v in headers.items():
        cmd += ["--header", f"{k}: {v}"]
    if body:
        cmd += ["--body-b64", base64.b64encode(body).decode()]
    if w.body_template:
        cmd += ["--body-template", "--run-id", str(next(_run_ids)), "--procs", str(procs_n), "--base-ms", str(base_ms)]
    procs = [_spawn(cmd + (["--proc-index", str(i)] if w.body_template else []),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(procs_n)]

    time.sleep(max(0.0, start - time.time()))
    cpu0 = server.cpu_seconds()
    db0 = database.backend_cpu() if database is not None else None
    time.sleep(max(0.0, end - time.time()))
    cpu1 = server.cpu_seconds()
    db1 = database.backend_cpu() if database is not None else None

    statuses: dict[str, int] = {}
    exceptions: dict[str, int] = {}
    latencies: list[int] = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            _kill_group(p)
            raise RuntimeError("load generator did not finish within 30 s of its window")
        if p.returncode != 0:
            raise RuntimeError(f"load generator failed ({p.returncode}): {err.strip()}")
        r = json.loads(out)
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        for k, v in r["exceptions"].items():
            exceptions[k] = exceptions.get(k, 0) + v
        latencies.extend(r["latencies_us"])
    with _children_lock:
        for p in procs:
            _children.remove(p)

    ok = statuses.get(str(expect_status), 0)
    errors = sum(statuses.values()) - ok + sum(exceptions.values())
    latencies.sort()
    cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    db_cpu = _cpu_delta(db0, db1)
    return {
        "server": server.name,
        "path": path,
        "ok": ok,
        "errors": errors,
        "statuses": statuses,
        "exceptions": exceptions,
        "rps": ok / args.seconds,
        "p50_ms": _pct(latencies, 50),
        "p95_ms": _pct(latencies, 95),
        "p99_ms": _pct(latencies, 99),
        "server_cpu_s": cpu,
        "server_cpu_us_per_req": (cpu / ok * 1e6) if cpu is not None and ok else None,
        "db_cpu_s": db_cpu,
        "db_cpu_us_per_req": (db_cpu / ok * 1e6) if db_cpu is not None and ok else None,
        "load": [procs_n, conns],
    }


def _pct(sorted_us: list[int], q: float) -> float | None:
    if not sorted_us:
        return None
    i = min(len(sorted_us) - 1, max(0, round(q / 100 * len(sorted_us)) - 1))
    return sorted_us[i] / 1000


# --------------------------------------------------------------------------- the run

def _migrate(env: dict) -> None:
    zentro = Path(sys.executable).parent / "zentro"
    cmd = [str(zentro)] if zentro.exists() else [sys.executable, "-c", "from zentro.cli import cli; cli()"]
    r = subprocess.run(cmd + ["db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"`zentro db upgrade` failed:\n{r.stdout}\n{r.stderr}")


def _check_shapes(w: Workload, zentro: Server, bare: Server, headers: dict, base_ms: int) -> list[str]:
    """Both sides must answer the expected status; for JSON, with the same top-level keys. (For a template
    body this pre-flight request is a real one: e.g. it opens the incident ingest_dedup then folds into.)"""
    problems = []
    body = render_body(w.body, run_id=next(_run_ids), base_ms=base_ms) if w.body_template and w.body else w.body
    zs, zh, zb = request(zentro.port, w.method, w.path, headers, body)
    bs, bh, bb = request(bare.port, w.method, w.baseline_path, dict(w.headers), body)
    if zs != w.expect_status:
        problems.append(f"zentro {w.method} {w.path} answered {zs}, expected {w.expect_status}: {zb[:200]!r}")
    if bs != w.expect_status:
        problems.append(f"bare {w.method} {w.baseline_path} answered {bs}, expected {w.expect_status}")
    if "json" in zh.get("Content-Type", "") and "json" in bh.get("Content-Type", ""):
        try:
            zk, bk = set(json.loads(zb)), set(json.loads(bb))
            if zk != bk:
                problems.append(f"JSON keys differ: zentro {sorted(zk)} vs bare {sorted(bk)}")
        except (ValueError, TypeError):
            pass
    return problems


def _fmt(v, spec: str) -> str:
    """format(v, spec), or "-" padded to the spec's width when there is no value."""
    if v is None:
        width = spec.split(".")[0]
        return "-".rjust(int(width)) if width.isdigit() else "-"
    return format(v, spec)


def main(argv: list[str] | None = None) -> int:
    global _database
    ap = argparse.ArgumentParser(description="Zentro throughput vs bare Flask, as ratios measured in one run.")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run (default 1)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per workload; each runs both servers (default 3)")
    ap.add_argument("--workload", action="append", choices=sorted(WORKLOADS) + sorted(GROUPS),
                    help="repeatable, workload or group (" + "; ".join(f"{g} = {' + '.join(m)}" for g, m in
                                                                   GROUPS.items()) + "); default: all")
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                    help="sqlite (a temporary file) or postgres (a throwaway database on "
                         f"${POSTGRES_ENV}, default {DEFAULT_POSTGRES}, dropped at exit); default sqlite")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (default 2)")
    ap.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default gthread: keep-alive)")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    ap.add_argument("--load-procs", type=int, default=2,
                    help="load generator processes (default 2; latency workloads use their own, see --help-workloads)")
    ap.add_argument("--connections", type=int, default=4, help="keep-alive connections per load process (default 4)")
    ap.add_argument("--max-total", type=float, default=420.0,
                    help="hard cap on the whole run in seconds, setup included (default 420)")
    ap.add_argument("--results-dir", type=Path, default=BENCH / "results")
    ap.add_argument("--no-save", action="store_true", help="do not write the JSON results file")
    ap.add_argument("--json-out", type=Path, help="write the JSON results to this file instead of --results-dir "
                                                   "(bench/all.py uses it to find the file)")
    ap.add_argument("--help-workloads", action="store_true", help="describe every workload and exit")
    args = ap.parse_args(argv)
    if args.help_workloads:
        for w in WORKLOADS.values():
            load = f"{w.load[0]} proc x {w.load[1]} connection" if w.load else "--load-procs x --connections"
            aims = "; ".join(f"{METRIC_LABELS[a.metric]} {OPS[a.op]} {a.threshold:g}" for a in w.aims) or "none"
            print(f"{w.name}\n  {w.method} {w.path} (bare: {w.baseline_path}), load {load}, aims: {aims}\n"
                  f"  {w.description}\n")
        return 0
    if args.seconds <= 0 or args.warmup < 0 or args.rounds < 1 or min(args.workers, args.threads,
                                                                        args.load_procs, args.connections) < 1:
        ap.error("--seconds must be > 0, --warmup >= 0, and counts >= 1")

    names = expand(args.workload or list(WORKLOADS))
    per_run = LEAD + args.warmup + args.seconds + 1.0
    setups = dict(WORKLOADS[n].setup_estimate for n in names if WORKLOADS[n].setup is not None)
    estimate = (20 + (15 if args.database == "postgres" else 0) + sum(setups.values())
                + len(names) * args.rounds * 2 * per_run)
    if estimate > args.max_total:
        ap.error(f"this run needs about {estimate:.0f} s, more than --max-total {args.max_total:.0f} s")

    backstop = _time_cap(args.max_total)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where SIGINT was ignored (background jobs)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # under nohup, a hang-up stays ignored
            signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))

    tmp = Path(tempfile.mkdtemp(prefix="zentro-bench-"))
    started_at = dt.datetime.now(dt.timezone.utc)
    base_ms = int(time.time() * 1000) - TEMPLATE_AGE_MS
    database = _database = Database(args.database, tmp)
    try:
        database.create()
        env = {k: v for k, v in os.environ.items() if k != POSTGRES_ENV}
        env.update(ZENTRO_DATABASE_URL=database.url,
                   ZENTRO_SECRET_KEY=secrets.token_urlsafe(48),
                   PYTHONDONTWRITEBYTECODE="1")
        print(f"bench: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"gunicorn {args.workers} x {args.worker_class} ({args.threads} threads); "
              f"load {args.load_procs} procs x {args.connections} connections; "
              f"{args.rounds} rounds x {args.seconds:g} s (+{args.warmup:g} s warm-up); "
              f"database {database.describe()}", flush=True)
        _migrate(env)

        workload_env: dict[str, str] = {}
        for name in names:
            for k, v in WORKLOADS[name].zentro_env.items():
                if workload_env.setdefault(k, v) != v:
                    raise RuntimeError(f"workloads disagree on {k}: {workload_env[k]!r} vs {v!r}; run them separately")
        if workload_env:
            env.update(workload_env)
            print(f"bench: Zentro server settings asked for by the workloads: {workload_env}", flush=True)

        extra_headers = {}
        for name in names:
            w = WORKLOADS[name]
            extra_headers[name] = dict(w.headers)
            if w.setup is not None:
                extra_headers[name].update(w.setup(dict(env)))

        zentro = Server("zentro", "wsgi:app", ROOT, args, env, tmp)
        bare = Server("bare", "bare_app:app", BENCH, args, env, tmp)
        zentro.wait_ready("/api/health", 30)
        bare.wait_ready("/api/health", 30)
        zentro.wait_idle(30)
        bare.wait_idle(30)

        results = []
        width = max(14, *(len(n) for n in names))
        for name in names:
            w = WORKLOADS[name]
            problems = _check_shapes(w, zentro, bare, extra_headers[name], base_ms)
            for p in problems:
                print(f"bench: warning [{name}]: {p}", file=sys.stderr, flush=True)
            if w.load:
                print(f"bench: [{name}] load {w.load[0]} proc x {w.load[1]} connection (the workload's own)", flush=True)
            runs = []
            for rnd in range(args.rounds):
                order = (bare, zentro) if rnd % 2 == 0 else (zentro, bare)  # ABBA: cancels linear drift
                for srv in order:
                    if srv is zentro:
                        r = drive(zentro, w, w.path, extra_headers[name], args, base_ms, database)
                    else:
                        r = drive(bare, w, w.baseline_path, dict(w.headers), args, base_ms)
                    r["round"] = rnd + 1
                    runs.append(r)
                    print(f"  {name:<{width}} round {rnd + 1}  {srv.name:<6}  {r['rps']:9.0f} rps  "
                          f"p50 {_fmt(r['p50_ms'], '.2f')} ms  errors {r['errors']}", flush=True)
            results.append(_summarise(w, runs, problems))

        peak_rss = {srv.name: srv.peak_rss_kib() for srv in (zentro, bare)}  # after every window: costs nothing measured
        _print_table(results, postgres=args.database == "postgres")
        _print_aims(results, database)
        for srv in (zentro, bare):
            if any(r["errors"] for res in results for r in res["runs"] if r["server"] == srv.name) \
                    and srv.log_tail().strip():
                print(f"bench: {srv.name} answered errors; the end of its gunicorn log:\n{srv.log_tail()}",
                      file=sys.stderr)
        for res in results:
            if any(r["statuses"].get("429") for r in res["runs"]):
                print(f"bench: [{res['workload']}] got 429s from Zentro; give the workload "
                      "zentro_env={'ZENTRO_RATELIMIT_ENABLED': '0'} (see bench/README.md).", file=sys.stderr)

        if not args.no_save:
            out = args.json_out or args.results_dir / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}-{args.database}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({
                "started_at": started_at.isoformat(),
                "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "git_commit": _git_commit(),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(), "loadavg_end": os.getloadavg()},
                "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "database": database.describe(),
                "zentro_env": _zentro_env(),
                "workload_env": workload_env,
                "gunicorn": {"zentro": zentro.cmd, "bare": bare.cmd},
                "peak_rss_kib": peak_rss,
                "workloads": results,
            }, indent=2) + "\n")
            print(f"\nbench: results written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
        return 1 if any(r["errors"] for res in results for r in res["runs"]) else 0
    except TimeCapReached as exc:
        print(f"\nbench: {exc}; stopped every server and load process.", file=sys.stderr)
        return 124
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopped every server and load process.", file=sys.stderr)
        return 130
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _kill_all()
        database.drop()
        shutil.rmtree(tmp, ignore_errors=True)
        backstop.cancel()


def _ratios(by_round: dict[int, dict], key: str) -> list[float]:
    return [p["zentro"][key] / p["bare"][key] for p in by_round.values()
            if p["zentro"][key] is not None and p["bare"][key]]


def _summarise(w: Workload, runs: list[dict], problems: list[str]) -> dict:
    by_round: dict[int, dict] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["server"]] = r
    per_round = {"rps_ratio": _ratios(by_round, "rps"), "cpu_per_req_ratio": _ratios(by_round, "server_cpu_us_per_req"),
                 "p50_ratio": _ratios(by_round, "p50_ms"), "p95_ratio": _ratios(by_round, "p95_ms")}

    def med(server: str, key: str):
        vals = [r[key] for r in runs if r["server"] == server and r[key] is not None]
        return statistics.median(vals) if vals else None

    out = {
        "workload": w.name,
        "path": w.path,
        "baseline_path": w.baseline_path,
        "method": w.method,
        "load": list(runs[0]["load"]) if runs else None,
        "problems": problems,
        "median": {s: {k: med(s, k) for k in ("rps", "p50_ms", "p95_ms", "p99_ms", "server_cpu_us_per_req",
                                              "db_cpu_us_per_req")}
                   for s in ("bare", "zentro")},
        "errors": {s: sum(r["errors"] for r in runs if r["server"] == s) for s in ("bare", "zentro")},
    }
    for k, vals in per_round.items():
        out[f"{k}_per_round"] = vals
        out[k] = statistics.median(vals) if vals else None
    out["aims"] = [{"metric": a.metric, "op": a.op, "threshold": a.threshold, "value": out[a.metric],
                    "met": None if out[a.metric] is None else a.met(out[a.metric])} for a in w.aims]
    out["runs"] = runs
    return out


def _print_table(results: list[dict], postgres: bool = False) -> None:
    width = max(14, *(len(r["workload"]) for r in results)) if results else 14
    print()
    head = (f"{'workload':<{width}} {'server':<7} {'rps':>9} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7} "
            f"{'srv CPU µs/req':>15}" + (f" {'db CPU µs/req':>14}" if postgres else ""))
    print(head)
    print("-" * len(head))
    for res in results:
        for s in ("bare", "zentro"):
            m = res["median"][s]
            print(f"{res['workload']:<{width}} {s:<7} {_fmt(m['rps'], '9.0f')} {_fmt(m['p50_ms'], '8.2f')} "
                  f"{_fmt(m['p95_ms'], '8.2f')} {res['errors'][s]:>7} {_fmt(m['server_cpu_us_per_req'], '15.0f')}"
                  + (f" {_fmt(m['db_cpu_us_per_req'], '14.0f')}" if postgres else ""))
    print()
    for res in results:
        rr = " ".join(f"{x:.3f}" for x in res["rps_ratio_per_round"])
        cr = " ".join(f"{x:.2f}" for x in res["cpu_per_req_ratio_per_round"])
        print(f"{res['workload']:<{width}} ratio zentro/bare: rps {_fmt(res['rps_ratio'], '.3f')} (rounds: {rr}); "
              f"server CPU per request {_fmt(res['cpu_per_req_ratio'], '.2f')}x (rounds: {cr})")
        if any(a["metric"] in ("p50_ratio", "p95_ratio") for a in res["aims"]):
            l50 = " ".join(f"{x:.2f}" for x in res["p50_ratio_per_round"])
            l95 = " ".join(f"{x:.2f}" for x in res["p95_ratio_per_round"])
            print(f"{'':<{width}} latency zentro/bare: p50 {_fmt(res['p50_ratio'], '.2f')}x (rounds: {l50}); "
                  f"p95 {_fmt(res['p95_ratio'], '.2f')}x (rounds: {l95})")
    print("(medians over rounds; a ratio is the median of per-round ratios, each round measuring both servers"
          + ("; db CPU: the PostgreSQL backends serving Zentro" if postgres else "") + ")")
    for res in results:
        rr = res["rps_ratio_per_round"]
        if len(rr) > 1 and min(rr) > 0 and max(rr) / min(rr) > NOISY_SPREAD:
            print(f"bench: note [{res['workload']}]: rps ratios spread {max(rr) / min(rr):.2f}x across rounds, the "
                  "machine was busy; prefer the CPU-per-request ratio or rerun with more --rounds.")


def _print_aims(results: list[dict], database: Database) -> None:
    lines = []
    for res in results:
        for a in res["aims"]:
            value = "-" if a["value"] is None else f"{a['value']:.3f}" if a["metric"] == "rps_ratio" else f"{a['value']:.2f}"
            verdict = "no measurement" if a["met"] is None else ("met" if a["met"] else "NOT met")
            lines.append(f"  {res['workload']} {METRIC_LABELS[a['metric']]} {value} {OPS[a['op']]} "
                         f"{a['threshold']:g}: {verdict}")
    if lines:
        print(f"\naims ({database.kind}; zentro/bare, medians of per-round ratios):")
        print("\n".join(lines))


def _zentro_env() -> dict[str, str]:
    """ZENTRO_* settings passed through from the caller's environment (secrets masked)."""
    own = {"ZENTRO_DATABASE_URL", "ZENTRO_SECRET_KEY", POSTGRES_ENV}
    return {k: ("***" if any(w in k for w in ("SECRET", "TOKEN", "PASSWORD", "KEY")) else v)
            for k, v in sorted(os.environ.items()) if k.startswith("ZENTRO_") and k not in own}


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    sys.exit(main())
