"""Every compliance analytics report at about 100k obligations' worth of source rows, on SQLite (issue 6's aim:
each answers in under a second).

    .venv/bin/python bench/reports.py [--scale 1.0] [--rounds 3] [--report SLUG ...] [--format json]

1. Creates a SQLite file in a temporary directory, migrates it (`zentro db upgrade`) and seeds one org in SQL
   (bulk INSERTs, not the services): 50 members, 200 services with dependency edges and scope mappings,
   60k attestations (40k open, 20k attested with renewals), 10k vendors (a review and a report renewal each),
   15k evidence requests, 3k audit checkpoints, 2k gap remediations, 2k staffing actions, 500 exceptions,
   100 accepted policies, 1k dry-runs, 24 evidence bundles and 100k tagged audit events over the last year.
   That is about 100k open obligations plus their history (``--scale`` multiplies every count).
2. Baseline, measured in the same run: reading the raw source rows the obligation reports start from
   (``SELECT`` of the attestation, vendor, evidence-request and checkpoint columns, read to the end) plus the
   evidence aggregate the engine starts from (audit_tags grouped by tag over 30 days). A report cannot be faster
   than reading its inputs from scratch; the ratio says how much work it does on top.
3. Each report, in each of its formats (or ``--format``), through the Flask test client with an API key (the
   whole request: auth, validation, build, rendering, body read to the end), two ways:
   - *cold*: one request right after a source row changed, so the derived-data cache
     (zentro/compliance/derived_cache.py) reads and derives everything again: what the first reader after an edit
     waits, and what every request cost before the cache;
   - *warm*: median of ``--rounds`` requests after that one, with no change in between: what every other reader
     waits (the cache still checks the org's revision on each request, and builds and renders the report).
   Prints both in seconds, as ratios to the baseline and converted to the reference machine speed (the baseline
   of the run that first checked the aim, ``REFERENCE_BASELINE_S``), and whether the warm median meets the 1 s
   aim here and at the reference speed; writes bench/results/<UTC>-reports.json. Nothing asserts.

    --db PATH keeps the seeded SQLite file for the next run (profiling); --profile prints a cProfile of one warm
    request per report format.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
AIM_SECONDS = 1.0
# The baseline when the 1 s aim was first measured (stop 13, 2026-11-25, same machine kind). Machine speed moved by
# more than 4x between sessions since, so the aim is judged at that speed too: seconds × REFERENCE / this baseline.
REFERENCE_BASELINE_S = 0.43


def migrate(env: dict) -> None:
    zentro = Path(sys.executable).parent / "zentro"
    cmd = [str(zentro)] if zentro.exists() else [sys.executable, "-c", "from zentro.cli import cli; cli()"]
    r = subprocess.run(cmd + ["db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"`zentro db upgrade` failed:\n{r.stdout}\n{r.stderr}")


def seed(org_id: int, user_ids: list[int], now: dt.datetime, scale: float) -> dict[str, int]:
    """Bulk-insert the dataset; returns the row count per table."""
    from sqlalchemy import insert

    from zentro.audit.models import AuditEvent, AuditTag
    from zentro.automations.models import DryRun
    from zentro.compliance.catalog import load_catalog
    from zentro.compliance.models import (Attestation, AuditCheckpoint, ControlException, EvidenceBundle,
                                          EvidenceRequest, GapRemediation, Policy, ScopeMapping, StaffingAction,
                                          Vendor)
    from zentro.extensions import db
    from zentro.reliability.models import Service, ServiceDependency

    rng = random.Random(6)
    catalog = load_catalog()
    tags = [t for key in catalog.frameworks for t in catalog.tags_for(key)]
    fw_keys = list(catalog.frameworks)
    day = dt.timedelta(days=1)
    n = lambda base: max(1, int(base * scale))  # noqa: E731
    counts: dict[str, int] = {}

    def bulk(model, rows: list[dict]) -> None:
        for i in range(0, len(rows), 5000):
            db.session.execute(insert(model), rows[i:i + 5000])
        counts[model.__tablename__] = counts.get(model.__tablename__, 0) + len(rows)

    def when(lo: float, hi: float) -> dt.datetime:
        return now + dt.timedelta(days=rng.uniform(lo, hi))

    owner = lambda: rng.choice(user_ids)  # noqa: E731
    bulk(Service, [{"org_id": org_id, "name": f"svc-{i:03d}", "tier": rng.randint(0, 3), "created_at": now - 400 * day}
                   for i in range(n(200))])
    svc_ids = [r[0] for r in db.session.execute(db.select(Service.id).where(Service.org_id == org_id))]
    edges = {(rng.choice(svc_ids), rng.choice(svc_ids)) for _ in range(n(400))}
    bulk(ServiceDependency, [{"org_id": org_id, "service_id": a, "depends_on_id": b, "created_at": now - 300 * day}
                             for a, b in edges if a != b])
    bulk(ScopeMapping, [{"org_id": org_id, "service_id": s, "in_scope": rng.random() < 0.7,
                         "frameworks": rng.sample(fw_keys, 3), "data_classes": ["pii"], "note": "",
                         "updated_at": now - 30 * day} for s in svc_ids])
    atts = []
    for _ in range(n(40_000)):
        atts.append({"org_id": org_id, "control": rng.choice(tags), "owner_id": owner(), "status": "assigned",
                     "due_at": when(-30, 180), "note": "", "evidence": [], "created_at": now - 200 * day,
                     "updated_at": now - 200 * day})
    for _ in range(n(20_000)):
        attested = when(-300, -1)
        atts.append({"org_id": org_id, "control": rng.choice(tags), "owner_id": owner(), "status": "attested",
                     "due_at": attested + 5 * day, "attested_at": attested, "attested_by_id": owner(),
                     "valid_until": attested + 365 * day, "note": "ok", "evidence": [],
                     "created_at": attested - 20 * day, "updated_at": attested})
    bulk(Attestation, atts)
    bulk(Vendor, [{"org_id": org_id, "name": f"vendor-{i:05d}", "category": "saas",
                   "risk_tier": rng.choice(("critical", "high", "medium", "low")), "owner_id": owner(),
                   "report_type": "soc2-type-ii", "report_expires_at": when(-60, 300),
                   "last_review_at": when(-300, -10), "next_review_at": when(-20, 300),
                   "inherited_controls": rng.sample(tags, 4), "notes": "", "created_at": now - 500 * day}
                  for i in range(n(10_000))])
    bulk(EvidenceBundle, [{"org_id": org_id, "seq": i + 1, "kind": "workbook" if i % 6 == 5 else "evidence",
                           "window_start": now - (375 - i * 15) * day, "window_end": now - (345 - i * 15) * day,
                           "created_at": now - (345 - i * 15) * day, "created_by": "bench", "file_count": 5,
                           "size_bytes": 4096, "audit_event_count": 100} for i in range(24)])
    bundle_ids = [r[0] for r in db.session.execute(db.select(EvidenceBundle.id).where(EvidenceBundle.org_id == org_id))]
    reqs = []
    for i in range(n(15_000)):
        requested = when(-200, -1)
        fulfilled = rng.random() < 0.3
        reqs.append({"org_id": org_id, "title": f"Evidence request {i}", "controls": rng.sample(tags, 2),
                     "requested_by": "assessor@example.com", "owner_id": owner(), "requested_at": requested,
                     "due_at": requested + rng.randint(7, 120) * day, "status": "fulfilled" if fulfilled else "open",
                     "fulfilled_at": requested + 5 * day if fulfilled else None,
                     "bundle_id": rng.choice(bundle_ids) if fulfilled else None, "file_ref": "", "note": "",
                     "created_at": requested})
    bulk(EvidenceRequest, reqs)
    bulk(AuditCheckpoint, [{"org_id": org_id, "name": f"Checkpoint {i}", "framework": rng.choice(fw_keys),
                            "owner_id": owner(), "due_at": when(-60, 300), "status": "planned",
                            "created_at": now - 90 * day} for i in range(n(3_000))])
    gap_controls = rng.sample(tags, min(len(tags), n(2_000)))
    bulk(GapRemediation, [{"org_id": org_id, "control": c, "owner_id": owner(),
                           "status": rng.choice(("open", "in_progress", "done")), "due_at": when(-30, 90),
                           "runbook_url": "https://runbooks.example.com/x", "note": "",
                           "created_at": now - 60 * day, "updated_at": now - 10 * day,
                           "closed_at": when(-50, -1) if rng.random() < 0.3 else None} for c in gap_controls])
    monday = (now - now.weekday() * day).date()
    bulk(StaffingAction, [{"org_id": org_id, "week_start": monday + rng.randint(-8, 12) * 7 * day, "owner_id": owner(),
                           "kind": rng.choice(("rebalance", "add_capacity", "defer", "consolidate")),
                           "status": rng.choice(("proposed", "tracked", "completed")), "title": f"Action {i}",
                           "hours": 4.0, "note": "", "created_at": now - 20 * day, "updated_at": now - 5 * day}
                          for i in range(n(2_000))])
    bulk(ControlException, [{"org_id": org_id, "control": rng.choice(tags), "reason": "legacy system",
                             "compensating_control": "manual review", "status": "open",
                             "opened_at": now - 30 * day, "expires_at": when(-10, 120)} for _ in range(n(500))])
    bulk(Policy, [{"org_id": org_id, "name": f"Policy {i}", "description": "", "status": "accepted",
                   "control_tags": " ".join(rng.sample(tags, 3)), "actions": [], "source": "manual",
                   "accepted_at": now - 100 * day, "created_at": now - 120 * day, "updated_at": now - 100 * day}
                  for i in range(n(100))])
    bulk(DryRun, [{"org_id": org_id, "plan": [], "plan_hash": f"{i:064x}", "blast_radius": {}, "slo_impact": [],
                   "checks": [], "verdict": "pass", "created_at": when(-360, 0), "expires_at": now}
                  for i in range(n(1_000))])
    # tagged audit events over the last year (not hash-chained: nothing here verifies the chain)
    events, n_events = [], n(100_000)
    base_seq = db.session.scalar(db.select(db.func.coalesce(db.func.max(AuditEvent.seq), 0))
                                 .where(AuditEvent.org_id == org_id))
    for i in range(n_events):
        at = now - dt.timedelta(seconds=(n_events - i) * (31_536_000 / n_events))
        events.append({"org_id": org_id, "seq": base_seq + i + 1, "created_at": at, "actor_type": "system", "actor_id": "",
                       "actor_label": "bench", "action": "bench.evidence", "target_type": "service",
                       "target_id": str(rng.choice(svc_ids)), "control_tags": " ".join(rng.sample(tags, 2)),
                       "request_id": "", "data": "{}", "prev_hash": "0" * 64, "hash": "0" * 64})
    bulk(AuditEvent, events)
    rows = db.session.execute(db.select(AuditEvent.id, AuditEvent.created_at, AuditEvent.control_tags)
                              .where(AuditEvent.org_id == org_id, AuditEvent.seq > base_seq))
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    tag_rows = []
    for eid, created, ctags in rows:
        created = created if created.tzinfo else created.replace(tzinfo=dt.timezone.utc)
        for t in ctags.split():
            tag_rows.append({"org_id": org_id, "event_id": eid, "tag": t, "created_at": created,
                             "day": (created - epoch).days})
    bulk(AuditTag, tag_rows)
    db.session.commit()
    return counts


def baseline(org_id: int, now: dt.datetime) -> float:
    """Seconds to read the obligation source rows and the 30-day evidence aggregate."""
    from sqlalchemy import func, select

    from zentro.audit.models import AuditTag
    from zentro.compliance.models import Attestation, AuditCheckpoint, EvidenceRequest, Vendor
    from zentro.extensions import db

    started = time.perf_counter()
    for q in (select(Attestation.id, Attestation.control, Attestation.owner_id, Attestation.status,
                     Attestation.due_at, Attestation.valid_until, Attestation.attested_at)
              .where(Attestation.org_id == org_id),
              select(Vendor.id, Vendor.name, Vendor.owner_id, Vendor.next_review_at, Vendor.report_expires_at,
                     Vendor.inherited_controls).where(Vendor.org_id == org_id),
              select(EvidenceRequest.id, EvidenceRequest.title, EvidenceRequest.controls, EvidenceRequest.owner_id,
                     EvidenceRequest.due_at, EvidenceRequest.status).where(EvidenceRequest.org_id == org_id),
              select(AuditCheckpoint.id, AuditCheckpoint.name, AuditCheckpoint.framework, AuditCheckpoint.due_at)
              .where(AuditCheckpoint.org_id == org_id),
              select(AuditTag.tag, func.count(), func.max(AuditTag.created_at))
              .where(AuditTag.org_id == org_id, AuditTag.created_at >= now - dt.timedelta(days=30))
              .group_by(AuditTag.tag)):
        db.session.execute(q).all()
    db.session.rollback()
    return time.perf_counter() - started


def cold_request(app, client, org_id: int, url: str, headers: dict) -> float:
    """Seconds for one request right after a source row changed: the org's compliance revision moves (an UPDATE
    that changes nothing but fires the triggers), so the derived-data cache has to read and derive again."""
    from sqlalchemy import text

    from zentro.extensions import db

    with app.app_context():
        db.session.execute(text("UPDATE attestations SET updated_at = updated_at "
                                "WHERE id = (SELECT min(id) FROM attestations WHERE org_id = :o)"), {"o": org_id})
        db.session.commit()
    t0 = time.perf_counter()
    client.get(url, headers=headers).get_data()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every row count (default 1.0 ≈ 100k obligations)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--report", action="append", default=[], help="only this report slug (repeatable)")
    ap.add_argument("--format", action="append", default=[], help="only this format (repeatable)")
    ap.add_argument("--db", help="keep the seeded SQLite file here and reuse it on the next run (for profiling; "
                                 "default: a temporary file removed at exit)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one request per report format")
    ap.add_argument("--json-out", type=Path, help="write the JSON here instead of bench/results/<UTC>-reports.json")
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="zentro-bench-reports-")
    db_path = Path(args.db).resolve() if args.db else Path(tmp.name) / "bench.db"
    reuse = db_path.exists()
    env = {**os.environ, "ZENTRO_DATABASE_URL": f"sqlite:///{db_path}", "ZENTRO_SECRET_KEY": os.urandom(16).hex(),
           "ZENTRO_RATELIMIT_ENABLED": "0"}
    migrate(env)
    os.environ.update(env)

    from zentro import create_app
    from zentro.accounts import service
    from zentro.audit.service import SYSTEM
    from zentro.compliance import report_registry as registry
    from zentro.extensions import db
    from zentro.platform.types import utcnow

    app = create_app()
    now = utcnow()
    with app.app_context():
        org, _ = service.ensure_org("bench-reports", plan="enterprise")
        users = []
        for i in range(50):
            user, _ = service.ensure_user(f"owner{i}@bench.example", "bench-password-123", f"Owner {i}")
            service.set_membership(user, org, "owner" if i == 0 else "member")
            users.append(user)
        db.session.commit()
        _, key = service.create_api_key(org, users[0], "bench", None, SYSTEM)
        db.session.commit()
        started = time.perf_counter()
        counts = {"reused": str(db_path)} if reuse else seed(org.id, [u.id for u in users], now, args.scale)
        seed_seconds = time.perf_counter() - started
        from zentro.compliance import obligations

        open_obligations = len(obligations.load(org.id, now))
        base = statistics.median(baseline(org.id, now) for _ in range(max(3, args.rounds)))
        org_id = org.id
    print(f"seeded in {seed_seconds:.1f}s: {counts}")
    print(f"open obligations: {open_obligations}; baseline (read the source rows): {base * 1000:.0f} ms")

    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    results = []
    reports = registry.discover()
    scale = REFERENCE_BASELINE_S / base
    print(f"machine speed vs the reference run: baseline {base:.2f} s here, {REFERENCE_BASELINE_S:.2f} s there "
          f"(×{scale:.2f} converts seconds here to seconds there)")
    print(f"{'report':38} {'format':9} {'warm s':>7} {'ratio':>6} {'cold s':>7} {'ratio':>6} {'warm@ref':>9} "
          f"{'cold@ref':>9}  <{AIM_SECONDS:g}s here / at ref")
    for slug in sorted(reports):
        if args.report and slug not in args.report:
            continue
        for fmt in reports[slug].formats:
            if args.format and fmt not in args.format:
                continue
            times, status, size = [], None, 0
            cold = cold_request(app, client, org_id, f"/api/governance/compliance/{slug}?format={fmt}", headers)
            for i in range(args.rounds + 1):
                t0 = time.perf_counter()
                resp = client.get(f"/api/governance/compliance/{slug}?format={fmt}", headers=headers)
                body = resp.get_data()
                elapsed = time.perf_counter() - t0
                status, size = resp.status_code, len(body)
                if i:  # the first is a warm-up
                    times.append(elapsed)
            if args.profile:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
                client.get(f"/api/governance/compliance/{slug}?format={fmt}", headers=headers).get_data()
                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
            med = statistics.median(times)
            ok = status == 200 and med < AIM_SECONDS
            ok_ref = status == 200 and med * scale < AIM_SECONDS
            results.append({"report": slug, "format": fmt, "status": status, "bytes": size, "median_s": med,
                            "runs_s": times, "ratio_to_baseline": med / base, "aim_met": ok,
                            "cold_s": cold, "cold_ratio_to_baseline": cold / base,
                            "warm_s_at_reference": med * scale, "cold_s_at_reference": cold * scale,
                            "aim_met_at_reference": ok_ref})
            print(f"{slug:38} {fmt:9} {med:7.3f} {med / base:6.2f} {cold:7.3f} {cold / base:6.2f} "
                  f"{med * scale:9.3f} {cold * scale:9.3f}  {'yes' if ok else 'NO'} / {'yes' if ok_ref else 'NO'}"
                  + ("" if status == 200 else f" (status {status})"))
    missed = [r for r in results if not r["aim_met"]]
    missed_ref = [r for r in results if not r["aim_met_at_reference"]]
    print(f"\nat the reference speed: {len(results) - len(missed_ref)}/{len(results)} warm under {AIM_SECONDS:g} s"
          + (f"; missed: {', '.join(r['report'] + '/' + r['format'] for r in missed_ref)}" if missed_ref else ""))
    print(f"{len(results) - len(missed)}/{len(results)} report formats answered in under {AIM_SECONDS:g} s here"
          + (f"; missed: {', '.join(r['report'] + '/' + r['format'] for r in missed)}" if missed else ""))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = (args.json_out or BENCH / "results" / f"{stamp}-reports.json").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "when": stamp, "machine": {"platform": platform.platform(), "python": platform.python_version(),
                                   "cpus": os.cpu_count()},
        "scale": args.scale, "reference_baseline_s": REFERENCE_BASELINE_S, "rows": counts,
        "open_obligations": open_obligations, "baseline_s": base,
        "seed_s": seed_seconds, "org_id": org_id, "results": results}, indent=2))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
