"""GRC control ownership matrix: RACI per control (Responsible, Accountable, Consulted, Informed), linked to the
frameworks in audit scope and to each control's attestation state."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from zentro.compliance import engine
from zentro.compliance import obligations as obl
from zentro.compliance.catalog import FRAMEWORKS, load_catalog
from zentro.compliance.models import VENDOR_TIERS, ControlException, GapRemediation, Vendor
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._controls import FrameworkFilter, accountable_owner, scope_frameworks, slug
from zentro.extensions import db

ATTESTATION_STATES = ("attested", "assigned", "overdue", "expired", "rejected", "none")


class OwnershipQuery(ReportQuery, FrameworkFilter):
    pass


def _aware(moment):
    return obl._aware(moment)


def _newest(item) -> tuple:
    return _aware(item.created_at), item.id


@report("control-ownership", title="Control ownership (RACI)", category="Scope & controls", query=OwnershipQuery,
        summary="RACI per control — responsible attestation owner, accountable owner or vendor owner, consulted "
                "exception approvers and remediation owners, informed committee recipients — linked to the audit "
                "scope and attestation state; controls without a responsible owner flagged (JSON or CSV).",
        inputs="attestations, vendors (inherited controls, owner, report expiry), open control exceptions, gap "
               "remediations, committee settings (escalation emails), memberships, scope mappings",
        window="as of now",
        definitions={
            "frameworks": "Frameworks whose controls are listed (slugs): the selection, else those in audit scope.",
            "attestation_states": "Listed controls per attestation state (see attestation_state).",
            "basis": "Which controls are listed: the `framework` selection if given; otherwise every control of the "
                     "frameworks in audit scope (mapped to an in-scope service) plus any other control that has an "
                     "attestation, open exception, gap remediation or vendor inheritance.",
            "controls": "Controls listed.",
            "responsible": "R: the owner of the control's latest attestation (newest created). Controls with no "
                           "attestation, or one whose owner left, have no R and are flagged.",
            "with_responsible": "Listed controls with an R.",
            "without_responsible": "Listed controls with no R (flagged: no one attests that the control operates).",
            "accountable": "A: when the control is inherited from a vendor whose assurance report is unexpired and "
                           "who has an owner, that vendor owner (most critical tier first, then name); otherwise the "
                           "org's first owner by membership date (first admin if there is no owner).",
            "accountable_vendor": "Listed controls whose A is a vendor owner.",
            "consulted": "C: approvers of open, unexpired exceptions to the control and the owner of its open or "
                         "in-progress gap remediation.",
            "with_consulted": "Listed controls with at least one C.",
            "informed": "I: the committee escalation emails (committee settings), the same for every control.",
            "informed_recipients": "Number of escalation emails.",
            "attestation_state": "Derived now from the latest attestation: attested (valid), expired, overdue "
                                 "(due passed, not attested), assigned, rejected, or none.",
            "scope_systems": "In-scope services mapped to the control's framework.",
            "people": "Per person: controls where they are R, A or C (the owner's load).",
        })
def build(ctx: ReportContext) -> Report:
    q: OwnershipQuery = ctx.query  # type: ignore[assignment]
    org, now = ctx.org_id, ctx.now
    catalog = load_catalog()
    emails = obl.owner_emails(org)
    in_scope = scope_frameworks(org)
    requested = [k for k in FRAMEWORKS if k in q.frameworks]
    base = requested or list(in_scope)

    # the engine's registers (kept by the derived-data cache): every attestation, grouped by control
    latest = {control: max(items, key=_newest)
              for control, items in engine.load_registers(org).attestations.items() if items}
    consulted: dict[str, list[str]] = defaultdict(list)
    for control, approver_id in db.session.execute(select(ControlException.control, ControlException.approver_id).where(
            ControlException.org_id == org, ControlException.status == "open", ControlException.expires_at > now)):
        if approver_id in emails:
            consulted[control].append(emails[approver_id])
    for control, owner_id in db.session.execute(select(GapRemediation.control, GapRemediation.owner_id).where(
            GapRemediation.org_id == org, GapRemediation.status.in_(("open", "in_progress")))):
        if owner_id in emails:
            consulted[control].append(emails[owner_id])
    tier_rank = {t: i for i, t in enumerate(VENDOR_TIERS)}
    vendors = sorted(db.session.execute(select(Vendor.name, Vendor.risk_tier, Vendor.owner_id, Vendor.inherited_controls,
                                               Vendor.report_expires_at).where(Vendor.org_id == org)).all(),
                     key=lambda v: (tier_rank.get(v.risk_tier, 9), v.name))
    inherited: dict[str, list] = defaultdict(list)
    for v in vendors:
        for tag in v.inherited_controls or []:
            inherited[tag].append(v)

    tags = [t for k in base for t in catalog.tags_for(k)]
    if not requested:
        listed = set(tags)
        extra = {t for t in (*latest, *consulted, *inherited) if catalog.has(t) and t not in listed}
        order = {t: i for i, t in enumerate(catalog.all_tags())}
        tags += sorted(extra, key=order.__getitem__)
    informed = list(obl.committee_config(org).escalation_emails)
    org_owner = accountable_owner(org)

    rows = []
    for tag in tags:
        c = catalog.control(tag)
        att = latest.get(tag)
        if att is None:
            state, responsible = "none", ""
        else:
            responsible = emails.get(att.owner_id, "") if att.owner_id else ""
            valid_until = _aware(att.valid_until) if att.valid_until else None
            if att.status == "attested":
                state = "attested" if valid_until is not None and valid_until > now else "expired"
            elif _aware(att.due_at) <= now:
                state = "overdue"
            else:
                state = att.status
        providing = [v for v in inherited.get(tag, ()) if v.report_expires_at is not None
                     and _aware(v.report_expires_at) > now and v.owner_id in emails]
        if providing:
            accountable, source = emails[providing[0].owner_id], f"vendor: {providing[0].name}"
        else:
            accountable, source = org_owner, "org owner" if org_owner else ""
        rows.append({
            "control": tag, "framework": c.framework, "title": c.title, "in_scope": c.framework in in_scope,
            "scope_systems": in_scope.get(c.framework, 0), "responsible": responsible,
            "accountable": accountable, "accountable_source": source,
            "consulted": list(dict.fromkeys(consulted.get(tag, []))), "informed": informed,
            "attestation_state": state, "no_responsible": not responsible})

    people: dict[str, dict[str, int]] = defaultdict(lambda: {"responsible": 0, "accountable": 0, "consulted": 0})
    for r in rows:
        if r["responsible"]:
            people[r["responsible"]]["responsible"] += 1
        if r["accountable"]:
            people[r["accountable"]]["accountable"] += 1
        for e in r["consulted"]:
            people[e]["consulted"] += 1
    people_rows = [{"person": p, **counts, "total": sum(counts.values())} for p, counts in people.items()]
    people_rows.sort(key=lambda r: (-r["responsible"], -r["total"], r["person"]))
    states = {s: sum(1 for r in rows if r["attestation_state"] == s) for s in ATTESTATION_STATES}
    fw_keys = [k for k in FRAMEWORKS if any(r["framework"] == k for r in rows)]
    chart = Chart("owned", "Controls with and without a responsible owner", "bar", [slug(k) for k in fw_keys],
                  [Series("With R", [sum(1 for r in rows if r["framework"] == k and r["responsible"]) for k in fw_keys]),
                   Series("No R", [sum(1 for r in rows if r["framework"] == k and not r["responsible"])
                                   for k in fw_keys])], unit="controls", stacked=True,
                  description="Per framework: listed controls with an attestation owner (R) and without one.")
    return Report(
        "control-ownership", "Control ownership (RACI)",
        {"framework": [slug(k) for k in requested] if requested else "audit scope"},
        {"basis": "requested frameworks" if requested else ("audit scope" if in_scope else
                                                            "controls with ownership data (no scope mapping yet)"),
         "frameworks": [slug(k) for k in fw_keys], "controls": len(rows),
         "with_responsible": sum(1 for r in rows if r["responsible"]),
         "without_responsible": sum(1 for r in rows if not r["responsible"]),
         "accountable_vendor": sum(1 for r in rows if r["accountable_source"].startswith("vendor")),
         "with_consulted": sum(1 for r in rows if r["consulted"]), "informed_recipients": len(informed),
         "attestation_states": states},
        [Section("matrix", "RACI matrix", columns(
            "control", "framework", "title", ("in_scope", "Framework in scope"), ("scope_systems", "Scope systems"),
            ("responsible", "Responsible (R)"), ("accountable", "Accountable (A)"),
            ("accountable_source", "A from"), ("consulted", "Consulted (C)"), ("informed", "Informed (I)"),
            ("attestation_state", "Attestation"), ("no_responsible", "No R")), rows),
         Section("people", "Ownership load per person", columns("person", ("responsible", "R"), ("accountable", "A"),
                                                                 ("consulted", "C"), "total"), people_rows)],
        now, charts=[chart] if fw_keys else [])
