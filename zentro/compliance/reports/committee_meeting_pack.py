"""Committee meeting pack: one ZIP for the compliance committee with a printable summary and, for each of the
control health scorecard, the posture score, the exception register, the open gap remediations and the capacity
budget, a printable HTML document and a CSV; a README and a manifest with every file's SHA-256."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field

from zentro.compliance import engine
from zentro.compliance import report_registry as registry
from zentro.compliance.report_registry import ForecastQuery, ReportContext, report
from zentro.compliance.reporting import Report, Section, columns
from zentro.platform.types import iso

PARTS = (
    ("control-health-scorecard", "Leadership control health scorecard"),
    ("posture-score", "Unified compliance posture score"),
    ("exception-register", "Compliance exception register"),
    ("gap-remediations", "Open gaps and their remediation queue"),
    ("committee-capacity-budget", "Committee capacity budget over the forecast"),
)


@dataclass
class PackReport(Report):
    """The pack's summary report, carrying the component reports it summarises (built once per request)."""
    parts: dict[str, Report] = field(default_factory=dict)
    org_name: str = ""


def _org_name(org_id: int) -> str:
    from zentro.accounts.models import Org
    from zentro.extensions import db

    org = db.session.get(Org, org_id)
    return org.name if org is not None else ""


def compose(ctx: ReportContext) -> dict[str, Report]:
    """Each component report built for the org at ``ctx.now``; a component that is not registered is an error
    (the pack must never go out with a part silently missing)."""
    parts: dict[str, Report] = {}
    registry.discover()
    with engine.shared_reads():  # one read of the registers and audit-tag aggregates for every part (same ``now``)
        for slug, _ in PARTS:
            if slug not in registry.REPORTS:
                raise RuntimeError(f"committee-meeting-pack: the {slug} report is not registered")
            params = {"weeks": ctx.query.weeks} if slug == "committee-capacity-budget" else {}
            parts[slug] = registry.build(slug, ctx.org_id, ctx.now, **params)
    return parts


def _files(slug: str) -> list[tuple[str, str]]:
    return [(f"{slug}.html", "printable HTML"), (f"{slug}.csv", "CSV")]


@report("committee-meeting-pack", title="Committee meeting pack", category="Committee & staffing",
        query=ForecastQuery, formats=("zip",),
        summary="One ZIP for the committee meeting: a printable HTML summary, then the control health scorecard, "
                "posture score, exception register, open gaps and the capacity budget, each as printable HTML and "
                "CSV, with a README and a SHA-256 manifest.",
        inputs="the control-health-scorecard, posture-score, exception-register, gap-remediations and "
               "committee-capacity-budget reports (each with its own inputs), built at the same moment",
        window="each component report's own default window; the capacity budget over `weeks` weeks",
        custom={"zip": lambda rep, ctx: respond(rep, ctx)},
        definitions={
            "reports": "Component reports in the pack (control-health-scorecard, posture-score, exception-register, "
                       "gap-remediations, committee-capacity-budget).",
            "files": "Files in the ZIP: README.txt, summary.html, an HTML and a CSV per component, manifest.json.",
            "capacity_peak_week": "committee-capacity-budget peak_week: the forecast week needing the most "
                                  "owner-hours.",
            "capacity_shortfall_weeks": "committee-capacity-budget shortfall_weeks: forecast weeks over capacity.",
            "capacity_total_shortfall_hours": "committee-capacity-budget total_shortfall_hours.",
            "headlines": "Every scalar headline figure of each component report, as that report defines it (see its "
                         "own definitions).",
            "manifest.json": "For every other file: name, bytes and SHA-256 of its content, with the org and the "
                             "generation time.",
        })
