"""The retention purge: closed incidents and audit rows past the org's policy go, anything under legal
hold stays, and the audit chain stays verifiable.

* Incidents: status closed, closed before the incident cutoff, not under legal hold. Their timeline
  and RCA runs go with them; alerts and findings keep their rows, unlinked.
* Audit rows: created before the audit cutoff, except rows whose target is an incident under legal
  hold, and never the chain's head (the next event links to it). Each contiguous run of purged seqs
  gets a ``PurgeCheckpoint`` (from_seq, to_seq, last_hash = hash of row to_seq) so that
  ``zentro.audit.service.verify_chain`` can bridge the gap; their audit_tags rows are deleted first.
* Work is done in batches of ids (never the whole table in memory), one transaction per batch under
  the org lock, each batch's deletions committed together with the checkpoints covering them; then one
  ``retention.purged`` audit event records the counts and checkpoint ids.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import Integer, any_, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from zentro.accounts.models import Org
from zentro.audit.models import AuditEvent, AuditTag, PurgeCheckpoint
from zentro.audit.service import SYSTEM, Actor, lock_org, record
from zentro.compliance.governance import RETENTION_TAGS, effective_policy, held_audit_filter
from zentro.extensions import db
from zentro.incidents.models import Alert, Incident, RcaRun, TimelineEvent
from zentro.platform.errors import not_found
from zentro.platform.types import iso, utcnow

log = logging.getLogger("zentro.retention")
BATCH = 2000  # rows fetched (ids, seqs, hashes) per transaction
CHUNK = 1000  # ids per DELETE … IN (…)
HOLD_TAG = "ISO27001:A.5.33"
MAX_REFS = 100  # purged incident refs named in the audit event


@dataclass
class PurgeResult:
    org_id: int
    dry_run: bool
    now: dt.datetime
    audit_days: int
    incident_days: int
    audit_cutoff: dt.datetime
    incident_cutoff: dt.datetime
    audit_events: int = 0  # purged (or, dry run, that would be)
    incidents: int = 0
    audit_events_kept_for_hold: int = 0
    incidents_kept_for_hold: int = 0
    held_incidents: int = 0
    checkpoints: list[dict] = field(default_factory=list)
    incident_refs: list[str] = field(default_factory=list)
    event_id: int | None = None

    def as_json(self) -> dict:
        return {
            "org_id": self.org_id, "dry_run": self.dry_run, "now": iso(self.now),
            "audit_retention_days": self.audit_days, "incident_retention_days": self.incident_days,
            "audit_cutoff": iso(self.audit_cutoff), "incident_cutoff": iso(self.incident_cutoff),
            "audit_events": self.audit_events, "incidents": self.incidents,
            "kept_for_legal_hold": {"audit_events": self.audit_events_kept_for_hold,
                                    "incidents": self.incidents_kept_for_hold,
                                    "held_incidents": self.held_incidents},
            "checkpoints": self.checkpoints, "audit_event_id": self.event_id,
        }


def _incident_candidates(org_id: int, cutoff: dt.datetime, held: bool):
    return (Incident.org_id == org_id, Incident.status == "closed", Incident.closed_at.is_not(None),
            Incident.closed_at < cutoff, Incident.legal_hold.is_(held))


def _head_seq(org_id: int) -> int:
    return db.session.scalar(select(func.max(AuditEvent.seq)).where(AuditEvent.org_id == org_id)) or 0


def _audit_candidates(org_id: int, cutoff: dt.datetime, below_seq: int):
    return (AuditEvent.org_id == org_id, AuditEvent.created_at < cutoff, AuditEvent.seq < below_seq,
            ~held_audit_filter(org_id))


def _count(model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0


def _start(org_id: int, now: dt.datetime, dry_run: bool) -> PurgeResult:
    if db.session.get(Org, org_id) is None:
        raise not_found("Organisation")
    policy = effective_policy(org_id)
    return PurgeResult(org_id, dry_run, now, policy.audit.days, policy.incidents.days,
                       now - dt.timedelta(days=policy.audit.days), now - dt.timedelta(days=policy.incidents.days))


def _count_holds(res: PurgeResult) -> None:
    org_id = res.org_id
    res.audit_events_kept_for_hold = _count(AuditEvent, AuditEvent.org_id == org_id,
                                            AuditEvent.created_at < res.audit_cutoff, held_audit_filter(org_id))
    res.incidents_kept_for_hold = _count(Incident, *_incident_candidates(org_id, res.incident_cutoff, True))
    res.held_incidents = _count(Incident, Incident.org_id == org_id, Incident.legal_hold.is_(True))


def preview(org_id: int, now: dt.datetime | None = None) -> PurgeResult:
    """What a purge would remove now, and what legal hold keeps: SQL counts only, nothing changes."""
    res = _start(org_id, now or utcnow(), True)
    res.audit_events = _count(AuditEvent, *_audit_candidates(org_id, res.audit_cutoff, _head_seq(org_id)))
    res.incidents = _count(Incident, *_incident_candidates(org_id, res.incident_cutoff, False))
    _count_holds(res)
    return res


def purge(org_id: int, now: dt.datetime | None = None, dry_run: bool = False, actor: Actor = SYSTEM,
          batch_size: int = BATCH) -> PurgeResult:
    """Delete what the org's retention policy no longer requires, keeping legal holds and the chain."""
    if dry_run:
        return preview(org_id, now)
    res = _start(org_id, now or utcnow(), False)
    db.session.commit()  # the reads above must not hold a snapshot across the batches
    _purge_incidents(res, batch_size)
    _purge_audit(res, batch_size)
    lock_org(org_id)
    _count_holds(res)
    tags = set(RETENTION_TAGS) | ({HOLD_TAG} if res.audit_events_kept_for_hold or res.incidents_kept_for_hold else set())
    event = record(org_id, "retention.purged", actor, target_type="org", target_id=org_id, control_tags=tags, now=res.now,
                   data={"audit_events": res.audit_events, "incidents": res.incidents,
                         "audit_cutoff": iso(res.audit_cutoff), "incident_cutoff": iso(res.incident_cutoff),
                         "checkpoint_ids": [c["id"] for c in res.checkpoints],
                         "checkpoints": [[c["from_seq"], c["to_seq"], c["last_hash"]] for c in res.checkpoints],
                         "incident_refs": res.incident_refs[:MAX_REFS],
                         "kept_for_legal_hold": {"audit_events": res.audit_events_kept_for_hold,
                                                 "incidents": res.incidents_kept_for_hold}})
    res.event_id = event.id
    db.session.commit()
    return res


