"""Zentro's own alert format, for scripts and tools without a dedicated normalizer.

Either one alert object or ``{"alerts": [alert, ...]}``. An alert::

    {"dedupe_key": "checkout-5xx",          # required; alerts with one key fold into one incident
     "status": "firing",                     # firing | resolved | acknowledged   (default firing)
     "severity": "high",                     # critical | high | medium | low    (default medium)
     "title": "Checkout 5xx above 2%",       # required
     "service": "checkout",                  # matched against the org's service names
     "labels": {"region": "eu-west-1"},      # string / number / boolean values
     "starts_at": "2026-01-05T10:00:00Z",    # ISO 8601 or Unix seconds/milliseconds
     "ends_at": null,
     "description": "p99 latency and 5xx rate up since deploy 4121"}

The dedupe key is used exactly as given (not namespaced), so several tools can deliberately
share a key. Unknown fields are refused so that typos do not pass silently.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from zentro.ingest.normalizers.base import NormalizeError, NormalizedAlert, parse_time

SOURCE = "zentro"
Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Scalar = str | int | float | bool | None


class ZentroAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dedupe_key: Annotated[Text, StringConstraints(min_length=1, max_length=255)]
    status: Literal["firing", "resolved", "acknowledged"] = "firing"
    severity: Literal["critical", "high", "medium", "low"] = "medium"
    title: Annotated[Text, StringConstraints(min_length=1, max_length=300)]
    service: Annotated[Text, StringConstraints(max_length=100)] = ""
    labels: dict[Annotated[str, StringConstraints(max_length=200)], Scalar] = Field(default_factory=dict, max_length=200)
    starts_at: str | int | float | None = None
    ends_at: str | int | float | None = None
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""


def looks_like(payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    if "dedupe_key" in payload:
        return True
    alerts = payload.get("alerts")
    return (isinstance(alerts, list) and set(payload) == {"alerts"} and bool(alerts)
            and all(isinstance(a, dict) and "dedupe_key" in a for a in alerts))


def items(payload: Any) -> list:
    """The alert objects in the payload (for the per-request cap, before validation)."""
    if isinstance(payload, dict) and "alerts" in payload and "dedupe_key" not in payload:
        return payload["alerts"] if isinstance(payload["alerts"], list) else []
    return [payload]


def normalize(payload: Any) -> list[NormalizedAlert]:
    if not isinstance(payload, dict):
        raise NormalizeError("the body must be an alert object or {\"alerts\": [...]}")
    if "dedupe_key" in payload:
        return [_one(payload, ())]
    extra = sorted(set(payload) - {"alerts"})
    if extra:
        raise NormalizeError(f"unexpected field(s) {', '.join(extra)}; send an alert or {{\"alerts\": [...]}}", [extra[0]])
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise NormalizeError("must be a non-empty list of alerts", ["alerts"])
    return [_one(a, ("alerts", i)) for i, a in enumerate(alerts)]


def _one(obj: Any, loc: tuple) -> NormalizedAlert:
    if not isinstance(obj, dict):
        raise NormalizeError("must be an alert object", loc)
    try:
        a = ZentroAlert.model_validate(obj)
    except ValidationError as exc:
        errors = [{"loc": [*(str(x) for x in loc), *(str(x) for x in e["loc"])], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False, include_context=False, include_input=False)]
        raise NormalizeError(f"invalid alert: {errors[0]['msg']}", errors[0]["loc"], errors) from None
    return NormalizedAlert(
        source=SOURCE, dedupe_key=a.dedupe_key, status="ack" if a.status == "acknowledged" else a.status,
        severity=a.severity, title=a.title, service=a.service, labels=dict(a.labels), raw=obj,
        starts_at=parse_time(a.starts_at, [*loc, "starts_at"]), ends_at=parse_time(a.ends_at, [*loc, "ends_at"]),
        description=a.description)
