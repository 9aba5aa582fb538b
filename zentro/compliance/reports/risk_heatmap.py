"""Compliance risk heatmap: where the gaps concentrate (framework × family × score band), which vendors carry
report risk (risk tier × report status) and the hotspots whose evidence would lift the most weight at risk."""
from __future__ import annotations

from zentro.compliance.report_registry import PeriodQuery, ReportContext, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns
from zentro.compliance.reports import _program as prog

BAND_NAMES = [b[0] for b in prog.BANDS]


def concentration(program: prog.Program) -> tuple[list[dict], list[dict]]:
    """(per framework rows, per framework × family rows) of gap counts by band and weight at risk."""
    fw_rows, fam_rows = [], []
    for key, fr in program.results.items():
        gaps = fr.gaps
        total_risk = sum(prog.weight_at_risk(g) for g in gaps)
        fam_risk: dict[str, float] = {}
        for fam in fr.families:
            members = [g for g in gaps if g.family == fam.id]
            if not members:
                continue
            risk = round(sum(prog.weight_at_risk(g) for g in members), 1)
            fam_risk[fam.id] = risk
            fam_rows.append({"framework": key, "family": fam.id, "family_title": fam.title, "controls": fam.controls,
                             "gaps": len(members), **{b: sum(prog.band_of(g.score) == b for g in members)
                                                      for b in BAND_NAMES},
                             "weight_at_risk": risk, "share_of_framework_risk": prog.pct(risk, total_risk)})
        top = max(fam_risk, key=lambda f: (fam_risk[f], f), default="")
        fw_rows.append({"framework": key, "name": fr.name, "controls": len(fr.controls), "gaps": len(gaps),
                        **{b: sum(prog.band_of(g.score) == b for g in gaps) for b in BAND_NAMES},
                        "weight_at_risk": round(total_risk, 1), "top_family": top,
                        "top_family_share": prog.pct(fam_risk.get(top, 0.0), total_risk)})
    fam_rows.sort(key=lambda r: (-r["weight_at_risk"], r["framework"], r["family"]))
    return fw_rows, fam_rows


def vendor_rows(program: prog.Program) -> list[dict]:
    matrix = prog.vendor_matrix(program.vendors, program.now)
    return [{"tier": t, **matrix[t], "total": sum(matrix[t].values()),
             "at_risk": matrix[t]["expired"] + matrix[t]["missing"]} for t in prog.TIERS]


@report("risk-heatmap", title="Compliance risk heatmap", category="Program", query=PeriodQuery,
        summary="Compliance risk heatmap: gap concentration by framework, family and score band, the vendor tier × "
                "report status matrix, and the top hotspots across frameworks (JSON or CSV).",
        inputs="the evidence engine over every framework, the catalog crosswalk, vendors",
        window="controls assessed as of now (evidence window periodDays ending now); vendor reports as of now",
        definitions={
            "gaps": "Controls scoring under 70 now, over every framework.",
            "weight_at_risk": "Sum over gaps of weight × (70 − score): the weighted points the gaps lack to pass.",
            "bands.<band>": "Gaps per score band: critical 0–24, high 25–39, medium 40–54, low 55–69 (the score "
                            "is evidence points 0/25/50/70 plus attestation points 0/15/30, capped at 50 while an "
                            "exception is open).",
            "most_concentrated_framework": "The framework with the largest weight at risk (ties: catalog order).",
            "vendors": "Vendors in the register (four known risk tiers).",
            "vendors_at_risk": "Vendors whose report is expired or missing (no report type or no expiry).",
            "critical_high_vendors_at_risk": "The same, for critical and high tier vendors.",
            "hotspots": "Gap controls listed as hotspots (at most 10).",
            "top_hotspot": "The gap control with the largest combined weight at risk.",
            "combined_weight_at_risk": "A gap control's own weight at risk plus that of each one-hop crosswalk "
                                       "neighbour that is also a gap (evidence tagged with it counts for them all).",
            "linked_gaps": "Crosswalk neighbours of the hotspot that are gaps too (other frameworks).",
            "top_family_share": "Share (%) of the framework's weight at risk held by its top family.",
            "share_of_framework_risk": "Share (%) of the framework's weight at risk held by this family.",
            "report status": "valid = expires more than 30 days from now; expiring = within 30 days; expired = "
                             "expiry passed; missing = no report type or no expiry date.",
            "heatmap chart": "Frameworks × score bands; each cell is the number of gaps.",
        })
