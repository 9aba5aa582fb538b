"""Root-cause analysis (RCA): ranked, explainable hypotheses for an incident, and the runs that make them.

Deterministic and offline: the same data gives the same hypotheses, and every evidence id is a row
of the incident's org that the engine read (no LLM here; one may later narrate, never add ids).

The model
---------
The incident's *service* is its ``service_id`` (or, when it has none, the org service most of its
alerts name). Its *upstream* services are what it depends on, transitively: ``ServiceDependency``
"A depends_on B" makes B upstream of A, walked breadth-first to depth 3 (depth 0 is the service
itself, the shortest path wins, cycles are ignored). The *window* is the ``window_hours`` (default 6)
before the incident's ``started_at``.

Candidate causes, one hypothesis each:

=================  =============================================================================
category           what qualifies
=================  =============================================================================
change             a ChangeEvent (deploy/config/flag/infra) on the service or an upstream
                   service, inside the window (occurred_at in [start − window, start])
upstream           an upstream service with incidents active at the start (started by
                   start + 15 min, not resolved before start − 15 min) and/or alerts naming it
                   that fired between start − window and start + 15 min; one hypothesis per service
vulnerability      an open high/critical Finding on the service or an upstream service, or one
                   that opened this incident
similar_incident   a resolved/closed earlier incident of the org on the same service, or whose
                   title shares ≥ 30 % of normalized tokens (Jaccard); its recorded cause is the
                   top hypothesis of its latest succeeded RCA run, else its resolution note
alert_signal       a component named by the incident's own alerts (labels such as component,
                   dependency, db, queue, job, app, service, or the alert's service) other than
                   the incident's service
=================  =============================================================================

Confidence is a weighted sum of factors, each factor a value in [0, 1]::

    confidence = round(min(1, Σ weight_i × value_i), 2)       contribution_i = weight_i × value_i

Every hypothesis lists its factors (name, value, weight, contribution, and a sentence saying why),
so the number can be recomputed by hand. The weights per category (the maximum confidence is their
sum; symptoms and history can never look as certain as a fresh change on the service itself):

- change: recency 0.45 (0.5 ^ (minutes before start / 60): halves every hour), proximity 0.30,
  change kind 0.10 (deploy 1.0, config 0.9, infra 0.8, flag 0.7), corroboration 0.15 (1 when the
  incident's alerts or timeline mention the change's ref, or the upstream service's name).
- upstream: proximity 0.35, lead time 0.30 (1.0 when the upstream trouble began up to 60 min before
  ours, 0.5 when earlier, 0.3 when it began after ours), severity 0.20 (worst signal), signals 0.15
  (min(1, n / 3) incidents, alerts and timeline mentions).
- vulnerability: linked 0.35 (the finding opened this incident), severity 0.20 (critical 1.0, high
  0.75), novelty 0.20 (first seen inside the window 1.0, within 7 days 0.5, older 0.1), proximity
  0.15, exposure 0.10 (internet-facing service 1.0, else 0.3).
- similar_incident (max 0.65: history is a prior, not evidence about this occurrence): title
  similarity 0.25 (Jaccard), recorded cause 0.20 (1 when known), same service 0.15, recency 0.05
  (0.5 ^ (days before our start / 90)).
- alert_signal (max 0.6: alerts describe symptoms): share 0.25 (alerts naming it / all the incident's
  alerts), severity 0.10, known service 0.15 (proximity when it is a service on the path, 0.4 another
  org service, 0.2 unknown), first to fire 0.10.

Proximity by depth: 0 → 1.0, 1 → 0.7, 2 → 0.45, 3 → 0.25. Severity: critical 1.0, high 0.75,
medium 0.5, low 0.25.

Ranking: confidence descending, then category (change, upstream, vulnerability, similar_incident,
alert_signal), then the newest evidence first, then title. Candidates under 0.10 are dropped and at
most 10 are kept. When none qualifies, a single "insufficient evidence" hypothesis is returned whose
one factor is the strongest discarded candidate's confidence (0 when there was none).

Evidence entries are ``{type, id, summary, at}`` with type change_event | incident | alert | finding |
timeline_event (timeline events add the ``incident_id`` whose timeline holds them); every loader filters by the org, so an id always names an existing row of the org.

Runs
----
``start_run`` checks the plan's analyses-per-hour quota (free 2, pro 20, enterprise unlimited; runs
the org started in the last hour, counted in the database) and inserts a queued ``RcaRun`` holding
``running_incident_id`` (unique): a second run of the same incident while one is queued or running is
409, also under concurrency (the unique constraint is the backstop). An executor then runs
``execute_run`` — in a background thread with its own app context and session (``thread``, the
default), or in the caller's thread (``inline``), chosen by ``ZENTRO_RCA_EXECUTION``; tests inject
their own with ``set_executor``. The run goes queued → running → succeeded | failed | cancelled
through the stages in ``STAGES``; before each one the stage and progress are written to the database
(where the SSE stream and the panel read them) and cancellation is checked. Every state change is a
conditional UPDATE on the expected status, so a cancel racing a finishing run leaves exactly one
outcome. A queued/running run whose worker has not reported for ``STALE_AFTER`` is failed as abandoned
by the next start. Success stores the hypotheses, appends an "rca" timeline event with the top one,
and audits ``rca.completed``.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

from flask import Flask
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from zentro.accounts.models import Org
from zentro.audit.service import Actor, record
from zentro.extensions import db
from zentro.incidents.models import Alert, Incident, RcaRun, TimelineEvent
from zentro.incidents.service import add_event, get_incident, lock_org
from zentro.ingest.models import Finding
from zentro.platform.errors import ApiError, not_found
from zentro.platform.types import iso, utcnow
from zentro.reliability.models import ChangeEvent, Service, ServiceDependency

log = logging.getLogger("zentro.rca")

DEFAULT_WINDOW_HOURS = 6
MAX_WINDOW_HOURS = 72
MAX_DEPTH = 3
RECENCY_HALF_LIFE = dt.timedelta(minutes=60)
LEAD_TIME_CLOSE = dt.timedelta(minutes=60)
CONCURRENCY_SLACK = dt.timedelta(minutes=15)
SIMILAR_HALF_LIFE_DAYS = 90
MIN_JACCARD = 0.3
MIN_CONFIDENCE = 0.10
MAX_HYPOTHESES = 10
MAX_EVIDENCE = 12
SIMILAR_LIMIT = 3
SCAN_LIMIT = 500

PROXIMITY = {0: 1.0, 1: 0.7, 2: 0.45, 3: 0.25}
SEVERITY_VALUE = {"critical": 1.0, "high": 0.75, "medium": 0.5, "low": 0.25, "info": 0.1}
CHANGE_KIND_VALUE = {"deploy": 1.0, "config": 0.9, "infra": 0.8, "flag": 0.7}
WEIGHTS = {
    "change": {"recency": 0.45, "proximity": 0.30, "change_kind": 0.10, "corroboration": 0.15},
    "upstream": {"proximity": 0.35, "lead_time": 0.30, "severity": 0.20, "signals": 0.15},
    "vulnerability": {"linked": 0.35, "severity": 0.20, "novelty": 0.20, "proximity": 0.15, "exposure": 0.10},
    "similar_incident": {"title_similarity": 0.25, "recorded_cause": 0.20, "same_service": 0.15, "recency": 0.05},
    "alert_signal": {"share": 0.25, "severity": 0.10, "known_service": 0.15, "first_to_fire": 0.10},
}
CATEGORY_ORDER = ("change", "upstream", "vulnerability", "similar_incident", "alert_signal", "insufficient_evidence")
COMPONENT_LABELS = ("component", "dependency", "upstream", "database", "db", "queue", "cache", "job", "deployment",
                    "app", "service")
STOPWORDS = frozenset("a an and are as at be by for from in is it of on or the to was with via after before during "
                      "high low error errors alert alerts incident".split())


# ---------------------------------------------------------------------------------------------- facts
# Plain snapshots of the rows the engine reads, so scoring is pure and survives the session.

@dataclass(frozen=True)
class Svc:
    id: int
    name: str
    depth: int
    path: tuple[str, ...]  # names from the incident's service up to this one
    internet_facing: bool = False


@dataclass(frozen=True)
class IncidentFacts:
    id: int
    ref: str
    title: str
    severity: str
    status: str
    service_id: int | None
    started_at: dt.datetime
    resolved_at: dt.datetime | None = None


@dataclass(frozen=True)
class ChangeFacts:
    id: int
    service_id: int
    kind: str
    summary: str
    ref: str
    occurred_at: dt.datetime


@dataclass(frozen=True)
class AlertFacts:
    id: int
    incident_id: int | None
    title: str
    severity: str
    status: str
    service_name: str
    labels: dict
    starts_at: dt.datetime


@dataclass(frozen=True)
class FindingFacts:
    id: int
    title: str
    severity: str
    asset: str
    cve: str
    service_id: int | None
    incident_id: int | None
    first_seen_at: dt.datetime


@dataclass(frozen=True)
class EventFacts:
    id: int
    incident_id: int
    kind: str
    body: str
    created_at: dt.datetime


@dataclass(frozen=True)
class PastIncident:
    incident: IncidentFacts
    cause: str = ""
    cause_source: str = ""  # "RCA run #12" | "resolution note"
    cause_event: EventFacts | None = None


@dataclass
class Context:
    org_id: int
    incident: IncidentFacts
    window: dt.timedelta
    services: dict[int, Svc] = field(default_factory=dict)  # the service (depth 0) and its upstream
    alerts: list[AlertFacts] = field(default_factory=list)  # the incident's own alerts
    timeline: list[EventFacts] = field(default_factory=list)
    org_services: dict[str, int] = field(default_factory=dict)  # lower-cased name → id
    service_source: str = ""  # incident | alerts | ""

    @property
    def service(self) -> Svc | None:
        return next((s for s in self.services.values() if s.depth == 0), None)

    @property
    def upstream(self) -> list[Svc]:
        return [s for s in self.services.values() if s.depth > 0]


# ----------------------------------------------------------------------------------------- hypotheses

@dataclass(frozen=True)
class Factor:
    name: str
    value: float
    weight: float
    detail: str = ""

    @property
    def contribution(self) -> float:
        return self.value * self.weight

    def json(self) -> dict:
        return {"name": self.name, "value": round(self.value, 3), "weight": self.weight,
                "contribution": round(self.contribution, 3), "detail": self.detail}


@dataclass(frozen=True)
class Evidence:
    type: str  # change_event | incident | alert | finding | timeline_event
    id: int
    summary: str
    at: dt.datetime | None
    incident_id: int | None = None  # timeline events: the incident whose timeline holds it

    def json(self) -> dict:
        out = {"type": self.type, "id": self.id, "summary": self.summary[:300], "at": iso(self.at)}
        if self.incident_id is not None:
            out["incident_id"] = self.incident_id
        return out


@dataclass
class Hypothesis:
    title: str
    category: str
    factors: list[Factor]
    evidence: list[Evidence]
    detail: str = ""

    @property
    def confidence(self) -> float:
        return round(min(1.0, max(0.0, sum(f.contribution for f in self.factors))), 2)

    def json(self, rank: int) -> dict:
        return {"rank": rank, "title": self.title[:300], "category": self.category, "confidence": self.confidence,
                "detail": self.detail, "factors": [f.json() for f in self.factors],
                "evidence": [e.json() for e in self.evidence[:MAX_EVIDENCE]]}


def _factors(category: str, values: dict[str, tuple[float, str]]) -> list[Factor]:
    weights = WEIGHTS[category]
    return [Factor(name, max(0.0, min(1.0, values[name][0])), weight, values[name][1]) for name, weight in weights.items()]


def _minutes(delta: dt.timedelta) -> str:
    mins = abs(delta.total_seconds()) / 60
    if mins < 120:
        return f"{mins:.0f} min"
    if mins < 48 * 60:
        return f"{mins / 60:.1f} h"
    return f"{mins / 1440:.0f} days"


def _proximity(svc: Svc) -> tuple[float, str]:
    if svc.depth == 0:
        return PROXIMITY[0], f"on the incident's service {svc.name}"
    return PROXIMITY[svc.depth], f"{svc.name} is upstream at depth {svc.depth} ({' → '.join(svc.path)})"


def _mentions(text: str, needle: str) -> bool:
    needle = needle.strip().lower()
    if len(needle) < 3:
        return False
    return re.search(rf"(?<![\w-]){re.escape(needle)}(?![\w-])", text.lower()) is not None


def _alert_text(a: AlertFacts) -> str:
    return " ".join([a.title, a.service_name, *(f"{k}={v}" for k, v in sorted(a.labels.items()) if isinstance(v, str))])


def tokens(text: str) -> set[str]:
    """Normalized title tokens: lower-case alphanumeric runs of 2+ characters, minus stopwords."""
    return {t for t in re.findall(r"[a-z0-9]+", text.lower()) if len(t) >= 2 and t not in STOPWORDS}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def upstream_graph(root_id: int, edges: list[tuple[int, int]], names: dict[int, str],
                   internet: dict[int, bool] | None = None, max_depth: int = MAX_DEPTH) -> dict[int, Svc]:
    """Breadth-first walk from ``root_id`` along (service_id → depends_on_id) edges to ``max_depth``."""
    internet = internet or {}
    deps: dict[int, list[int]] = {}
    for src, dst in edges:
        deps.setdefault(src, []).append(dst)
    out = {root_id: Svc(root_id, names.get(root_id, f"service {root_id}"), 0, (names.get(root_id, ""),),
                        internet.get(root_id, False))}
    frontier = [root_id]
    for depth in range(1, max_depth + 1):
        nxt = []
        for sid in frontier:
            for dst in sorted(deps.get(sid, [])):
                if dst in out:
                    continue
                out[dst] = Svc(dst, names.get(dst, f"service {dst}"), depth, (*out[sid].path, names.get(dst, "")),
                               internet.get(dst, False))
                nxt.append(dst)
        frontier = nxt
    return out


# ------------------------------------------------------------------------------------ evidence makers

def ev_change(c: ChangeFacts, svc: Svc | None) -> Evidence:
    where = svc.name if svc else f"service {c.service_id}"
    return Evidence("change_event", c.id, f"{c.kind} on {where}: {c.summary}" + (f" ({c.ref})" if c.ref else ""),
                    c.occurred_at)


def ev_incident(i: IncidentFacts) -> Evidence:
    return Evidence("incident", i.id, f"{i.ref} {i.title} ({i.severity}, {i.status})", i.started_at)


def ev_alert(a: AlertFacts) -> Evidence:
    return Evidence("alert", a.id, f"{a.title} [{a.severity}, {a.status}]" + (f" on {a.service_name}" if a.service_name else ""),
                    a.starts_at)


def ev_finding(f: FindingFacts, svc: Svc | None) -> Evidence:
    where = svc.name if svc else (f.asset or "unassigned asset")
    return Evidence("finding", f.id, f"{f.severity} {f.title} on {where}" + (f" ({f.cve})" if f.cve else ""), f.first_seen_at)


def ev_event(e: EventFacts) -> Evidence:
    return Evidence("timeline_event", e.id, f"{e.kind}: {e.body[:200]}", e.created_at, e.incident_id)


# -------------------------------------------------------------------------------------------- scoring
# Pure functions: (context, loaded facts) → hypotheses.

def score_changes(ctx: Context, changes: list[ChangeFacts]) -> list[Hypothesis]:
    start = ctx.incident.started_at
    out = []
    for c in changes:
        svc = ctx.services.get(c.service_id)
        if svc is None or not (start - ctx.window <= c.occurred_at <= start):
            continue
        before = start - c.occurred_at
        recency = 0.5 ** (before / RECENCY_HALF_LIFE)
        kind = CHANGE_KIND_VALUE.get(c.kind, 0.7)
        mentions: list[Evidence] = []
        needles = ([c.ref] if len(c.ref.strip()) >= 4 else []) + ([svc.name] if svc.depth > 0 else [])
        for needle in needles:
            mentions += [ev_alert(a) for a in ctx.alerts if _mentions(_alert_text(a), needle)]
            mentions += [ev_event(e) for e in ctx.timeline if _mentions(e.body, needle)]
        mentions = list({(m.type, m.id): m for m in mentions}.values())
        factors = _factors("change", {
            "recency": (recency, f"{_minutes(before)} before the incident started; the weight halves every hour"),
            "proximity": _proximity(svc),
            "change_kind": (kind, f"a {c.kind} change"),
            "corroboration": (1.0 if mentions else 0.0,
                              f"mentioned by {len(mentions)} of the incident's alerts/timeline events" if mentions
                              else "not mentioned by the incident's alerts or timeline"),
        })
        title = f"{c.kind.capitalize()} on {svc.name}: {c.summary}"
        where = f"on {svc.name} itself" if svc.depth == 0 else f"on upstream {svc.name} ({' → '.join(svc.path)})"
        out.append(Hypothesis(title, "change", factors, [ev_change(c, svc), *mentions],
                              f"{c.kind.capitalize()} {_minutes(before)} before the incident started, {where}"))
    return out


def score_upstream(ctx: Context, incidents: list[IncidentFacts], alerts: list[AlertFacts]) -> list[Hypothesis]:
    start = ctx.incident.started_at
    by_name = {s.name.lower(): s for s in ctx.upstream}
    groups: dict[int, dict] = {}
    for inc in incidents:
        svc = ctx.services.get(inc.service_id) if inc.service_id is not None else None
        if svc is None or svc.depth == 0 or inc.id == ctx.incident.id:
            continue
        groups.setdefault(svc.id, {"svc": svc, "incidents": [], "alerts": []})["incidents"].append(inc)
    for a in alerts:
        svc = by_name.get(a.service_name.lower())
        if svc is None or a.incident_id == ctx.incident.id:
            continue
        groups.setdefault(svc.id, {"svc": svc, "incidents": [], "alerts": []})["alerts"].append(a)
    out = []
    for g in groups.values():
        svc: Svc = g["svc"]
        incs, alts = g["incidents"], g["alerts"]
        notes = [e for e in ctx.timeline if _mentions(e.body, svc.name)]
        first = min([i.started_at for i in incs] + [a.starts_at for a in alts])
        lead = start - first
        if lead < dt.timedelta(0):
            lead_value, lead_text = 0.3, f"began {_minutes(lead)} after this incident (a symptom or a shared cause)"
        elif lead <= LEAD_TIME_CLOSE:
            lead_value, lead_text = 1.0, f"began {_minutes(lead)} before this incident"
        else:
            lead_value, lead_text = 0.5, f"began {_minutes(lead)} before this incident (long-running)"
        worst = max([SEVERITY_VALUE.get(i.severity, 0.5) for i in incs] + [SEVERITY_VALUE.get(a.severity, 0.5) for a in alts])
        n = len(incs) + len(alts) + len(notes)
        factors = _factors("upstream", {
            "proximity": _proximity(svc),
            "lead_time": (lead_value, lead_text),
            "severity": (worst, "worst severity among its incidents and alerts"),
            "signals": (min(1.0, n / 3), f"{len(incs)} incident(s), {len(alts)} alert(s), {len(notes)} timeline mention(s)"),
        })
        evidence = ([ev_incident(i) for i in sorted(incs, key=lambda i: i.started_at)]
                    + [ev_alert(a) for a in sorted(alts, key=lambda a: a.starts_at)] + [ev_event(e) for e in notes])
        out.append(Hypothesis(f"Upstream dependency {svc.name} degraded", "upstream", factors, evidence,
                              f"{svc.name} is upstream of {ctx.service.name if ctx.service else 'the service'} "
                              f"({' → '.join(svc.path)})"))
    return out


def score_findings(ctx: Context, findings: list[FindingFacts]) -> list[Hypothesis]:
    start = ctx.incident.started_at
    out = []
    for f in findings:
        svc = ctx.services.get(f.service_id) if f.service_id is not None else None
        linked = f.incident_id == ctx.incident.id
        if svc is None and not linked:
            continue
        age = start - f.first_seen_at
        if age <= ctx.window:
            novelty, novelty_text = 1.0, f"first seen {_minutes(age)} {'before' if age >= dt.timedelta(0) else 'after'} the start"
        elif age <= dt.timedelta(days=7):
            novelty, novelty_text = 0.5, f"first seen {_minutes(age)} before the start"
        else:
            novelty, novelty_text = 0.1, f"known for {_minutes(age)}"
        prox = _proximity(svc) if svc else (0.0, "not on the incident's service or its dependencies")
        exposure = (1.0, f"{svc.name} is internet-facing") if svc and svc.internet_facing else (
            0.3, "not internet-facing" if svc else "exposure unknown")
        factors = _factors("vulnerability", {
            "linked": (1.0 if linked else 0.0, "this finding opened the incident" if linked else "not linked to this incident"),
            "severity": (SEVERITY_VALUE.get(f.severity, 0.5), f"{f.severity} severity"),
            "novelty": (novelty, novelty_text),
            "proximity": prox,
            "exposure": exposure,
        })
        where = svc.name if svc else (f.asset or "an asset")
        out.append(Hypothesis(f"Open {f.severity} vulnerability on {where}: {f.title}", "vulnerability", factors,
                              [ev_finding(f, svc)], f.cve or f.title))
    return out


def score_similar(ctx: Context, past: list[PastIncident]) -> list[Hypothesis]:
    mine = tokens(ctx.incident.title)
    out = []
    for p in past:
        inc = p.incident
        if inc.id == ctx.incident.id:
            continue
        sim = jaccard(mine, tokens(inc.title))
        same = ctx.incident.service_id is not None and inc.service_id == ctx.incident.service_id
        if not same and sim < MIN_JACCARD:
            continue
        age_days = max(0.0, (ctx.incident.started_at - inc.started_at).total_seconds() / 86400)
        factors = _factors("similar_incident", {
            "title_similarity": (sim, f"{sim:.0%} of title tokens shared with {inc.ref}"),
            "recorded_cause": (1.0 if p.cause else 0.0,
                               f"cause recorded by {p.cause_source}" if p.cause else "no cause was recorded"),
            "same_service": (1.0 if same else 0.0, "same service" if same else "another service"),
            "recency": (0.5 ** (age_days / SIMILAR_HALF_LIFE_DAYS), f"{age_days:.0f} days earlier; halves every 90 days"),
        })
        title = f"Recurrence of {inc.ref}: {p.cause}" if p.cause else f"Similar to {inc.ref}: {inc.title}"
        evidence = [ev_incident(inc)] + ([ev_event(p.cause_event)] if p.cause_event else [])
        out.append(Hypothesis(title, "similar_incident", factors, evidence,
                              f"{inc.ref} “{inc.title}”" + (f"; cause from {p.cause_source}" if p.cause else "")))
    out.sort(key=lambda h: -h.confidence)
    return out[:SIMILAR_LIMIT]


def alert_components(a: AlertFacts) -> set[str]:
    names = {str(v).strip() for k, v in a.labels.items()
             if k.lower() in COMPONENT_LABELS and isinstance(v, str) and 0 < len(v.strip()) <= 100}
    if a.service_name.strip():
        names.add(a.service_name.strip())
    return names


def score_alerts(ctx: Context) -> list[Hypothesis]:
    alerts = sorted(ctx.alerts, key=lambda a: (a.starts_at, a.id))
    if not alerts:
        return []
    own = ctx.service.name.lower() if ctx.service else None
    by_component: dict[str, dict] = {}
    for a in alerts:
        for name in alert_components(a):
            if name.lower() == own:
                continue
            by_component.setdefault(name.lower(), {"name": name, "alerts": []})["alerts"].append(a)
    first = alerts[0]
    out = []
    for key, g in sorted(by_component.items()):
        named: list[AlertFacts] = g["alerts"]
        sid = ctx.org_services.get(key)
        if sid is not None and sid in ctx.services:
            known = _proximity(ctx.services[sid])
        elif sid is not None:
            known = (0.4, f"{g['name']} is a service of the org, not on this dependency path")
        else:
            known = (0.2, f"{g['name']} is not a known service")
        factors = _factors("alert_signal", {
            "share": (len(named) / len(alerts), f"named by {len(named)} of {len(alerts)} alert(s)"),
            "severity": (max(SEVERITY_VALUE.get(a.severity, 0.5) for a in named), "worst severity of those alerts"),
            "known_service": known,
            "first_to_fire": (1.0 if first in named else 0.0,
                              "named by the first alert to fire" if first in named else "not in the first alert"),
        })
        out.append(Hypothesis(f"Component {g['name']} named by the incident's alerts", "alert_signal", factors,
                              [ev_alert(a) for a in named]))
    return out


def rank(candidates: list[Hypothesis]) -> list[dict]:
    """Order, cut, number; or the single insufficient-evidence hypothesis."""
    def key(h: Hypothesis):
        newest = max((e.at for e in h.evidence if e.at), default=None)
        return (-h.confidence, CATEGORY_ORDER.index(h.category), -(newest.timestamp() if newest else 0), h.title)

    kept = sorted((h for h in candidates if h.confidence >= MIN_CONFIDENCE), key=key)[:MAX_HYPOTHESES]
    if not kept:
        best = max((h.confidence for h in candidates), default=0.0)
        factor = Factor("strongest_candidate", best, 1.0,
                        f"{len(candidates)} candidate(s) examined; none reached {MIN_CONFIDENCE:.2f}" if candidates
                        else "no changes, upstream signals, open vulnerabilities, similar incidents or alert components found")
        kept = [Hypothesis("Insufficient evidence to name a cause", "insufficient_evidence", [factor], [],
                           "Record changes (deploys) and service dependencies so the next analysis has something to rank.")]
    return [h.json(i) for i, h in enumerate(kept, 1)]


# -------------------------------------------------------------------------------------------- loaders
# Every query is filtered by org_id.

def _facts_incident(i: Incident) -> IncidentFacts:
    return IncidentFacts(i.id, i.ref, i.title, i.severity, i.status, i.service_id, i.started_at, i.resolved_at)


def _facts_alert(a: Alert) -> AlertFacts:
    return AlertFacts(a.id, a.incident_id, a.title, a.severity, a.status, a.service_name or "",
                      a.labels if isinstance(a.labels, dict) else {}, a.starts_at)


def _facts_event(e: TimelineEvent) -> EventFacts:
    return EventFacts(e.id, e.incident_id, e.kind, e.body or "", e.created_at)


def load_context(org_id: int, incident_id: int, window_hours: int = DEFAULT_WINDOW_HOURS) -> Context:
    inc = get_incident(org_id, incident_id)
    ctx = Context(org_id, _facts_incident(inc), dt.timedelta(hours=window_hours))
    ctx.alerts = [_facts_alert(a) for a in db.session.scalars(
        select(Alert).where(Alert.org_id == org_id, Alert.incident_id == inc.id).order_by(Alert.id).limit(SCAN_LIMIT))]
    ctx.timeline = [_facts_event(e) for e in db.session.scalars(
        select(TimelineEvent).where(TimelineEvent.org_id == org_id, TimelineEvent.incident_id == inc.id,
                                    TimelineEvent.kind != "rca").order_by(TimelineEvent.id).limit(SCAN_LIMIT))]
    rows = db.session.execute(select(Service.id, Service.name, Service.internet_facing).where(Service.org_id == org_id)).all()
    names = {r.id: r.name for r in rows}
    internet = {r.id: bool(r.internet_facing) for r in rows}
    ctx.org_services = {r.name.lower(): r.id for r in rows}
    root, ctx.service_source = inc.service_id, "incident"
    if root is None:  # fall back to the org service most of its alerts name
        counts: dict[int, int] = {}
        for a in ctx.alerts:
            sid = ctx.org_services.get(a.service_name.strip().lower())
            if sid is not None:
                counts[sid] = counts.get(sid, 0) + 1
        root = min(counts, key=lambda s: (-counts[s], s)) if counts else None
        ctx.service_source = "alerts" if root is not None else ""
    if root is not None:
        edges = [(r.service_id, r.depends_on_id) for r in db.session.execute(
            select(ServiceDependency.service_id, ServiceDependency.depends_on_id).where(ServiceDependency.org_id == org_id))]
        ctx.services = upstream_graph(root, edges, names, internet)
    return ctx


def load_changes(ctx: Context) -> list[ChangeFacts]:
    if not ctx.services:
        return []
    start = ctx.incident.started_at
    rows = db.session.scalars(select(ChangeEvent).where(
        ChangeEvent.org_id == ctx.org_id, ChangeEvent.service_id.in_(list(ctx.services)),
        ChangeEvent.occurred_at >= start - ctx.window, ChangeEvent.occurred_at <= start,
    ).order_by(ChangeEvent.occurred_at.desc(), ChangeEvent.id.desc()).limit(SCAN_LIMIT))
    return [ChangeFacts(c.id, c.service_id, c.kind, c.summary, c.ref or "", c.occurred_at) for c in rows]


def load_upstream(ctx: Context) -> tuple[list[IncidentFacts], list[AlertFacts]]:
    up = ctx.upstream
    if not up:
        return [], []
    start = ctx.incident.started_at
    incidents = [_facts_incident(i) for i in db.session.scalars(select(Incident).where(
        Incident.org_id == ctx.org_id, Incident.id != ctx.incident.id, Incident.service_id.in_([s.id for s in up]),
        Incident.started_at <= start + CONCURRENCY_SLACK,
        or_(Incident.resolved_at.is_(None), Incident.resolved_at >= start - CONCURRENCY_SLACK),
    ).order_by(Incident.started_at, Incident.id).limit(SCAN_LIMIT))]
    alerts = [_facts_alert(a) for a in db.session.scalars(select(Alert).where(
        Alert.org_id == ctx.org_id, func.lower(Alert.service_name).in_([s.name.lower() for s in up]),
        or_(Alert.incident_id.is_(None), Alert.incident_id != ctx.incident.id),
        Alert.starts_at >= start - ctx.window, Alert.starts_at <= start + CONCURRENCY_SLACK,
    ).order_by(Alert.starts_at, Alert.id).limit(SCAN_LIMIT))]
    return incidents, alerts


def load_findings(ctx: Context) -> list[FindingFacts]:
    where = Finding.incident_id == ctx.incident.id
    if ctx.services:
        where = or_(where, Finding.service_id.in_(list(ctx.services)))
    rows = db.session.scalars(select(Finding).where(
        Finding.org_id == ctx.org_id, Finding.status == "open", Finding.severity.in_(("critical", "high")), where,
    ).order_by(Finding.id).limit(SCAN_LIMIT))
    return [FindingFacts(f.id, f.title, f.severity, f.asset or "", f.cve or "", f.service_id, f.incident_id, f.first_seen_at)
            for f in rows]


def recorded_cause(org_id: int, incident_id: int) -> tuple[str, str, EventFacts | None]:
    """(cause, where it was recorded, the timeline event holding it): the top hypothesis of the
    incident's latest succeeded RCA run, else the note given when it was resolved."""
    run = db.session.scalar(select(RcaRun).where(RcaRun.org_id == org_id, RcaRun.incident_id == incident_id,
                                                 RcaRun.status == "succeeded").order_by(RcaRun.id.desc()).limit(1))
    if run is not None and run.hypotheses:
        top = run.hypotheses[0]
        if isinstance(top, dict) and top.get("category") != "insufficient_evidence" and top.get("title"):
            return str(top["title"]), f"RCA run #{run.id}", None
    for ev in db.session.scalars(select(TimelineEvent).where(
            TimelineEvent.org_id == org_id, TimelineEvent.incident_id == incident_id, TimelineEvent.kind == "status",
    ).order_by(TimelineEvent.id.desc()).limit(50)):
        if isinstance(ev.data, dict) and ev.data.get("to") == "resolved":
            _, sep, note = (ev.body or "").partition(": ")
            if sep and note.strip():
                return note.strip(), "resolution note", _facts_event(ev)
    return "", "", None


