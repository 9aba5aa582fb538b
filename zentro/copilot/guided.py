"""The copilot's offline guided mode: deterministic answers built from the org's own records.

It reads the intent of a question (status, timeline, cause, what to do, similar incidents, error
budgets, compliance gaps) and the incident in context (``incident_id`` or an ``INC-42`` mention), then
assembles facts from the incident and its timeline, the latest RCA run, the service's runbook and the
playbooks that target it, pending approvals, past incidents with similar titles, services burning error
budget and the weakest compliance controls. Every fact that names a record carries a reference
``{type, id, label, url}`` to a row (or catalog control) that exists — nothing is invented.

The same ``Grounding`` is handed to the language-model modes as their context.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select
from werkzeug.routing import BuildError

from zentro.automations.models import Approval, Playbook
from zentro.extensions import db
from zentro.incidents import rca
from zentro.incidents.models import ACTIVE_STATUSES, SEVERITIES, Incident, TimelineEvent
from zentro.incidents.service import timeline
from zentro.platform.types import utcnow
from zentro.reliability.models import Service

INTENTS = {  # checked in this order; a question may carry several
    "status": r"\b(status|summar\w*|overview|state|update|happening|going on|where are we)\b",
    "timeline": r"\b(timeline|history|what happened|events?|sequence|when did)\b",
    "cause": r"\b(cause[sd]?|why|rca|root|hypothes\w*|culprit|trigger\w*)\b",
    "action": r"\b(what (should|do|can) (i|we)|next steps?|runbooks?|playbooks?|mitigat\w*|fix\w*|remediat\w*|"
              r"actions?|approvals?|do next|restart|rollback)\b",
    "similar": r"\b(similar|seen (this|it) before|before|past|previous(ly)?|again|recurr\w*|related)\b",
    "budget": r"\b(slos?|error budgets?|budgets?|burn\w*|reliability|availability)\b",
    "compliance": r"\b(complian\w*|gaps?|readiness|controls?|audit\w*|soc ?2|iso ?27001|pci|hipaa|nist|frameworks?|"
                  r"evidence)\b",
}
INCIDENT_MENTION = re.compile(r"\bINC-(\d{1,9})\b", re.IGNORECASE)
SIGN_IN = "Sign in to get answers from your organisation's records (incidents, timelines, runbooks, SLOs, controls)."
SIMILAR_MIN = 0.2
SCAN_LIMIT = 500


@dataclass
class Section:
    title: str
    lines: list[str]


@dataclass
class Grounding:
    """What the copilot knows for one question: facts by section and the records they came from."""
    intents: list[str]
    incident: Incident | None
    sections: list[Section] = field(default_factory=list)
    references: list[dict] = field(default_factory=list)

    def ref(self, type_: str, id_, label: str, url: str) -> None:
        if not any(r["type"] == type_ and r["id"] == id_ for r in self.references):
            self.references.append({"type": type_, "id": id_, "label": label[:200], "url": url})

    def add(self, title: str, lines: list[str]) -> None:
        if lines:
            self.sections.append(Section(title, lines))

    def text(self) -> str:
        return "\n\n".join(s.title + "\n" + "\n".join(s.lines) for s in self.sections)


def detect_intents(message: str) -> list[str]:
    text = message.lower()
    return [name for name, pattern in INTENTS.items() if re.search(pattern, text)]


def _page(endpoint: str, fallback: str, **values) -> str:
    """The URL of a page if its route exists (another package's pages may not be installed)."""
    try:
        return current_app.url_map.bind("").build(endpoint, values)
    except (BuildError, KeyError):
        return fallback


def _ago(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


def _hhmm(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def find_incident(org_id: int, message: str, incident_id: int | None) -> Incident | None:
    """The incident in context: the one passed, else the first ``INC-n`` the message names (in this org)."""
    if incident_id is not None:
        return db.session.scalar(select(Incident).where(Incident.org_id == org_id, Incident.id == incident_id))
    m = INCIDENT_MENTION.search(message)
    if m:
        return db.session.scalar(select(Incident).where(Incident.org_id == org_id, Incident.number == int(m.group(1))))
    return None


# --- sections ----------------------------------------------------------------------------------------

def _incident_ref(g: Grounding, inc: Incident) -> None:
    g.ref("incident", inc.id, f"{inc.ref} {inc.title}", f"/incidents/{inc.id}")


def _service_ref(g: Grounding, svc: Service) -> None:
    g.ref("service", svc.id, f"Service {svc.name}", f"/services/{svc.id}")


def _event_line(g: Grounding, inc: Incident, ev: TimelineEvent) -> str:
    g.ref("timeline_event", ev.id, f"{inc.ref} {ev.kind}: {ev.body}"[:200], f"/incidents/{inc.id}#event-{ev.id}")
    who = f" ({ev.actor_label})" if ev.actor_label else ""
    return f"• {_hhmm(ev.created_at)} {ev.kind}{who}: {ev.body}"


def status_section(g: Grounding, inc: Incident, now: dt.datetime) -> None:
    _incident_ref(g, inc)
    end = inc.resolved_at or inc.closed_at or now
    lines = [f"{inc.ref} · {inc.title}",
             f"Status {inc.status}, severity {inc.severity}, "
             f"{'open for' if inc.status in ACTIVE_STATUSES else 'lasted'} {_ago(end - inc.started_at)} "
             f"(started {_hhmm(inc.started_at)}).",
             f"Service: {inc.service.name + f' (tier {inc.service.tier})' if inc.service else 'none recorded'}. "
             f"Commander: {inc.commander_email or 'nobody assigned yet'}. Alerts folded in: {inc.alert_count}."]
    if inc.service is not None:
        _service_ref(g, inc.service)
    events = timeline(inc.org_id, inc.id, last=3)
    if events:
        lines.append("Latest events:")
        lines += [_event_line(g, inc, ev) for ev in events]
    g.add("Status", lines)


def timeline_section(g: Grounding, inc: Incident) -> None:
    _incident_ref(g, inc)
    events = timeline(inc.org_id, inc.id, last=10)
    g.add(f"Timeline of {inc.ref} (latest {len(events)})", [_event_line(g, inc, ev) for ev in events]
          or ["No timeline events yet."])


def cause_section(g: Grounding, inc: Incident) -> None:
    _incident_ref(g, inc)
    run = rca.latest_run(inc.org_id, inc.id)
    rca_url = f"/incidents/{inc.id}/rca"
    if run is None or run.status != "succeeded":
        state = "No root-cause analysis has run yet" if run is None else f"RCA run #{run.id} is {run.status}"
        g.add("Likely cause", [f"{state}. Run one from the incident's RCA panel: it ranks recent changes, upstream "
                               "trouble, open vulnerabilities and similar incidents, each with its evidence."])
        return
    g.ref("rca_run", run.id, f"RCA run #{run.id} for {inc.ref}", rca_url)
    top = [h for h in run.hypotheses[:3] if isinstance(h, dict)]
    evidence = [e for h in top for e in h.get("evidence", []) if isinstance(e, dict)]
    # evidence may name rows purged since the run; only rows that still exist become links
    alive = {"incident": _existing(Incident, inc.org_id, {e.get("id") for e in evidence if e.get("type") == "incident"}),
             "timeline_event": _existing(TimelineEvent, inc.org_id,
                                         {e.get("id") for e in evidence if e.get("type") == "timeline_event"})}
    lines = [f"From RCA run #{run.id} ({_hhmm(run.finished_at or run.created_at)}):"]
    for h in top:
        ids = ", ".join(f"{e.get('type', '?').replace('_', ' ')} #{e.get('id')}" for e in h.get("evidence", [])[:4])
        lines.append(f"#{h.get('rank')} {h.get('title')} — confidence {float(h.get('confidence', 0)):.2f}"
                     + (f"; evidence: {ids}" if ids else ""))
    for e in evidence:
        row = alive.get(e.get("type"), {}).get(e.get("id"))
        if isinstance(row, Incident):
            _incident_ref(g, row)
        elif row is not None:
            _event_line(g, db.session.get(Incident, row.incident_id), row)
    g.add("Likely cause", lines)


def _existing(model, org_id: int, ids: set) -> dict:
    """The rows of ``ids`` that still exist in the org, by id."""
    ids = {i for i in ids if isinstance(i, int)}
    if not ids:
        return {}
    return {r.id: r for r in db.session.scalars(select(model).where(model.org_id == org_id, model.id.in_(ids)))}


def action_section(g: Grounding, inc: Incident | None, org_id: int) -> None:
    lines = []
    svc = inc.service if inc is not None else None
    if inc is not None:
        _incident_ref(g, inc)
    if svc is not None:
        _service_ref(g, svc)
        if svc.runbook_url.startswith(("https://", "http://")):
            g.ref("runbook", svc.id, f"Runbook for {svc.name}", svc.runbook_url)
            lines.append(f"Runbook for {svc.name}: {svc.runbook_url}")
        else:
            lines.append(f"{svc.name} has no runbook URL on record; add one on its service page.")
    playbooks = list(db.session.scalars(select(Playbook).where(Playbook.org_id == org_id, Playbook.enabled.is_(True))
                                        .order_by(Playbook.name)))
    targeted = [p for p in playbooks if svc is not None and any(
        isinstance(s, dict) and s.get("service_id") == svc.id for s in p.steps or [])]
    for p in targeted[:5]:
        g.ref("playbook", p.id, f"Playbook {p.name}",
              _page("automations.playbook_detail", "/automations", playbook_id=p.id))
        steps = ", ".join(str(s.get("action", "?")) for s in p.steps if isinstance(s, dict))
        lines.append(f"Playbook “{p.name}” targets {svc.name}: {steps}. Dry-run it first; executing needs a fresh "
                     "dry-run, an approval note and a rollback plan (and an approval where a guardrail asks).")
    if svc is not None and not targeted:
        lines.append(f"No enabled playbook targets {svc.name}"
                     + (f"; the org has {len(playbooks)} other playbook(s)." if playbooks else "."))
    q = select(Approval).where(Approval.org_id == org_id, Approval.status == "pending")
    if inc is not None:
        q = q.where(Approval.incident_id == inc.id)
    for a in db.session.scalars(q.order_by(Approval.id.desc()).limit(5)):
        g.ref("approval", a.id, f"Approval #{a.id}: {a.summary or a.action_key}",
              _page("automations.approval_list", "/automations"))
        lines.append(f"Approval #{a.id} is pending: {a.summary or a.action_key}.")
    if inc is not None and inc.status == "open":
        lines.append(f"{inc.ref} is not acknowledged yet: acknowledge it and name a commander.")
    g.add("What to do", lines or ["No runbook, playbook or pending approval applies here yet."])


def similar_section(g: Grounding, org_id: int, inc: Incident | None, message: str) -> None:
    mine = rca.tokens(inc.title if inc is not None else message)
    q = select(Incident).where(Incident.org_id == org_id)
    if inc is not None:
        q = q.where(Incident.id != inc.id)
    scored = []
    for other in db.session.scalars(q.order_by(Incident.id.desc()).limit(SCAN_LIMIT)):
        score = rca.jaccard(mine, rca.tokens(other.title))
        if inc is not None and inc.service_id is not None and other.service_id == inc.service_id:
            score += 0.1
        if score >= SIMILAR_MIN:
            scored.append((score, other))
    scored.sort(key=lambda pair: (-pair[0], -pair[1].id))
    lines = []
    for score, other in scored[:3]:
        _incident_ref(g, other)
        cause, where, _ = rca.recorded_cause(org_id, other.id)
        took = f", resolved in {_ago(other.resolved_at - other.started_at)}" if other.resolved_at else ""
        lines.append(f"{other.ref} “{other.title}” ({other.status}{took}; similarity {min(score, 1):.2f})"
                     + (f" — cause per {where}: {cause}" if cause else ""))
    g.add("Similar incidents", lines or ["No past incident has a similar title."])


def budget_section(g: Grounding, org_id: int, inc: Incident | None, now: dt.datetime) -> None:
    from zentro.reliability.service import budget_summary

    rows = budget_summary(org_id, now)["services"]
    focus = inc.service_id if inc is not None else None
    shown = [r for r in rows if r["status"] in ("critical", "warning") or r["service_id"] == focus][:5]
    lines = []
    for r in shown:
        g.ref("service", r["service_id"], f"Service {r['name']}", f"/services/{r['service_id']}")
        used = f"{r['budget_used_30d']:.0%} of the 30-day budget used" if r["budget_used_30d"] is not None else "no 30-day data"
        burn = f"burn {r['burn_rate_1h']:.1f}× over 1 h" if r["burn_rate_1h"] is not None else "no 1-hour data"
        lines.append(f"{r['name']} (tier {r['tier']}, target {r['target']}%): {r['status']} — {burn}, {used}"
                     + (f"; {'; '.join(r['reasons'])}" if r["reasons"] else ""))
    g.add("Error budgets", lines or [f"No service is burning error budget ({len(rows)} service(s) checked)."])


def compliance_section(g: Grounding, org_id: int, now: dt.datetime) -> None:
    from zentro.compliance.engine import assess_all

    results = sorted(assess_all(org_id, now=now).values(), key=lambda r: r.readiness)
    lines = []
    for fw in results[:3]:
        g.ref("framework", fw.key, f"{fw.name} readiness", f"/compliance/frameworks/{fw.slug}")
        lines.append(f"{fw.name}: readiness {fw.readiness:.0f} / 100, {len(fw.gaps)} gap(s).")
    gaps = sorted((c for fw in results for c in fw.gaps[:3]), key=lambda c: (c.score, c.tag))[:5]
    for c in gaps:
        g.ref("control", c.tag, f"{c.tag} {c.title}", f"/compliance/controls/{c.tag}")
        lines.append(f"• {c.tag} {c.title}: score {c.score:.0f} ({c.state}) — {c.reason}")
    g.add("Compliance gaps", lines or ["No framework is loaded."])


def overview_section(g: Grounding, org_id: int, now: dt.datetime) -> None:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    active = sorted(db.session.scalars(select(Incident).where(Incident.org_id == org_id,
                                                              Incident.status.in_(ACTIVE_STATUSES)).limit(200)),
                    key=lambda i: (order.get(i.severity, 9), i.started_at))
    lines = [f"{len(active)} active incident(s)." if active else "No active incidents."]
    for inc in active[:5]:
        _incident_ref(g, inc)
        lines.append(f"• {inc.ref} {inc.title} — {inc.severity}, {inc.status}, open {_ago(now - inc.started_at)}")
    g.add("Right now", lines)


# --- answers -------------------------------------------------------------------------------------------

def ground(org_id: int, message: str, *, incident_id: int | None = None, now: dt.datetime | None = None) -> Grounding:
    """Facts and references for ``message`` in the org (and the incident in context)."""
    now = now or utcnow()
    inc = find_incident(org_id, message, incident_id)
    intents = detect_intents(message) or (["status", "action"] if inc is not None else ["overview", "budget"])
    g = Grounding(intents, inc)
    for intent in intents:
        if intent == "overview" or (inc is None and intent in ("status", "timeline")):
            if not any(s.title == "Right now" for s in g.sections):
                overview_section(g, org_id, now)
        elif intent == "status":
            status_section(g, inc, now)
        elif intent == "timeline":
            timeline_section(g, inc)
        elif intent == "cause":
            if inc is not None:
                cause_section(g, inc)
            else:
                g.add("Likely cause", ["Name an incident (e.g. INC-42) or ask from its page to see its RCA."])
        elif intent == "action":
            action_section(g, inc, org_id)
        elif intent == "similar":
            similar_section(g, org_id, inc, message)
        elif intent == "budget":
            budget_section(g, org_id, inc, now)
        elif intent == "compliance":
            compliance_section(g, org_id, now)
    return g


def answer(g: Grounding) -> str:
    head = "Here is what your records show" + (f" for {g.incident.ref}" if g.incident is not None else "") + "."
    return head + "\n\n" + g.text()


GENERAL = {
    "status": "Keep one written status: impact, start time, current state, next update time. Post it where "
              "responders and stakeholders look, and update it on a fixed cadence (e.g. every 30 minutes).",
    "timeline": "Record each action and observation with its time as you go; the timeline is the backbone of the "
                "post-incident review.",
    "cause": "Start with what changed: deploys, config and flag changes on the service and what it depends on, "
             "then upstream incidents and open vulnerabilities. Rank hypotheses by evidence, not hunches.",
    "action": "Mitigate before you fix: roll back the latest change, fail over or shed load. Dry-run automated "
              "actions, get an approval where a guardrail asks for one, and write down the rollback plan.",
    "similar": "Search past incidents on the same service and with similar symptoms; their resolution notes often "
               "hold the fastest mitigation.",
    "budget": "Error budget = (1 − SLO target) × events in the window. A burn rate of 14.4× over 1 hour spends 2 % "
              "of a 30-day budget; page on fast burn, ticket on slow burn.",
    "compliance": "Incident handling is evidence: acknowledged, timed, reviewed incidents and approved changes "
                  "count towards SOC 2 CC7 / ISO 27001 A.5.24–A.5.27 and change management (CC8.1, A.8.32).",
    "overview": "Triage: acknowledge, set severity, name a commander, open a channel, then stabilise.",
}


def anonymous_answer(message: str) -> str:
    """General incident-response guidance for callers who are not signed in: no org data at all."""
    intents = detect_intents(message) or ["overview", "action"]
    return "\n\n".join([*(GENERAL[i] for i in intents if i in GENERAL), SIGN_IN])
