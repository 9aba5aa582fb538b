"""Prometheus Alertmanager webhook (``"version": "4"``), and Grafana alerting, which sends the same
shape (plus ``orgId``, ``state``, ``title``, ``message``).

One request carries a group: ``alerts[]``, each with its own ``status`` (firing/resolved),
``labels``, ``annotations``, ``startsAt``, ``endsAt`` and ``fingerprint``; a group may mix
statuses. Every alert becomes one normalized alert.

Dedupe key: ``alertmanager:<fingerprint>`` (Alertmanager's hash of the alert's labels), or for
senders that omit it, a hash of ``groupKey`` and the alert's sorted labels. Severity from the
``severity`` label (else ``priority``): critical/crit/page/p1/fatal/emergency → critical,
high/error/major/p2 → high, warning/warn/medium/p3 → medium, info/low/minor/none/p4/p5 → low;
missing → medium. Title: ``annotations.summary``, else ``annotations.title``, else
``labels.alertname``. Service: the ``service`` label, else ``app``, else ``job``.
"""
from __future__ import annotations

from typing import Any

from zentro.ingest.normalizers.base import (NormalizeError, NormalizedAlert, clean, content_key, map_severity,
                                            parse_time, require_dict)

SEVERITY = {
    "critical": "critical", "crit": "critical", "page": "critical", "p1": "critical", "fatal": "critical",
    "emergency": "critical", "disaster": "critical",
    "high": "high", "error": "high", "major": "high", "p2": "high",
    "warning": "medium", "warn": "medium", "medium": "medium", "average": "medium", "p3": "medium",
    "info": "low", "informational": "low", "low": "low", "minor": "low", "none": "low", "p4": "low", "p5": "low",
}
SERVICE_LABELS = ("service", "app", "job")


def looks_like(payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    if str(payload.get("version", "")) == "4" or "groupKey" in payload:
        return True
    alerts = payload.get("alerts")
    return (isinstance(alerts, list) and bool(alerts)
            and all(isinstance(a, dict) and ("fingerprint" in a or "labels" in a) for a in alerts))


def is_grafana(payload: dict) -> bool:
    return "orgId" in payload or ("state" in payload and "title" in payload)


def items(payload: Any) -> list:
    alerts = payload.get("alerts") if isinstance(payload, dict) else None
    return alerts if isinstance(alerts, list) else []


def _string_map(value: Any, loc: list) -> dict:
    if value is None:
        return {}
    value = require_dict(value, loc, "an object of strings")
    out = {}
    for k, v in value.items():
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise NormalizeError("must be a string", [*loc, k])
        out[str(k)] = clean(v)
    return out


def normalize(payload: Any) -> list[NormalizedAlert]:
    if not isinstance(payload, dict):
        raise NormalizeError("an Alertmanager webhook payload must be a JSON object")
    version = payload.get("version")
    if version is not None and str(version) != "4":
        raise NormalizeError(f"unsupported Alertmanager webhook version {version!r}; Zentro reads version 4",
                             ["version"])
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise NormalizeError("must be a non-empty list of alerts", ["alerts"])
    source = "grafana" if is_grafana(payload) else "alertmanager"
    group_key = clean(payload.get("groupKey"))
    common = _string_map(payload.get("commonLabels"), ["commonLabels"])
    context = {k: payload[k] for k in ("groupKey", "receiver", "externalURL", "groupLabels", "status") if k in payload}
    out = []
    for i, alert in enumerate(alerts):
        loc = ["alerts", i]
        require_dict(alert, loc, "an alert object")
        labels = {**common, **_string_map(alert.get("labels"), [*loc, "labels"])}
        annotations = _string_map(alert.get("annotations"), [*loc, "annotations"])
        status = clean(alert.get("status") or payload.get("status")).lower()
        if status not in ("firing", "resolved"):
            raise NormalizeError("must be firing or resolved", [*loc, "status"])
        fingerprint = clean(alert.get("fingerprint"))
        if fingerprint:
            key = f"alertmanager:{fingerprint}"
        elif labels:
            key = content_key("alertmanager", group_key, sorted(labels.items()))
        else:
            raise NormalizeError("an alert needs a fingerprint or labels to deduplicate", [*loc, "fingerprint"])
        severity = map_severity(labels.get("severity") or labels.get("priority"), SEVERITY, "medium")
        title = annotations.get("summary") or annotations.get("title") or labels.get("alertname") or ""
        if not title:
            raise NormalizeError("an alert needs annotations.summary or labels.alertname for its title", [*loc, "labels"])
        service = next((labels[k] for k in SERVICE_LABELS if labels.get(k)), "")
        out.append(NormalizedAlert(
            source=source, dedupe_key=key, status=status, severity=severity, title=title, service=service,
            labels=labels, raw={**context, "alert": alert},
            starts_at=parse_time(alert.get("startsAt"), [*loc, "startsAt"]),
            ends_at=parse_time(alert.get("endsAt"), [*loc, "endsAt"]) if status == "resolved" else None,
            description=annotations.get("description") or annotations.get("message") or ""))
    return out
