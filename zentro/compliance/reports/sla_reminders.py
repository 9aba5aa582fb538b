"""Attestation SLA reminder candidates (slug ``sla-reminders``): attestations due soon, attestations overdue, and
owned controls that regressed, plus the org's settings for the SLA reminder digest.

- due soon: an attestation not attested (assigned, or rejected and back with its owner) whose due date is after now
  and within ``dueSoonDays`` days;
- overdue: an attestation in state overdue now (not attested, due date passed) — the attestation board's rule;
- regressed: a control with at least one attestation row (so someone owns it) whose evidence-engine score is under
  70 now but was 70 or more ``lookbackDays`` days ago (both moments with the engine's default 30-day evidence
  window and the registers as they stood then). Its owner is the owner of its latest attestation (the newest
  created: the control-ownership report's "responsible").

``dueSoonDays`` comes from the query, else from the org's schedule options for this digest (settings page), else
7. The settings section reads the org's ``DigestSchedule`` row for ``sla-reminders`` as stored (no row: the
digest's defaults, disabled).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from zentro.compliance import engine
from zentro.compliance import obligations as obl
from zentro.compliance.catalog import load_catalog
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.extensions import db
from zentro.notify.models import DigestSchedule

SLUG = "sla-reminders"
DEFAULT_SCHEDULE = "0 8 * * *"
DEFAULT_CHANNELS = ("email", "slack", "webhook")
DEFAULT_DUE_SOON_DAYS = 7
DUE_SOON_MAX = 60
REGRESSION_WINDOW_DAYS = engine.DEFAULT_PERIOD_DAYS


class SlaRemindersQuery(ReportQuery):
    due_soon_days: int | None = Field(
        None, ge=1, le=DUE_SOON_MAX, alias="dueSoonDays",
        description="Remind about attestations due within this many days (1-60; default: the org's setting for "
                    "this digest, else 7).")
    lookback_days: int = Field(7, ge=1, le=90, alias="lookbackDays",
                               description="A control regressed if it scored 70 or more this many days ago and "
                                           "scores under 70 now (1-90).")


def _newest(item: engine.AttestationItem) -> tuple:
    return obl._aware(item.created_at), item.id


def _option_days(options: Any) -> int | None:
    value = options.get("dueSoonDays") if isinstance(options, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= DUE_SOON_MAX:
        return value
    return None


def settings(org_id: int, query_days: int | None) -> tuple[list[dict], dict[str, Any]]:
    """(the settings rows, the effective values) of the org's schedule for this digest."""
    row = db.session.get(DigestSchedule, (org_id, SLUG))
    option = _option_days(row.options) if row is not None else None
    # a scheduled delivery passes the org's options as the query: the same value is the org's setting
    days, source = ((query_days, "org setting" if query_days == option else "query") if query_days is not None else
                    (option, "org setting") if option is not None else (DEFAULT_DUE_SOON_DAYS, "default"))
    cron = (row.cron if row is not None and row.cron else DEFAULT_SCHEDULE)
    chans = list(row.channels) if row is not None and row.channels else list(DEFAULT_CHANNELS)
    eff = {"enabled": bool(row.enabled) if row is not None else False, "schedule": cron, "channels": chans,
           "due_soon_days": days, "due_soon_source": source}
    set_ = "org setting"
    rows = [
        {"setting": "enabled", "value": eff["enabled"], "source": set_ if row is not None else "default"},
        {"setting": "schedule", "value": cron, "source": set_ if row is not None and row.cron else "default"},
        {"setting": "channels", "value": chans, "source": set_ if row is not None and row.channels else "default"},
        {"setting": "slack_channel", "value": row.slack_channel if row is not None else "",
         "source": set_ if row is not None and row.slack_channel else "default"},
        {"setting": "due_soon_days", "value": days, "source": source},
        {"setting": "next_run_at", "value": row.next_run_at if row is not None else None, "source": "scheduler"},
        {"setting": "last_run_at", "value": row.last_run_at if row is not None else None, "source": "scheduler"},
    ]
    return rows, eff


@report(SLUG, title="Compliance SLA reminders", category="Digests", query=SlaRemindersQuery,
        formats=("json", "csv", "html"),
        summary="Attestation SLA reminder candidates — due soon, overdue and regressed controls, with their owners — "
                "and the org's settings for the reminder digest (JSON, CSV or printable HTML).",
        inputs="attestations and their owners, the evidence engine (control scores now and lookbackDays ago), the "
               "org's schedule for this digest",
        window="as of now: due soon = due within dueSoonDays days after now; regressed = now against now − "
               "lookbackDays (30-day evidence window at both moments)",
        definitions={
            "due_soon_days": "The due-soon window in days: the dueSoonDays parameter, else the org's setting "
                             "(schedule option dueSoonDays), else 7.",
            "due_soon_source": "Where due_soon_days came from: query, org setting (also when the query repeats the "
                               "org's value, as a scheduled delivery does) or default.",
            "lookback_days": "How far back a regressed control was still passing.",
            "due_soon": "Attestations not attested (assigned, or rejected and back with their owner) due after now "
                        "and at most due_soon_days days ahead.",
            "overdue": "Attestations overdue now: not attested and past their due date (the attestation board's "
                       "overdue state).",
            "regressed": "Controls with at least one attestation that score under 70 now and scored 70 or more "
                         "lookback_days days ago (evidence engine, 30-day evidence window at both moments).",
            "candidates": "due_soon + overdue + regressed: reminders this digest would send (empty: nothing is "
                          "sent).",
            "owners": "Distinct owners (e-mails) of the candidates; the digest goes to them and the org's owners "
                      "and admins.",
            "unassigned": "Candidates without an owner (no owner, or the owner left the org).",
            "schedule_enabled": "Whether the org turned the scheduled SLA reminders on (settings page); off by "
                                "default.",
            "schedule": "The 5-field cron (UTC) the scheduled reminders run on: the org's, else the default "
                        f"{DEFAULT_SCHEDULE} (daily 08:00).",
            "channels": "The channels a delivery uses: the org's choice, else email, slack and webhook.",
            "days_to_due": "Whole days from now to the due date (floor).",
            "days_overdue": "Whole days since the due date.",
            "score / prior_score": "The control's evidence-engine score now and lookback_days days ago (0-100).",
            "drop": "prior_score − score (points).",
            "settings": "The org's schedule for this digest: each setting, its effective value and whether it is "
                        "the org's or the default.",
            "chart": "Candidates by kind: due soon, overdue, regressed.",
        })
