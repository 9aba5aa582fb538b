"""The audit scope register: which services (systems) are inside the audit boundary, under which frameworks,
holding which classes of data; data flows are the service dependency edges.

A service without a ``ScopeMapping`` row is *unmapped*: nobody has decided yet whether it is in scope, which an
assessor treats as a gap (the scope-boundary report lists them). A mapping says ``in_scope`` true or false, the
catalog framework keys it falls under (stored as keys, accepted as slugs or keys: ``pci-dss``, ``PCIDSS``) and its
data classes (``DATA_CLASSES``).

Data-flow classification (edge = "service depends on depends_on", data moves both ways along it):
inside = both ends in scope; crossing = exactly one end in scope (a boundary crossing an assessor will ask
about); outside = neither end in scope (unmapped ends count as not in scope).

Changes are audited on the service (target_type "service", so they count as evidence on that system) with the
scope-definition control tags ``SCOPE_TAGS``; a PUT that changes nothing records nothing.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import select

from zentro.audit.service import Actor, lock_org, record
from zentro.compliance.attestations import Text, _commit, flush_or_conflict, validated
from zentro.compliance.catalog import FRAMEWORK_ALIASES, FRAMEWORKS, FRAMEWORK_SLUGS, load_catalog
from zentro.compliance.models import ScopeMapping
from zentro.extensions import db
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow
from zentro.reliability.models import Service, ServiceDependency

DATA_CLASSES = ("pii", "phi", "cardholder", "credentials", "customer-content", "financial")
DATA_CLASS_LABELS = {"pii": "Personal data (PII)", "phi": "Protected health information (PHI)",
                     "cardholder": "Cardholder data (PAN)", "credentials": "Credentials and secrets",
                     "customer-content": "Customer content", "financial": "Financial records"}
# Scope definition: PCI DSS 12.5 (scope documented), ISO A.5.9 (inventory), A.5.12 (classification),
# SOC 2 CC3.1 (objectives specified so risks can be identified), NIST CSF ID.AM-07 (data inventory).
SCOPE_TAGS = ("PCIDSS:12.5", "ISO27001:A.5.9", "ISO27001:A.5.12", "SOC2:CC3.1", "NISTCSF:ID.AM-07")
STATUSES = ("in_scope", "out_of_scope", "unmapped")
FLOW_CLASSES = ("inside", "crossing", "outside")
MAX_FRAMEWORKS = 20

FrameworkRef = Literal[tuple(sorted(set(FRAMEWORK_ALIASES) | set(FRAMEWORKS)))]  # type: ignore[valid-type]
DataClass = Literal[DATA_CLASSES]  # type: ignore[valid-type]

SCOPE_HELP = {
    "inScope": "inScope: true or false.",
    "in_scope": "inScope: true or false.",
    "frameworks": "Frameworks: catalog framework slugs or keys such as soc2, iso27001, pci-dss, hipaa (at most 20).",
    "dataClasses": "Data classes: any of " + ", ".join(DATA_CLASSES) + ".",
    "data_classes": "Data classes: any of " + ", ".join(DATA_CLASSES) + ".",
    "note": "Note: at most 4000 characters.",
}


class ScopeIn(BaseModel):
    """The whole mapping of one service (PUT replaces it)."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    in_scope: StrictBool = Field(alias="inScope", description="The service is inside the audit boundary.")
    frameworks: list[FrameworkRef] = Field(default_factory=list, max_length=MAX_FRAMEWORKS, description=(
        "Framework slugs or keys (soc2, iso27001, pci-dss, hipaa, nist-csf, cis-v8, nist-800-171, gdpr-art32, "
        "nist-800-53 or their aliases); stored as catalog keys, duplicates merged."))
    data_classes: list[DataClass] = Field(default_factory=list, alias="dataClasses", max_length=len(DATA_CLASSES),
                                          description="Classes of data the service stores or processes: "
                                                      + ", ".join(DATA_CLASSES) + ".")
    note: Text = Field("", description="Why it is (not) in scope, at most 4000 characters.")


def framework_keys(refs) -> list[str]:
    """Slugs/keys → catalog keys in catalog display order, each once."""
    catalog = load_catalog()
    wanted = {catalog.resolve_framework(r).key for r in refs}
    return [k for k in FRAMEWORKS if k in wanted]


def _classes(values) -> list[str]:
    wanted = set(values)
    return [c for c in DATA_CLASSES if c in wanted]


def _service(org_id: int, service_id: int) -> Service:
    svc = db.session.scalar(select(Service).where(Service.org_id == org_id, Service.id == service_id))
    if svc is None:
        raise not_found("Service")
    return svc


def status_of(mapping: ScopeMapping | None) -> str:
    if mapping is None:
        return "unmapped"
    return "in_scope" if mapping.in_scope else "out_of_scope"


def classify_flow(from_status: str, to_status: str) -> str:
    inside = (from_status == "in_scope") + (to_status == "in_scope")
    return ("outside", "crossing", "inside")[inside]


