"""The baseline: a bare Flask app with nothing but the endpoints the workloads compare against.

No extensions, no database, no before/after-request hooks. Each endpoint answers with the same
status, content type and JSON shape as the Zentro endpoint it stands in for, so the ratio
measures what Zentro adds on top of Flask + gunicorn and nothing else.

A workload whose Zentro path has no baseline here yet adds one (see bench/README.md).
Served by bench/run.py as ``gunicorn bare_app:app`` with the same worker settings as Zentro.
"""
from __future__ import annotations

import datetime as dt
import hmac
import json
import time

from flask import Flask, jsonify, request

STARTED = time.monotonic()
# The bearer secret the workloads send to this app (Zentro gets a real token or key instead).
BARE_TOKEN = "bench-baseline-token"

app = Flask(__name__)
app.json.sort_keys = False  # as Zentro does


def _bearer_ok() -> bool:
    header = request.headers.get("Authorization", "")
    return header[:7].lower() == "bearer " and hmac.compare_digest(header[7:].strip().encode(), BARE_TOKEN.encode())


def _error(status: int, code: str, detail: str):
    return jsonify(error={"status": status, "code": code, "detail": detail}), status


@app.get("/api/health")
def health():
    return jsonify(ok=True, service="zentro", uptime_seconds=round(time.monotonic() - STARTED, 3))


# --- ingest: "receive a webhook" -------------------------------------------------------------------

@app.post("/api/integrations/alerts")
def alerts():
    """Check the bearer header, parse the JSON body, answer 202 with the shape Zentro answers."""
    if not _bearer_ok():
        return _error(401, "UNAUTHORIZED", "Send a valid alert-ingest token.")
    if request.mimetype != "application/json":
        return _error(415, "UNSUPPORTED_MEDIA_TYPE", "Send the payload as application/json.")
    try:
        payload = json.loads(request.get_data())
    except ValueError as exc:
        return _error(400, "BAD_REQUEST", f"Malformed JSON body: {exc}")
    alerts = payload.get("alerts", [payload]) if isinstance(payload, dict) else []
    results = [{"alert_id": None, "incident_id": None, "incident_ref": None, "incident_status": None,
                "outcome": "ignored", "source": "zentro", "dedupe_key": a.get("dedupe_key") if isinstance(a, dict) else None,
                "status": a.get("status") if isinstance(a, dict) else None, "detail": "baseline: nothing stored"}
               for a in alerts]
    return jsonify(accepted=len(results), results=results), 202


# --- incident list: a first page of equal-sized items, no database -----------------------------------

_T = "2026-01-05T10:00:00.000000Z"
INCIDENTS = [{
    "id": 100_000 - i, "ref": f"INC-{100_000 - i}", "number": 100_000 - i,
    "title": "checkout p99 latency above 700 ms", "description": "", "severity": "medium", "status": "closed",
    "service_id": 3, "service_name": "checkout", "commander_id": 1, "commander_email": "owner@bench.example.com",
    "source": "alertmanager", "dedupe_key": "alertmanager:checkout:123", "alert_count": 12, "legal_hold": False,
    "started_at": _T, "last_seen_at": _T, "acknowledged_at": _T, "mitigated_at": _T, "resolved_at": _T,
    "closed_at": _T, "created_at": _T, "updated_at": _T,
} for i in range(50)]


@app.get("/api/v1/incidents")
def incidents_api():
    if not _bearer_ok():
        return _error(401, "UNAUTHORIZED", "Send a valid API key.")
    limit = min(max(request.args.get("limit", 50, type=int), 1), 50)
    return jsonify(data=INCIDENTS[:limit], next_cursor="MTAwMDAw")


PAGE = app.jinja_env.from_string("""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Incidents · Zentro</title><link rel="stylesheet" href="/static/css/zentro.css"></head>
<body><main id="main">
<h1>Incidents</h1>
<dl class="facts">{% for s, n in counts.items() %}<div><dt>{{ s|capitalize }}</dt><dd>{{ n }}</dd></div>{% endfor %}</dl>
<table class="inc-table">
  <caption>Incidents, newest first</caption>
  <thead><tr><th scope="col">Incident</th><th scope="col">Severity</th><th scope="col">Status</th><th scope="col">Service</th>
  <th scope="col">Commander</th><th scope="col">Alerts</th><th scope="col">Started</th></tr></thead>
  <tbody>
  {% for i in rows %}
  <tr class="row-{{ i.status }}">
    <td><a href="/incidents/{{ i.id }}"><span class="inc-ref">{{ i.ref }}</span> {{ i.title }}</a></td>
    <td><span class="pill sev-{{ i.severity }}">{{ i.severity|capitalize }}</span></td>
    <td><span class="pill status-{{ i.status }}">{{ i.status|capitalize }}</span></td>
    <td>{{ i.service_name }}</td>
    <td>{{ i.commander_email or "unassigned" }}</td>
    <td class="num">{{ i.alert_count }}</td>
    <td><time datetime="{{ i.started_at }}">{{ now.strftime("%Y-%m-%d %H:%M") }} UTC</time></td>
  </tr>
  {% endfor %}
  </tbody>
</table>
<nav aria-label="More incidents"><a class="btn" rel="next" href="/incidents?cursor=MTAwMDAw">Older →</a></nav>
</main></body></html>
""")


@app.get("/incidents")
def incidents_page():
    """The HTML list page: 25 rows (Zentro's page size) rendered by Jinja, as Zentro's page is."""
    return PAGE.render(rows=INCIDENTS[:25], counts={"open": 1000, "acknowledged": 500, "mitigated": 500},
                       now=dt.datetime.now(dt.timezone.utc))
