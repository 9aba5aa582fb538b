"""Zentro benchmark harness: throughput of each workload as a ratio against bare Flask, in one run.

    .venv/bin/python bench/run.py [--seconds 5] [--rounds 3] [--workload health] ...
    make bench

What it does:
  1. makes a temporary directory with a fresh SQLite database, migrates it (`zentro db upgrade`),
     and picks a random ZENTRO_SECRET_KEY; nothing under instance/ is touched;
  2. starts two gunicorn servers on 127.0.0.1 (free ports) with identical worker settings:
     Zentro (`wsgi:app`) and the bare Flask baseline (`bench/bare_app.py`);
  3. for each workload and round, drives each server for --seconds with a closed-loop load
     generator (bench/loadgen.py, standard library, keep-alive), alternating which server goes
     first (ABBA) so drift on a shared machine cancels;
  4. prints per-run rps, p50/p95 latency, errors and server CPU per request, and the median over
     rounds of the per-round ratio zentro/bare; writes everything to bench/results/<timestamp>.json.

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

from workloads import WORKLOADS, Workload  # noqa: E402

HOST = "127.0.0.1"  # loopback only, by rule
LEAD = 0.5  # seconds between launching the load processes and their first request
NOISY_SPREAD = 1.5  # max/min of the per-round rps ratios above which the run is called noisy


# --------------------------------------------------------------------------- process bookkeeping

_children: list[subprocess.Popen] = []
_children_lock = threading.Lock()
_stopping = threading.Event()


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


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- load

def drive(server: Server, method: str, path: str, headers: dict, body: bytes | None, expect_status: int,
          args: argparse.Namespace) -> dict:
    """One measured run against one server; returns its summary. Only `expect_status` counts as done."""
    begin = time.time() + LEAD
    start = begin + args.warmup
    end = start + args.seconds
    cmd = [sys.executable, str(BENCH / "loadgen.py"), "--host", HOST, "--port", str(server.port),
           "--method", method, "--path", path, "--connections", str(args.connections),
           "--begin", repr(begin), "--start", repr(start), "--end", repr(end)]
    for k, v in headers.items():
        cmd += ["--header", f"{k}: {v}"]
    if body:
        cmd += ["--body-b64", base64.b64encode(body).decode()]
    procs = [_spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(args.load_procs)]

    time.sleep(max(0.0, start - time.time()))
    cpu0 = server.cpu_seconds()
    time.sleep(max(0.0, end - time.time()))
    cpu1 = server.cpu_seconds()

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


def _check_shapes(w: Workload, zentro: Server, bare: Server, headers: dict) -> list[str]:
    """Both sides must answer the expected status; for JSON, with the same top-level keys."""
    problems = []
    zs, zh, zb = request(zentro.port, w.method, w.path, headers, w.body)
    bs, bh, bb = request(bare.port, w.method, w.baseline_path, {k: v for k, v in w.headers.items()}, w.body)
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
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Zentro throughput vs bare Flask, as ratios measured in one run.")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run (default 1)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per workload; each runs both servers (default 3)")
    ap.add_argument("--workload", action="append", choices=sorted(WORKLOADS), help="repeatable; default: all")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (default 2)")
    ap.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default gthread: keep-alive)")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    ap.add_argument("--load-procs", type=int, default=2, help="load generator processes (default 2)")
    ap.add_argument("--connections", type=int, default=4, help="keep-alive connections per load process (default 4)")
    ap.add_argument("--max-total", type=float, default=300.0, help="hard cap on the whole run in seconds (default 300)")
    ap.add_argument("--results-dir", type=Path, default=BENCH / "results")
    ap.add_argument("--no-save", action="store_true", help="do not write the JSON results file")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.rounds < 1 or min(args.workers, args.threads,
                                                                        args.load_procs, args.connections) < 1:
        ap.error("--seconds must be > 0, --warmup >= 0, and counts >= 1")

    names = args.workload or list(WORKLOADS)
    per_run = LEAD + args.warmup + args.seconds + 1.0
    estimate = 20 + len(names) * args.rounds * 2 * per_run
    if estimate > args.max_total:
        ap.error(f"this run needs about {estimate:.0f} s, more than --max-total {args.max_total:.0f} s")

    backstop = _time_cap(args.max_total)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="zentro-bench-"))
    started_at = dt.datetime.now(dt.timezone.utc)
    try:
        env = dict(os.environ)
        env.update(ZENTRO_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
                   ZENTRO_SECRET_KEY=secrets.token_urlsafe(48),
                   PYTHONDONTWRITEBYTECODE="1")
        print(f"bench: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"gunicorn {args.workers} x {args.worker_class} ({args.threads} threads); "
              f"load {args.load_procs} procs x {args.connections} connections; "
              f"{args.rounds} rounds x {args.seconds:g} s (+{args.warmup:g} s warm-up)", flush=True)
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
        for name in names:
            w = WORKLOADS[name]
            problems = _check_shapes(w, zentro, bare, extra_headers[name])
            for p in problems:
                print(f"bench: warning [{name}]: {p}", file=sys.stderr, flush=True)
            runs = []
            for rnd in range(args.rounds):
                order = (bare, zentro) if rnd % 2 == 0 else (zentro, bare)  # ABBA: cancels linear drift
                pair = {}
                for srv in order:
                    if srv is zentro:
                        r = drive(zentro, w.method, w.path, extra_headers[name], w.body, w.expect_status, args)
                    else:
                        r = drive(bare, w.method, w.baseline_path, dict(w.headers), w.body, w.expect_status, args)
                    r["round"] = rnd + 1
                    pair[srv.name] = r
                    runs.append(r)
                    print(f"  {name:<14} round {rnd + 1}  {srv.name:<6}  {r['rps']:9.0f} rps  "
                          f"p50 {_fmt(r['p50_ms'], '.2f')} ms  errors {r['errors']}", flush=True)
            results.append(_summarise(w, runs, problems))

        _print_table(results)
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
            args.results_dir.mkdir(parents=True, exist_ok=True)
            out = args.results_dir / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
            out.write_text(json.dumps({
                "started_at": started_at.isoformat(),
                "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "git_commit": _git_commit(),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(), "loadavg_end": os.getloadavg()},
                "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "zentro_env": _zentro_env(),
                "workload_env": workload_env,
                "gunicorn": {"zentro": zentro.cmd, "bare": bare.cmd},
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
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
        backstop.cancel()


def _summarise(w: Workload, runs: list[dict], problems: list[str]) -> dict:
    by_round: dict[int, dict] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["server"]] = r
    rps_ratios = [p["zentro"]["rps"] / p["bare"]["rps"] for p in by_round.values() if p["bare"]["rps"]]
    cpu_ratios = [p["zentro"]["server_cpu_us_per_req"] / p["bare"]["server_cpu_us_per_req"]
                  for p in by_round.values()
                  if p["zentro"]["server_cpu_us_per_req"] and p["bare"]["server_cpu_us_per_req"]]

    def med(server: str, key: str):
        vals = [r[key] for r in runs if r["server"] == server and r[key] is not None]
        return statistics.median(vals) if vals else None

    return {
        "workload": w.name,
        "path": w.path,
        "baseline_path": w.baseline_path,
        "method": w.method,
        "problems": problems,
        "median": {s: {k: med(s, k) for k in ("rps", "p50_ms", "p95_ms", "p99_ms", "server_cpu_us_per_req")}
                   for s in ("bare", "zentro")},
        "errors": {s: sum(r["errors"] for r in runs if r["server"] == s) for s in ("bare", "zentro")},
        "rps_ratio_per_round": rps_ratios,
        "rps_ratio": statistics.median(rps_ratios) if rps_ratios else None,
        "cpu_per_req_ratio_per_round": cpu_ratios,
        "cpu_per_req_ratio": statistics.median(cpu_ratios) if cpu_ratios else None,
        "runs": runs,
    }


def _print_table(results: list[dict]) -> None:
    print()
    print(f"{'workload':<14} {'server':<7} {'rps':>9} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7} {'srv CPU µs/req':>15}")
    print("-" * 73)
    for res in results:
        for s in ("bare", "zentro"):
            m = res["median"][s]
            print(f"{res['workload']:<14} {s:<7} {_fmt(m['rps'], '9.0f')} {_fmt(m['p50_ms'], '8.2f')} "
                  f"{_fmt(m['p95_ms'], '8.2f')} {res['errors'][s]:>7} {_fmt(m['server_cpu_us_per_req'], '15.0f')}")
        rr = " ".join(f"{x:.3f}" for x in res["rps_ratio_per_round"])
        cr = " ".join(f"{x:.2f}" for x in res["cpu_per_req_ratio_per_round"])
        print(f"{res['workload']:<14} ratio zentro/bare: rps {_fmt(res['rps_ratio'], '.3f')} (rounds: {rr}); "
              f"server CPU per request {_fmt(res['cpu_per_req_ratio'], '.2f')}x (rounds: {cr})")
    print("(medians over rounds; a ratio is the median of per-round ratios, each round measuring both servers)")
    for res in results:
        rr = res["rps_ratio_per_round"]
        if len(rr) > 1 and min(rr) > 0 and max(rr) / min(rr) > NOISY_SPREAD:
            print(f"bench: note [{res['workload']}]: rps ratios spread {max(rr) / min(rr):.2f}x across rounds, the "
                  "machine was busy; prefer the CPU-per-request ratio or rerun with more --rounds.")


def _zentro_env() -> dict[str, str]:
    """ZENTRO_* settings passed through from the caller's environment (secrets masked)."""
    own = {"ZENTRO_DATABASE_URL", "ZENTRO_SECRET_KEY"}
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
