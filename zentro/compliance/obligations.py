"""Obligations: the dated duties of the compliance program, derived (never stored) from the registers.

| kind               | source row                         | due                                   | done when            |
|--------------------|------------------------------------|---------------------------------------|----------------------|
| attestation        | an assigned or rejected attestation | its due date                          | attested             |
| attestation        | an attested attestation (renewal)   | its valid_until                       | (re-attested: new row)|
| vendor_review      | a vendor with a next review date    | next_review_at                        | (review moves it)    |
| vendor_report      | a vendor with a report expiry       | report_expires_at                     | (new report moves it)|
| bundle             | the org's evidence bundle cadence   | last bundle + cadence, then every cadence | a bundle is created |
| checkpoint         | an audit-season checkpoint          | due_at                                | status done          |
| evidence_request   | an assessor evidence request        | due_at                                | fulfilled            |

Every obligation has a stable ``key`` (``attestation:12``, ``attestation-renewal:12``, ``vendor-review:3``,
``vendor-report:3``, ``bundle:2026-12-01``, ``checkpoint:5``, ``evidence-request:9``): the ICS feed uses it for
UIDs and the consolidation play for cluster membership. ``frameworks`` are the catalog framework keys its
controls belong to (a checkpoint's own framework; a bundle is program-wide: no frameworks). ``effort_hours``
comes from the org's committee settings (``effort_hours`` per kind) or ``DEFAULT_EFFORT``.

Reads are column tuples, not ORM objects, so 100k source rows load in a fraction of a second.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from sqlalchemy import func, select

from zentro.accounts.models import Membership, User
from zentro.compliance.models import (AuditCheckpoint, Attestation, CommitteeSettings, EvidenceBundle,
                                      EvidenceRequest, Vendor)
from zentro.extensions import db

KINDS = ("attestation", "vendor_review", "vendor_report", "bundle", "checkpoint", "evidence_request")
KIND_LABELS = {"attestation": "Attestation", "vendor_review": "Vendor review", "vendor_report": "Vendor report renewal",
               "bundle": "Evidence bundle", "checkpoint": "Audit checkpoint", "evidence_request": "Evidence request"}
DEFAULT_EFFORT = {"attestation": 2.0, "vendor_review": 4.0, "vendor_report": 1.0, "bundle": 3.0, "checkpoint": 6.0,
                  "evidence_request": 2.0}
BUNDLE_HORIZON_DAYS = 400  # scheduled bundle occurrences are generated this far ahead


@dataclass(frozen=True)
class CommitteeConfig:
    capacity_hours_per_week: float = 40.0
    density_warn: int = 8
    density_critical: int = 15
    completion_sla_days: int = 14
    bundle_cadence_days: int = 30
    escalation_emails: tuple[str, ...] = ()
    effort_hours: dict = field(default_factory=lambda: dict(DEFAULT_EFFORT))
    stored: bool = False  # False = no row yet, these are the defaults


def committee_config(org_id: int) -> CommitteeConfig:
    row = db.session.get(CommitteeSettings, org_id)
    if row is None:
        return CommitteeConfig()
    effort = dict(DEFAULT_EFFORT)
    effort.update({k: float(v) for k, v in (row.effort_hours or {}).items() if k in DEFAULT_EFFORT})
    return CommitteeConfig(row.capacity_hours_per_week, row.density_warn, row.density_critical,
                           row.completion_sla_days, row.bundle_cadence_days, tuple(row.escalation_emails or ()),
                           effort, True)


@dataclass(slots=True)
class Obligation:
    key: str
    kind: str
    title: str
    frameworks: tuple[str, ...]
    controls: tuple[str, ...]
    owner_id: int | None
    owner: str  # owner email, "" when unassigned
    due_at: dt.datetime
    effort_hours: float
    status: str  # open | done
    source_id: int | None
    url: str
    completed_at: dt.datetime | None = None

    def overdue(self, now: dt.datetime) -> bool:
        return self.status == "open" and self.due_at < now

    @property
    def week(self) -> dt.date:
        return week_start(self.due_at)


def week_start(moment: dt.datetime | dt.date) -> dt.date:
    """Monday of the ISO week holding ``moment`` (UTC)."""
    day = moment.date() if isinstance(moment, dt.datetime) else moment
    return day - dt.timedelta(days=day.weekday())


def weeks_from(now: dt.datetime, count: int) -> list[dt.date]:
    """``count`` consecutive week starts, the first being the current week."""
    first = week_start(now)
    return [first + dt.timedelta(weeks=i) for i in range(count)]


def framework_of(tag: str) -> str:
    return tag.split(":", 1)[0]


def frameworks_of(tags: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for tag in tags:
        key = framework_of(tag)
        if key not in out:
            out.append(key)
    return tuple(out)


def owner_emails(org_id: int) -> dict[int, str]:
    rows = db.session.execute(select(User.id, User.email).join(Membership, Membership.user_id == User.id)
                              .where(Membership.org_id == org_id))
    return {uid: email for uid, email in rows}


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def load(org_id: int, now: dt.datetime, *, include_done: bool = False,
         config: CommitteeConfig | None = None, kinds: Sequence[str] | None = None) -> list[Obligation]:
    """Every open obligation of the org (overdue ones included), plus completed ones with ``include_done``;
    sorted by due date, then key."""
    config = config or committee_config(org_id)
    effort = config.effort_hours
    emails = owner_emails(org_id)
    wanted = set(kinds or KINDS)
    out: list[Obligation] = []
    add = out.append

    if "attestation" in wanted:
        rows = db.session.execute(select(Attestation.id, Attestation.control, Attestation.owner_id, Attestation.status,
                                         Attestation.due_at, Attestation.valid_until, Attestation.attested_at)
                                  .where(Attestation.org_id == org_id))
        hours = effort["attestation"]
        for aid, control, owner_id, status, due_at, valid_until, attested_at in rows:
            fw = (framework_of(control),)
            owner = emails.get(owner_id, "") if owner_id else ""
            if status == "attested":
                if include_done:
                    add(Obligation(f"attestation:{aid}", "attestation", f"Attest {control}", fw, (control,), owner_id,
                                   owner, _aware(due_at), hours, "done", aid, f"/compliance/attestations/{aid}",
                                   _aware(attested_at)))
                if valid_until is not None:
                    add(Obligation(f"attestation-renewal:{aid}", "attestation", f"Renew attestation of {control}", fw,
                                   (control,), owner_id, owner, _aware(valid_until), hours, "open", aid,
                                   f"/compliance/attestations/{aid}"))
            else:
                add(Obligation(f"attestation:{aid}", "attestation", f"Attest {control}", fw, (control,), owner_id,
                               owner, _aware(due_at), hours, "open", aid, f"/compliance/attestations/{aid}"))

    if wanted & {"vendor_review", "vendor_report"}:
        rows = db.session.execute(select(Vendor.id, Vendor.name, Vendor.owner_id, Vendor.next_review_at,
                                         Vendor.report_expires_at, Vendor.inherited_controls, Vendor.report_type)
                                  .where(Vendor.org_id == org_id))
        for vid, name, owner_id, next_review, report_expires, inherited, report_type in rows:
            controls = tuple(inherited or ())
            fw = frameworks_of(controls)
            owner = emails.get(owner_id, "") if owner_id else ""
            if next_review is not None and "vendor_review" in wanted:
                add(Obligation(f"vendor-review:{vid}", "vendor_review", f"Review vendor {name}", fw, controls,
                               owner_id, owner, _aware(next_review), effort["vendor_review"], "open", vid,
                               f"/compliance/vendors/{vid}"))
            if report_expires is not None and "vendor_report" in wanted:
                label = report_type or "assurance"
                add(Obligation(f"vendor-report:{vid}", "vendor_report", f"Collect renewed {label} report from {name}",
                               fw, controls, owner_id, owner, _aware(report_expires), effort["vendor_report"], "open",
                               vid, f"/compliance/vendors/{vid}"))

    if "bundle" in wanted and config.bundle_cadence_days > 0:
        out.extend(_bundles(org_id, now, config, include_done))

    if "checkpoint" in wanted:
        rows = db.session.execute(select(AuditCheckpoint.id, AuditCheckpoint.name, AuditCheckpoint.framework,
                                         AuditCheckpoint.owner_id, AuditCheckpoint.due_at, AuditCheckpoint.status,
                                         AuditCheckpoint.done_at)
                                  .where(AuditCheckpoint.org_id == org_id))
        for cid, name, framework, owner_id, due_at, status, done_at in rows:
            status = "done" if status == "done" else "open"
            if status == "done" and not include_done:
                continue
            add(Obligation(f"checkpoint:{cid}", "checkpoint", name, (framework,), (), owner_id,
                           emails.get(owner_id, "") if owner_id else "", _aware(due_at), effort["checkpoint"], status,
                           cid, "/compliance/checkpoints", _aware(done_at)))

    if "evidence_request" in wanted:
        q = select(EvidenceRequest.id, EvidenceRequest.title, EvidenceRequest.controls, EvidenceRequest.owner_id,
                   EvidenceRequest.due_at, EvidenceRequest.status, EvidenceRequest.fulfilled_at
                   ).where(EvidenceRequest.org_id == org_id)
        q = q.where(EvidenceRequest.status != "cancelled")
        if not include_done:
            q = q.where(EvidenceRequest.status == "open")
        for rid, title, controls, owner_id, due_at, status, fulfilled_at in db.session.execute(q):
            controls = tuple(controls or ())
            add(Obligation(f"evidence-request:{rid}", "evidence_request", title, frameworks_of(controls), controls,
                           owner_id, emails.get(owner_id, "") if owner_id else "", _aware(due_at),
                           effort["evidence_request"], "open" if status == "open" else "done", rid,
                           f"/compliance/evidence-requests/{rid}", _aware(fulfilled_at)))

    out.sort(key=lambda o: (o.due_at, o.key))
    return out


def _bundles(org_id: int, now: dt.datetime, config: CommitteeConfig, include_done: bool) -> list[Obligation]:
    """The next scheduled evidence bundles: the last evidence bundle + cadence, then every cadence, up to
    ``BUNDLE_HORIZON_DAYS`` ahead (the first is due now when the org never made one). Done = bundles made."""
    cadence = dt.timedelta(days=config.bundle_cadence_days)
    hours = config.effort_hours["bundle"]
    out: list[Obligation] = []
    if include_done:
        for bid, created in db.session.execute(select(EvidenceBundle.id, EvidenceBundle.created_at)
                                               .where(EvidenceBundle.org_id == org_id,
                                                      EvidenceBundle.kind == "evidence")):
            created = _aware(created)
            out.append(Obligation(f"bundle-made:{bid}", "bundle", "Evidence bundle", (), (), None, "", created, hours,
                                  "done", bid, f"/compliance/bundles/{bid}", created))
    last = db.session.scalar(select(func.max(EvidenceBundle.created_at))
                             .where(EvidenceBundle.org_id == org_id, EvidenceBundle.kind == "evidence"))
    due = _aware(last) + cadence if last is not None else now
    end = now + dt.timedelta(days=BUNDLE_HORIZON_DAYS)
    while due <= end:
        out.append(Obligation(f"bundle:{due.date().isoformat()}", "bundle", "Scheduled evidence bundle", (), (), None,
                              "", due, hours, "open", None, "/compliance/bundles"))
        due += cadence
    return out


# --- shared views over obligations ------------------------------------------------------------------------

def open_only(obligations: Iterable[Obligation]) -> list[Obligation]:
    return [o for o in obligations if o.status == "open"]


def in_weeks(obligations: Iterable[Obligation], weeks: Sequence[dt.date]) -> dict[dt.date, list[Obligation]]:
    """Open obligations bucketed by the week they are due in, for the given weeks (others are left out)."""
    buckets: dict[dt.date, list[Obligation]] = {w: [] for w in weeks}
    for o in obligations:
        if o.status != "open":
            continue
        w = week_start(o.due_at)
        if w in buckets:
            buckets[w].append(o)
    return buckets


def density(buckets: dict[dt.date, list[Obligation]]) -> dict[dt.date, tuple[int, float]]:
    """Per week: (open obligations due, owner-hours they need)."""
    return {w: (len(items), round(sum(o.effort_hours for o in items), 1)) for w, items in buckets.items()}


def density_level(count: int, config: CommitteeConfig) -> str:
    if count >= config.density_critical:
        return "critical"
    if count >= config.density_warn:
        return "warn"
    return "ok"


def by_owner(obligations: Iterable[Obligation]) -> dict[str, list[Obligation]]:
    out: dict[str, list[Obligation]] = defaultdict(list)
    for o in obligations:
        out[o.owner or "(unassigned)"].append(o)
    return out


def kind_counts(obligations: Iterable[Obligation]) -> dict[str, int]:
    counts = Counter(o.kind for o in obligations)
    return {k: counts.get(k, 0) for k in KINDS}


def shifted(o: Obligation, weeks: int) -> Obligation:
    """A copy of ``o`` due ``weeks`` later (earlier when negative)."""
    return Obligation(o.key, o.kind, o.title, o.frameworks, o.controls, o.owner_id, o.owner,
                      o.due_at + dt.timedelta(weeks=weeks), o.effort_hours, o.status, o.source_id, o.url,
                      o.completed_at)


def descoped(obligations: Iterable[Obligation], frameworks: Sequence[str]) -> list[Obligation]:
    """Drop obligations that only descoped frameworks need (program-wide ones, with no frameworks, stay)."""
    gone = set(frameworks)
    return [o for o in obligations if not o.frameworks or not set(o.frameworks) <= gone]