def build(ctx: ReportContext) -> Report:
    q: SlaRemindersQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    org = ctx.org_id
    setting_rows, eff = settings(org, q.due_soon_days)
    soon_end = now + dt.timedelta(days=eff["due_soon_days"])
    catalog = load_catalog()
    emails = obl.owner_emails(org)
    registers = engine.load_registers(org)

    def owner(uid: int | None) -> str:
        return emails.get(uid, "") if uid else ""

    def title(tag: str) -> str:
        return catalog.control(tag).title if catalog.has(tag) else ""

    due_soon, overdue = [], []
    for tag, items in registers.attestations.items():
        for a in items:
            state = a.state_at(now)
            base = {"id": a.id, "control": tag, "framework": tag.split(":", 1)[0], "title": title(tag),
                    "owner": owner(a.owner_id), "status": a.status, "due_at": a.due_at,
                    "link": f"/compliance/attestations/{a.id}"}
            if state == "overdue":
                overdue.append({**base, "days_overdue": (now - a.due_at).days})
            elif state == "assigned" and a.due_at <= soon_end:
                due_soon.append({**base, "days_to_due": (a.due_at - now).days})
    due_soon.sort(key=lambda r: (r["due_at"], r["id"]))
    overdue.sort(key=lambda r: (r["due_at"], r["id"]))

    owned = sorted(t for t, items in registers.attestations.items() if items and catalog.has(t))
    regressed = []
    if owned:
        cur = engine.snapshot(org, REGRESSION_WINDOW_DAYS, now)
        old = engine.snapshot(org, REGRESSION_WINDOW_DAYS, now - dt.timedelta(days=q.lookback_days))
        for tag in owned:
            c = cur.assess_control(tag)
            if c.score >= engine.PASSING:
                continue
            p = old.assess_control(tag)
            if p.score < engine.PASSING:
                continue
            latest = max(registers.attestations[tag], key=_newest)
            regressed.append({"control": tag, "framework": c.framework, "title": c.title,
                              "owner": owner(latest.owner_id), "score": c.score, "prior_score": p.score,
                              "drop": round(p.score - c.score, 1), "state": c.state, "attestation": c.attestation,
                              "reason": c.reason, "link": f"/compliance/controls/{tag}"})
        regressed.sort(key=lambda r: (-r["drop"], r["control"]))

    everyone = due_soon + overdue + regressed
    summary = {
        "due_soon_days": eff["due_soon_days"], "due_soon_source": eff["due_soon_source"],
        "lookback_days": q.lookback_days, "due_soon": len(due_soon), "overdue": len(overdue),
        "regressed": len(regressed), "candidates": len(everyone),
        "owners": len({r["owner"] for r in everyone if r["owner"]}),
        "unassigned": sum(1 for r in everyone if not r["owner"]),
        "schedule_enabled": eff["enabled"], "schedule": eff["schedule"], "channels": eff["channels"],
    }
    chart = Chart("candidates", "Reminder candidates", "bar", ["due soon", "overdue", "regressed"],
                  [Series("candidates", [float(len(due_soon)), float(len(overdue)), float(len(regressed))])],
                  unit="reminders", description="Attestations due soon and overdue, and regressed controls.")
    item_cols = ("id", "control", "framework", "title", "owner", "status", ("due_at", "Due"))
    return Report(
        SLUG, "Compliance SLA reminders",
        {"dueSoonDays": eff["due_soon_days"], "lookbackDays": q.lookback_days, "as_of": now,
         "due_soon_until": soon_end}, summary,
        [Section("due_soon", "Due soon", columns(*item_cols, ("days_to_due", "Days to due"), "link"), due_soon),
         Section("overdue", "Overdue", columns(*item_cols, ("days_overdue", "Days overdue"), "link"), overdue),
         Section("regressed", "Regressed controls", columns(
             "control", "framework", "title", "owner", "score", ("prior_score", "Prior score"), "drop", "state",
             "attestation", "reason", "link"), regressed),
         Section("settings", "Digest settings", columns("setting", "value", "source"), setting_rows)],
        now, charts=[chart])

