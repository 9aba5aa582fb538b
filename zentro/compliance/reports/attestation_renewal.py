"""Attestation renewal calendar (slug ``attestation-renewal``): attestations whose validity runs out, grouped in
waves by how soon (overdue, 0-30, 31-60, 61-90 days), with a per-framework rollup and the owners of the current
waves (overdue and 0-30 days), who get the renewal nudge.

A control's renewal is its latest attestation row (the newest created: the control-ownership report's rule) when
that row is attested with a valid_until: the renewal is due at valid_until. An older row superseded by a newer one
for the same control (re-assigned, re-attested, rejected) is not a renewal any more. Days left = whole days from
now to valid_until (floor); overdue = valid_until at or before now (the attestation has expired).
"""
from __future__ import annotations

from zentro.compliance import engine
from zentro.compliance import obligations as obl
from zentro.compliance.catalog import FRAMEWORKS, load_catalog
from zentro.compliance.report_registry import ReportContext, ReportQuery, report
from zentro.compliance.reporting import Chart, Report, Section, Series, columns

SLUG = "attestation-renewal"
WAVES = ("overdue", "0-30", "31-60", "61-90")
CURRENT = ("overdue", "0-30")
HORIZON_DAYS = 90
UNASSIGNED = "(unassigned)"
WAVE_KEYS = {"overdue": "overdue", "0-30": "due_0_30", "31-60": "due_31_60", "61-90": "due_61_90"}


def wave_of(days_left: int, overdue: bool) -> str | None:
    if overdue:
        return "overdue"
    for wave, top in (("0-30", 30), ("31-60", 60), ("61-90", 90)):
        if days_left <= top:
            return wave
    return None


def _newest(item: engine.AttestationItem) -> tuple:
    return obl._aware(item.created_at), item.id


@report(SLUG, title="Attestation renewal calendar", category="Digests", query=ReportQuery,
        formats=("json", "csv", "html"),
        summary="Attestation renewal calendar — renewals grouped in waves by due window (overdue, 0-30, 31-60, "
                "61-90 days) with a framework rollup and the control owners of the current waves (JSON, CSV or "
                "printable HTML).",
        inputs="attestations (latest per control) and their owners, the catalog (control titles)",
        window="as of now, renewals due up to 90 days ahead plus every overdue one",
        definitions={
            "renewal": "A control's latest attestation (newest created) when it is attested with a valid_until: "
                       "due for renewal at valid_until. Superseded rows are not renewals.",
            "overdue": "Renewals whose valid_until is at or before now (the attestation has expired).",
            "due_0_30": "Renewals not overdue with 0 to 30 whole days left.",
            "due_31_60": "Renewals with 31 to 60 whole days left.",
            "due_61_90": "Renewals with 61 to 90 whole days left.",
            "total": "Renewals in the four waves.",
            "current": "overdue + due_0_30: the current waves, whose owners the digest e-mails (empty: nothing is "
                       "sent).",
            "owners": "Distinct owners of current-wave renewals.",
            "unassigned_current": "Current-wave renewals without an owner (none, or the owner left the org); when "
                                  "there are any, the org's owners and admins are e-mailed too.",
            "frameworks": "Frameworks with at least one renewal in the waves.",
            "days_left": "Whole days from now to valid_until (floor); negative when overdue.",
            "wave": "overdue, 0-30, 31-60 or 61-90 by days_left.",
            "frameworks section": "Per framework (the control tag's prefix): renewals per wave, total and current.",
            "owners section": "Per owner of a current-wave renewal: overdue and 0-30 counts and the earliest "
                              "valid_until.",
            "chart": "Renewals per wave.",
        })
def build(ctx: ReportContext) -> Report:
    now = ctx.now
    catalog = load_catalog()
    emails = obl.owner_emails(ctx.org_id)
    registers = engine.load_registers(ctx.org_id)
    rows = []
    for tag, items in registers.attestations.items():
        if not items:
            continue
        a = max(items, key=_newest)
        if a.status != "attested" or a.valid_until is None or a.attested_at is None:
            continue
        due = a.valid_until
        days_left = (due - now).days
        wave = wave_of(days_left, due <= now)
        if wave is None:
            continue
        rows.append({"wave": wave, "id": a.id, "control": tag, "framework": tag.split(":", 1)[0],
                     "title": catalog.control(tag).title if catalog.has(tag) else "",
                     "owner": emails.get(a.owner_id, "") if a.owner_id else "", "attested_at": a.attested_at,
                     "valid_until": due, "days_left": days_left, "link": f"/compliance/attestations/{a.id}"})
    rows.sort(key=lambda r: (r["valid_until"], r["control"]))

    order = {k: i for i, k in enumerate(FRAMEWORKS)}
    fw: dict[str, dict] = {}
    for r in rows:
        f = fw.setdefault(r["framework"], {"framework": r["framework"], **{WAVE_KEYS[w]: 0 for w in WAVES}})
        f[WAVE_KEYS[r["wave"]]] += 1
    fw_rows = sorted(fw.values(), key=lambda f: (order.get(f["framework"], len(order)), f["framework"]))
    for f in fw_rows:
        f["total"] = sum(f[WAVE_KEYS[w]] for w in WAVES)
        f["current"] = f["overdue"] + f["due_0_30"]

    owners: dict[str, dict] = {}
    for r in rows:
        if r["wave"] not in CURRENT:
            continue
        who = r["owner"] or UNASSIGNED
        o = owners.setdefault(who, {"owner": who, "overdue": 0, "due_0_30": 0, "first_due": r["valid_until"],
                                    "controls": []})
        o[WAVE_KEYS[r["wave"]]] += 1
        o["first_due"] = min(o["first_due"], r["valid_until"])
        o["controls"].append(r["control"])
    owner_rows = sorted(owners.values(), key=lambda o: (o["first_due"], o["owner"]))

    counts = {w: sum(1 for r in rows if r["wave"] == w) for w in WAVES}
    summary = {
        **{WAVE_KEYS[w]: counts[w] for w in WAVES}, "total": len(rows),
        "current": counts["overdue"] + counts["0-30"],
        "owners": sum(1 for o in owner_rows if o["owner"] != UNASSIGNED),
        "unassigned_current": owners[UNASSIGNED]["overdue"] + owners[UNASSIGNED]["due_0_30"]
        if UNASSIGNED in owners else 0,
        "frameworks": len(fw_rows),
    }
    chart = Chart("waves", "Renewals per wave", "bar", list(WAVES),
                  [Series("renewals", [float(counts[w]) for w in WAVES])], unit="attestations",
                  description="Attestation renewals overdue and due within 30, 60 and 90 days.")
    return Report(
        SLUG, "Attestation renewal calendar", {"as_of": now, "horizon_days": HORIZON_DAYS}, summary,
        [Section("renewals", "Renewals by wave", columns(
            "wave", "id", "control", "framework", "title", "owner", ("attested_at", "Attested"),
            ("valid_until", "Valid until"), ("days_left", "Days left"), "link"), rows),
         Section("frameworks", "Framework rollup", columns(
             "framework", "overdue", ("due_0_30", "0-30 days"), ("due_31_60", "31-60 days"),
             ("due_61_90", "61-90 days"), "total", "current"), fw_rows),
         Section("owners", "Owners of the current waves", columns(
             "owner", "overdue", ("due_0_30", "0-30 days"), ("first_due", "First due"), "controls"), owner_rows)],
        now, charts=[chart])
