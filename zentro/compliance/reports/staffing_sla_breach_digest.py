"""Staffing SLA breach digest (preview): open staffing actions (proposed or tracked) past the committee completion
SLA (``committee.sla_due(week, completion_sla_days)`` earlier than now), with days past the SLA and the owner.

Also the shared helpers of the staffing digests: the staffing tracker's rows at ``now`` (``tracker``) and the
per-owner grouping they all show."""
from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable

from zentro.compliance import obligations as obl
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Report, Section, columns
from zentro.compliance.reports import _committee as cm
from zentro.compliance.reports import staffing_actions as sa

UNASSIGNED = cm.UNASSIGNED


def tracker(org_id: int, now: dt.datetime) -> tuple[int, list[dict]]:
    """(the committee's completion SLA in days, the staffing tracker's rows at ``now``: ``staffing_actions``)."""
    sla_days = obl.committee_config(org_id).completion_sla_days
    _, rows = sa.action_rows(org_id, now, sla_days)
    return sla_days, rows


def owner_of(row: dict) -> str:
    return row["owner"] or UNASSIGNED


def by_owner(rows: Iterable[dict], figures: Callable[[list[dict]], dict]) -> list[dict]:
    """One row per owner (e-mail, or ``(unassigned)`` last) of ``rows``: ``{"owner": ..., **figures(its rows)}``."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(owner_of(r), []).append(r)
    return [{"owner": o, **figures(groups[o])} for o in sorted(groups, key=lambda o: (o == UNASSIGNED, o))]


def breaches(rows: Iterable[dict]) -> list[dict]:
    """The tracker rows past their SLA (open only, by the tracker's definition), most days past first."""
    return sorted((r for r in rows if r["past_sla"]), key=lambda r: (-r["days_past_sla"], r["id"]))


def breach_owner_figures(rows: list[dict]) -> dict:
    return {"breaches": len(rows), "hours": round(sum(r["hours"] for r in rows), 2),
            "max_days_past_sla": max(r["days_past_sla"] for r in rows),
            "oldest_week": min(r["week"] for r in rows)}


BREACH_COLUMNS = ("id", "week", "owner", "kind", "status", "title", ("hours", "Hours"), ("created_at", "Created"),
                  ("age_days", "Age (days)"), ("sla_due", "SLA due"), ("days_past_sla", "Days past SLA"))


@report("staffing-sla-breach-digest", title="Staffing SLA breach digest", category="Digests", query=ReportQuery,
        summary="Open staffing actions past the committee's completion SLA after their peak week, with days past "
                "the SLA and the owner (JSON or CSV). Delivered daily by e-mail and Slack to the committee and the "
                "owners; nothing is sent when there is no breach.",
        inputs="staffing actions, committee settings (completion SLA)",
        window="every open staffing action of the org, at the moment of the report",
        definitions={
            "breaches": "Open staffing actions (proposed or tracked) whose sla_due is earlier than now.",
            "owners": "Distinct owners (e-mails) of those actions.",
            "unassigned": "Breaches without an owner.",
            "hours": "Owner-hours of the breaches.",
            "max_days_past_sla": "The largest days_past_sla (0 when there is no breach).",
            "oldest_sla_due": "The earliest sla_due among the breaches (empty when none).",
            "completion_sla_days": "Committee settings: days after the start of an action's week within which it "
                                   "should be completed (14 by default).",
            "week": "Monday (UTC) of the peak week the action relieves.",
            "sla_due": "The week's Monday 00:00 UTC + completion_sla_days (committee.sla_due).",
            "days_past_sla": "Whole days now is past sla_due.",
            "age_days": "Whole days from the action's creation to now.",
            "owner rows": "Per owner ((unassigned) last): breaches, their hours, the largest days_past_sla and "
                          "the oldest week.",
        })
def build(ctx: ReportContext) -> Report:
    sla_days, rows = tracker(ctx.org_id, ctx.now)
    found = breaches(rows)
    summary = {
        "breaches": len(found), "owners": len({r["owner"] for r in found if r["owner"]}),
        "unassigned": sum(1 for r in found if not r["owner"]),
        "hours": round(sum(r["hours"] for r in found), 2),
        "max_days_past_sla": max((r["days_past_sla"] for r in found), default=0),
        "oldest_sla_due": min((r["sla_due"] for r in found), default=None),
        "completion_sla_days": sla_days,
    }
    return Report(
        "staffing-sla-breach-digest", "Staffing SLA breach digest", {}, summary,
        [Section("breaches", "Open actions past the completion SLA", columns(*BREACH_COLUMNS), found),
         Section("owners", "Breaches by owner", columns(
             "owner", "breaches", ("hours", "Hours"), ("max_days_past_sla", "Most days past SLA"), "oldest_week"),
             by_owner(found, breach_owner_figures))],
        ctx.now)
