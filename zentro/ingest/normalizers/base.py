"""What every alert normalizer produces, and the small parsing helpers they share.

A normalizer turns one vendor payload (already parsed JSON) into a list of ``NormalizedAlert``;
a payload it recognises but that carries nothing to act on (a PagerDuty "incident.annotated"
webhook, say) becomes an ``Ignored`` entry instead. Anything malformed raises ``NormalizeError``
naming the field, before anything is stored.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low")
STATUSES = ("firing", "resolved", "ack")  # ack: the vendor acknowledged it (PagerDuty, New Relic)
MAX_KEY = 255
MAX_TITLE = 300
MAX_SERVICE = 100
ZERO_TIME_YEAR = 1  # Alertmanager's "0001-01-01T00:00:00Z" means "not set"


class NormalizeError(ValueError):
    """A payload that cannot be turned into alerts; ``loc`` names where (as in VALIDATION_ERROR errors)."""

    def __init__(self, msg: str, loc: tuple | list = (), errors: list[dict] | None = None):
        super().__init__(msg)
        self.msg = msg
        self.loc = [str(x) for x in loc]
        self.errors = errors or [{"loc": self.loc, "msg": msg, "type": "ingest"}]

    def within(self, *prefix) -> "NormalizeError":
        """The same error located inside a batch item (``alerts``/``3``/...)."""
        errors = [{**e, "loc": [*(str(p) for p in prefix), *e["loc"]]} for e in self.errors]
        return NormalizeError(self.msg, [*prefix, *self.loc], errors)


@dataclass
class NormalizedAlert:
    source: str  # zentro | datadog | alertmanager | grafana | pagerduty | newrelic
    dedupe_key: str
    status: str  # firing | resolved | ack
    severity: str  # critical | high | medium | low
    title: str
    service: str = ""
    labels: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    starts_at: dt.datetime | None = None  # None: the vendor sent no time; the receive time is used
    ends_at: dt.datetime | None = None
    description: str = ""

    def __post_init__(self) -> None:
        self.dedupe_key = clean(self.dedupe_key)
        if len(self.dedupe_key) > MAX_KEY:  # long vendor keys (group keys + labels) are hashed, stably
            self.dedupe_key = f"{self.source}:sha256:{hashlib.sha256(self.dedupe_key.encode()).hexdigest()}"
        self.title = clean(self.title)[:MAX_TITLE] or "(untitled alert)"
        self.service = clean(self.service)[:MAX_SERVICE]
        self.description = clean(self.description)[:10_000]
        self.labels = {clean(str(k))[:200]: (clean(v)[:1000] if isinstance(v, str) else v)
                       for k, v in (self.labels or {}).items()}
        assert self.status in STATUSES and self.severity in SEVERITIES, (self.status, self.severity)


@dataclass
class Ignored:
    """A recognised event that needs no action; answered with outcome "ignored" and not stored."""

    source: str
    reason: str


def clean(value: Any) -> str:
    """Text for a column: a string without NUL characters (PostgreSQL text cannot hold them)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    return value.replace("\x00", "").strip()


def require_dict(value: Any, loc: tuple | list, what: str = "an object") -> dict:
    if not isinstance(value, dict):
        raise NormalizeError(f"must be {what}", loc)
    return value


def opt_str(obj: dict, key: str, loc: tuple | list = ()) -> str:
    """A string field that may be missing; numbers are accepted and written as text."""
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise NormalizeError("must be a string", [*loc, key])
    return clean(value)


def req_str(obj: dict, key: str, loc: tuple | list = ()) -> str:
    value = opt_str(obj, key, loc)
    if not value:
        raise NormalizeError("is required", [*loc, key])
    return value


def parse_time(value: Any, loc: tuple | list) -> dt.datetime | None:
    """ISO 8601 (a missing zone means UTC) or Unix time in seconds or milliseconds (number or
    numeric string). Empty, null and Go's zero time mean "not given"."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise NormalizeError("must be an ISO 8601 time or a Unix timestamp", loc)
    if isinstance(value, str) and _numeric(value):
        value = float(value)
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) >= 1e11 else value  # 1e11 s is the year 5138
        try:
            return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise NormalizeError("is not a valid Unix timestamp", loc) from None
    if not isinstance(value, str):
        raise NormalizeError("must be an ISO 8601 time or a Unix timestamp", loc)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _trim_fraction(text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise NormalizeError(f"is not an ISO 8601 time: {value[:60]!r}", loc) from None
    if parsed.year <= ZERO_TIME_YEAR:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _trim_fraction(text: str) -> str:
    """Go and JavaScript write up to nine fractional digits; Python reads at most six."""
    dot = text.find(".", 10)
    if dot == -1:
        return text
    end = dot + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    digits = text[dot + 1:end]
    if len(digits) <= 6:
        return text
    return text[:dot + 1] + digits[:6] + text[end:]


def map_severity(value: Any, table: dict[str, str], default: str) -> str:
    """Look a vendor severity up in ``table`` (case-insensitive); unknown or missing → ``default``."""
    if value is None:
        return default
    return table.get(clean(value).lower(), default)


def content_key(source: str, *parts: Any) -> str:
    """A stable key from the fields that identify an alert when the vendor gives no key."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return f"{source}:{hashlib.sha256(blob.encode()).hexdigest()[:32]}"
