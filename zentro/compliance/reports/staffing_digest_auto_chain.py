"""Staffing digest auto-chain (preview): the three staffing digests the chain delivers in one run, in order —
the completion rollup, the SLA breach digest, then the cross-staffing committee escalation — each built as its
own preview (with the org's saved options for it, as the chain's delivery does), with the key figures of each and
what each step would send now: to whom and over which channels, or why nothing (empty, or already delivered in
its period: every part is idempotent on its own)."""
from __future__ import annotations

from sqlalchemy import select

from zentro.compliance import report_registry as registry
from zentro.compliance.renderers import display
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Report, Section, columns
from zentro.extensions import db

SLUG = "staffing-digest-auto-chain"
SECTIONS = {"staffing-completion-rollup": ("rollup", "Step 1: staffing completion rollup"),
            "staffing-sla-breach-digest": ("breaches", "Step 2: staffing SLA breach digest"),
            "cross-staffing-committee-escalation": ("escalation", "Step 3: cross-staffing committee escalation")}
HEADLINES = {"staffing-completion-rollup": ("completed_in_period", "on_time_rate_pct", "open", "past_sla"),
             "staffing-sla-breach-digest": ("breaches", "owners", "max_days_past_sla"),
             "cross-staffing-committee-escalation": ("escalations", "open_breaches", "last_rollup_at")}


def _claimed(org_id: int, slug: str, key: str) -> bool:
    from zentro.notify.models import DigestRun

    return db.session.scalar(select(DigestRun.id).where(
        DigestRun.org_id == org_id, DigestRun.digest == slug, DigestRun.claim_key == key).limit(1)) is not None


def compose(ctx: ReportContext) -> list[tuple[object, Report, str, str, list[str], list[str]]]:
    """Per step in chain order: (digest, its preview report, its period key, what it would do, channels,
    recipients)."""
    from zentro.compliance import digests
    from zentro.notify import schedules

    chain = digests.get(SLUG)
    chain_done = _claimed(ctx.org_id, SLUG, digests.period_key(chain.period, ctx.now))
    out = []
    for slug in chain.chain:
        d = digests.get(slug)
        schedule = schedules.schedule_row(ctx.org_id, slug)
        params = dict(schedule.options or {}) if schedule else {}
        part = registry.build(slug, ctx.org_id, ctx.now, **params)
        key = digests.period_key(d.period, ctx.now)
        channels = d.channels_for(schedule)
        recipients = digests.recipients_of(d, ctx.org_id, part) if "email" in channels else []
        if chain_done:
            would = "already ran: the chain was delivered this period"
        elif _claimed(ctx.org_id, slug, key):
            would = f"already delivered in period {key}: sends nothing"
        elif d.is_empty is not None and d.is_empty(part):
            would = "nothing to send"
        else:
            would = "sends"
        out.append((d, part, key, would, channels, recipients))
    return out


def _figures(part: Report) -> list[dict]:
    return [{"figure": k, "value": v} for k, v in part.summary.items() if not isinstance(v, (dict, list, tuple))]


@report(SLUG, title="Staffing digest auto-chain", category="Digests", query=ReportQuery,
        summary="The staffing completion rollup, the SLA breach digest and the cross-staffing committee escalation "
                "in one preview, in the order the weekly auto-chain delivers them: each part's key figures and "
                "what each step would send now (JSON or CSV).",
        inputs="the staffing-completion-rollup, staffing-sla-breach-digest and cross-staffing-committee-escalation "
               "previews (each with its own inputs and the org's saved options), the digest schedules and runs",
        window="each part's own window, at the same moment; each step's idempotency period (week, day, week)",
        definitions={
            "period": "The chain's idempotency period (ISO week, UTC): one delivery per org and week.",
            "steps": "Digests the chain delivers, in order.",
            "steps_sending": "Steps that would send now: not empty and not already delivered in their period.",
            "rollup_completed_in_period": "staffing-completion-rollup completed_in_period.",
            "rollup_on_time_rate_pct": "staffing-completion-rollup on_time_rate_pct.",
            "rollup_completion_rate_pct": "staffing-completion-rollup completion_rate_pct.",
            "sla_breaches": "staffing-sla-breach-digest breaches.",
            "escalations": "cross-staffing-committee-escalation escalations (measured against the last rollup "
                           "e-mail sent before now; in a run, the rollup step's own e-mail, if sent, comes first).",
            "last_rollup_at": "cross-staffing-committee-escalation last_rollup_at.",
            "step": "Position in the chain (1-3).",
            "would_send": "sends; nothing to send (the part is empty); already delivered in its period; or already "
                          "ran (the chain was delivered this period).",
            "channels": "The org's channel choice for that digest, else the digest's channels.",
            "recipients": "E-mail recipients of that step (its own recipients rule), when e-mail is a channel.",
            "headline": "The step's key figures.",
            "part sections": "Every scalar summary figure of each part, as that part defines it (see its own "
                             "definitions).",
        })
def build(ctx: ReportContext) -> Report:
    from zentro.compliance import digests

    steps = compose(ctx)
    parts = {d.slug: part for d, part, *_ in steps}
    step_rows = []
    for n, (d, part, key, would, channels, recipients) in enumerate(steps, start=1):
        heads = HEADLINES.get(d.slug, ())
        step_rows.append({
            "step": n, "digest": d.slug, "title": d.title, "period": key, "would_send": would,
            "channels": channels, "recipients": recipients,
            "headline": "; ".join(f"{h}: {display(part.summary.get(h))}" for h in heads)})
    rollup = parts.get("staffing-completion-rollup")
    breach = parts.get("staffing-sla-breach-digest")
    escal = parts.get("cross-staffing-committee-escalation")
    summary = {
        "period": digests.period_key(digests.get(SLUG).period, ctx.now), "steps": len(step_rows),
        "steps_sending": sum(1 for r in step_rows if r["would_send"] == "sends"),
        "rollup_completed_in_period": rollup.summary["completed_in_period"] if rollup else None,
        "rollup_on_time_rate_pct": rollup.summary["on_time_rate_pct"] if rollup else None,
        "rollup_completion_rate_pct": rollup.summary["completion_rate_pct"] if rollup else None,
        "sla_breaches": breach.summary["breaches"] if breach else None,
        "escalations": escal.summary["escalations"] if escal else None,
        "last_rollup_at": escal.summary["last_rollup_at"] if escal else None,
    }
    sections = [Section("steps", "Steps, in order", columns(
        "step", "digest", "title", "period", ("would_send", "Would send"), "channels", "recipients", "headline"),
        step_rows)]
    for d, part, *_ in steps:
        key, title = SECTIONS.get(d.slug, (d.slug, d.title))
        sections.append(Section(key, title, columns("figure", "value"), _figures(part)))
    notes = [escal.summary["basis"]] if escal is not None and not escal.summary["rollup_sent"] else []
    return Report(SLUG, "Staffing digest auto-chain", {}, summary, sections, ctx.now, notes=notes)