def build(ctx: ReportContext) -> Report:
    q: ForecastQuery = ctx.query  # type: ignore[assignment]
    parts = compose(ctx)
    contents = [{"file": "README.txt", "what": "What is inside, for whom and when it was generated"},
                {"file": "summary.html", "what": "This summary, printable"}]
    headlines = []
    for slug, what in PARTS:
        part = parts[slug]
        for name, kind in _files(slug):
            contents.append({"file": name, "what": f"{part.title}: {kind} ({what.lower()})"})
        for key, value in part.summary.items():
            if not isinstance(value, (dict, list)):
                headlines.append({"report": part.title, "slug": slug, "figure": key, "value": value})
    contents.append({"file": "manifest.json", "what": "SHA-256 and size of every other file"})
    cap = parts["committee-capacity-budget"].summary
    summary = {"reports": len(PARTS), "files": len(contents),
               "capacity_peak_week": cap.get("peak_week"), "capacity_shortfall_weeks": cap.get("shortfall_weeks"),
               "capacity_total_shortfall_hours": cap.get("total_shortfall_hours")}
    return PackReport(
        "committee-meeting-pack", "Committee meeting pack", {"weeks": q.weeks}, summary,
        [Section("headlines", "Headline figures", columns("report", "figure", "value", "slug"), headlines),
         Section("contents", "Contents of the pack", columns("file", "what"), contents)],
        ctx.now, parts=parts, org_name=_org_name(ctx.org_id))


def _readme(rep: PackReport, org_slug: str) -> str:
    lines = [
        "Zentro committee meeting pack",
        "=============================",
        "",
        f"Organisation: {rep.org_name or org_slug}" + (f" ({org_slug})" if org_slug and rep.org_name else ""),
        f"Generated:    {iso(rep.generated_at)} (UTC)",
        "",
        "Every report in this pack was computed from the organisation's live compliance data at the moment above.",
        "Open the .html files in a browser and print them (or save as PDF); the .csv files open in a spreadsheet.",
        "manifest.json lists the SHA-256 of every file, so a recipient can check nothing changed.",
        "",
        "Contents",
        "--------",
    ]
    for row in rep.section("contents").iter_rows():
        lines.append(f"  {row['file']:<36} {row['what']}")
    lines += ["", "Headline figures", "----------------"]
    for slug, _ in PARTS:
        part = rep.parts[slug]
        lines.append(f"  {part.title}:")
        for key, value in part.summary.items():
            if not isinstance(value, (dict, list)):
                lines.append(f"    {key}: {'' if value is None else value}")
    return "\n".join(lines) + "\n"


def to_zip(rep: Report, ctx: ReportContext) -> bytes:
    """The pack as ZIP bytes (README.txt, summary.html, <slug>.html/.csv per part, manifest.json)."""
    from zentro.compliance import renderers, reporting

    if not isinstance(rep, PackReport) or not rep.parts:
        rep = build(ctx)  # type: ignore[assignment]
    org = rep.org_name or ctx.org_slug or None
    files: list[tuple[str, bytes]] = [("README.txt", _readme(rep, ctx.org_slug).encode("utf-8")),
                                      ("summary.html", renderers.to_html_document(rep, org=org).encode("utf-8"))]
    for slug, _ in PARTS:
        part = rep.parts[slug]
        files.append((f"{slug}.html", renderers.to_html_document(part, org=org).encode("utf-8")))
        files.append((f"{slug}.csv", reporting.render(part, "csv")))
    manifest = {"pack": "committee-meeting-pack", "org": ctx.org_slug, "org_name": rep.org_name,
                "generated_at": iso(rep.generated_at),
                "files": [{"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                          for name, data in files]}
    files.append(("manifest.json", json.dumps(manifest, indent=2).encode("utf-8")))
    buf = io.BytesIO()
    stamp = rep.generated_at.timetuple()[:6]
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=stamp if stamp[0] >= 1980 else (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def respond(rep: Report, ctx: ReportContext):
    from flask import Response

    return Response(to_zip(rep, ctx), mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{registry.download_name(rep, ctx.org_slug, "zip")}"'})
