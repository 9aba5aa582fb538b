"""One message, every channel: a digest's report (``reporting.Report``) becomes the e-mail subject, its
plain-text and HTML parts, a Slack Block Kit message and the webhook event's JSON data, all from the same
figures. Nothing here talks to the network (see ``channels`` and ``outbox``)."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from zentro.compliance.reporting import Report, json_value
from zentro.compliance.renderers import display, humanize, is_scalar

ROWS_PER_SECTION = 15  # rows shown per section in e-mail and Slack; the preview link has the rest
WEBHOOK_ROWS = 100  # rows per section in the webhook JSON
SLACK_TEXT_LIMIT = 2900  # a section block's text may hold 3000 characters


@dataclass
class Message:
    subject: str
    text: str
    html: str
    blocks: list[dict] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # the webhook event's "data"


def _summary_items(report: Report) -> list[tuple[str, str]]:
    return [(humanize(k), display(v)) for k, v in report.summary.items() if is_scalar(v)]


def _section_rows(report: Report, limit: int) -> list[tuple[str, list[str], list[list[str]], int]]:
    out = []
    for s in report.sections:
        rows = list(s.iter_rows())
        keys = [c.key for c in s.columns]
        out.append((s.title, [c.title for c in s.columns],
                    [[display(r.get(k)) for k in keys] for r in rows[:limit]], len(rows)))
    return out


def from_report(report: Report, *, org_name: str, period: str, link: str = "", intro: str = "") -> Message:
    """The message for ``report`` (a digest preview) sent to ``org_name`` for ``period``."""
    subject = f"[Zentro] {report.title} — {org_name} ({period})"
    summary = _summary_items(report)
    sections = _section_rows(report, ROWS_PER_SECTION)

    text = [f"{report.title} for {org_name}, period {period}", ""]
    if intro:
        text += [intro, ""]
    text += [f"- {k}: {v}" for k, v in summary]
    for title, heads, rows, total in sections:
        text += ["", f"{title} ({total})"]
        if not rows:
            text.append("  (none)")
        for r in rows:
            text.append("  - " + "; ".join(f"{h}: {v}" for h, v in zip(heads, r) if v != ""))
        if total > len(rows):
            text.append(f"  … and {total - len(rows)} more")
    text += [""] + [f"Note: {n}" for n in report.notes]
    if link:
        text += ["", f"Full report: {link}"]

    esc = html.escape
    parts = [f"<h2 style=\"font-family:sans-serif\">{esc(report.title)}</h2>",
             f"<p style=\"font-family:sans-serif;color:#555\">{esc(org_name)} · period {esc(period)}</p>"]
    if intro:
        parts.append(f"<p style=\"font-family:sans-serif\">{esc(intro)}</p>")
    parts.append("<table style=\"font-family:sans-serif;border-collapse:collapse\">" + "".join(
        f"<tr><th style=\"text-align:left;padding:2px 12px 2px 0\">{esc(k)}</th><td>{esc(v)}</td></tr>"
        for k, v in summary) + "</table>")
    for title, heads, rows, total in sections:
        parts.append(f"<h3 style=\"font-family:sans-serif\">{esc(title)} ({total})</h3>")
        if not rows:
            parts.append("<p style=\"font-family:sans-serif\">None.</p>")
            continue
        parts.append("<table style=\"font-family:sans-serif;border-collapse:collapse;font-size:13px\"><tr>"
                     + "".join(f"<th style=\"text-align:left;border-bottom:1px solid #ccc;padding:2px 8px\">{esc(h)}"
                               "</th>" for h in heads) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td style=\"padding:2px 8px\">{esc(v)}</td>" for v in r) + "</tr>"
                               for r in rows) + "</table>")
        if total > len(rows):
            parts.append(f"<p style=\"font-family:sans-serif\">… and {total - len(rows)} more.</p>")
    parts += [f"<p style=\"font-family:sans-serif;color:#555\">{esc(n)}</p>" for n in report.notes]
    if link:
        parts.append(f"<p style=\"font-family:sans-serif\"><a href=\"{esc(link)}\">Open the full report</a></p>")

    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": report.title[:150]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{org_name} · period {period}"[:300]}]},
    ]
    if intro:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": intro[:SLACK_TEXT_LIMIT]}})
    if summary:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in summary[:10]]})
    for title, heads, rows, total in sections:
        lines = [f"*{title}* ({total})"] + ["• " + " · ".join(v for v in r if v != "") for r in rows[:10]]
        if total > min(len(rows), 10):
            lines.append(f"… and {total - min(len(rows), 10)} more")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:SLACK_TEXT_LIMIT]}})
    if link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open the report"}, "url": link}]})
    blocks = blocks[:50]  # Slack's limit per message

    data = {
        "digest": report.slug, "title": report.title, "period": period,
        "params": {k: json_value(v) for k, v in report.params.items()},
        "summary": {k: json_value(v) for k, v in report.summary.items()},
        "sections": {s.key: [{k: json_value(v) for k, v in r.items()}
                             for r in list(s.iter_rows())[:WEBHOOK_ROWS]] for s in report.sections},
        "generated_at": json_value(report.generated_at), "url": link,
    }
    return Message(subject=subject[:300], text="\n".join(text).strip() + "\n", html="\n".join(parts), blocks=blocks,
                   data=data)
