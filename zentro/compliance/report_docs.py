"""docs/reports.md, generated from the report registry (``zentro docs reports`` writes it; a test checks the file
in the repo equals what the registry produces, so the definitions cannot drift from the code)."""
from __future__ import annotations

from pathlib import Path

from zentro.compliance import report_registry as registry

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "reports.md"

INTRO = """# Compliance analytics reports

Generated from the report registry (`zentro/compliance/reports/`) by `zentro docs reports`; do not edit by hand
(`tests/compliance/test_report_framework.py` fails when this file and the registry disagree).

Every report is `GET /api/governance/compliance/<slug>` (session or API key with `compliance:read`; viewers may
read) and a page at `/compliance/reports/<slug>`. `format=` picks the rendering; the first format listed is the
default. Parameters are validated the same way everywhere: an unknown parameter, a value out of range or an unknown
format is a 400 in the error envelope. Times are UTC; weeks are ISO weeks starting on Monday.

Obligations (used by many reports) are derived from the registers, never stored: see
`zentro/compliance/obligations.py` for the table of kinds, sources, due dates and effort hours.
"""


def _params(d: registry.ReportDef) -> list[str]:
    out = []
    for name, f in d.api_query.model_fields.items():
        alias = f.alias or name
        default = f.default
        out.append(f"`{alias}` (default `{default}`): {f.description or ''}".rstrip(": "))
    return out


def markdown() -> str:
    reports = registry.discover()
    lines = [INTRO]
    for category in registry.CATEGORIES:
        defs = sorted((d for d in reports.values() if d.category == category), key=lambda d: d.slug)
        if not defs:
            continue
        lines.append(f"## {category}\n")
        for d in defs:
            lines.append(f"### {d.title} (`{d.slug}`)\n")
            lines.append(f"{d.summary}\n")
            lines.append(f"- Formats: {', '.join(d.formats)}")
            lines.append(f"- Inputs: {d.inputs}")
            lines.append(f"- Window: {d.window}")
            lines.append("- Parameters: " + "; ".join(_params(d)))
            lines.append("")
            lines.append("| Figure | Meaning |")
            lines.append("|---|---|")
            for figure, meaning in d.definitions.items():
                lines.append(f"| `{figure}` | {meaning.replace('|', '/')} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write(path: Path = DOC_PATH) -> Path:
    path.write_text(markdown(), encoding="utf-8")
    return path