def build(ctx: ReportContext) -> Report:
    q: PeriodQuery = ctx.query  # type: ignore[assignment]
    program = prog.load(ctx.org_id, ctx.now, q.period_days)
    fw_rows, fam_rows = concentration(program)
    vend = vendor_rows(program)
    spots = prog.hotspots(program, 10)
    total_risk = round(sum(r["weight_at_risk"] for r in fw_rows), 1)
    top_fw = max(fw_rows, key=lambda r: r["weight_at_risk"], default=None)
    summary = {
        "gaps": sum(r["gaps"] for r in fw_rows), "weight_at_risk": total_risk,
        "bands": {b: sum(r[b] for r in fw_rows) for b in BAND_NAMES},
        "most_concentrated_framework": top_fw["framework"] if top_fw and top_fw["weight_at_risk"] > 0 else "",
        "vendors": sum(r["total"] for r in vend), "vendors_at_risk": sum(r["at_risk"] for r in vend),
        "critical_high_vendors_at_risk": sum(r["at_risk"] for r in vend if r["tier"] in ("critical", "high")),
        "hotspots": len(spots), "top_hotspot": spots[0]["control"] if spots else "",
    }
    charts = [
        Chart("framework_bands", "Gaps by framework and score band", "heatmap",
              [prog.band_label(b) for b in BAND_NAMES],
              [Series(r["framework"], [float(r[b]) for b in BAND_NAMES]) for r in fw_rows], unit="gaps",
              description="Rows: frameworks; columns: score bands of their gaps; cell: number of gaps."),
        Chart("vendor_matrix", "Vendors by risk tier and report status", "heatmap", list(prog.REPORT_STATUSES),
              [Series(r["tier"], [float(r[s]) for s in prog.REPORT_STATUSES]) for r in vend], unit="vendors",
              description="Rows: vendor risk tiers; columns: report status now; cell: number of vendors."),
        Chart("hotspots", "Top hotspots by combined weight at risk", "bar", [s["control"] for s in spots],
              [Series("own", [s["weight_at_risk"] for s in spots]),
               Series("linked gaps", [round(s["combined_weight_at_risk"] - s["weight_at_risk"], 1) for s in spots])],
              unit="weighted points", stacked=True,
              description="Stacked bars: each hotspot's own weight at risk and that of its gap crosswalk neighbours."),
    ]
    return Report(
        "risk-heatmap", "Compliance risk heatmap", {"periodDays": q.period_days, "as_of": ctx.now}, summary,
        [Section("frameworks", "Gap concentration by framework",
                 columns("framework", "name", "controls", "gaps", *[(b, f"{b.capitalize()} band") for b in BAND_NAMES],
                         ("weight_at_risk", "Weight at risk"), ("top_family", "Top family"),
                         ("top_family_share", "Top family share %")), fw_rows),
         Section("families", "Gap concentration by family",
                 columns("framework", "family", ("family_title", "Family title"), "controls", "gaps",
                         *[(b, f"{b.capitalize()} band") for b in BAND_NAMES], ("weight_at_risk", "Weight at risk"),
                         ("share_of_framework_risk", "Share of framework risk %")), fam_rows),
         Section("vendors", "Vendor tier × report status",
                 columns("tier", *prog.REPORT_STATUSES, "total", ("at_risk", "Expired or missing")), vend),
         Section("hotspots", "Top hotspots across frameworks",
                 columns("rank", "control", "framework", "title", "score", ("weight_at_risk", "Weight at risk"),
                         ("linked_gaps", "Linked gaps"), ("frameworks_touched", "Frameworks touched"),
                         ("combined_weight_at_risk", "Combined weight at risk"), ("linked_controls", "Linked gap controls"),
                         "reason"), spots)],
        ctx.now, charts=charts)
