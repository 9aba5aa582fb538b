"""Obligation executive rollup for board packets: open obligations by kind, framework and owner, the overdue list,
the next four weeks and completion over the look-back window (printable HTML, JSON or CSV)."""
from __future__ import annotations

import datetime as dt

from zentro.compliance import obligations as obl
from zentro.compliance.report_registry import ReportContext, WindowQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _obligation_views as views

TOP_OWNERS = 10
NEXT_WEEKS = 4
PROGRAM_WIDE = "(program-wide)"


def _item(o: obl.Obligation, now: dt.datetime) -> dict:
    return {"due": o.due_at.date(), "kind": o.kind, "title": o.title, "frameworks": list(o.frameworks),
            "owner": o.owner or "(unassigned)", "effort_hours": o.effort_hours,
            "days_overdue": max(0, (now - o.due_at).days) if o.overdue(now) else 0, "key": o.key, "link": o.url}


ITEM_COLUMNS = ("due", "kind", "title", "frameworks", "owner", ("effort_hours", "Effort (h)"), "key", "link")


@report("obligation-rollup", title="Obligation executive rollup", category="Obligations", query=WindowQuery,
        formats=("json", "html", "csv"),
        summary="Obligation executive rollup for board packets: open obligations by kind, framework and owner, the "
                "overdue list, the next four weeks and completion over the window (JSON, printable HTML or CSV).",
        inputs="every obligation, open and completed (attestations, vendors, bundles made and scheduled, audit "
               "checkpoints, evidence requests)",
        window="open obligations: all, whatever their due date; next four weeks: the current ISO week and the three "
               "after it; completion: the `window` look-back ending now (default 90 days)",
        definitions={
            "open": "Open obligations, whatever their due date (scheduled bundles are generated up to 400 days "
                    "ahead; attestation renewals fall due at valid_until).",
            "overdue": "Open obligations whose due date is past.",
            "due_next_4_weeks": "Open obligations not yet overdue that are due before the end of the fourth week "
                                "(the current ISO week and the next three).",
            "hours_next_4_weeks": "Effort hours of those obligations.",
            "open_hours": "Effort hours of every open obligation.",
            "completed_in_window": "Obligations completed inside the window: attestations attested, checkpoints "
                                   "marked done, evidence requests fulfilled, evidence bundles made.",
            "completed_on_time": "Of those with a due date of their own (all but bundles), completed at or before "
                                 "their due date.",
            "on_time_pct": "completed_on_time / completed with a due date x 100, rounded; empty when none.",
            "owners": "Distinct owners of open obligations ('(unassigned)' counts as one).",
            "window_days": "Completion look-back in days.",
            "by_kind.open / overdue / due_next_4_weeks / open_hours": "The summary figures per obligation kind.",
            "by_framework.open / overdue / due_next_4_weeks": "Per framework: an obligation spanning several "
                                                             "frameworks counts in each; bundles are "
                                                             "'(program-wide)'.",
            "by_owner": f"The {TOP_OWNERS} owners with the most open obligations (ties: more overdue, then name).",
            "completion.completed / on_time / late": "Per kind, completions inside the window; bundles have no "
                                                     "on-time figure.",
            "overdue list.days_overdue": "Whole days since the due date.",
        })
