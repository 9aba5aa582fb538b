"""Obligation consolidation playbook: the six-step consolidation play for every crossover cluster, with each
step's tracked status (ConsolidationPlayStep; untracked steps are 'todo') and the play's progress."""
from __future__ import annotations

from sqlalchemy import select

from zentro.compliance import obligations as obl
from zentro.compliance.models import ConsolidationPlayStep
from zentro.compliance.report_registry import ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _obligation_views as views
from zentro.compliance.reports.obligation_crossover import CLUSTER_DEFINITIONS, CrossoverQuery, selected
from zentro.extensions import db

COMPLETE = ("done", "skipped")


def tracked_steps(org_id: int) -> dict[str, dict[int, tuple[str, object, int | None]]]:
    """cluster key -> {step: (status, updated_at, updated_by_id)} for every tracked step of the org."""
    out: dict[str, dict[int, tuple[str, object, int | None]]] = {}
    for key, step, status, at, by in db.session.execute(
            select(ConsolidationPlayStep.cluster_key, ConsolidationPlayStep.step, ConsolidationPlayStep.status,
                   ConsolidationPlayStep.updated_at, ConsolidationPlayStep.updated_by_id)
            .where(ConsolidationPlayStep.org_id == org_id)):
        out.setdefault(key, {})[step] = (status, at, by)
    return out


def play_state(steps: dict[int, tuple]) -> tuple[int, int, str, int | None]:
    """(steps complete, progress %, play state, next step number or None) from a cluster's tracked steps."""
    statuses = [steps.get(n, ("todo",))[0] for n, _, _ in views.PLAY_STEPS]
    complete = sum(1 for s in statuses if s in COMPLETE)
    nxt = next((n for (n, _, _), s in zip(views.PLAY_STEPS, statuses) if s not in COMPLETE), None)
    if complete == len(statuses):
        state = "complete"
    elif all(s == "todo" for s in statuses):
        state = "not_started"
    else:
        state = "in_progress"
    return complete, round(100 * complete / len(statuses)), state, nxt


@report("obligation-consolidation", title="Obligation consolidation playbook", category="Obligations",
        query=CrossoverQuery,
        summary="Obligation consolidation playbook: the six-step consolidation play for every crossover cluster "
                "(confirm scope, pick the lead owner, one request list, collect once, map to each framework, record "
                "reuse) with each step's tracked status and the play's progress (JSON or CSV).",
        inputs="the crossover clusters (obligation-crossover, same parameters) and the tracked play steps",
        window="as obligation-crossover: clusters anchored before the end of the `weeks`-week horizon",
        definitions={
            "plays": "Crossover clusters listed, one play each.",
            "plays_complete": "Plays whose six steps are all done or skipped.",
            "plays_in_progress": "Plays with at least one step not todo, and not complete.",
            "plays_not_started": "Plays with every step todo (tracked or not).",
            "steps_complete": "Steps done or skipped over all listed plays.",
            "steps_total": "6 x plays.",
            "progress_pct": "steps_complete / steps_total x 100, rounded (0 when there are no plays).",
            "hours_saved": "Sum of the listed clusters' potential hours saved (see obligation-crossover).",
            "hours_saved_realised": "Potential hours saved of the complete plays.",
            "orphaned_tracked_plays": "Cluster keys with tracked steps that match no current cluster at this "
                                      "windowDays (the anchor was completed or the membership changed); their "
                                      "statuses are kept, not shown.",
            "window_days": "The due window used (windowDays).",
            **{k: v for k, v in CLUSTER_DEFINITIONS.items() if k in ("cluster_key", "hours_saved", "members",
                                                                   "frameworks")},
            "plays.steps_complete": "Steps of the play done or skipped (0-6).",
            "plays.progress_pct": "steps_complete / 6 x 100, rounded.",
            "plays.state": "not_started, in_progress or complete (as the summary counts).",
            "plays.next_step": "The first step that is neither done nor skipped.",
            "steps.status": "todo (the default when untracked), in_progress, done or skipped.",
            "steps.updated_at": "When the status was last set (empty when untracked).",
            "steps.updated_by": "Who set it.",
            "progress chart": "Bars: progress % per play.",
        })
@obl.gc_paused()  # ~100k obligations and row dicts: no full collections while they are built
def build(ctx: ReportContext) -> Report:
    q: CrossoverQuery = ctx.query  # type: ignore[assignment]
    start, end, found, _, every = selected(ctx, q.window_days, q.weeks)
    tracked = tracked_steps(ctx.org_id)
    emails = obl.owner_emails(ctx.org_id) if tracked else {}
    plays, steps = [], []
    counts = {"complete": 0, "in_progress": 0, "not_started": 0}
    realised = 0.0
    for c in found:
        mine = tracked.get(c.key, {})
        complete, pct, state, nxt = play_state(mine)
        counts[state] += 1
        if state == "complete":
            realised += c.hours_saved
        plays.append({"cluster_key": c.key, "window_start": c.window_start, "window_end": c.window_end,
                      "members": len(c.members), "frameworks": list(c.frameworks), "link": c.link,
                      "hours_saved": c.hours_saved, "steps_complete": complete, "progress_pct": pct, "state": state,
                      "next_step": nxt, "next_step_name": views.STEP_NAMES.get(nxt, "") if nxt else ""})
        for n, name, what in views.PLAY_STEPS:
            status, at, by = mine.get(n, ("todo", None, None))
            steps.append({"cluster_key": c.key, "step": n, "name": name, "what": what, "status": status,
                          "updated_at": at, "updated_by": emails.get(by, "") if by else ""})
    current = {c.key for c in every}
    suffix = f"~{q.window_days}d"
    orphaned = sum(1 for k in tracked if k.endswith(suffix) and k not in current)
    total_steps = 6 * len(found)
    done_steps = sum(p["steps_complete"] for p in plays)
    summary = {
        "plays": len(found), "plays_complete": counts["complete"], "plays_in_progress": counts["in_progress"],
        "plays_not_started": counts["not_started"], "steps_complete": done_steps, "steps_total": total_steps,
        "progress_pct": round(100 * done_steps / total_steps) if total_steps else 0,
        "hours_saved": round(sum(c.hours_saved for c in found), 1), "hours_saved_realised": round(realised, 1),
        "orphaned_tracked_plays": orphaned, "window_days": q.window_days,
    }
    charts = []
    if found:
        charts.append(Chart("progress", "Consolidation play progress", "bar", [p["cluster_key"] for p in plays],
                            [Series("Progress %", [p["progress_pct"] for p in plays])], unit="%",
                            description="Share of each play's six steps done or skipped."))
    return Report("obligation-consolidation", "Obligation consolidation playbook",
                  {"weeks": q.weeks, "windowDays": q.window_days, "from": start, "to": end}, summary,
                  [Section("plays", "Consolidation plays",
                           columns("cluster_key", "window_start", "window_end", "members", "frameworks", "link",
                                   ("hours_saved", "Hours saved"), "steps_complete", ("progress_pct", "Progress %"),
                                   "state", "next_step", "next_step_name"), plays),
                   Section("steps", "Play steps",
                           columns("cluster_key", "step", "name", "what", "status", "updated_at", "updated_by"),
                           steps)],
                  ctx.now, charts=charts)