def service_row(svc, mapping) -> dict:
    """One service with its scope decision (``svc`` a Service or a row with the same columns)."""
    frameworks = list(mapping.frameworks or []) if mapping is not None else []
    return {
        "service_id": svc.id, "service": svc.name, "tier": svc.tier, "environment": svc.environment,
        "internet_facing": bool(svc.internet_facing), "owner": svc.owner or "",
        "status": status_of(mapping), "in_scope": (bool(mapping.in_scope) if mapping is not None else None),
        "frameworks": frameworks, "framework_slugs": [FRAMEWORK_SLUGS.get(k, k.lower()) for k in frameworks],
        "data_classes": list(mapping.data_classes or []) if mapping is not None else [],
        "note": mapping.note if mapping is not None else "",
        "updated_at": iso(mapping.updated_at) if mapping is not None else None,
    }


def load(org_id: int) -> tuple[list[dict], list[dict]]:
    """(every service of the org with its mapping, every dependency edge classified), in service order
    (tier, name). Three column queries."""
    services = db.session.execute(
        select(Service.id, Service.name, Service.tier, Service.environment, Service.internet_facing, Service.owner)
        .where(Service.org_id == org_id).order_by(Service.tier, Service.name, Service.id)).all()
    mappings = {m.service_id: m for m in db.session.scalars(select(ScopeMapping).where(ScopeMapping.org_id == org_id))}
    rows = [service_row(s, mappings.get(s.id)) for s in services]
    by_id = {r["service_id"]: r for r in rows}
    edges = db.session.execute(select(ServiceDependency.id, ServiceDependency.service_id,
                                      ServiceDependency.depends_on_id)
                               .where(ServiceDependency.org_id == org_id).order_by(ServiceDependency.id)).all()
    flows = []
    for eid, src, dst in edges:
        a, b = by_id.get(src), by_id.get(dst)
        if a is None or b is None:
            continue
        cls = classify_flow(a["status"], b["status"])
        inside_ends = [r for r in (a, b) if r["status"] == "in_scope"]
        flows.append({
            "id": eid, "from_id": src, "from": a["service"], "from_status": a["status"],
            "to_id": dst, "to": b["service"], "to_status": b["status"], "classification": cls,
            "frameworks": [k for k in FRAMEWORKS if any(k in r["frameworks"] for r in inside_ends)],
            "data_classes": [c for c in DATA_CLASSES if any(c in r["data_classes"] for r in inside_ends)],
            "unmapped_end": a["status"] == "unmapped" or b["status"] == "unmapped",
        })
    return rows, flows


def counts(rows: list[dict], flows: list[dict]) -> dict:
    out = {"services": len(rows), **{s: sum(1 for r in rows if r["status"] == s) for s in STATUSES},
           "flows": len(flows), **{f"flows_{c}": sum(1 for f in flows if f["classification"] == c)
                                   for c in FLOW_CLASSES}}
    return out


def register(org_id: int) -> dict:
    rows, flows = load(org_id)
    return {"generated_at": iso(utcnow()), "counts": counts(rows, flows), "data_classes": list(DATA_CLASSES),
            "services": rows, "flows": flows}


def get(org_id: int, service_id: int) -> dict:
    svc = _service(org_id, service_id)
    mapping = db.session.scalar(select(ScopeMapping).where(ScopeMapping.org_id == org_id,
                                                           ScopeMapping.service_id == svc.id))
    return service_row(svc, mapping)


def put(org_id: int, service_id: int, data: dict | ScopeIn, *, actor: Actor, now: dt.datetime | None = None) -> dict:
    """Set the scope decision of one of the org's services (404 for another org's or a missing service)."""
    now = now or utcnow()
    body = data if isinstance(data, ScopeIn) else validated(ScopeIn, data, SCOPE_HELP)
    svc = _service(org_id, service_id)
    new = {"in_scope": body.in_scope, "frameworks": framework_keys(body.frameworks),
           "data_classes": _classes(body.data_classes), "note": body.note.replace("\r\n", "\n")}
    lock_org(org_id)
    mapping = db.session.scalar(select(ScopeMapping).where(ScopeMapping.org_id == org_id,
                                                           ScopeMapping.service_id == svc.id))
    before = None
    if mapping is not None:
        before = {"in_scope": bool(mapping.in_scope), "frameworks": list(mapping.frameworks or []),
                  "data_classes": list(mapping.data_classes or []), "note": mapping.note or ""}
        if before == new:
            return service_row(svc, mapping)
    else:
        mapping = ScopeMapping(org_id=org_id, service_id=svc.id)
        db.session.add(mapping)
    for key, value in new.items():
        setattr(mapping, key, value)
    mapping.updated_at = now
    flush_or_conflict(ApiError(409, f"The scope of {svc.name} was changed concurrently; try again."))
    record(org_id, "scope.mapped" if before is None else "scope.updated", actor, target_type="service",
           target_id=svc.id, control_tags=SCOPE_TAGS, now=now,
           data={"service": svc.name, "from": before, "to": new})
    _commit(ApiError(409, f"The scope of {svc.name} was changed concurrently; try again."))
    return service_row(svc, mapping)
