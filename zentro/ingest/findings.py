"""Queries over an org's vulnerability findings (lists, counts, one finding). No Flask globals."""
from __future__ import annotations

from sqlalchemy import Select, case, func, or_, select

from zentro.extensions import db
from zentro.ingest.models import Finding
from zentro.ingest.scanners import FINDING_SEVERITIES
from zentro.platform.errors import not_found
from zentro.platform.types import iso


def findings_query(org_id: int, *, severity: str | None = None, status: str | None = None, source: str | None = None,
                   service_id: int | None = None, q: str | None = None) -> Select:
    query = select(Finding).where(Finding.org_id == org_id)
    if severity:
        query = query.where(Finding.severity == severity)
    if status:
        query = query.where(Finding.status == status)
    if source:
        query = query.where(Finding.source == source)
    if service_id is not None:
        query = query.where(Finding.service_id == service_id)
    if q:
        query = query.where(or_(*[col.icontains(q, autoescape=True)
                                  for col in (Finding.title, Finding.asset, Finding.cve, Finding.finding_key)]))
    return query


def get_finding(org_id: int, finding_id: int) -> Finding:
    f = db.session.scalar(select(Finding).where(Finding.org_id == org_id, Finding.id == finding_id))
    if f is None:
        raise not_found("Finding")
    return f


def _counts(org_id: int, *group: object) -> list:
    is_open = case((Finding.status == "open", 1), else_=0)
    return db.session.execute(
        select(*group, func.count(), func.coalesce(func.sum(is_open), 0))
        .where(Finding.org_id == org_id).group_by(*group)).all()


def summary(org_id: int) -> dict:
    """Counts by severity: open findings and all findings (one grouped query)."""
    by = {s: {"open": 0, "total": 0} for s in FINDING_SEVERITIES}
    for severity, total, open_ in _counts(org_id, Finding.severity):
        by.setdefault(severity, {"open": 0, "total": 0}).update(open=int(open_), total=int(total))
    return {"by_severity": by, "open": sum(v["open"] for v in by.values()),
            "total": sum(v["total"] for v in by.values())}


def by_source(org_id: int) -> list[dict]:
    """Per scanner: open and total findings, and open findings by severity."""
    out: dict[str, dict] = {}
    for source, severity, total, open_ in _counts(org_id, Finding.source, Finding.severity):
        entry = out.setdefault(source, {"source": source, "open": 0, "total": 0,
                                        "open_by_severity": {s: 0 for s in FINDING_SEVERITIES}})
        entry["open"] += int(open_)
        entry["total"] += int(total)
        entry["open_by_severity"][severity] = entry["open_by_severity"].get(severity, 0) + int(open_)
    return [out[k] for k in sorted(out)]


def finding_json(f: Finding) -> dict:
    return {"id": f.id, "source": f.source, "finding_key": f.finding_key, "title": f.title, "description": f.description,
            "severity": f.severity, "status": f.status, "asset": f.asset, "cve": f.cve, "cvss": f.cvss,
            "service_id": f.service_id, "incident_id": f.incident_id, "first_seen_at": iso(f.first_seen_at),
            "last_seen_at": iso(f.last_seen_at), "fixed_at": iso(f.fixed_at)}