def _purge_incidents(res: PurgeResult, batch_size: int) -> None:
    from zentro.ingest.models import Finding

    org_id = res.org_id
    while True:
        lock_org(org_id)
        rows = db.session.execute(select(Incident.id, Incident.number)
                                  .where(*_incident_candidates(org_id, res.incident_cutoff, False))
                                  .order_by(Incident.id).limit(batch_size)).all()
        if not rows:
            db.session.commit()
            return
        for start in range(0, len(rows), CHUNK):
            ids = [r.id for r in rows[start:start + CHUNK]]
            # the foreign keys cascade / set null on both backends; done explicitly all the same
            for model in (TimelineEvent, RcaRun):
                db.session.execute(delete(model).where(model.org_id == org_id, _among(model.incident_id, ids))
                                   .execution_options(synchronize_session=False))
            for model in (Alert, Finding):
                db.session.execute(update(model).where(model.org_id == org_id, _among(model.incident_id, ids))
                                   .values(incident_id=None).execution_options(synchronize_session=False))
            done = db.session.execute(delete(Incident).where(_among(Incident.id, ids), *_incident_candidates(
                org_id, res.incident_cutoff, False)).execution_options(synchronize_session=False))
            res.incidents += done.rowcount or 0
        res.incident_refs.extend(f"INC-{r.number}" for r in rows[:max(0, MAX_REFS - len(res.incident_refs))])
        db.session.commit()


