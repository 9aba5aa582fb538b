"""`make bench`: every benchmark in bench/, one after another, then bench/RESULTS.md.

    .venv/bin/python bench/all.py                    # the full run (about 35 min on 2 cores)
    .venv/bin/python bench/all.py --quick            # smoke run with tiny settings (~2-3 min), labelled "quick"
    .venv/bin/python bench/all.py --only sqlite --only reports [--out /tmp/RESULTS.md]
    make bench BENCH_ARGS=--quick

Parts, in this order, each a subprocess with its own time limit (PARTS below holds the exact settings):
  sqlite      bench/run.py --database sqlite: health, ingest_new, ingest_dedup (Zentro vs bare Flask)
  postgres    bench/run.py --database postgres: the same plus incident_list_100k_api / _page
  compliance  bench/compliance.py: a million audit rows on PostgreSQL: CSV export vs COPY, peak memory, readiness
  reports     bench/reports.py: every compliance report at ~100k obligations on SQLite, cold/warm vs a baseline
  soak        bench/soak.py: 10 minutes of mixed load (ingest, pages, exports, digests) on PostgreSQL, 4 workers:
              5xx, latency percentiles per kind, each worker's memory trend

Each part writes its JSON to bench/results/<UTC>-all/<part>.json (--json-out) and its output to <part>.log
there (also echoed here). RESULTS.md is built from those files only: date, commit, machine, commands, one table
per part with ratios against its baseline, percentiles, peak memory and whether each aim was met. A part
that fails (non-zero exit, no JSON, or its time limit: it gets SIGINT so it cleans up, then SIGKILL 60 s
later) is reported as failed with its exit status and the tail of its output; the file is written anyway
and the exit status is then 1. Nothing here asserts a time: a missed aim does not fail the run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
GRACE = 60  # seconds between SIGINT and SIGKILL when a part overruns

# name -> (script, full args, quick args, full time limit s, quick time limit s)
PARTS: dict[str, tuple[str, list[str], list[str], int, int]] = {
    "sqlite": ("run.py",
               ["--database", "sqlite", "--workload", "health", "--workload", "ingest_new", "--workload",
                "ingest_dedup", "--seconds", "5", "--warmup", "1", "--rounds", "3", "--max-total", "600"],
               ["--database", "sqlite", "--workload", "health", "--workload", "ingest_new", "--workload",
                "ingest_dedup", "--seconds", "1", "--warmup", "0.5", "--rounds", "1", "--max-total", "180"],
               660, 240),
    "postgres": ("run.py",
                 ["--database", "postgres", "--workload", "health", "--workload", "ingest_new", "--workload",
                  "ingest_dedup", "--workload", "incident_list_100k_api", "--workload", "incident_list_100k_page",
                  "--seconds", "5", "--warmup", "1", "--rounds", "3", "--max-total", "900"],
                 ["--database", "postgres", "--workload", "health", "--workload", "ingest_new", "--workload",
                  "ingest_dedup", "--workload", "incident_list_100k_api", "--workload", "incident_list_100k_page",
                  "--seconds", "1", "--warmup", "0.5", "--rounds", "1", "--max-total", "300"],
                 960, 360),
    "compliance": ("compliance.py", ["--rows", "1000000", "--rounds", "3"], ["--rows", "20000", "--rounds", "1"],
                   1800, 300),
    "reports": ("reports.py", ["--rounds", "3"], ["--scale", "0.02", "--rounds", "1"], 1500, 300),
    "soak": ("soak.py", ["--seconds", "600", "--workers", "4", "--threads", "4", "--rate", "40"],
             ["--seconds", "30", "--workers", "2", "--rate", "12", "--orgs", "2", "--incidents", "200",
              "--sample", "5"], 900, 180),
}
# exit statuses that still mean "ran to the end" (the soak exits 1 when its verdict is negative; the verdict is
# reported like any missed aim, from its JSON)
COMPLETED = {"soak": (0, 1)}
# ./gunicorn.conf.py (the deploy settings) is read by every gunicorn started in the repository root, as run.py's
# are; its max_requests would recycle workers mid-window (the bare app's almost every window), which costs Zentro
# an app import inside a measured window and breaks the CPU-per-request figures. The harness means two servers
# with only the settings it passes, so recycling is switched off through the file's own override.
PART_ENV = {"sqlite": {"GUNICORN_MAX_REQUESTS": "0"}, "postgres": {"GUNICORN_MAX_REQUESTS": "0"}}
TITLES = {"sqlite": "Zentro vs bare Flask on SQLite (bench/run.py)",
          "postgres": "Zentro vs bare Flask on PostgreSQL (bench/run.py)",
          "compliance": "Compliance at a million audit rows on PostgreSQL (bench/compliance.py)",
          "reports": "Compliance reports at ~100k obligations on SQLite (bench/reports.py)",
          "soak": "Soak: mixed load on PostgreSQL with several workers (bench/soak.py)"}
OPS = {">=": "≥", "<=": "≤"}
METRIC = {"rps_ratio": "rps ratio", "p50_ratio": "p50 latency ratio", "p95_ratio": "p95 latency ratio"}


# --------------------------------------------------------------------------- running the parts

def run_part(name: str, quick: bool, outdir: Path) -> dict:
    script, full, small, limit_full, limit_quick = PARTS[name]
    limit = limit_quick if quick else limit_full
    json_out, log = outdir / f"{name}.json", outdir / f"{name}.log"
    cmd = [PY, str(BENCH / script)] + (small if quick else full) + ["--json-out", str(json_out)]
    extra = PART_ENV.get(name, {})
    shown = " ".join([f"{k}={v}" for k, v in extra.items()] + ["bench/" + script] + cmd[2:-2])
    print(f"\n=== bench/all.py: {name}: {shown} (limit {limit} s)", flush=True)
    json_out.unlink(missing_ok=True)
    started = time.monotonic()
    lines: list[str] = []
    timed_out = interrupted = False
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True, env={**os.environ, **extra, "PYTHONUNBUFFERED": "1"})

        def pump() -> None:
            for line in proc.stdout:
                lines.append(line)
                fh.write(line)
                fh.flush()
                sys.stdout.write(line)
                sys.stdout.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            print(f"bench/all.py: {name} exceeded {limit} s; SIGINT (it cleans up), SIGKILL after {GRACE} s",
                  flush=True)
            _signal_group(proc, signal.SIGINT)
            try:
                proc.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        except KeyboardInterrupt:
            interrupted = True
            print(f"bench/all.py: interrupted; SIGINT to {name} (it cleans up)", flush=True)
            _signal_group(proc, signal.SIGINT)
            try:
                proc.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        reader.join(timeout=10)
    data, problem = None, None
    if json_out.exists():
        try:
            data = json.loads(json_out.read_text())
        except ValueError as exc:
            problem = f"unreadable JSON: {exc}"
    status = proc.returncode
    failed = timed_out or interrupted or status not in COMPLETED.get(name, (0,)) or data is None
    if data is None and not problem:
        problem = "no JSON results written"
    if interrupted:
        problem = "interrupted" + (f"; {problem}" if problem else "")
    return {"name": name, "command": shown, "limit_s": limit, "seconds": round(time.monotonic() - started, 1),
            "status": status, "timed_out": timed_out, "interrupted": interrupted, "failed": failed, "problem": problem if failed else None,
            "tail": "".join(lines[-25:]).rstrip(), "data": data, "json": str(json_out), "log": str(log)}


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- the machine

def machine() -> dict:
    info = {"cpu": "unknown", "cores": os.cpu_count(), "ram": "unknown", "os": platform.platform(),
            "python": platform.python_version(), "postgresql": "unknown"}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os"] = f"{line.split('=', 1)[1].strip(chr(34))}, Linux {platform.release()} ({platform.machine()})"
    except OSError:
        pass
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(os.environ.get("ZENTRO_BENCH_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres")
        url = url.set(drivername="postgresql", database=url.database or "postgres")
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=5) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        info["postgresql"] = f"unavailable ({type(exc).__name__})"
    return info


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha or "unknown") + (" (with uncommitted changes in the working tree)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# --------------------------------------------------------------------------- RESULTS.md

def f(v, spec: str = ".2f", suffix: str = "") -> str:
    return "–" if v is None else f"{format(v, spec)}{suffix}"


def verdict(met) -> str:
    return "no measurement" if met is None else ("**met**" if met else "**NOT met**")


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"] + \
        ["| " + " | ".join(r) + " |" for r in rows]


def cpu(v) -> str:
    return "invalid" if v is not None and v < 0 else f(v, ".0f")


def cpu_ratio(w: dict, notes: list[str]) -> str:
    """Median over rounds of Zentro/bare CPU per request, from the rounds where both servers' CPU delta is positive.
    run.py sums the CPU of the processes in each server's tree at both ends of a window, so a worker that gunicorn
    replaced during the window takes its whole past CPU with it and the delta can come out negative."""
    by_round: dict[int, dict] = {}
    for r in w["runs"]:
        by_round.setdefault(r["round"], {})[r["server"]] = r
    valid, bad = [], 0
    for pair in by_round.values():
        b, z = pair.get("bare"), pair.get("zentro")
        if b and z and (b["server_cpu_s"] or 0) > 0 and (z["server_cpu_s"] or 0) > 0 and b["ok"] and z["ok"]:
            valid.append(z["server_cpu_us_per_req"] / b["server_cpu_us_per_req"])
        else:
            bad += 1
    if not bad:
        return f(w["cpu_per_req_ratio"], ".2f", "×")
    notes.append(f"- † `{w['workload']}`: {bad} of {len(by_round)} rounds had a negative server-CPU delta on one side; "
                 + (f"the ratio shown is the median of the other {len(valid)}." if valid else "no round is usable."))
    return f"{statistics.median(valid):.2f}× †" if valid else "invalid †"


def section_run(part: dict, aims: list[tuple[str, str, str, str]]) -> list[str]:
    d = part["data"]
    pg = d["database"].startswith("PostgreSQL")
    s = d["settings"]
    out = [f"Gunicorn {s['workers']} × {s['worker_class']} ({s['threads']} threads) per server; load "
           f"{s['load_procs']} processes × {s['connections']} connections (latency workloads: 1 × 1); "
           f"{s['rounds']} round(s) × {s['seconds']:g} s after {s['warmup']:g} s warm-up, ABBA order; "
           f"database {d['database']}. Load average at the end: "
           f"{' '.join(f'{x:.2f}' for x in d['machine']['loadavg_end'])}.", ""]
    head = ["workload", "rps bare", "rps Zentro", "**rps ratio**", "p50 ms bare / Zentro", "p95 ms bare / Zentro",
            "p50 ratio", "p95 ratio", "srv CPU µs/req bare / Zentro", "**CPU/req ratio**"] + \
        (["db CPU µs/req (Zentro)"] if pg else []) + ["errors bare / Zentro"]
    rows, notes = [], []
    for w in d["workloads"]:
        b, z = w["median"]["bare"], w["median"]["zentro"]
        rows.append([f"`{w['workload']}`", f(b["rps"], ".0f"), f(z["rps"], ".0f"), f(w["rps_ratio"], ".3f"),
                     f"{f(b['p50_ms'])} / {f(z['p50_ms'])}", f"{f(b['p95_ms'])} / {f(z['p95_ms'])}",
                     f(w["p50_ratio"], ".2f", "×"), f(w["p95_ratio"], ".2f", "×"),
                     f"{cpu(b['server_cpu_us_per_req'])} / {cpu(z['server_cpu_us_per_req'])}", cpu_ratio(w, notes)]
                    + ([f(z["db_cpu_us_per_req"], ".0f")] if pg else [])
                    + [f"{w['errors']['bare']} / {w['errors']['zentro']}"])
    out += table(head, rows)
    out += [""] + notes if notes else []
    windows = [r for w in d["workloads"] for r in w["runs"]]
    negative = sum(1 for r in windows if r["server_cpu_s"] is not None and r["server_cpu_s"] < 0)
    if negative:
        out += ["", f"**Server CPU per request is not trustworthy in this part**: {negative} of {len(windows)} "
                    "measured windows had a negative CPU delta, which happens when gunicorn replaces a worker during "
                    "the window (the process tree loses the old worker's CPU; the new one's start-up is counted). "
                    "Windows with a positive delta may hide a replacement too. Use the rps and latency ratios. "
                    "Likely cause (bench/all.py now sets GUNICORN_MAX_REQUESTS=0 for these parts): run.py starts gunicorn in the repository root, so gunicorn also reads "
                    "`./gunicorn.conf.py`, whose `max_requests` (5000 ± 500) recycles workers; the bare app, at "
                    "thousands of requests per second, then gets a new worker almost every window."]
    out.append("")
    out.append("Per-round ratios (Zentro/bare), to judge the noise:")
    out.append("")
    for w in d["workloads"]:
        rr = ", ".join(f"{x:.3f}" for x in w["rps_ratio_per_round"]) or "–"
        cr = ", ".join(f"{x:.2f}" for x in w["cpu_per_req_ratio_per_round"]) or "–"
        line = f"- `{w['workload']}`: rps {rr}; CPU/req {cr}"
        if any(a["metric"] in ("p50_ratio", "p95_ratio") for a in w["aims"]):
            line += (f"; p50 {', '.join(f'{x:.2f}' for x in w['p50_ratio_per_round'])}"
                     f"; p95 {', '.join(f'{x:.2f}' for x in w['p95_ratio_per_round'])}")
        rpr = w["rps_ratio_per_round"]
        if len(rpr) > 1 and min(rpr) > 0 and max(rpr) / min(rpr) > 1.5:
            cpu_ok = all((r["server_cpu_s"] or 0) > 0 for r in w["runs"])
            line += (f" — spread {max(rpr) / min(rpr):.2f}×: the machine was busy"
                     + ("; trust the CPU/req ratio more" if cpu_ok else ""))
        if w.get("problems"):
            line += f" — pre-flight warnings: {'; '.join(w['problems'])}"
        out.append(line)
        for a in w["aims"]:
            aims.append((part["name"], f"`{w['workload']}` {METRIC[a['metric']]} {OPS[a['op']]} {a['threshold']:g}",
                         f(a["value"], ".3f" if a["metric"] == "rps_ratio" else ".2f"), verdict(a["met"])))
    rss = d.get("peak_rss_kib") or {}
    if rss:
        out.append("")
        bits = []
        for srv in ("zentro", "bare"):
            r = rss.get(srv)
            if r:
                ws = [x for x in r["workers"] if x]
                bits.append(f"{srv}: workers {', '.join(f'{x / 1024:.0f}' for x in ws) or '–'} MiB, "
                            f"master {f((r['master'] or 0) / 1024, '.0f')} MiB")
        out.append("Peak memory (VmHWM of the gunicorn processes at the end of the run, after every workload): "
                   + "; ".join(bits) + ".")
    return out


def section_compliance(part: dict, aims: list) -> list[str]:
    d = part["data"]
    ex, mem, prog = d["export"], d["export_memory"], d["program_http_seconds"]
    out = [f"{d['rows']:,} audit events over 365 days (seeded in {d.get('seed_seconds', '–')} s) in {d['database']}. "
           "Export: Zentro `GET /api/governance/compliance/export?format=csv&periodDays=365` (gunicorn, one sync "
           "worker, read to the end) against PostgreSQL's `COPY (…) TO STDOUT WITH CSV` of the same rows, ABBA.", ""]
    rows = []
    for i, r in enumerate(ex["rounds"], 1):
        rows.append([str(i), f"{r['zentro']['rows']:,}", f"{r['zentro']['seconds']:.2f}", f"{r['zentro']['rows_per_s']:,}",
                     f"{r['copy']['rows']:,}", f"{r['copy']['seconds']:.2f}", f"{r['copy']['rows_per_s']:,}",
                     f"{r['ratio']:.3f}"])
    out += table(["round", "Zentro rows", "Zentro s", "Zentro rows/s", "COPY rows", "COPY s", "COPY rows/s",
                  "ratio"], rows)
    out += ["", f"**Export rows/s ratio Zentro/COPY (median): {ex['ratio_median']:.3f}** (aim ≥ 0.3: "
                f"{verdict(ex['ratio_median'] >= 0.3)}).", ""]
    aims.append(("compliance", "CSV export rows/s ÷ COPY rows/s ≥ 0.3", f"{ex['ratio_median']:.3f}",
                 verdict(ex["ratio_median"] >= 0.3)))
    rows = [[k, str(m["days"]), f"{m['rows']:,}", f"{m['peak_rss_before_kib'] / 1024:.1f}",
             f"{m['peak_rss_after_kib'] / 1024:.1f}", f"{m['growth_kib'] / 1024:.1f}"] for k, m in mem.items()]
    out += ["Peak memory of the export: a fresh gunicorn worker per line; VmHWM after one tiny request, then after "
            "the export:", ""]
    out += table(["export", "days", "rows", "VmHWM before MiB", "VmHWM after MiB", "growth MiB"], rows)
    small, whole = mem.get("small"), mem.get("all")
    if small and whole:
        flat = whole["growth_kib"] <= 2 * small["growth_kib"] + 4096
        out += ["", f"Growth for all {whole['rows']:,} rows: {whole['growth_kib'] / 1024:.1f} MiB; for "
                    f"{small['rows']:,} rows: {small['growth_kib'] / 1024:.1f} MiB. Flat (all ≤ 2 × small + 4 MiB, "
                    f"this report's reading of \"constant memory\"): {verdict(flat)}."]
        aims.append(("compliance", "export peak memory flat in the row count (all ≤ 2 × a tenth + 4 MiB)",
                     f"{whole['growth_kib'] / 1024:.1f} vs {small['growth_kib'] / 1024:.1f} MiB", verdict(flat)))
    runs = ", ".join(f"{x:.3f}" for x in prog["rounds"])
    out += ["", f"Program readiness across every framework (`GET /api/governance/compliance/program`, 30-day "
                f"window): median **{prog['median']:.3f} s** (rounds {runs}); aim < 2 s: {verdict(prog['median'] < 2)}."]
    aims.append(("compliance", "program readiness (all frameworks) < 2 s", f"{prog['median']:.3f} s",
                 verdict(prog["median"] < 2)))
    ap = d.get("assess_all_in_process_seconds") or {}
    if "error" in ap:
        out.append(f"In-process `engine.assess_all` failed: `{ap['error'].strip().splitlines()[-1]}`")
    elif ap:
        out.append("In-process `engine.assess_all`: " + ", ".join(f"{k} days {v:.3f} s" for k, v in ap.items()) + ".")
    return out


def section_reports(part: dict, aims: list) -> list[str]:
    d = part["data"]
    res = d["results"]
    out = [f"Scale {d['scale']:g}: {d['open_obligations']:,} open obligations (seeded in {d['seed_s']:.0f} s). "
           f"Baseline (reading the reports' raw source rows, same run): **{d['baseline_s'] * 1000:.0f} ms**; "
           f"reference baseline {d['reference_baseline_s']:.2f} s (×{d['reference_baseline_s'] / d['baseline_s']:.2f} "
           "converts seconds here to the reference speed). Warm: median of the rounds with nothing changed; "
           "cold: the first request after a source row changed."
           + ("" if d["scale"] == 1 else " At a scale other than 1 the reference-speed column means nothing: the "
              "baseline shrinks with the data, the fixed cost of a request does not."), ""]
    rows = [[f"`{r['report']}`", r["format"], str(r["status"]), f"{r['median_s']:.3f}", f"{r['ratio_to_baseline']:.2f}×",
             f"{r['cold_s']:.3f}", f"{r['cold_ratio_to_baseline']:.2f}×", f"{r['warm_s_at_reference']:.3f}",
             ("yes" if r["aim_met"] else "**NO**") + " / " + ("yes" if r["aim_met_at_reference"] else "**NO**")]
            for r in res]
    out += table(["report", "format", "status", "warm s", "warm / baseline", "cold s", "cold / baseline",
                  "warm s @ref", "warm < 1 s here / @ref"], rows)
    here = sum(r["aim_met"] for r in res)
    ref = sum(r["aim_met_at_reference"] for r in res)
    worst_w = max(res, key=lambda r: r["ratio_to_baseline"]) if res else None
    worst_c = max(res, key=lambda r: r["cold_ratio_to_baseline"]) if res else None
    out.append("")
    if res:
        out.append(f"Warm under 1 s: {here}/{len(res)} here, {ref}/{len(res)} at the reference speed. Highest warm "
                   f"ratio {worst_w['ratio_to_baseline']:.2f}× (`{worst_w['report']}` {worst_w['format']}); highest "
                   f"cold ratio {worst_c['cold_ratio_to_baseline']:.2f}× (`{worst_c['report']}` {worst_c['format']}).")
        aims.append(("reports", "every report format warm < 1 s (here / at the reference speed)",
                     f"{here}/{len(res)} / {ref}/{len(res)}", verdict(here == len(res)) + " / "
                     + verdict(ref == len(res))))
    return out


def section_soak(part: dict, aims: list) -> list[str]:
    d = part["data"]
    mem = d["memory"]
    out = [f"gunicorn {d['workers']} × gthread ({d['threads']} threads) with the repository's gunicorn.conf.py "
           f"(worker recycling off, so a leak would show), the scheduler on in every worker, rate limits in "
           f"{'Redis' if d['rate_limit_storage'] == 'redis' else 'memory (Redis was unreachable)'}; {d['orgs']} orgs "
           f"with {d['incidents_per_org']:,} incidents of history each; {d['clients']} clients, Poisson arrivals at "
           f"{d['rate_target']:g}/s for {d['seconds']:.0f} s. Latency is client-side; the load generator and "
           "PostgreSQL share the cores.", "",
           f"**{d['requests']:,} requests ({d['rate_achieved']}/s); 5xx: {d['5xx']}; transport errors: "
           f"{d['transport_errors']}; 429: {d['429']}; other unexpected statuses: "
           f"{sum(d['unexpected'].values()) - d['5xx'] - d['429']}.** "
           f"p50 {f(d['p50_ms'], '.1f')} ms, p95 {f(d['p95_ms'], '.1f')} ms, p99 {f(d['p99_ms'], '.1f')} ms, "
           f"max {f(d['max_ms'], '.0f')} ms.", ""]
    rows = [[f"`{k}`", f"{v['requests']:,}", ", ".join(f"{s} × {n}" for s, n in v["statuses"].items()),
             f(v["p50_ms"], ".1f"), f(v["p95_ms"], ".1f"), f(v["p99_ms"], ".1f"), f(v["max_ms"], ".0f")]
            for k, v in d["kinds"].items()]
    out += table(["kind", "requests", "statuses", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows)
    rows = [[pid, str(t["samples"]), f"{t['first_mib']:.1f}", f"{t['last_mib']:.1f}",
             f"{t['slope_mib_per_10min']:+.2f}",
             " → ".join(f(v, "+.1f") for v in t.get("quarters") or []) or "–",
             f((mem['peak_rss_kib'].get(pid) or 0) / 1024, ".1f")]
            for pid, t in mem["trend"].items()]
    out += ["", f"Worker memory (VmRSS every {d['samples'][1]['t'] - d['samples'][0]['t'] if len(d['samples']) > 1 else '–'} s; "
                "the trend is the least-squares slope after the first quarter of the run; the slope of each quarter "
                "on its own shows whether growth is slowing down, as warm-up does, or keeps its pace, as a leak "
                "does):", ""]
    out += table(["worker pid", "samples", "RSS first MiB", "RSS last MiB", "slope MiB / 10 min",
                  "slope by quarter", "peak MiB"], rows)
    worst = mem["worst_slope_mib_per_10min"]
    flat = worst is not None and worst < mem["max_slope"] and not mem["workers_replaced"]
    out += ["", f"Worst slope {f(worst, '+.2f')} MiB per 10 minutes (aim: under {mem['max_slope']:g}); workers "
                f"replaced during the run: {'yes' if mem['workers_replaced'] else 'no'}. Webhook deliveries received "
                f"by the loopback endpoint: {d['webhooks_received']:,}; outbox still pending at the end: "
                f"{f(d['outbox_pending_at_end'], '.0f')}; a scheduler leader was seen: "
                f"{'yes' if d['scheduler_leader_seen'] else 'NO'}; most database connections: {d['db_connections_max']}."]
    if d["samples_5xx"]:
        out += ["", "5xx samples:", ""] + [f"- `{s}`" for s in d["samples_5xx"]]
    aims.append(("soak", "zero 5xx and transport errors", f"{d['5xx']} / {d['transport_errors']}",
                 verdict(d["5xx"] == 0 and d["transport_errors"] == 0)))
    aims.append(("soak", f"no worker memory growth trend (slope < {mem['max_slope']:g} MiB / 10 min)",
                 f(worst, "+.2f"), verdict(flat)))
    return out


SECTIONS = {"sqlite": section_run, "postgres": section_run, "compliance": section_compliance,
            "reports": section_reports, "soak": section_soak}


def write_results(path: Path, parts: list[dict], args: argparse.Namespace, info: dict, started: dt.datetime,
                  finished: dt.datetime, load: tuple, outdir: Path) -> None:
    kind = "QUICK smoke run (tiny settings: not a measurement to quote)" if args.quick else "full run"
    if args.only:
        kind += f", only {', '.join(args.only)}"
    cmd = "bench/all.py" + (" --quick" if args.quick else "") + "".join(f" --only {o}" for o in args.only or [])
    L = ["# Benchmark results", "",
         f"<!-- Generated by `make bench` ({cmd}); regenerated on every run, do not edit by hand. -->", "",
         f"- **Run**: {kind}: `{cmd}`",
         f"- **Date (UTC)**: {started:%Y-%m-%d %H:%M} → {finished:%H:%M} ({(finished - started).total_seconds() / 60:.1f} min)",
         f"- **Commit**: {info.get('commit', 'unknown')}",
         *([f"- **Note**: {info['note']}"] if info.get("note") else []),
         f"- **Machine**: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM; {info['os']}; Python "
         f"{info['python']}; PostgreSQL {info['postgresql']}",
         f"- **Load average** at start {' '.join(f'{x:.2f}' for x in load[0])}, at end "
         f"{' '.join(f'{x:.2f}' for x in load[1])} (on {info['cores']} cores)",
         f"- **Raw results**: `{outdir.relative_to(ROOT) if outdir.is_relative_to(ROOT) else outdir}/` "
         "(per-part JSON and logs; gitignored)", ""]
    if args.quick:
        L += ["> **Quick run.** Seconds, rounds and row counts are cut to the bone to check that every part works; "
              "the numbers below are not the benchmark. Run `make bench` for those.", ""]
    L += ["## How to read this", "",
          "Every part measures Zentro against a baseline **in the same run, on the same machine**: bare Flask "
          "behind the same gunicorn for the HTTP workloads, PostgreSQL's own `COPY` for the audit export, reading the "
          "raw source rows for the reports. The machine is a shared, noisy virtual machine, and absolute figures "
          "(requests per second, seconds) moved by a factor of four between sessions; **the ratios are the "
          "result**. A throughput ratio below 1 means Zentro serves fewer requests; a latency or CPU ratio above 1 "
          "means Zentro takes that many times longer or more CPU per request. Ratios are medians of per-round "
          "ratios, each round measuring both sides back to back (ABBA order). Where per-round ratios spread widely "
          "the machine was busy: prefer the server-CPU-per-request ratio, which does not depend on what the "
          "neighbours leave over. The load generator is Python on the same cores, which pulls rps ratios towards "
          "1; an oversubscribed machine inflates the latency of Zentro's many database round trips, which pushes "
          "latency ratios up. Percentiles are client-side, from sending the request to reading the whole body. "
          "Nothing asserts an aim; they are reported as met or NOT met. See bench/README.md for each part.", ""]
    aims: list[tuple[str, str, str, str]] = []
    body: list[str] = []
    for p in parts:
        if p["status"] is None:
            body += [f"## {TITLES[p['name']]}", "", f"`{p['command']}`", "", f"**Not run**: {p['problem'][9:]}.", ""]
            aims.append((p["name"], "(whole part)", "–", "**not run** (interrupted)"))
            continue
        body += [f"## {TITLES[p['name']]}", "", f"`{p['command']}` — {p['seconds']:.0f} s (limit {p['limit_s']} s)", ""]
        if p["failed"]:
            why = (f"stopped at its {p['limit_s']} s limit" if p["timed_out"] else "not run" if p["status"] is None
                   else f"exit status {p['status']}")
            body += [f"**FAILED**: {why}" + (f"; {p['problem']}" if p["problem"] else "") + ".", ""]
            aims.append((p["name"], "(whole part)", "–", f"**FAILED** ({why})"))
        if p["data"] is not None:
            try:
                body += SECTIONS[p["name"]](p, aims)
            except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
                body.append(f"(could not read its results: {type(exc).__name__}: {exc})")
            body.append("")
        if p["failed"]:
            body += ["The end of its output:", "", "```", p["tail"] or "(no output)", "```", ""]
    L += ["## Aims at a glance", ""]
    L += table(["part", "aim", "value", "verdict"], [list(a) for a in aims]) if aims else ["(no aims measured)"]
    L += [""] + body
    L += ["## Notes on noise", "",
          f"Load average {' '.join(f'{x:.2f}' for x in load[0])} at the start on {info['cores']} cores. The "
          "benchmark's own processes (two gunicorn servers, the load generator, PostgreSQL) share those cores, so "
          "a second run minutes later can move absolute numbers by tens of percent; the ratios move much less. "
          "Compare ratios only between runs with the same settings (the commands above)."
          + (" This was a quick run: one short round per workload, so its ratios are noisier still." if args.quick
             else ""), ""]
    path.write_text("\n".join(L))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny settings for a smoke run (~2-3 min), labelled quick")
    ap.add_argument("--only", action="append", choices=list(PARTS), help="run only this part (repeatable)")
    ap.add_argument("--out", type=Path, default=BENCH / "RESULTS.md", help="where to write (default bench/RESULTS.md)")
    ap.add_argument("--rebuild", type=Path, metavar="DIR",
                    help="run nothing: rewrite --out from an earlier run's bench/results/<UTC>-all*/ directory")
    args = ap.parse_args(argv)
    if args.rebuild:
        m = json.loads((args.rebuild / "all.json").read_text())
        parts = m["parts"]
        for p in parts:
            p["data"] = json.loads(Path(p["json"]).read_text()) if p["json"] and Path(p["json"]).exists() else None
        args.quick, args.only = m["quick"], m["only"]
        write_results(args.out, parts, args, {**m["machine"], "note": m.get("note")}, dt.datetime.fromisoformat(m["started"]),
                      dt.datetime.fromisoformat(m["finished"]), tuple(m["load"]), args.rebuild.resolve())
        print(f"bench/all.py: rewrote {args.out} from {args.rebuild}")
        return 0
    started = dt.datetime.now(dt.timezone.utc)
    outdir = BENCH / "results" / f"{started:%Y%m%dT%H%M%SZ}-all{'-quick' if args.quick else ''}"
    outdir.mkdir(parents=True, exist_ok=True)
    info = machine()
    info["commit"] = git_commit()
    load0 = os.getloadavg()
    print(f"bench/all.py: {'quick' if args.quick else 'full'} run; {info['cpu']}, {info['cores']} cores, "
          f"load average {' '.join(f'{x:.2f}' for x in load0)}; results in {outdir}", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C: the running part cleans up, the file is written
    parts = []
    for name in PARTS:
        if args.only and name not in args.only:
            continue
        if parts and parts[-1].get("interrupted"):
            parts.append({"name": name, "command": " ".join(["bench/" + PARTS[name][0]] + PARTS[name][2 if args.quick else 1]),
                          "limit_s": 0, "seconds": 0, "status": None, "timed_out": False, "interrupted": True,
                          "failed": True, "problem": "not run: the run was interrupted", "tail": "", "data": None,
                          "json": "", "log": ""})
            continue
        parts.append(run_part(name, args.quick, outdir))
    finished = dt.datetime.now(dt.timezone.utc)
    load = (load0, os.getloadavg())
    (outdir / "all.json").write_text(json.dumps({
        "quick": args.quick, "only": args.only, "machine": info, "started": started.isoformat(),
        "finished": finished.isoformat(), "load": load,
        "parts": [{k: v for k, v in p.items() if k != "data"} for p in parts]}, indent=2) + "\n")
    write_results(args.out, parts, args, info, started, finished, load, outdir)
    failed = [p["name"] for p in parts if p["failed"]]
    print(f"\nbench/all.py: wrote {args.out} in {(finished - started).total_seconds() / 60:.1f} min"
          + (f"; FAILED: {', '.join(failed)}" if failed else "; every part finished"))
    return 1 if failed or len(parts) < len(args.only or PARTS) else 0


if __name__ == "__main__":
    sys.exit(main())
