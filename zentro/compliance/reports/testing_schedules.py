"""Control testing schedules: the recurring evidence window of every control under test — its cadence, when it was
last tested, when the next test is due and what sets that date (attestation renewal, freshness SLA, audit
checkpoint) — bucketed by week, with the overdue tests."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select

from zentro.compliance import obligations as obl
from zentro.compliance.attestations import MAX_VALIDITY_DAYS
from zentro.compliance.catalog import load_catalog
from zentro.compliance.engine import tag_last_evidence
from zentro.compliance.models import Attestation, AuditCheckpoint
from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports._evidence import aware
from zentro.extensions import db

SOURCES = ("attestation renewal", "freshness SLA", "audit checkpoint")


@report("testing-schedules", title="Control testing schedules", category="Evidence & testing", query=ForecastQuery,
        summary="Control testing schedules — recurring evidence windows per control from attestation renewals, "
                "catalog freshness SLAs and audit-season checkpoints, by week, with overdue tests (JSON or CSV).",
        inputs="attestations, the newest audit evidence per control tag, the catalog (freshness_days), planned "
               "audit checkpoints, attestation owners",
        window="schedule as of now; weeks from the start of the current ISO week for `weeks` weeks",
        definitions={
            "controls under test": "Controls with an attestation, with direct audit evidence (an audit event tagged "
                                   "with the control, any date before now), or in a framework with a planned "
                                   "audit checkpoint.",
            "cadence_days": "Attestation renewal: min(freshness_days, 365) (the attestation validity rule); freshness "
                            "SLA and audit checkpoint: the control's catalog freshness_days.",
            "last_tested": "The later of the newest direct audit evidence before now and the attestation's "
                           "attested_at.",
            "next_due": "The earliest of: attestation renewal (the earliest over the control's attestations of "
                        "valid_until for attested ones — none when it has no expiry — and due_at for assigned or "
                        "rejected ones), freshness SLA (last direct evidence + freshness_days) and — only for a "
                        "control never tested (no evidence, no attestation) — the earliest planned checkpoint of "
                        "its framework.",
            "owner": "An owner of the control's attestations (the lowest user id when several).",
            "source": "Which of the three set next_due (attestation renewal wins a tie, then freshness SLA).",
            "days_to_due": "Whole days from now to next_due (floor); negative when overdue.",
            "controls": "Controls under test.",
            "overdue": "Controls whose next_due is before now.",
            "due_this_week": "Controls not overdue whose next_due falls in the current ISO week.",
            "due_in_horizon": "Controls not overdue whose next_due falls in the `weeks`-week horizon.",
            "by_source.<source>": "Controls whose next_due is set by each source.",
            "weeks section": "Per week of the horizon: tests due by source (overdue ones are not re-bucketed).",
        })
def build(ctx: ReportContext) -> Report:
    q: ForecastQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    catalog = load_catalog()
    weeks = obl.weeks_from(now, q.weeks)
    horizon_start = dt.datetime.combine(weeks[0], dt.time(), dt.timezone.utc)
    horizon_end = horizon_start + dt.timedelta(weeks=q.weeks)
    emails = obl.owner_emails(ctx.org_id)
    (last,) = tag_last_evidence(ctx.org_id, [now])
    # per control, ONE grouped query: the earliest attestation date that needs a new statement (attested: its
    # valid_until; assigned or rejected: its due date), how many rows, the latest attested_at and an owner
    A = Attestation
    renew_at = case((A.status == "attested", A.valid_until), else_=A.due_at)
    atts = {control: (aware(due), n, aware(attested), owner_id) for control, due, n, attested, owner_id in
            db.session.execute(select(A.control, func.min(renew_at), func.count(),
                                      func.max(case((A.status == "attested", A.attested_at))), func.min(A.owner_id))
                               .where(A.org_id == ctx.org_id).group_by(A.control))}
    checkpoints: dict[str, tuple[dt.datetime, str]] = {}
    for name, framework, due in db.session.execute(select(AuditCheckpoint.name, AuditCheckpoint.framework,
                                                          AuditCheckpoint.due_at)
                                                   .where(AuditCheckpoint.org_id == ctx.org_id,
                                                          AuditCheckpoint.status == "planned")):
        due = aware(due)
        if framework not in checkpoints or due < checkpoints[framework][0]:
            checkpoints[framework] = (due, name)

    tags = {t for t in last if catalog.has(t)} | {t for t in atts if catalog.has(t)}
    for key in checkpoints:
        if key in catalog.frameworks:
            tags.update(catalog.tags_for(key))

    rows = []
    for tag in tags:
        control = catalog.control(tag)
        framework = tag.split(":", 1)[0]
        candidates: list[tuple[dt.datetime, int, str, int, str]] = []  # (due, order, source, cadence, detail)
        last_ev = aware(last.get(tag))
        due_att, n_att, attested, owner_id = atts.get(tag, (None, 0, None, None))
        if due_att is not None:
            candidates.append((due_att, 0, "attestation renewal", min(control.freshness_days, MAX_VALIDITY_DAYS),
                               f"attestation due {due_att:%Y-%m-%d}"
                               + (f" (earliest of {n_att})" if n_att > 1 else "")))
        if last_ev is not None:
            candidates.append((last_ev + dt.timedelta(days=control.freshness_days), 1, "freshness SLA",
                               control.freshness_days,
                               f"last evidence {last_ev:%Y-%m-%d} + {control.freshness_days} d"))
        if last_ev is None and not n_att and framework in checkpoints:
            due, name = checkpoints[framework]
            candidates.append((due, 2, "audit checkpoint", control.freshness_days,
                               f"never tested; checkpoint {name!r} due {due:%Y-%m-%d}"))
        if not candidates:
            continue
        due, _, source, cadence, detail = min(candidates, key=lambda c: (c[0], c[1]))
        tested = max((d for d in (last_ev, attested) if d is not None), default=None)
        rows.append({"control": tag, "framework": framework, "title": control.title, "cadence_days": cadence,
                     "last_tested": tested, "next_due": due, "days_to_due": (due - now).days, "source": source,
                     "detail": detail, "overdue": due < now, "week": obl.week_start(due),
                     "owner": emails.get(owner_id, "") if owner_id else ""})
    rows.sort(key=lambda r: (r["next_due"], r["control"]))

    overdue = [r for r in rows if r["overdue"]]
    upcoming = [r for r in rows if not r["overdue"] and horizon_start <= r["next_due"] < horizon_end]
    by_week = {w: [r for r in upcoming if r["week"] == w] for w in weeks}
    week_rows = [{"week": w, "tests_due": len(items),
                  **{s.replace(" ", "_"): sum(1 for r in items if r["source"] == s) for s in SOURCES},
                  "controls": [r["control"] for r in items]} for w, items in by_week.items()]
    this_week = len(by_week[weeks[0]])
    summary = {"controls": len(rows), "overdue": len(overdue), "due_this_week": this_week,
               "due_in_horizon": len(upcoming),
               "by_source": {s: sum(1 for r in rows if r["source"] == s) for s in SOURCES}}
    chart = Chart("weekly", "Control tests due per week", "bar", [w.isoformat() for w in weeks],
                  [Series(s.capitalize(), [float(wr[s.replace(" ", "_")]) for wr in week_rows]) for s in SOURCES],
                  unit="tests", stacked=True,
                  description="Stacked bars: control tests falling due each week, by the source that sets the date.")
    overdue_rows = [{"control": r["control"], "title": r["title"], "next_due": r["next_due"],
                     "days_overdue": (now - r["next_due"]).days, "source": r["source"], "detail": r["detail"],
                     "owner": r["owner"]} for r in overdue]
    return Report(
        "testing-schedules", "Control testing schedules", {"weeks": q.weeks, "from": horizon_start, "to": horizon_end},
        summary,
        [Section("schedule", "Testing schedule", columns("control", "framework", "title",
                                                         ("cadence_days", "Cadence (d)"),
                                                         "last_tested", "next_due", ("days_to_due", "Days to due"),
                                                         "source", "detail", "overdue", "owner"), rows),
         Section("weeks", "Upcoming testing windows", columns("week", "tests_due", ("attestation_renewal",
                                                                                    "Attestation renewal"),
                                                              ("freshness_SLA", "Freshness SLA"),
                                                              ("audit_checkpoint", "Audit checkpoint"), "controls"),
                 week_rows),
         Section("overdue", "Overdue tests", columns("control", "title", "next_due", "days_overdue", "source",
                                                     "detail", "owner"), overdue_rows)],
        now, charts=[chart])
