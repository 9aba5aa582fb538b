"""Cross-staffing committee escalation (preview): staffing SLA breaches still open after the last staffing
completion rollup e-mail went out. The rollup reported them to the committee; what is still open now, and was
already past its SLA when the rollup was sent, goes to the committee's escalation list.

The rollup moment is the org's last delivery-log row (``notify.models.Delivery``) of the
``staffing-completion-rollup`` digest on the e-mail channel with status ``sent``, at or before now (its
``finished_at``, else its ``created_at``). Before any rollup e-mail was sent nothing is escalated: there was no
report to act on."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from zentro.compliance import obligations as obl
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Report, Section, columns
from zentro.compliance.reports import staffing_sla_breach_digest as sb
from zentro.extensions import db

ROLLUP = "staffing-completion-rollup"


def last_rollup_at(org_id: int, now: dt.datetime) -> dt.datetime | None:
    """When the org's last staffing completion rollup e-mail was sent (at or before ``now``), or None."""
    from zentro.notify.models import Delivery

    row = db.session.execute(
        select(Delivery.finished_at, Delivery.created_at)
        .where(Delivery.org_id == org_id, Delivery.source == ROLLUP, Delivery.channel == "email",
               Delivery.status == "sent", Delivery.created_at <= now)
        .order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(1)).first()
    if row is None:
        return None
    moment = row.finished_at or row.created_at
    return min(moment, now)


def escalations(rows: list[dict], rollup_at: dt.datetime | None) -> list[dict]:
    """Breaches (open now, past SLA) that existed and were already past their SLA when the rollup was sent."""
    if rollup_at is None:
        return []
    return [{**r, "rollup_at": rollup_at, "days_past_sla_at_rollup": (rollup_at - r["sla_due"]).days}
            for r in sb.breaches(rows) if r["sla_due"] < rollup_at and r["created_at"] <= rollup_at]


@report("cross-staffing-committee-escalation", title="Cross-staffing committee escalation", category="Digests",
        query=ReportQuery,
        summary="Staffing SLA breaches still open after the last staffing completion rollup e-mail: the actions "
                "that were already past their completion SLA when the rollup went out and are still open now "
                "(JSON or CSV). Delivered weekly by e-mail and Slack to the committee's escalation list and the "
                "org's owners and admins; nothing is sent when there is none (or no rollup was ever sent).",
        inputs="staffing actions, committee settings (completion SLA, escalation e-mails), the delivery log (last "
               "staffing-completion-rollup e-mail sent)",
        window="open staffing actions now, against the last rollup e-mail sent at or before now",
        definitions={
            "rollup_sent": "True when a staffing-completion-rollup e-mail was ever sent (delivery log: channel "
                           "email, status sent, at or before now).",
            "last_rollup_at": "When the last one was sent (its finished_at, else created_at); empty when never.",
            "basis": "What the escalation is measured against, in words (says so when no rollup was ever sent).",
            "escalations": "Open staffing actions (proposed or tracked) past their completion SLA now whose sla_due "
                           "was already earlier than last_rollup_at and that existed then (created_at at or before "
                           "it): breaches the rollup reported that are still open. None before any rollup e-mail.",
            "open_breaches": "All open actions past their SLA now (staffing-sla-breach-digest breaches), reported "
                             "by the last rollup or not.",
            "owners": "Distinct owners (e-mails) of the escalated actions.",
            "unassigned": "Escalated actions without an owner.",
            "hours": "Owner-hours of the escalated actions.",
            "max_days_past_sla": "The largest days_past_sla among them (0 when none).",
            "escalation_emails": "Addresses on the committee's escalation list (committee settings).",
            "completion_sla_days": "Committee settings: days after the start of an action's week within which it "
                                   "should be completed.",
            "sla_due": "The week's Monday 00:00 UTC + completion_sla_days (committee.sla_due).",
            "days_past_sla": "Whole days now is past sla_due.",
            "days_past_sla_at_rollup": "Whole days last_rollup_at was past sla_due.",
            "owner rows": "Per owner ((unassigned) last): escalated actions, their hours, the largest "
                          "days_past_sla and the oldest week.",
        })
def build(ctx: ReportContext) -> Report:
    sla_days, rows = sb.tracker(ctx.org_id, ctx.now)
    rollup_at = last_rollup_at(ctx.org_id, ctx.now)
    found = escalations(rows, rollup_at)
    emails = list(obl.committee_config(ctx.org_id).escalation_emails)
    if rollup_at is None:
        basis = "No staffing completion rollup e-mail has been sent yet: nothing is escalated."
    else:
        basis = (f"Breaches already past their SLA when the staffing completion rollup e-mail was sent at "
                 f"{rollup_at.strftime('%Y-%m-%d %H:%M')} UTC and still open now.")
    summary = {
        "rollup_sent": rollup_at is not None, "last_rollup_at": rollup_at, "basis": basis,
        "escalations": len(found), "open_breaches": len(sb.breaches(rows)),
        "owners": len({r["owner"] for r in found if r["owner"]}),
        "unassigned": sum(1 for r in found if not r["owner"]),
        "hours": round(sum(r["hours"] for r in found), 2),
        "max_days_past_sla": max((r["days_past_sla"] for r in found), default=0),
        "escalation_emails": len(emails), "completion_sla_days": sla_days,
    }
    return Report(
        "cross-staffing-committee-escalation", "Cross-staffing committee escalation",
        {}, summary,
        [Section("escalations", "Breaches still open after the last rollup", columns(
            *sb.BREACH_COLUMNS, ("days_past_sla_at_rollup", "Days past SLA at the rollup")), found),
         Section("owners", "Escalations by owner", columns(
             "owner", "breaches", ("hours", "Hours"), ("max_days_past_sla", "Most days past SLA"), "oldest_week"),
             sb.by_owner(found, sb.breach_owner_figures)),
         Section("escalation_emails", "Committee escalation list", columns("email"),
                 [{"email": e} for e in emails])],
        ctx.now, notes=[] if rollup_at is not None else [basis])
