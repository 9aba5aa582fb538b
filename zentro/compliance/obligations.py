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

Reads are column tuples, not ORM objects. The derivation (all but the scheduled bundles, which depend on ``now``)
is kept per worker by ``zentro.compliance.derived_cache`` and reused while the org's compliance revision, its
members' e-mails and its committee settings are unchanged.
"""
from __future__ import annotations

import bisect
import datetime as dt
import gc
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Iterable, Sequence

from sqlalchemy import func, select

from zentro.accounts.models import Membership, User
from zentro.compliance import derived_cache
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


def _rows(query):
    """Column tuples through the Core connection (no ORM row loading: a third of the time at 100k rows)."""
    return db.session.connection().execute(query)


@contextmanager
def gc_paused():
    """No cyclic garbage collection inside the block: building ~100k small objects (obligations, report rows)
    otherwise triggers full collections that re-scan every one of them (a quarter of a large report's time).
    Nothing built here forms reference cycles; collection resumes (and catches up) after the block."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_ORDER = attrgetter("due_at", "key")


def load(org_id: int, now: dt.datetime, *, include_done: bool = False, until: dt.datetime | None = None,
         since: dt.datetime | None = None, due_from: dt.datetime | None = None, config: CommitteeConfig | None = None,
         kinds: Sequence[str] | None = None) -> list[Obligation]:
    """Every open obligation of the org (overdue ones included), plus completed ones with ``include_done``;
    sorted by due date, then key.

    ``until`` leaves out open obligations due after it, ``since`` completed ones finished before it and
    ``due_from`` every obligation (open or completed) due before it. They are applied to the org's whole
    derivation, which ``derived_cache`` keeps between requests until a source row changes (the open ones by
    bisecting their due dates), so a report pays for reading the source rows only after a change."""
    with gc_paused():
        return _load(org_id, now, include_done, until, since, due_from, config, kinds)


@dataclass(frozen=True, slots=True)
class _Derived:
    """Every non-bundle obligation of an org, open and done, each list sorted by (due date, key); shared between
    requests through ``derived_cache`` (read-only)."""
    open: list[Obligation]
    open_due: list[dt.datetime]  # open[i].due_at, for bisecting a horizon
    done: list[Obligation]


def _load(org_id: int, now: dt.datetime, include_done: bool, until: dt.datetime | None, since: dt.datetime | None,
          due_from: dt.datetime | None, config: CommitteeConfig | None,
          kinds: Sequence[str] | None) -> list[Obligation]:
    config = config or committee_config(org_id)
    emails = owner_emails(org_id)
    derived = derived_cache.cached("obligations", org_id, lambda: _derive(org_id, config, emails),
                                   check=(config, emails), size=lambda d: len(d.open) + len(d.done))
    wanted = set(kinds or KINDS)
    every_kind = wanted >= _DERIVED_KINDS
    lo = bisect.bisect_left(derived.open_due, due_from) if due_from is not None else 0
    hi = bisect.bisect_right(derived.open_due, until) if until is not None else len(derived.open)
    out = derived.open[lo:hi] if every_kind else [o for o in derived.open[lo:hi] if o.kind in wanted]
    if include_done:
        out.extend(o for o in derived.done
                   if (every_kind or o.kind in wanted)
                   and (since is None or (o.completed_at is not None and o.completed_at >= since))
                   and (due_from is None or o.due_at >= due_from))
    if "bundle" in wanted and config.bundle_cadence_days > 0:
        out.extend(o for o in _bundles(org_id, now, config, include_done, until, since)
                   if due_from is None or o.due_at >= due_from)
    out.sort(key=_ORDER)
    return out


_DERIVED_KINDS = frozenset(KINDS) - {"bundle"}


def _derive(org_id: int, config: CommitteeConfig, emails: dict[int, str]) -> _Derived:
    """Read the source rows once and derive every obligation but the scheduled bundles (those depend on ``now``)."""
    fw_memo: dict[tuple, tuple[str, ...]] = {}

    def fws(controls: tuple[str, ...]) -> tuple[str, ...]:
        got = fw_memo.get(controls)
        if got is None:
            got = fw_memo[controls] = frameworks_of(controls)
        return got

    effort = config.effort_hours
    opened: list[Obligation] = []
    done: list[Obligation] = []
    add, add_done = opened.append, done.append

    rows = _rows(select(Attestation.id, Attestation.control, Attestation.owner_id, Attestation.status,
                        Attestation.due_at, Attestation.valid_until, Attestation.attested_at)
                 .where(Attestation.org_id == org_id))
    hours = effort["attestation"]
    for aid, control, owner_id, status, due_at, valid_until, attested_at in rows:
        fw = fws((control,))
        owner = emails.get(owner_id, "") if owner_id else ""
        if status == "attested":
            if attested_at is not None:
                add_done(Obligation(f"attestation:{aid}", "attestation", f"Attest {control}", fw, (control,),
                                    owner_id, owner, due_at, hours, "done", aid, f"/compliance/attestations/{aid}",
                                    attested_at))
            if valid_until is not None:
                add(Obligation(f"attestation-renewal:{aid}", "attestation", f"Renew attestation of {control}", fw,
                               (control,), owner_id, owner, valid_until, hours, "open", aid,
                               f"/compliance/attestations/{aid}"))
        elif due_at is not None:
            add(Obligation(f"attestation:{aid}", "attestation", f"Attest {control}", fw, (control,), owner_id,
                           owner, due_at, hours, "open", aid, f"/compliance/attestations/{aid}"))

    rows = _rows(select(Vendor.id, Vendor.name, Vendor.owner_id, Vendor.next_review_at,
                        Vendor.report_expires_at, Vendor.inherited_controls, Vendor.report_type)
                 .where(Vendor.org_id == org_id))
    for vid, name, owner_id, next_review, report_expires, inherited, report_type in rows:
        controls = tuple(inherited or ())
        fw = fws(controls)
        owner = emails.get(owner_id, "") if owner_id else ""
        if next_review is not None:
            add(Obligation(f"vendor-review:{vid}", "vendor_review", f"Review vendor {name}", fw, controls,
                           owner_id, owner, next_review, effort["vendor_review"], "open", vid,
                           f"/compliance/vendors/{vid}"))
        if report_expires is not None:
            label = report_type or "assurance"
            add(Obligation(f"vendor-report:{vid}", "vendor_report", f"Collect renewed {label} report from {name}",
                           fw, controls, owner_id, owner, report_expires, effort["vendor_report"], "open",
                           vid, f"/compliance/vendors/{vid}"))

    rows = _rows(select(AuditCheckpoint.id, AuditCheckpoint.name, AuditCheckpoint.framework,
                        AuditCheckpoint.owner_id, AuditCheckpoint.due_at, AuditCheckpoint.status,
                        AuditCheckpoint.done_at)
                 .where(AuditCheckpoint.org_id == org_id))
    for cid, name, framework, owner_id, due_at, status, done_at in rows:
        (add_done if status == "done" else add)(Obligation(
            f"checkpoint:{cid}", "checkpoint", name, (framework,), (), owner_id,
            emails.get(owner_id, "") if owner_id else "", due_at, effort["checkpoint"],
            "done" if status == "done" else "open", cid, "/compliance/checkpoints", done_at))

    q = select(EvidenceRequest.id, EvidenceRequest.title, EvidenceRequest.controls, EvidenceRequest.owner_id,
               EvidenceRequest.due_at, EvidenceRequest.status, EvidenceRequest.fulfilled_at
               ).where(EvidenceRequest.org_id == org_id, EvidenceRequest.status.in_(("open", "fulfilled")))
    for rid, title, controls, owner_id, due_at, status, fulfilled_at in _rows(q):
        controls = tuple(controls or ())
        (add if status == "open" else add_done)(Obligation(
            f"evidence-request:{rid}", "evidence_request", title, fws(controls), controls,
            owner_id, emails.get(owner_id, "") if owner_id else "", due_at,
            effort["evidence_request"], "open" if status == "open" else "done", rid,
            f"/compliance/evidence-requests/{rid}", fulfilled_at))

    opened.sort(key=_ORDER)
    done.sort(key=_ORDER)
    return _Derived(opened, [o.due_at for o in opened], done)


def _bundles(org_id: int, now: dt.datetime, config: CommitteeConfig, include_done: bool,
             until: dt.datetime | None = None, since: dt.datetime | None = None) -> list[Obligation]:
    """The next scheduled evidence bundles: the last evidence bundle + cadence, then every cadence, up to
    ``BUNDLE_HORIZON_DAYS`` ahead (the first is due now when the org never made one). Done = bundles made."""
    cadence = dt.timedelta(days=config.bundle_cadence_days)
    hours = config.effort_hours["bundle"]
    out: list[Obligation] = []
    if include_done:
        q = select(EvidenceBundle.id, EvidenceBundle.created_at).where(EvidenceBundle.org_id == org_id,
                                                                       EvidenceBundle.kind == "evidence")
        if since is not None:
            q = q.where(EvidenceBundle.created_at >= since)
        for bid, created in db.session.execute(q):
            out.append(Obligation(f"bundle-made:{bid}", "bundle", "Evidence bundle", (), (), None, "", created, hours,
                                  "done", bid, f"/compliance/bundles/{bid}", created))
    last = db.session.scalar(select(func.max(EvidenceBundle.created_at))
                             .where(EvidenceBundle.org_id == org_id, EvidenceBundle.kind == "evidence"))
    due = _aware(last) + cadence if last is not None else now
    end = min(now + dt.timedelta(days=BUNDLE_HORIZON_DAYS), until or now + dt.timedelta(days=BUNDLE_HORIZON_DAYS))
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