def load_similar(ctx: Context) -> list[PastIncident]:
    rows = [_facts_incident(i) for i in db.session.scalars(select(Incident).where(
        Incident.org_id == ctx.org_id, Incident.id != ctx.incident.id, Incident.status.in_(("resolved", "closed")),
        Incident.started_at < ctx.incident.started_at,
    ).order_by(Incident.started_at.desc(), Incident.id.desc()).limit(SCAN_LIMIT))]
    mine = tokens(ctx.incident.title)

    def same(i: IncidentFacts) -> bool:
        return ctx.incident.service_id is not None and i.service_id == ctx.incident.service_id

    qualified = [i for i in rows if same(i) or jaccard(mine, tokens(i.title)) >= MIN_JACCARD]
    qualified.sort(key=lambda i: (-(jaccard(mine, tokens(i.title)) + (0.5 if same(i) else 0.0)),
                                  -i.started_at.timestamp(), i.id))
    return [PastIncident(i, *recorded_cause(ctx.org_id, i.id)) for i in qualified[: SIMILAR_LIMIT * 3]]


# ----------------------------------------------------------------------------------------- analysis

class Analysis:
    """The engine as stages over one incident; ``STAGES`` names them in order."""

    def __init__(self, org_id: int, incident_id: int, window_hours: int = DEFAULT_WINDOW_HOURS):
        self.org_id, self.incident_id, self.window_hours = org_id, incident_id, window_hours
        self.ctx: Context | None = None
        self.candidates: list[Hypothesis] = []
        self.hypotheses: list[dict] = []
        self.summary: dict = {"window_hours": window_hours}

    def context(self) -> None:
        self.ctx = load_context(self.org_id, self.incident_id, self.window_hours)
        self.summary.update(
            incident_started_at=iso(self.ctx.incident.started_at),
            service_source=self.ctx.service_source,
            services=[{"id": s.id, "name": s.name, "depth": s.depth}
                      for s in sorted(self.ctx.services.values(), key=lambda s: (s.depth, s.name))],
            alerts_examined=len(self.ctx.alerts), timeline_events_examined=len(self.ctx.timeline))

    def alerts(self) -> None:
        found = score_alerts(self.ctx)
        self.candidates += found
        self.summary["alert_components"] = len(found)

    def changes(self) -> None:
        rows = load_changes(self.ctx)
        self.candidates += score_changes(self.ctx, rows)
        self.summary["changes_examined"] = len(rows)

    def upstream(self) -> None:
        incidents, alerts = load_upstream(self.ctx)
        self.candidates += score_upstream(self.ctx, incidents, alerts)
        self.summary.update(upstream_incidents_examined=len(incidents), upstream_alerts_examined=len(alerts))

    def vulnerabilities(self) -> None:
        rows = load_findings(self.ctx)
        self.candidates += score_findings(self.ctx, rows)
        self.summary["findings_examined"] = len(rows)

    def similar(self) -> None:
        rows = load_similar(self.ctx)
        self.candidates += score_similar(self.ctx, rows)
        self.summary["similar_incidents_examined"] = len(rows)

    def rank(self) -> None:
        self.hypotheses = rank(self.candidates)
        self.summary["candidates"] = len(self.candidates)


