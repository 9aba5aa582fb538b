"""Incident exports: the Markdown incident record, the JSON evidence pack and the post-incident review.

``gather`` reads everything an export needs through the service layer; the ``render_*`` /
``evidence_pack`` functions are pure functions of that record and ``now`` (no Flask globals), so the
same data always yields the same document. User-supplied text (titles, notes, actor labels, alert
titles, hypotheses) is escaped so it can never turn into Markdown structure or raw HTML."""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from zentro.accounts.models import Org
from zentro.audit.models import AuditEvent
from zentro.audit.service import compute_hash
from zentro.extensions import db
from zentro.incidents import service
from zentro.incidents.models import Alert, Incident, RcaRun, TimelineEvent
from zentro.platform.errors import not_found
from zentro.platform.types import iso

EVIDENCE_FORMAT = "zentro.incident-evidence/1"
# Most timeline events / alerts one export carries (the newest ones); the totals are always reported.
EXPORT_MAX_ROWS = 5000
# Timeline kinds that the automations engine writes for dry-runs, executions and their approvals.
AUTOMATION_KINDS = ("dry_run", "execution", "approval", "policy_block", "remediation")
KIND_LABELS = {
    "created": "Opened", "alert": "Alert", "status": "Status", "note": "Note", "severity": "Severity",
    "commander": "Commander", "legal_hold": "Legal hold", "details": "Edited", "rca": "RCA",
    "dry_run": "Dry-run", "execution": "Execution", "approval": "Approval", "policy_block": "Policy block",
    "remediation": "Remediation",
}
HASH_RECIPE = ("hash = SHA-256 over the UTF-8 JSON object {org_id, seq, created_at, actor: [actor_type, actor_id, "
               "actor_label], action, target: [target_type, target_id], control_tags, request_id, data, prev_hash} "
               "with sorted keys and separators (',', ':'); prev_hash is the hash of the org's row seq - 1 "
               "(64 zeros for seq 1). Compare these rows with the org's audit CSV export "
               "(GET /api/audit/export) or run `zentro audit verify --org <slug>`.")


@dataclass
class IncidentRecord:
    org: Org
    incident: Incident
    service_name: str | None
    commander_email: str | None
    events: list[TimelineEvent]  # oldest first (the newest EXPORT_MAX_ROWS)
    events_total: int
    alerts: list[Alert]  # oldest first (the newest EXPORT_MAX_ROWS)
    alerts_total: int
    rca_runs: list[RcaRun]
    audit_rows: list[AuditEvent]


def gather(org_id: int, incident_id: int, *, max_rows: int = EXPORT_MAX_ROWS) -> IncidentRecord:
    inc = service.get_incident(org_id, incident_id)
    org = db.session.get(Org, org_id)
    if org is None:
        raise not_found("Organisation")
    alerts = service.incident_alerts(org_id, inc.id, limit=max_rows)
    return IncidentRecord(
        org=org, incident=inc,
        service_name=inc.service.name if inc.service is not None else None,
        commander_email=inc.commander.email if inc.commander is not None else None,
        events=service.timeline(org_id, inc.id, last=max_rows),
        events_total=service.timeline_count(org_id, inc.id),
        alerts=list(reversed(alerts)),
        alerts_total=service.alert_row_count(org_id, inc.id),
        rca_runs=service.rca_runs(org_id, inc.id),
        audit_rows=service.incident_audit_rows(org_id, inc),
    )


# --- formatting ------------------------------------------------------------------------------------------

def fmt_utc(value: dt.datetime | None) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def fmt_duration(delta: dt.timedelta | None) -> str:
    """A compact human duration: 45 s, 12 min, 2 h 5 min, 3 d 4 h."""
    if delta is None:
        return "—"
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


# Characters that can start Markdown (or HTML) structure anywhere in a line. CommonMark lets any ASCII
# punctuation be backslash-escaped, and markdown-it honours an escaped pipe inside table cells.
_SPECIALS = frozenset("\\`*_[]<>|#~&!")
_ORDERED_START = re.compile(r"^(\d{1,9})([.)])")


def md_text(text: object) -> str:
    """One line of inline text that renders as itself anywhere: paragraph, heading, list item or
    table cell. Whitespace (newlines included) collapses to single spaces."""
    line = " ".join(str(text if text is not None else "").split())
    out = "".join("\\" + c if c in _SPECIALS else c for c in line)
    if out[:1] in ("-", "+", "="):  # bullet, setext underline or thematic break
        out = "\\" + out
    return _ORDERED_START.sub(r"\1\\\2", out)


