"""Shared reads for the "Evidence & testing" reports (evidence requests, exception register, testing-evidence
linker, testing schedules, evidence lineage). Column selects and grouped queries only: nothing here loops over
audit rows one query at a time."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import func, select

from zentro.audit.models import AuditEvent
from zentro.compliance import engine
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import (Attestation, AuditCheckpoint, ControlException, EvidenceBundle,
                                      EvidenceRequest, GapRemediation, Policy, ScopeMapping)
from zentro.extensions import db

LINK_ACTION = "compliance.test_evidence.linked"


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def days_between(later: dt.datetime, earlier: dt.datetime) -> float:
    return round((later - earlier).total_seconds() / 86400, 1)


def median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return round(s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2, 1)


def control_title(tag: str) -> str:
    catalog = load_catalog()
    return catalog.control(tag).title if catalog.has(tag) else ""


def framework_of(tag: str) -> str:
    return tag.split(":", 1)[0]


# --- the engine, once per report ---------------------------------------------------------------------------

def snapshot_now(org_id: int, now: dt.datetime, period_days: int = engine.DEFAULT_PERIOD_DAYS) -> engine.Snapshot:
    """``engine.snapshot`` as of ``now`` (no trend): its registers come from the derived-data cache, so after the
    first read this is the two grouped audit_tags queries."""
    return engine.snapshot(org_id, period_days, now)


def assess_controls(org_id: int, now: dt.datetime, tags: Iterable[str] | None = None,
                    frameworks: Iterable[str] | None = None,
                    period_days: int = engine.DEFAULT_PERIOD_DAYS) -> dict[str, engine.ControlResult]:
    """Engine results (score, state, reason) as of ``now`` for the given control tags and/or every control of the
    given frameworks, from ONE snapshot (two grouped audit_tags queries, one grouped attestation query)."""
    snap = snapshot_now(org_id, now, period_days)
    catalog = snap.catalog
    out: dict[str, engine.ControlResult] = {}
    for key in frameworks or ():
        for c in snap.assess(key, with_trend=False).controls:
            out[c.tag] = c
    for tag in tags or ():
        if tag not in out and catalog.has(tag):
            out[tag] = snap.assess_control(tag)
    return out


def program_frameworks(org_id: int) -> list[str]:
    """The frameworks the org's program works on: those named by its scope mappings and audit checkpoints, and the
    frameworks of the controls in its attestations, exceptions, accepted policies, gap remediations and evidence
    requests (catalog order). Audit evidence alone does not put a framework in the program (automation events tag
    change-management controls of several frameworks by default)."""
    catalog = load_catalog()
    keys: set[str] = set()
    for (fws,) in db.session.execute(select(ScopeMapping.frameworks).where(ScopeMapping.org_id == org_id,
                                                                           ScopeMapping.in_scope.is_(True))):
        keys.update(fws or ())
    keys.update(db.session.scalars(select(AuditCheckpoint.framework).where(AuditCheckpoint.org_id == org_id)
                                   .distinct()))
    for model in (Attestation, ControlException, GapRemediation):
        for tag in db.session.scalars(select(model.control).where(model.org_id == org_id).distinct()):
            keys.add(framework_of(tag))
    for (tags,) in db.session.execute(select(Policy.control_tags).where(Policy.org_id == org_id,
                                                                         Policy.status == "accepted")):
        keys.update(framework_of(t) for t in (tags or "").split())
    missing = [k for k in catalog.frameworks if k not in keys]
    if missing:  # one scan of the requests' tag lists (JSON text) with one LIKE '%"KEY:%' per missing framework
        from sqlalchemy import String, case, cast

        text = cast(EvidenceRequest.controls, String)
        hits = db.session.execute(select(*[func.max(case((text.like(f'%"{k}:%'), 1), else_=0)) for k in missing])
                                  .where(EvidenceRequest.org_id == org_id, EvidenceRequest.status != "cancelled")
                                  ).one()
        keys.update(k for k, hit in zip(missing, hits) if hit)
    return [k for k in catalog.frameworks if k in keys]


# --- bundles --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BundleInfo:
    id: int
    seq: int
    kind: str
    window_start: dt.datetime
    window_end: dt.datetime
    created_at: dt.datetime
    manifest_sha256: str

    def covers(self, moment: dt.datetime) -> bool:
        """The bundle's audit_events.csv holds rows with window_start <= created_at <= window_end."""
        return self.window_start <= moment <= self.window_end

    @property
    def label(self) -> str:
        return f"#{self.seq}" + (" (workbook)" if self.kind == "workbook" else "")


def load_bundles(org_id: int) -> list[BundleInfo]:
    rows = db.session.execute(select(EvidenceBundle.id, EvidenceBundle.seq, EvidenceBundle.kind,
                                     EvidenceBundle.window_start, EvidenceBundle.window_end,
                                     EvidenceBundle.created_at, EvidenceBundle.manifest_sha256)
                              .where(EvidenceBundle.org_id == org_id).order_by(EvidenceBundle.seq))
    return [BundleInfo(r.id, r.seq, r.kind, aware(r.window_start), aware(r.window_end), aware(r.created_at),
                       r.manifest_sha256 or "") for r in rows]


# --- recorded test-to-bundle links ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    dry_run_id: int
    bundle_id: int
    event_id: int
    at: dt.datetime


def recorded_links(org_id: int) -> dict[tuple[int, int], Link]:
    """(dry_run_id, bundle_id) → the audit event that recorded the link (the first one, if ever twice)."""
    rows = db.session.execute(select(AuditEvent.id, AuditEvent.target_id, AuditEvent.data, AuditEvent.created_at)
                              .where(AuditEvent.org_id == org_id, AuditEvent.action == LINK_ACTION)
                              .order_by(AuditEvent.seq))
    out: dict[tuple[int, int], Link] = {}
    for event_id, target_id, data, at in rows:
        try:
            dry_run_id = int(json.loads(data or "{}").get("dry_run_id"))
            bundle_id = int(target_id)
        except (TypeError, ValueError):
            continue
        out.setdefault((dry_run_id, bundle_id), Link(dry_run_id, bundle_id, event_id, aware(at)))
    return out


def count_rows(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0
