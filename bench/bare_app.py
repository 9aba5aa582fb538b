"""The baseline: a bare Flask app with nothing but the endpoints the workloads compare against.

No extensions, no database, no before/after-request hooks. Each endpoint answers with the same
status, content type and JSON shape as the Zentro endpoint it stands in for, so the ratio
measures what Zentro adds on top of Flask + gunicorn and nothing else.

A workload whose Zentro path has no baseline here yet adds one (see bench/README.md).
Served by bench/run.py as ``gunicorn bare_app:app`` with the same worker settings as Zentro.
"""
from __future__ import annotations

import time

from flask import Flask, jsonify

STARTED = time.monotonic()

app = Flask(__name__)
app.json.sort_keys = False  # as Zentro does


@app.get("/api/health")
def health():
    return jsonify(ok=True, service="zentro", uptime_seconds=round(time.monotonic() - STARTED, 3))