STAGES: tuple[tuple[str, str], ...] = (
    ("load context", "context"), ("incident alerts", "alerts"), ("changes", "changes"), ("upstream", "upstream"),
    ("vulnerabilities", "vulnerabilities"), ("similar incidents", "similar"), ("rank", "rank"),
)


def analyze(org_id: int, incident_id: int, window_hours: int = DEFAULT_WINDOW_HOURS) -> tuple[list[dict], dict]:
    """Run every stage at once: (ranked hypotheses, summary of what was examined)."""
    a = Analysis(org_id, incident_id, window_hours)
    for _, method in STAGES:
        getattr(a, method)()
    return a.hypotheses, a.summary


# --------------------------------------------------------------------------------------------- runs

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")
RCA_TAGS = ("SOC2:CC7.4", "ISO27001:A.5.27")  # respond to incidents; learn from them
ANALYSES_PER_HOUR: dict[str, int | None] = {"free": 2, "pro": 20, "enterprise": None}
STALE_AFTER = dt.timedelta(minutes=10)
RCA_ACTOR = Actor("system", "rca", "zentro RCA")


def get_run(org_id: int, run_id: int) -> RcaRun:
    run = db.session.scalar(select(RcaRun).where(RcaRun.org_id == org_id, RcaRun.id == run_id))
    if run is None:
        raise not_found("RCA run")
    return run


