"""Demo audit scope: the reliability demo's services mapped into and out of the boundary (through the scope service,
so every decision has its audit event). The payment path is in scope for SOC 2, ISO 27001 and PCI DSS; the
search stack and the partner portal are out; the notifications worker is left unmapped, so the scope-boundary
report shows a gap and a boundary crossing from payments-api. Idempotent: an org with any scope mapping is left
alone; services the org does not have are skipped."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.audit.service import Actor
from zentro.compliance import scope
from zentro.compliance.models import ScopeMapping
from zentro.extensions import db
from zentro.platform.types import utcnow
from zentro.reliability.models import Service

DEMO = Actor("system", "demo", "demo seed")
CORE = ["soc2", "iso27001"]
CARD = ["soc2", "iso27001", "pci-dss"]
# service name, in scope, frameworks, data classes, note (notifications-worker is deliberately left unmapped)
MAPPINGS = [
    ("web-frontend", True, CORE, ["pii", "customer-content"], "Customer sign-up and account pages."),
    ("api-gateway", True, CARD, ["pii", "credentials", "cardholder"], "Every customer request, card data in transit."),
    ("auth-service", True, CORE, ["pii", "credentials"], "Sessions, OAuth clients and password hashes."),
    ("payments-api", True, CARD, ["cardholder", "pii", "financial"], "Tokenises PAN; refunds. CDE."),
    ("postgres-primary", True, CARD, ["pii", "cardholder", "customer-content", "financial"],
     "Primary store of customer and payment records (PAN tokens only)."),
    ("partner-portal", False, [], [], "Partners see catalogue and their own order counts only; no customer data."),
    ("search-service", False, [], [], "Public catalogue data only."),
    ("search-index", False, [], [], "Public catalogue data only."),
]


def seed_scope(org_id: int, now: dt.datetime | None = None) -> list[str]:
    now = now or utcnow()
    if db.session.scalar(select(ScopeMapping.id).where(ScopeMapping.org_id == org_id).limit(1)):
        return ["Audit scope already seeded (nothing duplicated)."]
    by_name = {name: sid for sid, name in db.session.execute(select(Service.id, Service.name)
                                                             .where(Service.org_id == org_id))}
    done = []
    for i, (name, in_scope, frameworks, classes, note) in enumerate(MAPPINGS):
        if name not in by_name:
            continue
        scope.put(org_id, by_name[name], {"in_scope": in_scope, "frameworks": frameworks, "data_classes": classes,
                                          "note": note}, actor=DEMO, now=now - dt.timedelta(days=20 - i))
        done.append(f"scope of {name}: {'in' if in_scope else 'out of'} scope")
    return done
