"""Compliance obligation ICS: an RFC 5545 iCalendar feed of the open obligations (attestations, vendor reviews and
report renewals, scheduled bundles, audit checkpoints, evidence requests), one all-day event each.

Calendar clients match events by UID, so a re-fetched or re-imported feed updates events instead of duplicating
them: UID = ``<obligation key>@<org slug>.zentro`` (the obligation key is stable: ``attestation:12``,
``vendor-review:3``, ``bundle:2026-12-01``, ...). SEQUENCE is derived from the due date: the number of days from
2000-01-01 to the due date, so moving a due date changes it (later due date = higher SEQUENCE) while an unchanged
obligation keeps the same SEQUENCE on every fetch. Subscribed feeds are replaced by UID whatever the SEQUENCE;
a due date moved *earlier* gives a lower SEQUENCE, which clients that insist on increasing sequences for
imported files may ignore (there is no stored revision counter behind derived obligations).
"""
from __future__ import annotations

import datetime as dt

from pydantic import Field

from zentro.compliance import obligations as obl
from zentro.compliance.catalog import load_catalog
from zentro.compliance.report_registry import ForecastQuery, ReportContext, download_name, report
from zentro.compliance.reporting import Report, Section, columns
from zentro.compliance.reports import _obligation_views as views

SEQUENCE_EPOCH = dt.date(2000, 1, 1)
PRODID = "-//Zentro//Compliance obligations//EN"


class IcsQuery(ForecastQuery):
    weeks: int = Field(26, ge=1, le=52, description="Horizon in weeks from the start of the current ISO week "
                                                    "(1-52; default 26). Open overdue obligations are always "
                                                    "included.")


def sequence_of(due: dt.date) -> int:
    return max(0, (due - SEQUENCE_EPOCH).days)


def _org(org_id: int, slug: str) -> tuple[str, str]:
    from zentro.accounts.models import Org
    from zentro.extensions import db

    org = db.session.get(Org, org_id)
    return (slug or (org.slug if org else str(org_id))), (org.name if org else slug)


def _text(value: str) -> str:
    """An RFC 5545 TEXT value: backslash, semicolon, comma and newlines escaped."""
    if not ("\\" in value or ";" in value or "," in value or "\n" in value or "\r" in value):
        return value  # nothing to escape (most values): skip the replace chain
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n") \
        .replace("\n", "\\n")


