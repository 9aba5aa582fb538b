"""Regulatory obligation heatmap: open obligations due per week of the horizon, by framework, by vendor risk tier
and by testing schedule (obligation kind)."""
from __future__ import annotations

from sqlalchemy import select

from zentro.compliance import obligations as obl
from zentro.compliance.models import VENDOR_TIERS, Vendor
from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _obligation_views as views
from zentro.extensions import db

PROGRAM_WIDE = "(program-wide)"
VENDOR_KINDS = ("vendor_review", "vendor_report")


def _matrix(key: str, title: str, label: str, names: list[str], counts: dict[tuple[str, object], int],
            weeks) -> tuple[Section, Chart]:
    wk = [w.isoformat() for w in weeks]
    rows = []
    for name in names:
        row = {label: name}
        for w, iso in zip(weeks, wk):
            row[iso] = counts.get((name, w), 0)
        row["total"] = sum(row[iso] for iso in wk)
        rows.append(row)
    section = Section(key, title, columns(label, *[(iso, f"Week of {iso}") for iso in wk], "total"), rows)
    chart = Chart(key, title, "heatmap", wk, [Series(r[label], [r[iso] for iso in wk]) for r in rows],
                  unit="obligations", description=f"{title}: one row per {label.replace('_', ' ')}, one column per "
                                                  "week; a cell is the open obligations due.")
    return section, chart


@report("obligation-heatmap", title="Obligation heatmap", category="Obligations", query=ForecastQuery,
        summary="Regulatory obligation heatmap: open obligations due per week by framework, by vendor risk tier and "
                "by testing schedule (obligation kind), with the hottest cell (JSON or CSV).",
        inputs="the open obligations (attestations, vendors, the bundle cadence, checkpoints, evidence requests) and "
               "vendor risk tiers",
        window="from the start of the current ISO week for `weeks` weeks (overdue obligations from earlier weeks "
               "are not shown)",
        definitions={
            "obligations": "Open obligations due inside the horizon (each counted once).",
            "owner_hours": "Their effort hours.",
            "frameworks": "Frameworks with at least one obligation in the horizon.",
            "vendor_obligations": "Vendor reviews and vendor report renewals due inside the horizon.",
            "hottest_framework": "Framework row of the hottest framework x week cell (most obligations; ties: the "
                                 "earlier week, then catalog order; empty when there are none).",
            "hottest_week": "Week (Monday) of that cell.",
            "hottest_count": "Obligations in that cell.",
            "hottest_tier": "Vendor tier x week cell with the most vendor obligations (same tie rule).",
            "hottest_tier_week": "Week of that cell.",
            "hottest_tier_count": "Vendor obligations in that cell.",
            "by_framework": "Framework x week: open obligations due that week that the framework needs. An "
                            "obligation spanning several frameworks counts in each (rows may add up to more than "
                            "`obligations`); program-wide ones (scheduled bundles) form the '(program-wide)' row.",
            "by_vendor_tier": "Vendor risk tier x week: vendor reviews and report renewals due, by the vendor's tier.",
            "testing_schedule": "Obligation kind x week: the testing and evidence schedule (attestations, vendor "
                                "reviews, report renewals, bundles, checkpoints, evidence requests).",
            "total": "Row total over the horizon.",
        })
def build(ctx: ReportContext) -> Report:
    q: ForecastQuery = ctx.query  # type: ignore[assignment]
    weeks, start, end = views.horizon(ctx.now, q.weeks)
    items = [o for o in obl.open_only(obl.load(ctx.org_id, ctx.now, until=end)) if start <= o.due_at < end]
    tiers = dict(db.session.execute(select(Vendor.id, Vendor.risk_tier).where(Vendor.org_id == ctx.org_id)).all())
    fw_counts: dict = {}
    tier_counts: dict = {}
    kind_counts: dict = {}
    for o in items:
        w = o.week
        for f in o.frameworks or (PROGRAM_WIDE,):
            fw_counts[(f, w)] = fw_counts.get((f, w), 0) + 1
        kind_counts[(obl.KIND_LABELS[o.kind], w)] = kind_counts.get((obl.KIND_LABELS[o.kind], w), 0) + 1
        if o.kind in VENDOR_KINDS:
            tier = tiers.get(o.source_id, "unknown")
            tier_counts[(tier, w)] = tier_counts.get((tier, w), 0) + 1
    from zentro.compliance.catalog import load_catalog

    order = {k: i for i, k in enumerate(load_catalog().frameworks)}
    fw_names = sorted({f for f, _ in fw_counts}, key=lambda f: (order.get(f, len(order)), f))
    tier_names = [t for t in VENDOR_TIERS if any(k[0] == t for k in tier_counts)] + \
        sorted({t for t, _ in tier_counts if t not in VENDOR_TIERS})
    kind_names = [obl.KIND_LABELS[k] for k in obl.KINDS]
    fw_section, fw_chart = _matrix("by_framework", "Obligations by framework and week", "framework", fw_names,
                                   fw_counts, weeks)
    tier_section, tier_chart = _matrix("by_vendor_tier", "Vendor obligations by risk tier and week", "tier",
                                       tier_names, tier_counts, weeks)
    kind_section, kind_chart = _matrix("testing_schedule", "Testing schedule: obligations by kind and week", "kind",
                                       kind_names, kind_counts, weeks)

    def hottest(counts: dict, names: list[str]):
        rank = {n: i for i, n in enumerate(names)}
        best = None
        for (name, w), n in counts.items():
            cand = (-n, w, rank[name])
            if best is None or cand < best[0]:
                best = (cand, name, w, n)
        return (best[1], best[2], best[3]) if best else ("", None, 0)

    hf, hw, hn = hottest(fw_counts, fw_names)
    ht, htw, htn = hottest(tier_counts, tier_names)
    summary = {"obligations": len(items), "owner_hours": round(sum(o.effort_hours for o in items), 1),
               "frameworks": len([f for f in fw_names if f != PROGRAM_WIDE]),
               "vendor_obligations": sum(1 for o in items if o.kind in VENDOR_KINDS),
               "hottest_framework": hf, "hottest_week": hw, "hottest_count": hn,
               "hottest_tier": ht, "hottest_tier_week": htw, "hottest_tier_count": htn}
    return Report("obligation-heatmap", "Obligation heatmap", {"weeks": q.weeks, "from": start, "to": end}, summary,
                  [fw_section, tier_section, kind_section], ctx.now, charts=[c for c in (fw_chart, tier_chart, kind_chart) if c.series])