@obl.gc_paused()  # ~100k obligations and row dicts: no full collections while they are built
def build(ctx: ReportContext) -> Report:
    q: WindowQuery = ctx.query  # type: ignore[assignment]
    now = ctx.now
    _, _, next_end = views.horizon(now, NEXT_WEEKS)
    since = now - dt.timedelta(days=q.days)
    everything = obl.load(ctx.org_id, now, include_done=True, since=since)
    open_items = [o for o in everything if o.status == "open"]
    done = [o for o in everything if o.status == "done" and o.completed_at is not None
            and since <= o.completed_at <= now]
    overdue = [o for o in open_items if o.overdue(now)]
    upcoming = [o for o in open_items if now <= o.due_at < next_end]

    def tally(group: list[obl.Obligation]) -> dict:
        return {"open": len(group), "overdue": sum(1 for o in group if o.overdue(now)),
                "due_next_4_weeks": sum(1 for o in group if now <= o.due_at < next_end),
                "open_hours": round(sum(o.effort_hours for o in group), 1)}

    by_kind = [{"kind": k, "label": obl.KIND_LABELS[k], **tally([o for o in open_items if o.kind == k])}
               for k in obl.KINDS]
    fw_groups: dict[str, list[obl.Obligation]] = {}
    for o in open_items:
        for f in o.frameworks or (PROGRAM_WIDE,):
            fw_groups.setdefault(f, []).append(o)
    by_framework = sorted(({"framework": f, **tally(g)} for f, g in fw_groups.items()),
                          key=lambda r: (-r["open"], r["framework"]))
    owners = obl.by_owner(open_items)
    by_owner = sorted(({"owner": name, **tally(g)} for name, g in owners.items()),
                      key=lambda r: (-r["open"], -r["overdue"], r["owner"]))[:TOP_OWNERS]
    completion = []
    for k in obl.KINDS:
        mine = [o for o in done if o.kind == k]
        dated = [o for o in mine if k != "bundle"]
        on_time = sum(1 for o in dated if o.completed_at <= o.due_at)
        completion.append({"kind": k, "label": obl.KIND_LABELS[k], "completed": len(mine),
                           "on_time": on_time if k != "bundle" else None,
                           "late": len(dated) - on_time if k != "bundle" else None})
    dated_total = sum(1 for o in done if o.kind != "bundle")
    on_time_total = sum(1 for o in done if o.kind != "bundle" and o.completed_at <= o.due_at)
    summary = {
        "open": len(open_items), "overdue": len(overdue), "due_next_4_weeks": len(upcoming),
        "hours_next_4_weeks": round(sum(o.effort_hours for o in upcoming), 1),
        "open_hours": round(sum(o.effort_hours for o in open_items), 1),
        "completed_in_window": len(done), "completed_on_time": on_time_total,
        "on_time_pct": round(100 * on_time_total / dated_total) if dated_total else None,
        "owners": len(owners), "window_days": q.days,
    }
    overdue_rows = [_item(o, now) for o in sorted(overdue, key=lambda o: (o.due_at, o.key))]
    charts = [Chart("kinds", "Open obligations by kind", "bar", [r["label"] for r in by_kind],
                    [Series("Not overdue", [r["open"] - r["overdue"] for r in by_kind]),
                     Series("Overdue", [r["overdue"] for r in by_kind])], unit="obligations", stacked=True,
                    description="Open obligations per kind, split into overdue and not yet due.")]
    return Report(
        "obligation-rollup", "Obligation executive rollup",
        {"window": q.window, "from": since, "to": now, "next_weeks_end": next_end}, summary,
        [Section("by_kind", "Open obligations by kind",
                 columns("label", "open", "overdue", ("due_next_4_weeks", "Due next 4 weeks"),
                         ("open_hours", "Open hours")), by_kind),
         Section("by_framework", "Open obligations by framework",
                 columns("framework", "open", "overdue", ("due_next_4_weeks", "Due next 4 weeks"),
                         ("open_hours", "Open hours")), by_framework),
         Section("by_owner", f"Top {TOP_OWNERS} owners by open obligations",
                 columns("owner", "open", "overdue", ("due_next_4_weeks", "Due next 4 weeks"),
                         ("open_hours", "Open hours")), by_owner),
         Section("overdue", "Overdue obligations", columns(*ITEM_COLUMNS[:6], "days_overdue", *ITEM_COLUMNS[6:]),
                 overdue_rows),
         Section("next_weeks", "Due in the next four weeks", columns(*ITEM_COLUMNS),
                 [_item(o, now) for o in upcoming]),
         Section("completion", f"Completed in the last {q.days} days",
                 columns("label", "completed", ("on_time", "On time"), "late"), completion)],
        now, charts=charts)
