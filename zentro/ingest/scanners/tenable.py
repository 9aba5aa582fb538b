"""Tenable (Tenable Vulnerability Management / Nessus) findings, either as the vulnerability export
writes them (nested ``asset`` and ``plugin`` objects) or flattened::

    {"asset": {"uuid": "…", "hostname": "payments-db-1", "ipv4": "10.0.9.4"},
     "plugin": {"id": 156032, "name": "Apache Log4j RCE", "cve": ["CVE-2021-44228"], "cvss3_base_score": 10.0},
     "severity": "critical", "state": "OPEN", "first_found": "…", "last_found": "…"}

    {"plugin_id": 156032, "asset_uuid": "…", "hostname": "payments-db-1", "plugin_name": "…", "severity": 4}

Finding key ``<plugin id>@<asset uuid>`` (host name, then IPv4, when there is no uuid).
Severity 4/critical → critical, 3/high → high, 2/medium → medium, 1/low → low, 0/info → info.
State FIXED → fixed; OPEN, NEW, ACTIVE, REOPENED, RESURFACED → open.
"""
from __future__ import annotations

from typing import Any

from zentro.ingest.normalizers.base import NormalizeError, clean, opt_str, parse_time, require_dict
from zentro.ingest.scanners.base import SEVERITY_WORDS, NormalizedFinding, cve_text, cvss, first_str

SOURCE = "tenable"
LEVELS = {0: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}
FIXED = {"fixed"}
OPEN = {"open", "new", "active", "reopened", "resurfaced", ""}


def looks_like(item: Any) -> bool:
    return isinstance(item, dict) and ("plugin_id" in item or (isinstance(item.get("plugin"), dict) and "id" in item["plugin"]))


def _severity(value: Any, loc: list) -> str:
    if isinstance(value, bool):
        raise NormalizeError("must be 0–4 or critical/high/medium/low/info", loc)
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
        level = int(value)
        if level in LEVELS:
            return LEVELS[level]
    elif isinstance(value, str) and clean(value).lower() in SEVERITY_WORDS:
        return SEVERITY_WORDS[clean(value).lower()]
    raise NormalizeError("must be 0–4 or critical/high/medium/low/info", loc)


def normalize(item: Any, loc: list) -> NormalizedFinding:
    item = require_dict(item, loc, "a finding object")
    plugin = item.get("plugin") if isinstance(item.get("plugin"), dict) else {}
    asset = item.get("asset") if isinstance(item.get("asset"), dict) else {}
    plugin_id = opt_str(item, "plugin_id", loc) or opt_str(plugin, "id", [*loc, "plugin"])
    if not plugin_id:
        raise NormalizeError("is required", [*loc, "plugin_id"])
    uuid = opt_str(item, "asset_uuid", loc) or opt_str(asset, "uuid", [*loc, "asset"])
    hostname = (first_str(item, ("hostname", "fqdn"), loc)
                or first_str(asset, ("hostname", "fqdn", "netbios_name"), [*loc, "asset"]))
    if not hostname and isinstance(item.get("asset"), str):
        hostname = clean(item["asset"])
    ipv4 = first_str(item, ("ipv4", "ip"), loc) or first_str(asset, ("ipv4", "ipv6"), [*loc, "asset"])
    ident = uuid or hostname or ipv4
    if not ident:
        raise NormalizeError("a Tenable finding needs the asset's uuid, hostname or IPv4 address", [*loc, "asset"])
    state = (opt_str(item, "state", loc) or opt_str(item, "status", loc)).lower()
    if state not in FIXED | OPEN:
        raise NormalizeError("must be OPEN, REOPENED, NEW, ACTIVE, RESURFACED or FIXED", [*loc, "state"])
    status = "fixed" if state in FIXED else "open"
    title = (opt_str(item, "plugin_name", loc) or opt_str(item, "title", loc) or opt_str(plugin, "name", [*loc, "plugin"])
             or f"Tenable plugin {plugin_id}")
    score = next((v for v in (item.get("cvss3_base_score"), plugin.get("cvss3_base_score"), item.get("cvss_base_score"),
                              plugin.get("cvss_base_score")) if v not in (None, "")), None)
    return NormalizedFinding(
        source=SOURCE, finding_key=f"{plugin_id}@{ident}", title=title,
        severity=_severity(item.get("severity"), [*loc, "severity"]), status=status, asset=hostname or ipv4 or uuid,
        cve=cve_text(item.get("cve") or plugin.get("cve"), [*loc, "cve"]),
        description=(opt_str(item, "synopsis", loc) or opt_str(plugin, "synopsis", [*loc, "plugin"])
                     or opt_str(item, "description", loc) or opt_str(plugin, "description", [*loc, "plugin"])),
        cvss=cvss(score, [*loc, "cvss3_base_score"]), service=opt_str(item, "service", loc), raw=item,
        first_seen_at=parse_time(item.get("first_found"), [*loc, "first_found"]),
        last_seen_at=parse_time(item.get("last_found"), [*loc, "last_found"]),
        fixed_at=parse_time(item.get("last_fixed"), [*loc, "last_fixed"]) if status == "fixed" else None)
