"""Alert payload normalizers, one module per vendor, and format detection.

``normalize(payload, source)`` returns the alerts (and ignored events) in a parsed JSON payload.
``source`` forces a format (from ``?source=`` or ``X-Zentro-Source``); without it the format is
recognised from the body's shape, most specific first.
"""
from __future__ import annotations

from typing import Any, Callable

from zentro.ingest.normalizers import alertmanager, datadog, newrelic, pagerduty
from zentro.ingest.normalizers import zentro as zentro_format
from zentro.ingest.normalizers.base import Ignored, NormalizeError, NormalizedAlert

__all__ = ["Ignored", "NormalizeError", "NormalizedAlert", "SOURCES", "count_items", "detect", "normalize"]

# Names accepted by ?source= / X-Zentro-Source, mapped to their normalizer module.
SOURCES: dict[str, Any] = {
    "zentro": zentro_format,
    "datadog": datadog,
    "alertmanager": alertmanager,
    "prometheus": alertmanager,
    "grafana": alertmanager,
    "pagerduty": pagerduty,
    "newrelic": newrelic,
    "new_relic": newrelic,
}
# Detection order: the formats with the most distinctive markers first.
DETECTION: list[tuple[str, Callable[[Any], bool]]] = [
    ("pagerduty", pagerduty.is_v3),
    ("zentro", zentro_format.looks_like),
    ("alertmanager", alertmanager.looks_like),
    ("pagerduty", pagerduty.is_v2),
    ("newrelic", newrelic.looks_like),
    ("datadog", datadog.looks_like),
]


def detect(payload: Any) -> str | None:
    for name, test in DETECTION:
        if test(payload):
            return name
    return None


def resolve_source(payload: Any, override: str | None) -> str:
    if override:
        name = override.strip().lower()
        if name not in SOURCES:
            raise NormalizeError(f"unknown source {override[:40]!r}; use one of {', '.join(sorted(SOURCES))}", ["source"])
        return name
    name = detect(payload)
    if name is None:
        raise NormalizeError(
            "unrecognised alert payload: expected Zentro's format (dedupe_key, title), an Alertmanager/Grafana "
            "webhook (version 4, alerts[]), a PagerDuty event (event_action) or v3 webhook (event.event_type), a New "
            "Relic workflow (issueId, state) or legacy webhook (incident_id, current_state), or a Datadog webhook "
            "(aggregate or alert_id); or name the format with ?source=")
    return name


def count_items(payload: Any, source: str) -> int:
    """How many alerts the payload carries, for the per-request cap (checked before normalizing)."""
    module = SOURCES[source]
    if module is zentro_format:
        return len(zentro_format.items(payload))
    if module is alertmanager:
        return len(alertmanager.items(payload))
    return 1


def normalize(payload: Any, source: str) -> list[NormalizedAlert | Ignored]:
    return SOURCES[source].normalize(payload)