def md_block(text: str | None, empty: str = "_None given._") -> str:
    """Multi-line user text as Markdown paragraphs: blank lines separate paragraphs, other line breaks
    are kept as hard breaks; every line is escaped like ``md_text``."""
    paragraphs = []
    for chunk in re.split(r"\n\s*\n", (text or "").replace("\r\n", "\n").replace("\r", "\n")):
        lines = [md_text(line) for line in chunk.split("\n") if line.strip()]
        if lines:
            paragraphs.append("\\\n".join(lines))
    return "\n\n".join(paragraphs) if paragraphs else empty


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GFM table; cells must already be escaped (``md_text``) or be our own Markdown."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell if cell else " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _code(text: str) -> str:
    """A code span for our own machine strings (hashes, ids) which never contain backticks or pipes."""
    return f"`{text}`" if text else "—"


def _verify_command(slug: str) -> str:
    command = f"zentro audit verify --org {slug}"
    return _code(command) if re.fullmatch(r"[\w.-]+", slug) else md_text(command)


def _actor(label: str, actor_type: str) -> str:
    return md_text(label or actor_type or "system")


# --- the incident record ---------------------------------------------------------------------------------

def _header_rows(rec: IncidentRecord) -> list[list[str]]:
    inc = rec.incident
    return [
        ["Reference", inc.ref],
        ["Status", inc.status],
        ["Severity", inc.severity],
        ["Service", md_text(rec.service_name) if rec.service_name else "—"],
        ["Commander", md_text(rec.commander_email) if rec.commander_email else "—"],
        ["Started", fmt_utc(inc.started_at)],
        ["Acknowledged", fmt_utc(inc.acknowledged_at)],
        ["Mitigated", fmt_utc(inc.mitigated_at)],
        ["Resolved", fmt_utc(inc.resolved_at)],
        ["Closed", fmt_utc(inc.closed_at)],
        ["Alerts folded in", str(inc.alert_count)],
        ["Source", md_text(inc.source)],
        ["Dedupe key", md_text(inc.dedupe_key) if inc.dedupe_key else "—"],
        ["Legal hold", "yes" if inc.legal_hold else "no"],
    ]


def _timeline_section(rec: IncidentRecord) -> str:
    if not rec.events:
        return "No timeline events."
    rows = [[fmt_utc(e.created_at), kind_label(e.kind), _actor(e.actor_label, e.actor_type), md_text(e.body)]
            for e in rec.events]
    table = md_table(["Time (UTC)", "Event", "Actor", "Details"], rows)
    if rec.events_total > len(rec.events):
        table = (f"Showing the latest {len(rec.events)} of {rec.events_total} events; the evidence pack "
                 f"reports the same window.\n\n") + table
    return table


def render_incident_markdown(rec: IncidentRecord, now: dt.datetime) -> str:
    inc = rec.incident
    parts = [
        f"# {inc.ref}: {md_text(inc.title)}",
        f"Exported {fmt_utc(now)} from Zentro ({md_text(rec.org.name)}).",
        md_table(["Field", "Value"], _header_rows(rec)),
        "## Description",
        md_block(inc.description, "_No description._"),
        "## Timeline",
        _timeline_section(rec),
    ]
    return "\n\n".join(parts) + "\n"


# --- the evidence pack -----------------------------------------------------------------------------------

def incident_out(inc: Incident) -> dict:
    """An Incident or a list row (service.IncidentListItem): both carry service_name and commander_email."""
    return service.incident_json(inc) | {"service_name": inc.service_name, "commander_email": inc.commander_email}


def alert_json(alert: Alert) -> dict:
    return {"id": alert.id, "source": alert.source, "dedupe_key": alert.dedupe_key, "status": alert.status,
            "severity": alert.severity, "title": alert.title, "service_name": alert.service_name,
            "labels": alert.labels, "raw": alert.raw, "starts_at": iso(alert.starts_at), "ends_at": iso(alert.ends_at),
            "received_at": iso(alert.received_at)}


def rca_json(run: RcaRun) -> dict:
    return {"id": run.id, "status": run.status, "progress": run.progress, "stage": run.stage,
            "hypotheses": run.hypotheses or [], "error": run.error, "created_by": run.created_by,
            "created_at": iso(run.created_at), "started_at": iso(run.started_at), "finished_at": iso(run.finished_at)}


def audit_json(row: AuditEvent) -> dict:
    return {"id": row.id, "seq": row.seq, "created_at": iso(row.created_at), "actor_type": row.actor_type,
            "actor_id": row.actor_id, "actor_label": row.actor_label, "action": row.action,
            "target_type": row.target_type, "target_id": row.target_id, "control_tags": row.control_tags,
            "request_id": row.request_id, "data": row.data, "prev_hash": row.prev_hash, "hash": row.hash,
            "hash_matches_content": compute_hash(row) == row.hash}


def automation_events(rec: IncidentRecord) -> list[TimelineEvent]:
    return [e for e in rec.events if e.kind in AUTOMATION_KINDS]