def latest_run(org_id: int, incident_id: int) -> RcaRun | None:
    return db.session.scalar(select(RcaRun).where(RcaRun.org_id == org_id, RcaRun.incident_id == incident_id)
                             .order_by(RcaRun.id.desc()).limit(1))


def run_json(run: RcaRun) -> dict:
    return {
        "id": run.id, "incident_id": run.incident_id, "status": run.status, "progress": run.progress,
        "stage": run.stage, "hypotheses": run.hypotheses or [], "summary": run.summary or {}, "error": run.error or "",
        "created_by": run.created_by, "created_at": iso(run.created_at), "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at), "updated_at": iso(run.updated_at),
    }


def check_quota(org_id: int, now: dt.datetime) -> None:
    """The plan's analyses per hour, counted from the runs the org started in the last hour."""
    plan = db.session.scalar(select(Org.plan).where(Org.id == org_id)) or "free"
    limit = ANALYSES_PER_HOUR.get(plan, ANALYSES_PER_HOUR["free"])
    if limit is None:
        return
    since = now - dt.timedelta(hours=1)
    recent = list(db.session.scalars(select(RcaRun.created_at).where(RcaRun.org_id == org_id, RcaRun.created_at > since)
                                     .order_by(RcaRun.created_at)))
    if len(recent) >= limit:
        frees_at = recent[len(recent) - limit] + dt.timedelta(hours=1)
        retry = max(1, math.ceil((frees_at - now).total_seconds()))
        raise ApiError(429, f"The {plan} plan allows {limit} RCA analyses per hour; the next one can start in "
                            f"{retry} s. Upgrade for more.", headers={"Retry-After": str(retry)})


