"""What every vulnerability-scanner normalizer produces."""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from zentro.ingest.normalizers.base import NormalizeError, clean, opt_str

FINDING_SEVERITIES = ("critical", "high", "medium", "low", "info")
FINDING_STATUSES = ("open", "fixed")
SEVERITY_WORDS = {"critical": "critical", "urgent": "critical", "high": "high", "medium": "medium",
                  "moderate": "medium", "low": "low", "info": "info", "informational": "info", "none": "info"}


@dataclass
class NormalizedFinding:
    source: str  # qualys | tenable | generic
    finding_key: str  # QID@host, plugin@asset, or the generic finding_id
    title: str
    severity: str  # critical | high | medium | low | info
    status: str = "open"  # open | fixed
    asset: str = ""
    cve: str = ""
    description: str = ""
    cvss: float | None = None
    service: str = ""  # an explicit service name from the payload; else the asset is matched
    raw: dict = field(default_factory=dict)
    first_seen_at: dt.datetime | None = None
    last_seen_at: dt.datetime | None = None
    fixed_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        self.finding_key = clean(self.finding_key)
        if not self.finding_key or len(self.finding_key) > 255:
            raise NormalizeError("the finding key must be 1–255 characters")
        self.title = clean(self.title)[:300] or "(untitled finding)"
        self.asset = clean(self.asset)[:255]
        self.cve = clean(self.cve)[:100]
        self.description = clean(self.description)[:20_000]
        self.service = clean(self.service)[:100]
        assert self.severity in FINDING_SEVERITIES and self.status in FINDING_STATUSES


def cve_text(value: Any, loc: list) -> str:
    """"CVE-2024-1" or ["CVE-2024-1", "CVE-2024-2"] → "CVE-2024-1,CVE-2024-2" (cut at 100 characters)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        items = [v.strip() for v in value.replace(";", ",").split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise NormalizeError("must be a CVE id or a list of them", loc)
    out = ""
    for item in (i for i in items if i):
        if len(out) + len(item) + 1 > 100:
            break
        out = f"{out},{item}" if out else item
    return out


def cvss(value: Any, loc: list) -> float | None:
    if value is None or value == "":
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise NormalizeError("must be a CVSS score from 0 to 10", loc) from None
    if not 0 <= score <= 10 or isinstance(value, bool):
        raise NormalizeError("must be a CVSS score from 0 to 10", loc)
    return score


def first_str(obj: dict, keys: tuple[str, ...], loc: list) -> str:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, list):  # Tenable lists fqdns / ipv4s
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
            if value is None:
                continue
            return clean(value)
        text = opt_str(obj, key, loc)
        if text:
            return text
    return ""


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