def automations_note(rec: IncidentRecord) -> str:
    found = automation_events(rec)
    if not found:
        return ("No playbook dry-runs, approvals or executions are recorded for this incident, so none are "
                "included. Nothing here is inferred.")
    return f"{len(found)} automation event(s) recorded on this incident's timeline are listed."


def evidence_pack(rec: IncidentRecord, now: dt.datetime) -> dict:
    auto = automation_events(rec)
    return {
        "format": EVIDENCE_FORMAT,
        "generated_at": iso(now),
        "org": {"id": rec.org.id, "slug": rec.org.slug, "name": rec.org.name},
        "incident": incident_out(rec.incident),
        "timeline": [service.event_json(e) for e in rec.events],
        "timeline_total": rec.events_total,
        "alerts": [alert_json(a) for a in rec.alerts],
        "alerts_total": rec.alerts_total,
        "rca_runs": [rca_json(r) for r in rec.rca_runs],
        "automations": {
            "dry_runs": [service.event_json(e) for e in auto if e.kind == "dry_run"],
            "executions": [service.event_json(e) for e in auto if e.kind != "dry_run"],
            "note": automations_note(rec),
        },
        "audit": {
            "rows": [audit_json(r) for r in rec.audit_rows],
            "hash_algorithm": "sha256",
            "how_to_verify": HASH_RECIPE,
        },
    }


def evidence_json(rec: IncidentRecord, now: dt.datetime) -> str:
    return json.dumps(evidence_pack(rec, now), indent=2, ensure_ascii=False)


# --- the post-incident review ----------------------------------------------------------------------------

@dataclass
class ReviewFacts:
    time_to_acknowledge: dt.timedelta | None
    time_to_mitigate: dt.timedelta | None
    time_to_resolve: dt.timedelta | None
    duration: dt.timedelta
    ongoing: bool
    severity_changes: list[tuple[str, str]]
    initial_severity: str
    notes: int


def review_facts(rec: IncidentRecord, now: dt.datetime) -> ReviewFacts:
    inc = rec.incident

    def since_start(t: dt.datetime | None) -> dt.timedelta | None:
        return max(t - inc.started_at, dt.timedelta(0)) if t else None

    resolved = inc.status in ("resolved", "closed") and inc.resolved_at is not None
    changes = [(str(e.data.get("from", "")), str(e.data.get("to", ""))) for e in rec.events
               if e.kind == "severity" and isinstance(e.data, dict)]
    return ReviewFacts(
        time_to_acknowledge=since_start(inc.acknowledged_at),
        time_to_mitigate=since_start(inc.mitigated_at),
        time_to_resolve=since_start(inc.resolved_at) if resolved else None,
        duration=max((inc.resolved_at if resolved else now) - inc.started_at, dt.timedelta(0)),
        ongoing=not resolved,
        severity_changes=changes,
        initial_severity=changes[0][0] if changes and changes[0][0] else inc.severity,
        notes=sum(1 for e in rec.events if e.kind == "note"),
    )


def _narrative(rec: IncidentRecord, f: ReviewFacts) -> str:
    inc = rec.incident
    service_part = f" on {md_text(rec.service_name)}" if rec.service_name else ""
    s = [f"{inc.ref} started {fmt_utc(inc.started_at)}{service_part} at {f.initial_severity} severity."]
    if f.ongoing:
        s.append(f"It is still {inc.status} after {fmt_duration(f.duration)}.")
    else:
        s.append(f"It was resolved after {fmt_duration(f.time_to_resolve)}"
                 + (" and has been closed." if inc.status == "closed" else "."))
    if f.time_to_acknowledge is not None:
        s.append(f"It was acknowledged {fmt_duration(f.time_to_acknowledge)} after it started.")
    else:
        s.append("It was never acknowledged.")
    if f.time_to_mitigate is not None:
        s.append(f"Impact was mitigated {fmt_duration(f.time_to_mitigate)} after the start.")
    alerts = inc.alert_count
    s.append("No alerts were folded into it." if alerts == 0 else
             f"{alerts} alert{'s were' if alerts != 1 else ' was'} folded into it.")
    if f.severity_changes:
        path = " → ".join([f.severity_changes[0][0]] + [to for _, to in f.severity_changes])
        n = len(f.severity_changes)
        s.append(f"Severity changed {n} time{'s' if n != 1 else ''} ({path}).")
    else:
        s.append("Severity did not change.")
    s.append(f"The incident commander was {md_text(rec.commander_email)}." if rec.commander_email
             else "No incident commander was assigned.")
    if f.notes:
        s.append(f"Responders added {f.notes} note{'s' if f.notes != 1 else ''}.")
    return " ".join(s)


