"""Qualys VMDR host detections, one object per detection (the fields of the Host List Detection API,
flattened with the host's IP and DNS name)::

    {"qid": 38170, "ip": "10.0.4.12", "dns": "checkout-web-1.prod.internal", "title": "SSL Certificate - Expired",
     "severity": 4, "status": "Active", "cve": "CVE-2023-1234", "cvss3_base": 7.5,
     "first_found_datetime": "...", "last_found_datetime": "...", "last_fixed_datetime": null}

Finding key ``<qid>@<ip>`` (the DNS name when there is no IP). Severity 5 → critical, 4 → high,
3 → medium, 2 → low, 1 → info. Status Fixed → fixed; New, Active and Re-Opened → open.
"""
from __future__ import annotations

from typing import Any

from zentro.ingest.normalizers.base import NormalizeError, opt_str, parse_time, require_dict
from zentro.ingest.scanners.base import NormalizedFinding, cve_text, cvss, first_str

SOURCE = "qualys"
SEVERITY = {1: "info", 2: "low", 3: "medium", 4: "high", 5: "critical"}
FIXED = {"fixed"}
OPEN = {"new", "active", "re-opened", "reopened", "open", ""}


def looks_like(item: Any) -> bool:
    return isinstance(item, dict) and ("qid" in item or "QID" in item)


def normalize(item: Any, loc: list) -> NormalizedFinding:
    item = require_dict(item, loc, "a finding object")
    qid = opt_str(item, "qid", loc) or opt_str(item, "QID", loc)
    if not qid:
        raise NormalizeError("is required", [*loc, "qid"])
    ip = first_str(item, ("ip", "ipv4", "ip_address"), loc)
    host = first_str(item, ("dns", "host", "hostname", "fqdn", "netbios"), loc)
    if not (ip or host):
        raise NormalizeError("a Qualys detection needs the host's ip or dns name", [*loc, "ip"])
    raw_sev = item.get("severity")
    try:
        level = int(raw_sev)
    except (TypeError, ValueError):
        level = 0
    if isinstance(raw_sev, bool) or level not in SEVERITY:
        raise NormalizeError("must be a Qualys severity from 1 to 5", [*loc, "severity"])
    status_text = opt_str(item, "status", loc).lower()
    if status_text not in FIXED | OPEN:
        raise NormalizeError("must be New, Active, Re-Opened or Fixed", [*loc, "status"])
    status = "fixed" if status_text in FIXED else "open"
    return NormalizedFinding(
        source=SOURCE, finding_key=f"{qid}@{ip or host}", title=opt_str(item, "title", loc) or f"Qualys QID {qid}",
        severity=SEVERITY[level], status=status, asset=host or ip,
        cve=cve_text(item.get("cve") or item.get("cve_id") or item.get("cve_list"), [*loc, "cve"]),
        description=opt_str(item, "diagnosis", loc) or opt_str(item, "results", loc),
        cvss=cvss(item.get("cvss3_base") if item.get("cvss3_base") not in (None, "") else item.get("cvss_base"),
                  [*loc, "cvss3_base"]),
        service=opt_str(item, "service", loc), raw=item,
        first_seen_at=parse_time(item.get("first_found_datetime") or item.get("first_found"), [*loc, "first_found"]),
        last_seen_at=parse_time(item.get("last_found_datetime") or item.get("last_found"), [*loc, "last_found"]),
        fixed_at=parse_time(item.get("last_fixed_datetime") or item.get("last_fixed"), [*loc, "last_fixed"])
        if status == "fixed" else None)