def _active_run(incident_id: int) -> RcaRun | None:
    return db.session.scalar(select(RcaRun).where(RcaRun.running_incident_id == incident_id))


def start_run(org_id: int, incident_id: int, actor: Actor, *, window_hours: int = DEFAULT_WINDOW_HOURS,
              now: dt.datetime | None = None) -> int:
    """Queue a run and commit; returns its id. 404 unknown incident, 429 over the plan's quota,
    409 while another run of the incident is queued or running."""
    now = now or utcnow()
    if not 1 <= window_hours <= MAX_WINDOW_HOURS:
        raise ApiError(400, f"window_hours must be 1–{MAX_WINDOW_HOURS}")
    inc = get_incident(org_id, incident_id)
    ref = inc.ref
    lock_org(org_id)
    holder = _active_run(incident_id)
    if holder is not None:
        if (holder.updated_at or holder.created_at) > now - STALE_AFTER:
            raise ApiError(409, f"RCA run #{holder.id} of {ref} is still {holder.status}; wait for it or cancel it.")
        _abandon(holder, now)
    check_quota(org_id, now)
    run = RcaRun(org_id=org_id, incident_id=incident_id, running_incident_id=incident_id, status="queued", progress=0,
                 stage="queued", hypotheses=[], created_by=actor.label[:320], created_at=now, updated_at=now,
                 summary={"window_hours": window_hours})
    db.session.add(run)
    try:
        db.session.flush()
        run_id = run.id
        record(org_id, "rca.requested", actor, target_type="incident", target_id=incident_id, control_tags=RCA_TAGS,
               data={"ref": ref, "run_id": run_id, "window_hours": window_hours}, now=now)
        db.session.commit()
    except IntegrityError:  # another request queued a run of this incident first
        db.session.rollback()
        raise ApiError(409, f"Another RCA run of {ref} is already queued or running.") from None
    return run_id