def _hypothesis_lines(run: RcaRun) -> list[str]:
    lines = []
    for n, h in enumerate(run.hypotheses or [], 1):
        if not isinstance(h, dict):
            lines.append(f"{n}. {md_text(h)}")
            continue
        title = h.get("title") or h.get("hypothesis") or h.get("summary") or "Untitled hypothesis"
        conf = h.get("confidence")
        conf_text = f" (confidence {round(float(conf) * 100)} %)" if isinstance(conf, (int, float)) else ""
        evidence = h.get("evidence") or []
        refs = []
        for ref in evidence if isinstance(evidence, list) else [evidence]:
            if isinstance(ref, dict):
                kind, rid = ref.get("kind") or ref.get("type") or "ref", ref.get("id", "")
                refs.append(md_text(f"{kind} {rid}".strip()))
            else:
                refs.append(md_text(ref))
        lines.append(f"{n}. **{md_text(title)}**{conf_text}"
                     + (f" — evidence: {', '.join(refs)}" if refs else " — no evidence references"))
    return lines or ["The run produced no hypotheses."]


def _rca_section(rec: IncidentRecord) -> str:
    done = [r for r in rec.rca_runs if r.status == "succeeded"]
    if not done:
        if rec.rca_runs:
            return (f"{len(rec.rca_runs)} root-cause analysis run(s) exist, none finished successfully "
                    f"(latest: {md_text(rec.rca_runs[-1].status)}).")
        return "No root-cause analysis has been run for this incident."
    run = done[-1]
    head = (f"Hypotheses from RCA run #{run.id} (finished {fmt_utc(run.finished_at)}), ranked as the analysis "
            "ranked them:")
    return head + "\n\n" + "\n".join(_hypothesis_lines(run))


def _execution_section(rec: IncidentRecord) -> str:
    auto = automation_events(rec)
    if not auto:
        return automations_note(rec)
    rows = [[fmt_utc(e.created_at), kind_label(e.kind), _actor(e.actor_label, e.actor_type), md_text(e.body)]
            for e in auto]
    return md_table(["Time (UTC)", "Kind", "Actor", "Details"], rows)


def _audit_section(rec: IncidentRecord) -> str:
    rows = rec.audit_rows
    if not rows:
        return "No audit-log rows target this incident."
    intact = sum(1 for r in rows if compute_hash(r) == r.hash)
    intro = (f"{len(rows)} audit-log row{'s' if len(rows) != 1 else ''} target this incident "
             f"(seq {rows[0].seq}–{rows[-1].seq}); {intact} of {len(rows)} hash{'es' if len(rows) != 1 else ''} "
             f"match their row's content. Each hash also covers the previous row's hash, so the rows can be "
             f"checked against the organisation's full chain ({_verify_command(rec.org.slug)}).")
    table = md_table(["Seq", "Time (UTC)", "Actor", "Action", "Controls", "Hash"],
                     [[str(r.seq), fmt_utc(r.created_at), _actor(r.actor_label, r.actor_type), md_text(r.action),
                       md_text(r.control_tags) or "—", _code(r.hash)] for r in rows])
    return intro + "\n\n" + table


def render_review_markdown(rec: IncidentRecord, now: dt.datetime) -> str:
    inc = rec.incident
    f = review_facts(rec, now)
    measures = [
        ["Status", inc.status],
        ["Severity", inc.severity + (f" (started at {f.initial_severity})" if f.initial_severity != inc.severity else "")],
        ["Service", md_text(rec.service_name) if rec.service_name else "—"],
        ["Commander", md_text(rec.commander_email) if rec.commander_email else "—"],
        ["Started", fmt_utc(inc.started_at)],
        ["Time to acknowledge", fmt_duration(f.time_to_acknowledge)],
        ["Time to mitigate", fmt_duration(f.time_to_mitigate)],
        ["Time to resolve", fmt_duration(f.time_to_resolve)],
        ["Duration", fmt_duration(f.duration) + (" (ongoing)" if f.ongoing else "")],
        ["Alerts folded in", str(inc.alert_count)],
        ["Severity changes", str(len(f.severity_changes))],
    ]
    parts = [
        f"# Post-incident review: {inc.ref} {md_text(inc.title)}",
        f"Generated {fmt_utc(now)} by Zentro from the incident record, its timeline and the audit log of "
        f"{md_text(rec.org.name)}.",
        "## Summary",
        _narrative(rec, f),
        md_table(["Measure", "Value"], measures),
        "## Description",
        md_block(inc.description, "_No description._"),
        "## Timeline",
        _timeline_section(rec),
        "## Root-cause hypotheses",
        _rca_section(rec),
        "## Execution evidence",
        _execution_section(rec),
        "## Audit snapshot",
        _audit_section(rec),
    ]
    return "\n\n".join(parts) + "\n"
