"""Hand-built compliance datasets for the engine, API and page tests: tagged audit events recorded through
zentro.audit.service.record with an injected time, and attestation/exception/policy/vendor rows written
straight to their tables (their services belong to another module and are tested there)."""
from __future__ import annotations

import datetime as dt

from zentro.audit.service import SYSTEM, record
from zentro.compliance.models import Attestation, ControlException, EvidenceBundle, Policy, Vendor
from zentro.extensions import db

NOW = dt.datetime(2025, 6, 30, 12, 0, tzinfo=dt.timezone.utc)


def days_ago(n: float, now: dt.datetime = NOW) -> dt.datetime:
    return now - dt.timedelta(days=n)


def evidence(org_id: int, *tags: str, at: dt.datetime = NOW, action: str = "test.evidence", n: int = 1,
             target_type: str = "test", target_id: str = "") -> list[int]:
    """Record ``n`` audit events at ``at``, each tagged with every tag given; returns their ids."""
    ids = []
    for _ in range(n):
        ids.append(record(org_id, action, SYSTEM, target_type=target_type, target_id=target_id, control_tags=tags,
                          now=at).id)
    db.session.flush()
    return ids


def policy(org_id: int, name: str, tags: list[str], *, status: str = "accepted", accepted_at: dt.datetime | None = NOW,
           updated_at: dt.datetime = NOW) -> Policy:
    row = Policy(org_id=org_id, name=name, status=status, control_tags=" ".join(tags), accepted_at=accepted_at,
                 created_at=updated_at, updated_at=updated_at)
    db.session.add(row)
    db.session.flush()
    return row


def vendor(org_id: int, name: str, inherited: list[str], *, expires: dt.datetime | None, tier: str = "high",
           category: str = "cloud-infrastructure", handles_phi: bool = False, baa: bool = False,
           handles_personal_data: bool = False, dpa: bool = False, created_at: dt.datetime | None = None,
           next_review_at: dt.datetime | None = None) -> Vendor:
    row = Vendor(org_id=org_id, name=name, category=category, risk_tier=tier, report_type="soc2-type-ii",
                 report_expires_at=expires, inherited_controls=inherited, handles_phi=handles_phi, baa=baa,
                 handles_personal_data=handles_personal_data, dpa=dpa, next_review_at=next_review_at,
                 created_at=created_at or days_ago(400))
    db.session.add(row)
    db.session.flush()
    return row


def attestation(org_id: int, control: str, *, due_at: dt.datetime, status: str = "assigned",
                attested_at: dt.datetime | None = None, valid_until: dt.datetime | None = None,
                created_at: dt.datetime | None = None, owner_id: int | None = None) -> Attestation:
    row = Attestation(org_id=org_id, control=control, status=status, due_at=due_at, attested_at=attested_at,
                      valid_until=valid_until, owner_id=owner_id, created_at=created_at or days_ago(200),
                      updated_at=created_at or days_ago(200))
    db.session.add(row)
    db.session.flush()
    return row


def exception(org_id: int, control: str, *, reason: str = "Legacy VPN without MFA",
              compensating: str = "IP allow-list and weekly log review", expires_at: dt.datetime | None = None,
              opened_at: dt.datetime | None = None, status: str = "open",
              closed_at: dt.datetime | None = None) -> ControlException:
    row = ControlException(org_id=org_id, control=control, reason=reason, compensating_control=compensating,
                           status=status, opened_at=opened_at or days_ago(10), expires_at=expires_at or days_ago(-60),
                           closed_at=closed_at)
    db.session.add(row)
    db.session.flush()
    return row


def bundle(org_id: int, seq: int, *, created_at: dt.datetime = NOW, kind: str = "evidence") -> EvidenceBundle:
    row = EvidenceBundle(org_id=org_id, seq=seq, kind=kind, window_start=created_at - dt.timedelta(days=30),
                         window_end=created_at, created_at=created_at, created_by="test", file_count=4,
                         size_bytes=2048, audit_event_count=10)
    db.session.add(row)
    db.session.flush()
    return row




def seed_engine_demo(org_id: int, now: dt.datetime) -> None:
    """A believable 12-week history for screenshots: evidence that grows week by week across the common
    SOC 2 / ISO controls (so readiness trends upward), a few stale controls, an exception, bundles."""
    import random

    from zentro.compliance.catalog import load_catalog

    rng = random.Random(42)
    cat = load_catalog()
    steady = ["SOC2:CC6.1", "SOC2:CC6.2", "SOC2:CC6.3", "SOC2:CC7.2", "SOC2:CC7.3", "SOC2:CC7.4", "SOC2:CC8.1",
              "ISO27001:A.8.16", "ISO27001:A.5.24", "ISO27001:A.5.25", "ISO27001:A.8.15", "ISO27001:A.8.32",
              "PCIDSS:10.2", "PCIDSS:12.10", "NISTCSF:DE.CM-01", "CISV8:8.2", "NIST80053:IR-4", "NIST80053:AU-6",
              "HIPAA:164.308(a)(6)(ii)", "NIST800171:3.6.1", "GDPR:33(5)"]
    steady = [t for t in steady if cat.has(t)]
    extra = [t for t in cat.tags_for("SOC2") + cat.tags_for("ISO27001") if t not in steady]
    rng.shuffle(extra)
    for day in range(84, -1, -1):
        at = now - dt.timedelta(days=day, hours=rng.randint(0, 20))
        # more controls join as the weeks go by
        pool = steady + extra[: int(len(extra) * (84 - day) / 120)]
        for tag in rng.sample(pool, k=min(len(pool), 3 + (84 - day) // 12)):
            neighbours = [t for t, s in cat.neighbours(tag) if s == "full"][:1]
            evidence(org_id, tag, *neighbours, at=at, action=rng.choice(
                ["incident.status_changed", "access.reviewed", "change.approved", "alert.triaged", "backup.verified"]))
    evidence(org_id, "SOC2:CC9.1", "ISO27001:A.5.29", at=now - dt.timedelta(days=400), action="bcp.tested")
    exception(org_id, "SOC2:CC6.6", reason="Legacy VPN concentrator without MFA",
              compensating="Source IP allow-list and weekly access log review",
              opened_at=now - dt.timedelta(days=9), expires_at=now + dt.timedelta(days=80))
    for seq, days in enumerate((60, 30, 2), 1):
        bundle(org_id, seq, created_at=now - dt.timedelta(days=days), kind="workbook" if seq == 3 else "evidence")
