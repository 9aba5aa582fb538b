"""Compliance pages: the dashboard (readiness per framework with 12-week sparklines, top gaps, overdue
attestations, vendor risk, bundle history), a framework's control table (filter by family and state), and one
control (score breakdown, evidence timeline, crosswalk neighbours, attestations and exceptions). Session only;
viewers may read. Every figure comes from zentro.compliance.engine, the same arithmetic as the API."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy import select

from zentro.accounts.models import User
from zentro.compliance import engine, packs, svg
from zentro.compliance.catalog import UnknownFramework, load_catalog
from zentro.compliance.models import Attestation, ControlException, EvidenceBundle
from zentro.extensions import db
from zentro.platform.auth import current_principal
from zentro.platform.errors import ApiError
from zentro.platform.routes import is_htmx, page_route
from zentro.platform.types import utcnow

bp = Blueprint("compliance_pages", __name__)
PERIOD_DAYS = 30
STATES = ("passing", "at_risk", "failing")


def _pack_links(framework_key: str) -> list[tuple[str, str]]:
    pack = packs.PACK_BY_FRAMEWORK.get(framework_key)
    if pack is None:
        return []
    endpoint = "compliance." + pack.slug.replace("-", "_")
    return [(fmt, url_for(endpoint, format=fmt)) for fmt in ("csv", "json")]


def _emails(user_ids) -> dict[int, str]:
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())


def _trend_points(fr: engine.FrameworkResult) -> list[svg.Point]:
    return [svg.Point(p.week_start.strftime("%m-%d"), p.readiness,
                      f"Week of {p.week_start:%Y-%m-%d}: {p.readiness:g} % ready, {p.passing} passing, "
                      f"{p.evidence_events} tagged audit rows") for p in fr.trend]


@page_route(bp, "/compliance", summary="Compliance dashboard: readiness per framework, gaps, attestations, vendors.")
def dashboard():
    p = current_principal()
    now = utcnow()
    snap = engine.snapshot(p.org.id, PERIOD_DAYS, now, trend_weeks=engine.DEFAULT_TREND_WEEKS)
    results = [snap.assess(key) for key in snap.catalog.frameworks]
    cards = [{"fr": fr, "counts": fr.counts, "gaps": len(fr.gaps),
              "spark": svg.sparkline([t.readiness for t in fr.trend], title=f"{fr.name}: readiness, last 12 weeks",
                                     id_prefix=f"spark-{fr.slug}"),
              "href": url_for("compliance_pages.framework", slug=fr.slug)} for fr in results]
    gaps = []
    for fr in results:
        gaps += [{**g, "framework_name": fr.name} for g in packs.gap_rows(fr, 3)]
    gaps.sort(key=lambda g: (-g["priority"], g["framework"], g["rank"]))
    overdue = engine.overdue_attestations(p.org.id, now, snap.registers, limit=8)
    owners = _emails(r["owner_id"] for r in overdue)
    for r in overdue:
        r["owner"] = owners.get(r["owner_id"], "unassigned")
    bundles = db.session.scalars(select(EvidenceBundle).where(EvidenceBundle.org_id == p.org.id)
                                 .order_by(EvidenceBundle.seq.desc()).limit(5)).all()
    return render_template("compliance/dashboard.html", cards=cards, gaps=gaps[:10], overdue=overdue,
                           attestations=engine.attestation_rollup(p.org.id, now, snap.registers),
                           vendors=packs.vendor_rollup(p.org.id, now), bundles=bundles, now=now,
                           period_days=PERIOD_DAYS)


@page_route(bp, "/compliance/frameworks/<slug>", extra={"path_samples": {"slug": "soc2"}},
            summary="A framework's controls, filterable by family and state, with readiness and trend.")
def framework(slug: str):
    p = current_principal()
    catalog = load_catalog()
    try:
        fw = catalog.resolve_framework(slug)
    except UnknownFramework:
        raise ApiError(404, f"Unknown framework {slug!r}.") from None
    if slug != fw.slug:
        return redirect(url_for("compliance_pages.framework", slug=fw.slug, **request.args.to_dict()))
    family, state = request.args.get("family", ""), request.args.get("state", "")
    errors = []
    if family and family not in {f.id for f in fw.families}:
        errors.append(f"Unknown family {family!r} for {fw.name}: showing every family.")
        family = ""
    if state and state not in STATES:
        errors.append(f"Unknown state {state!r}: use passing, at_risk or failing.")
        state = ""
    fr = engine.assess(p.org.id, fw.key, PERIOD_DAYS, utcnow(), trend_weeks=engine.DEFAULT_TREND_WEEKS)
    rows = [c for c in fr.controls if (not family or c.family == family) and (not state or c.state == state)]
    context = {"fw": fw, "fr": fr, "rows": rows, "family": family, "state": state, "errors": errors,
               "states": STATES, "family_titles": {f.id: f.title for f in fw.families}}
    status = 400 if errors else 200
    if is_htmx():
        return render_template("compliance/_engine_control_table.html", **context), status
    context.update(
        trend=svg.trend_chart(_trend_points(fr), title=f"{fw.name}: weekly readiness, last 12 weeks",
                              id_prefix="fw-trend"),
        bars=svg.readiness_bars([svg.Bar(f"{f.id} {f.title}", f.readiness,
                                         f"{f.id} {f.title}: {f.readiness:g} % ({f.passing} of {f.controls} passing)",
                                         url_for("compliance_pages.framework", slug=fw.slug, family=f.id))
                                 for f in fr.families], title=f"{fw.name}: readiness by family", id_prefix="fw-families"),
        downloads=_pack_links(fw.key), pack=packs.PACK_BY_FRAMEWORK.get(fw.key), period_days=PERIOD_DAYS)
    return render_template("compliance/framework.html", **context), status


def _timeline_link(event) -> str:
    from flask import current_app

    views = current_app.view_functions
    if event.target_type == "incident" and event.target_id.isdigit() and "incidents.incident_detail" in views:
        return url_for("incidents.incident_detail", incident_id=int(event.target_id))
    if event.target_type == "service" and event.target_id.isdigit() and "reliability.service_detail" in views:
        return url_for("reliability.service_detail", service_id=int(event.target_id))
    return url_for("audit.audit_page")


@page_route(bp, "/compliance/controls/<tag>", extra={"path_samples": {"tag": "SOC2:CC6.1"}},
            summary="One control: score breakdown, evidence timeline, crosswalk, attestations and exceptions.")
def control(tag: str):
    p = current_principal()
    catalog = load_catalog()
    if not catalog.has(tag):
        raise ApiError(404, f"Unknown control {tag!r}: use a tag such as SOC2:CC6.1.")
    now = utcnow()
    ctl = catalog.control(tag)
    snap = engine.snapshot(p.org.id, PERIOD_DAYS, now)
    result = snap.assess_control(tag)
    neighbours = []
    for other, strength in catalog.neighbours(tag):
        agg = snap.window.get(other)
        neighbours.append({"tag": other, "strength": strength, "title": catalog.control(other).title,
                           "framework": catalog.framework(other.split(":", 1)[0]).name,
                           "count": agg.count if agg else 0, "last": snap.last.get(other)})
    neighbours.sort(key=lambda n: (n["strength"] != "full", n["tag"]))
    events = engine.evidence_timeline(p.org.id, tag, 50)
    equivalents = catalog.equivalents(tag)
    timeline = [{"event": e, "href": _timeline_link(e),
                 "tags": [t for t in e.control_tags.split() if t in equivalents]} for e in events]
    attestations = db.session.scalars(select(Attestation).where(Attestation.org_id == p.org.id,
                                                                Attestation.control == tag)
                                      .order_by(Attestation.due_at.desc())).all()
    exceptions = db.session.scalars(select(ControlException).where(ControlException.org_id == p.org.id,
                                                                   ControlException.control == tag)
                                    .order_by(ControlException.opened_at.desc())).all()
    emails = _emails([a.owner_id for a in attestations] + [e.approver_id for e in exceptions])
    att_items = {i.id: i for i in snap.registers.attestations.get(tag, ())}
    exc_items = {i.id: i for i in snap.registers.exceptions.get(tag, ())}
    policies = sorted({pol for t in equivalents for pol in snap.registers.policies_by_tag.get(t, ())},
                      key=lambda pol: pol.name)
    fw = catalog.framework(ctl.framework)
    return render_template(
        "compliance/control.html", ctl=ctl, fw=fw, family_title=fw.family(ctl.family).title, c=result,
        neighbours=neighbours, timeline=timeline, attestations=attestations, exceptions=exceptions, emails=emails,
        att_state={i: item.state_at(now) or "rejected" for i, item in att_items.items()},
        exc_open={i: item.open_at(now) for i, item in exc_items.items()}, policies=policies, now=now,
        period_days=PERIOD_DAYS, cap=engine.EXCEPTION_CAP)