def fold(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545 3.1), never inside a UTF-8 sequence, with its CRLF."""
    if line.isascii():
        if len(line) <= 75:
            return line + "\r\n"
        return "\r\n ".join([line[:75], *(line[i:i + 74] for i in range(75, len(line), 74))]) + "\r\n"
    out, size, chunk = [], 0, []
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > 75:
            out.append("".join(chunk))
            chunk, size = [" "], 1
        chunk.append(ch)
        size += n
    out.append("".join(chunk))
    return "\r\n".join(out) + "\r\n"


def _event_lines(row: dict, stamp: str, base: str) -> list[str]:
    """One VEVENT (with its VALARM) as content lines, unfolded (``_event_text`` writes the same, folded)."""
    link = base + row["link"] if row["link"].startswith("/") else row["link"]
    description = row["description"] + (f"\nLink: {link}" if link else "")
    due = row["due"]
    lines = ["BEGIN:VEVENT", f"UID:{_text(row['uid'])}", f"DTSTAMP:{stamp}",
             f"DTSTART;VALUE=DATE:{due.strftime('%Y%m%d')}",
             f"DTEND;VALUE=DATE:{(due + dt.timedelta(days=1)).strftime('%Y%m%d')}",
             f"SUMMARY:{_text(row['summary'])}", f"DESCRIPTION:{_text(description)}"]
    if link.startswith("http"):
        lines.append(f"URL:{link}")
    lines += [f"CATEGORIES:{_text(row['kind'])}", f"SEQUENCE:{row['sequence']}", "STATUS:CONFIRMED",
              "TRANSP:TRANSPARENT", "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-P1D",
              f"DESCRIPTION:{_text('Due tomorrow: ' + row['summary'])}", "END:VALARM", "END:VEVENT"]
    return lines


_ALARM_HEAD = "".join(fold(line) for line in ("STATUS:CONFIRMED", "TRANSP:TRANSPARENT", "BEGIN:VALARM",
                                                "ACTION:DISPLAY", "TRIGGER:-P1D"))
_EVENT_TAIL = fold("END:VALARM") + fold("END:VEVENT")


def _event_text(row: dict, head: str, base: str, dates: dict) -> str:
    """One VEVENT (with its VALARM) as folded content lines: exactly ``"".join(fold(line) for line in
    _event_lines(row, ...))``, written directly rather than through icalendar's Event objects (about a
    millisecond per event: a minute for a 70k-event feed) or its ``foldline``/``escape_char`` helpers (deprecated,
    and a character-by-character fold: seconds for this feed). Only the lines holding data are folded; the
    fixed ones are folded once (``head`` = the DTSTAMP line; ``dates`` caches DTSTART/DTEND per due date).
    The feed is parsed back with ``icalendar.Calendar.from_ical`` in the tests."""
    link = base + row["link"] if row["link"].startswith("/") else row["link"]
    description = row["description"] + (f"\nLink: {link}" if link else "")
    due = row["due"]
    span = dates.get(due)
    if span is None:
        span = dates[due] = (fold(f"DTSTART;VALUE=DATE:{due.strftime('%Y%m%d')}")
                             + fold(f"DTEND;VALUE=DATE:{(due + dt.timedelta(days=1)).strftime('%Y%m%d')}"))
    kind = row["kind"]
    category = _CATEGORIES.get(kind)
    if category is None:
        category = _CATEGORIES[kind] = fold(f"CATEGORIES:{_text(kind)}")
    return "".join((
        fold(f"UID:{_text(row['uid'])}"), head, span, fold(f"SUMMARY:{_text(row['summary'])}"),
        fold(f"DESCRIPTION:{_text(description)}"), fold(f"URL:{link}") if link.startswith("http") else "",
        category, fold(f"SEQUENCE:{row['sequence']}"), _ALARM_HEAD,
        fold(f"DESCRIPTION:{_text('Due tomorrow: ' + row['summary'])}"), _EVENT_TAIL))


_CATEGORIES: dict[str, str] = {}  # obligation kind -> its folded CATEGORIES line


def _event_rows(items: list[obl.Obligation], now: dt.datetime, slug: str, catalog) -> list[dict]:
    rows = []
    fw_text: dict[tuple, str] = {}  # frameworks -> "Frameworks: ..." (a few hundred distinct sets)
    due_text: dict[dt.date, tuple[str, int]] = {}  # due date -> (ISO date, SEQUENCE)
    for o in items:
        due = o.due_at.astimezone(dt.timezone.utc).date()
        overdue = o.overdue(now)
        fws = fw_text.get(o.frameworks)
        if fws is None:
            names = [catalog.frameworks[f].name if f in catalog.frameworks else f for f in o.frameworks]
            fws = fw_text[o.frameworks] = "Frameworks: " + (", ".join(names) or "program-wide")
        day = due_text.get(due)
        if day is None:
            day = due_text[due] = (due.isoformat(), sequence_of(due))
        label = obl.KIND_LABELS[o.kind]
        description = "\n".join([
            f"{label} due {day[0]}" + (" (overdue)" if overdue else ""),
            fws,
            "Controls: " + (", ".join(o.controls) or "-"),
            "Owner: " + (o.owner or "unassigned"),
            f"Effort: {o.effort_hours:g} h",
        ])
        rows.append({"uid": f"{o.key}@{slug}.zentro", "due": due, "kind": o.kind,
                     "summary": ("[Overdue] " if overdue else "") + f"{label}: {o.title}",
                     "description": description, "frameworks": list(o.frameworks), "owner": o.owner,
                     "effort_hours": o.effort_hours, "overdue": overdue, "sequence": day[1],
                     "key": o.key, "link": o.url})
    return rows


def render_ics(report: Report, ctx: ReportContext):
    """The report's events as a ``text/calendar`` attachment: the VCALENDAR (PRODID, VERSION, X-WR-CALNAME, ...)
    from icalendar, one VEVENT per row."""
    from flask import Response, has_request_context, request
    from icalendar import Calendar

    base = request.url_root.rstrip("/") if has_request_context() else ""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", report.params["calendar_name"])
    cal.add("x-wr-caldesc", "Open compliance obligations from Zentro: attestations, vendor reviews and report "
                            "renewals, evidence bundles, audit checkpoints and evidence requests.")
    cal.add("x-published-ttl", dt.timedelta(hours=6))
    head = cal.to_ical().decode("utf-8")
    assert head.endswith("END:VCALENDAR\r\n")
    stamp = report.generated_at.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    event_head = fold("BEGIN:VEVENT")
    stamp_line = fold(f"DTSTAMP:{stamp}")
    dates: dict = {}
    parts = [head[: -len("END:VCALENDAR\r\n")]]
    with obl.gc_paused():
        for row in report.section("events").iter_rows():
            parts.append(event_head + _event_text(row, stamp_line, base, dates))
        parts.append("END:VCALENDAR\r\n")
        body = "".join(parts).encode("utf-8")
    name = download_name(report, ctx.org_slug or report.params["org"], "ics")
    return Response(body, mimetype="text/calendar", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@report("obligation-ics", title="Compliance obligation calendar (ICS)", category="Obligations", query=IcsQuery,
        formats=("ics",), custom={"ics": render_ics},
        summary="Compliance obligation ICS: an iCalendar (RFC 5545) feed of open attestations, vendor reviews and "
                "report renewals, bundles, audit checkpoints and evidence requests, with stable UIDs so calendar "
                "clients update events instead of duplicating them (text/calendar).",
        inputs="attestations, vendors, evidence bundles and the bundle cadence, audit checkpoints, evidence requests",
        window="from the start of the current ISO week for `weeks` weeks (default 26), plus every open overdue "
               "obligation",
        definitions={
            "events": "VEVENTs in the feed: open obligations due inside the horizon plus open overdue ones.",
            "overdue": "Events whose due date is already past (their SUMMARY starts with [Overdue]).",
            "by_kind.<kind>": "Events of each obligation kind.",
            "UID": "<obligation key>@<org slug>.zentro: stable across fetches, so clients update the event.",
            "DTSTART": "The due date as an all-day event (VALUE=DATE, UTC date); DTEND is the next day.",
            "SEQUENCE": "Days from 2000-01-01 to the due date: changes exactly when the due date moves.",
            "SUMMARY": "Kind label and title, e.g. 'Attestation: Attest SOC2:CC6.1'.",
            "DESCRIPTION": "Frameworks, controls, owner, effort hours and the link to the record.",
            "CATEGORIES": "The obligation kind (attestation, vendor_review, vendor_report, bundle, checkpoint, "
                          "evidence_request).",
            "VALARM": "A display reminder one day before the due date.",
        })
@obl.gc_paused()  # ~100k obligations and row dicts: no full collections while they are built
def build(ctx: ReportContext) -> Report:
    q: IcsQuery = ctx.query  # type: ignore[assignment]
    slug, org_name = _org(ctx.org_id, ctx.org_slug)
    _, start, end = views.horizon(ctx.now, q.weeks)
    catalog = load_catalog()
    items = [o for o in obl.open_only(obl.load(ctx.org_id, ctx.now, until=end)) if o.due_at < end]
    rows = _event_rows(items, ctx.now, slug, catalog)
    overdue = sum(1 for r in rows if r["overdue"])
    return Report("obligation-ics", "Compliance obligation calendar (ICS)",
                  {"weeks": q.weeks, "from": start, "to": end, "org": slug,
                   "calendar_name": f"Zentro compliance obligations — {org_name}"},
                  {"events": len(rows), "overdue": overdue, "by_kind": obl.kind_counts(items)},
                  [Section("events", "Calendar events",
                           columns("uid", "due", "kind", "summary", "frameworks", "owner",
                                   ("effort_hours", "Effort (h)"), "overdue", "sequence", "key", "link",
                                   "description"), rows)],
                  ctx.now, filename=f"zentro-obligations-{slug}")