def _abandon(run: RcaRun, now: dt.datetime) -> None:
    """A run whose worker stopped reporting (process restarted, thread lost): fail it, free the incident."""
    db.session.execute(update(RcaRun).where(RcaRun.id == run.id, RcaRun.status.in_(ACTIVE)).values(
        status="failed", running_incident_id=None, finished_at=now, updated_at=now,
        error="Abandoned: its worker stopped reporting progress."), execution_options={"synchronize_session": False})
    record(run.org_id, "rca.failed", RCA_ACTOR, target_type="incident", target_id=run.incident_id, control_tags=RCA_TAGS,
           data={"run_id": run.id, "reason": "abandoned"}, now=now)
    db.session.flush()


def cancel_run(org_id: int, run_id: int, actor: Actor, *, now: dt.datetime | None = None) -> None:
    """Cancel a queued or running run and commit (404 unknown, 409 when it is not running)."""
    now = now or utcnow()
    run = get_run(org_id, run_id)
    incident_id = run.incident_id
    result = db.session.execute(update(RcaRun).where(
        RcaRun.org_id == org_id, RcaRun.id == run_id, RcaRun.status.in_(ACTIVE)).values(
        status="cancelled", running_incident_id=None, stage="cancelled", finished_at=now, updated_at=now),
        execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        db.session.rollback()
        status = get_run(org_id, run_id).status
        raise ApiError(409, f"RCA run #{run_id} is not running (it {'was ' if status == 'cancelled' else ''}{status}).")
    inc = get_incident(org_id, incident_id)
    add_event(inc, "rca", f"RCA run #{run_id} cancelled", actor, {"run_id": run_id, "status": "cancelled"}, now)
    record(org_id, "rca.cancelled", actor, target_type="incident", target_id=incident_id, control_tags=RCA_TAGS,
           data={"ref": inc.ref, "run_id": run_id}, now=now)
    db.session.commit()


# ------------------------------------------------------------------------------------------ execution

Gate = Callable[[str], None]


def _move(run_id: int, *, expect: tuple[str, ...], **values) -> bool:
    """Conditional UPDATE of a run in its own transaction; False when its status was not expected."""
    now = utcnow()
    result = db.session.execute(update(RcaRun).where(RcaRun.id == run_id, RcaRun.status.in_(expect))
                                .values(updated_at=now, **values), execution_options={"synchronize_session": False})
    db.session.commit()
    return result.rowcount == 1


def _still_running(run_id: int) -> bool:
    status = db.session.scalar(select(RcaRun.status).where(RcaRun.id == run_id))
    db.session.commit()
    return status == "running"


def execute_run(app: Flask, run_id: int, *, gate: Gate | None = None) -> None:
    """Run one RCA to its end with its own app context and session. ``gate(stage)`` (tests) is called
    after a stage is recorded and before it runs."""
    with app.app_context():
        try:
            _execute(run_id, gate)
        except Exception as exc:  # noqa: BLE001  (the run records its failure; the worker must not die)
            log.exception("RCA run %s failed", run_id)
            db.session.rollback()
            try:
                _fail(run_id, exc)
            except Exception:  # noqa: BLE001
                log.exception("could not record the failure of RCA run %s", run_id)
                db.session.rollback()
        finally:
            db.session.remove()


def _execute(run_id: int, gate: Gate | None) -> None:
    run = db.session.get(RcaRun, run_id)
    if run is None:
        return
    org_id, incident_id = run.org_id, run.incident_id
    window = int((run.summary or {}).get("window_hours", DEFAULT_WINDOW_HOURS))
    db.session.commit()
    analysis = Analysis(org_id, incident_id, window)
    for i, (stage, method) in enumerate(STAGES):
        values = {"stage": stage, "progress": int(100 * i / len(STAGES))}
        if i == 0:
            values.update(status="running", started_at=utcnow())
        if not _move(run_id, expect=("queued",) if i == 0 else ("running",), **values):
            return  # cancelled
        if gate is not None:
            gate(stage)
        if not _still_running(run_id):
            return
        getattr(analysis, method)()
        db.session.commit()  # end the stage's read transaction
    _succeed(run_id, org_id, incident_id, analysis)


def _succeed(run_id: int, org_id: int, incident_id: int, analysis: Analysis) -> None:
    now = utcnow()
    hyps = analysis.hypotheses
    result = db.session.execute(update(RcaRun).where(RcaRun.id == run_id, RcaRun.status == "running").values(
        status="succeeded", progress=100, stage="done", hypotheses=hyps, summary=analysis.summary,
        running_incident_id=None, finished_at=now, updated_at=now), execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        db.session.rollback()
        return
    requested_by = db.session.scalar(select(RcaRun.created_by).where(RcaRun.id == run_id))
    inc = get_incident(org_id, incident_id)
    top = hyps[0]
    add_event(inc, "rca", f"RCA run #{run_id}: {top['title']} (confidence {top['confidence']:.2f})", RCA_ACTOR,
              {"run_id": run_id, "requested_by": requested_by, "hypotheses": len(hyps),
               "top": {k: top[k] for k in ("title", "category", "confidence")},
               "evidence": [{"type": e["type"], "id": e["id"]} for e in top["evidence"]]}, now)
    record(org_id, "rca.completed", RCA_ACTOR, target_type="incident", target_id=incident_id, control_tags=RCA_TAGS,
           data={"ref": inc.ref, "run_id": run_id, "requested_by": requested_by, "hypotheses": len(hyps),
                 "top_title": top["title"], "top_confidence": top["confidence"]}, now=now)
    db.session.commit()


def _fail(run_id: int, exc: Exception) -> None:
    message = exc.detail if isinstance(exc, ApiError) else f"The analysis stopped on an internal error ({type(exc).__name__})."
    now = utcnow()
    result = db.session.execute(update(RcaRun).where(RcaRun.id == run_id, RcaRun.status.in_(ACTIVE)).values(
        status="failed", running_incident_id=None, finished_at=now, updated_at=now, error=message[:1000]),
        execution_options={"synchronize_session": False})
    if result.rowcount == 1:
        run = db.session.get(RcaRun, run_id)
        record(run.org_id, "rca.failed", RCA_ACTOR, target_type="incident", target_id=run.incident_id,
               control_tags=RCA_TAGS, data={"run_id": run_id, "error": message[:300]}, now=now)
    db.session.commit()


class Executor(Protocol):
    def submit(self, app: Flask, run_id: int) -> None: ...


class ThreadExecutor:
    """Each run in a daemon thread of this process (its own app context and session)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def submit(self, app: Flask, run_id: int) -> None:
        t = threading.Thread(target=execute_run, args=(app, run_id), name=f"rca-run-{run_id}", daemon=True)
        self.threads = [x for x in self.threads if x.is_alive()] + [t]
        t.start()


class InlineExecutor:
    """Runs the analysis in the caller's thread before the request answers (simple deployments, tests)."""

    def submit(self, app: Flask, run_id: int) -> None:
        execute_run(app, run_id)


EXECUTOR_KEY = "zentro.rca_executor"
EXECUTION_MODES = {"thread": ThreadExecutor, "inline": InlineExecutor}


def get_executor(app: Flask) -> Executor:
    ex = app.extensions.get(EXECUTOR_KEY)
    if ex is None:
        mode = (app.config.get("ZENTRO_RCA_EXECUTION") or "thread").strip().lower()
        if mode not in EXECUTION_MODES:
            raise RuntimeError(f"ZENTRO_RCA_EXECUTION must be one of {', '.join(EXECUTION_MODES)}, not {mode!r}")
        ex = app.extensions.setdefault(EXECUTOR_KEY, EXECUTION_MODES[mode]())
    return ex


def set_executor(app: Flask, executor: Executor | None) -> None:
    """Inject the executor (tests); None goes back to the configured one."""
    if executor is None:
        app.extensions.pop(EXECUTOR_KEY, None)
    else:
        app.extensions[EXECUTOR_KEY] = executor


def submit(app: Flask, run_id: int) -> None:
    """Hand a committed, queued run to the executor; if it cannot be started the run is failed."""
    try:
        get_executor(app).submit(app, run_id)
    except Exception as exc:  # noqa: BLE001
        log.exception("could not start RCA run %s", run_id)
        db.session.rollback()
        _fail(run_id, exc)
