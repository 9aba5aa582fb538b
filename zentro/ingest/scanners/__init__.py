"""Vulnerability-finding normalizers, one module per scanner, and format detection.

A request carries one finding object or ``{"findings": [...]}``; each item's format is recognised
from its fields (``qid`` → Qualys, ``plugin_id``/``plugin.id`` → Tenable, ``finding_id`` →
generic) unless ``X-Zentro-Vuln-Source`` names one for the whole request.
"""
from __future__ import annotations

from typing import Any

from zentro.ingest.normalizers.base import NormalizeError
from zentro.ingest.scanners import generic, qualys, tenable
from zentro.ingest.scanners.base import FINDING_SEVERITIES, FINDING_STATUSES, NormalizedFinding

__all__ = ["FINDING_SEVERITIES", "FINDING_STATUSES", "NormalizedFinding", "SOURCES", "items", "normalize"]

SOURCES = {"qualys": qualys, "tenable": tenable, "generic": generic}
DETECTION = (qualys, tenable, generic)


def items(payload: Any) -> tuple[list, bool]:
    """(the finding objects, whether they came as a batch)."""
    if not isinstance(payload, dict):
        raise NormalizeError("the body must be a finding object or {\"findings\": [...]}")
    if "findings" in payload:
        extra = sorted(set(payload) - {"findings"})
        if extra:
            raise NormalizeError(f"unexpected field(s) next to findings: {', '.join(extra)}", [extra[0]])
        found = payload["findings"]
        if not isinstance(found, list) or not found:
            raise NormalizeError("must be a non-empty list of findings", ["findings"])
        return found, True
    return [payload], False


def normalize(payload: Any, override: str | None) -> list[NormalizedFinding]:
    module = None
    if override:
        module = SOURCES.get(override.strip().lower())
        if module is None:
            raise NormalizeError(f"unknown source {override[:40]!r}; use qualys, tenable or generic", ["source"])
    found, batch = items(payload)
    out = []
    for i, item in enumerate(found):
        loc = ["findings", i] if batch else []
        chosen = module or next((m for m in DETECTION if m.looks_like(item)), None)
        if chosen is None:
            raise NormalizeError("unrecognised finding: expected a Qualys detection (qid), a Tenable finding "
                                 "(plugin_id or plugin.id) or a generic finding (finding_id)", loc)
        out.append(chosen.normalize(item, loc))
    return out