def _purge_audit(res: PurgeResult, batch_size: int) -> None:
    org_id = res.org_id
    head = _head_seq(org_id)  # never purged: the next event links to it
    last_seq = 0
    open_cp: PurgeCheckpoint | None = None  # the run the previous batch ended in, if it may continue
    open_to = -1
    while True:
        lock_org(org_id)
        rows = db.session.execute(select(AuditEvent.id, AuditEvent.seq, AuditEvent.hash)
                                  .where(*_audit_candidates(org_id, res.audit_cutoff, head), AuditEvent.seq > last_seq)
                                  .order_by(AuditEvent.seq).limit(batch_size)).all()
        if not rows:
            db.session.commit()
            break
        touched: list[PurgeCheckpoint] = []
        for first, last, count, last_hash in _runs(rows):
            if open_cp is not None and first == open_to + 1:  # the previous batch's run continues
                open_cp.to_seq, open_cp.last_hash = last, last_hash
                open_cp.purged_events = open_cp.purged_events + count
            else:
                open_cp = PurgeCheckpoint(org_id=org_id, created_at=res.now, cutoff=res.audit_cutoff, from_seq=first,
                                          to_seq=last, last_hash=last_hash, purged_events=count)
                db.session.add(open_cp)
            open_to = last
            touched.append(open_cp)
        for start in range(0, len(rows), CHUNK):
            ids = [r.id for r in rows[start:start + CHUNK]]
            # audit_tags cascade on PostgreSQL (and on SQLite with foreign keys on); deleted first explicitly
            db.session.execute(delete(AuditTag).where(AuditTag.org_id == org_id, _among(AuditTag.event_id, ids))
                               .execution_options(synchronize_session=False))
            done = db.session.execute(delete(AuditEvent).where(AuditEvent.org_id == org_id, _among(AuditEvent.id, ids))
                                      .execution_options(synchronize_session=False))
            res.audit_events += done.rowcount or 0
        db.session.flush()
        for cp in touched:
            _remember(res, cp)
        db.session.commit()
        last_seq = rows[-1].seq


def _runs(rows) -> list[tuple[int, int, int, str]]:
    """Rows (id, seq, hash) in seq order → maximal runs of consecutive seqs: (first, last, count, hash of last)."""
    out: list[list] = []
    for r in rows:
        if out and r.seq == out[-1][1] + 1:
            run = out[-1]
            run[1], run[2], run[3] = r.seq, run[2] + 1, r.hash
        else:
            out.append([r.seq, r.seq, 1, r.hash])
    return [tuple(run) for run in out]


def _among(column, ids: list[int]):
    """``column IN ids``; on PostgreSQL as ``= ANY(:array)``: one bind parameter, so the statement text
    stays short (psycopg converts long statements anew on every call)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return column.in_(ids)


def _remember(res: PurgeResult, cp: PurgeCheckpoint) -> None:
    entry = {"id": cp.id, "from_seq": cp.from_seq, "to_seq": cp.to_seq, "last_hash": cp.last_hash,
             "purged_events": cp.purged_events}
    for i, known in enumerate(res.checkpoints):
        if known["id"] == cp.id:
            res.checkpoints[i] = entry
            return
    res.checkpoints.append(entry)


def run_retention_all(now: dt.datetime | None = None, dry_run: bool = False) -> list[dict]:
    """Purge every org (the scheduler's job). One org's failure is logged and reported, not fatal."""
    now = now or utcnow()
    out = []
    for org_id in list(db.session.scalars(select(Org.id).order_by(Org.id))):
        try:
            out.append(purge(org_id, now, dry_run=dry_run).as_json())
        except Exception as exc:  # noqa: BLE001 — keep going for the other orgs
            db.session.rollback()
            log.exception("retention purge failed for org %s", org_id)
            out.append({"org_id": org_id, "error": f"{type(exc).__name__}: {exc}"})
    return out


def describe(result: dict) -> str:
    """One line per org for the CLI and logs."""
    if "error" in result:
        return f"org {result['org_id']}: FAILED {result['error']}"
    verb = "would purge" if result["dry_run"] else "purged"
    kept = result["kept_for_legal_hold"]
    return (f"org {result['org_id']}: {verb} {result['audit_events']} audit rows (before {result['audit_cutoff'][:10]}) and "
            f"{result['incidents']} closed incidents (before {result['incident_cutoff'][:10]}); legal hold kept "
            f"{kept['audit_events']} audit rows and {kept['incidents']} incidents; "
            f"{len(result['checkpoints'])} checkpoint(s)")


def run_cli(org_slug: str | None, dry_run: bool, now: dt.datetime | None = None) -> tuple[list[str], int]:
    """``zentro retention run [--org SLUG] [--dry-run]``: (lines to print, exit code). Without --org, every org."""
    from zentro.accounts.service import get_org

    if org_slug is None:
        results = run_retention_all(now, dry_run=dry_run)
    else:
        org = get_org(org_slug)
        if org is None:
            return [f"No org {org_slug!r}."], 2
        results = [purge(org.id, now, dry_run=dry_run).as_json()]
    return [describe(r) for r in results], 1 if any("error" in r for r in results) else 0
