"""Zentro's generic finding format, for scanners without a dedicated normalizer::

    {"finding_id": "snyk:SNYK-JS-LODASH-567746:checkout", "title": "Prototype pollution in lodash",
     "severity": "high", "asset": "checkout", "status": "open", "cve": "CVE-2020-8203", "cvss": 7.4,
     "service": "checkout", "description": "…", "first_seen": "…", "last_seen": "…"}

Finding key: ``finding_id`` as given. severity: critical | high | medium | low | info;
status: open | fixed (default open). Unknown fields are refused.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from zentro.ingest.normalizers.base import NormalizeError, parse_time, require_dict
from zentro.ingest.scanners.base import NormalizedFinding, cve_text

SOURCE = "generic"
Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Time = str | int | float | None


class GenericFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    finding_id: Annotated[Text, StringConstraints(min_length=1, max_length=255)]
    title: Annotated[Text, StringConstraints(min_length=1, max_length=300)]
    severity: Literal["critical", "high", "medium", "low", "info"]
    status: Literal["open", "fixed"] = "open"
    asset: Annotated[Text, StringConstraints(max_length=255)] = ""
    cve: str | list[str] | None = None
    cvss: float | None = Field(None, ge=0, le=10)
    service: Annotated[Text, StringConstraints(max_length=100)] = ""
    description: Annotated[str, StringConstraints(max_length=20_000)] = ""
    first_seen: Time = None
    last_seen: Time = None
    fixed_at: Time = None


def looks_like(item: Any) -> bool:
    return isinstance(item, dict) and "finding_id" in item


def normalize(item: Any, loc: list) -> NormalizedFinding:
    item = require_dict(item, loc, "a finding object")
    try:
        f = GenericFinding.model_validate(item)
    except ValidationError as exc:
        errors = [{"loc": [*(str(x) for x in loc), *(str(x) for x in e["loc"])], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False, include_context=False, include_input=False)]
        raise NormalizeError(f"invalid finding: {errors[0]['msg']}", errors[0]["loc"], errors) from None
    return NormalizedFinding(
        source=SOURCE, finding_key=f.finding_id, title=f.title, severity=f.severity, status=f.status, asset=f.asset,
        cve=cve_text(f.cve, [*loc, "cve"]), description=f.description, cvss=f.cvss, service=f.service, raw=item,
        first_seen_at=parse_time(f.first_seen, [*loc, "first_seen"]),
        last_seen_at=parse_time(f.last_seen, [*loc, "last_seen"]),
        fixed_at=parse_time(f.fixed_at, [*loc, "fixed_at"]) if f.status == "fixed" else None)
