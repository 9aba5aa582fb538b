"""Request and response models for the reliability API (and the page forms, which validate with the
same input models). Every constraint JSON Schema can express lives here, so /openapi.json shows it;
the cross-field rules it cannot express (good ≤ total, window order and length, clock, cycles,
duplicates) are enforced by zentro.reliability.service and named in the field descriptions."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from zentro.reliability.models import ENVIRONMENTS

MAX_COUNT = 2_147_483_647  # sli_samples.good/total are INTEGER columns
MAX_SAMPLES = 1000
# Letters, digits, space and . _ : / ( ) -, starting and ending with a letter or digit or . _ : / ( ) -.
NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9 ._:/()-]{0,98}[A-Za-z0-9._:/()-])?$"
# http(s) only: scheme, host[:port], then an optional path/query/fragment without whitespace. Empty = none.
URL_PATTERN = r"^(?:https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?(?:[/?#][!-~]*)?)?$"

ServiceName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NAME_PATTERN)]
Description = Annotated[str, StringConstraints(max_length=2000)]
Owner = Annotated[str, StringConstraints(max_length=200)]
RunbookUrl = Annotated[str, StringConstraints(max_length=500, pattern=URL_PATTERN)]
Environment = Literal["production", "staging", "development"]
assert ENVIRONMENTS == ("production", "staging", "development")
ChangeKind = Literal["deploy", "config", "flag", "infra"]

NAME_HELP = "1–100 characters: letters, digits, spaces and . _ : / ( ) -, not starting with a space or symbol."
FIELD_HELP = {
    "name": f"Name: {NAME_HELP}",
    "description": "Description: at most 2000 characters.",
    "tier": "Tier: a whole number from 0 (most critical) to 3.",
    "environment": "Environment: production, staging or development.",
    "internet_facing": "Internet-facing: yes or no.",
    "owner": "Owner: at most 200 characters.",
    "runbook_url": "Runbook URL: an http:// or https:// address (or empty), at most 500 characters.",
    "slo_target": "SLO target: a percentage from 90 to 99.999.",
    "summary": "Summary: 1–300 characters.",
    "ref": "Reference: at most 200 characters.",
    "occurred_at": "When: a date and time, not more than 5 minutes in the future.",
    "kind": "Kind: deploy, config, flag or infra.",
}


def _strict(**kw):
    return Field(strict=True, **kw)


def _integer_only(value):
    """JSON integers (2, and 2.0, which JSON Schema calls an integer too), not true or "2"."""
    if isinstance(value, (bool, str)):
        raise ValueError("Input should be a JSON integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_integer_only)]


class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ServiceName = Field(description=f"Unique in the org (case-insensitively; a clash is 409). {NAME_HELP}")
    description: Description = ""
    tier: JsonInt = Field(default=2, ge=0, le=3, description="0 = most critical … 3 = least.")
    environment: Environment = "production"
    internet_facing: bool = _strict(default=False, description="Reachable from the internet (attack-path entry exposure).")
    owner: Owner = Field("", description="Owning team or person.")
    runbook_url: RunbookUrl = Field("", description="http:// or https:// only; empty for none.")
    slo_target: float = _strict(default=99.9, ge=90, le=99.999,
                                description="Percent of events that must be good, 90–99.999.")


class ServicePatch(BaseModel):
    """Only the fields present change."""

    model_config = ConfigDict(extra="forbid")
    name: ServiceName = Field(None, description=f"Unique in the org (a clash is 409). {NAME_HELP}")
    description: Description = None
    tier: JsonInt = Field(default=None, ge=0, le=3)
    environment: Environment = None
    internet_facing: bool = _strict(default=None)
    owner: Owner = None
    runbook_url: RunbookUrl = Field(None, description="http:// or https:// only; empty for none.")
    slo_target: float = _strict(default=None, ge=90, le=99.999)


class DependencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    depends_on_id: JsonInt = Field(ge=1, le=MAX_COUNT, description=(
        "The service this one calls (traffic flows service → depends_on), in the same org (else 404). "
        "A self-edge, an existing edge, or one that would close a cycle is 409."))


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ChangeKind = "deploy"
    summary: Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=r"\S")]
    ref: Annotated[str, StringConstraints(max_length=200)] = Field("", description="Commit, version or ticket.")
    occurred_at: AwareDatetime = Field(None, description="Default now; at most 5 minutes in the future (else 400).")


class SliSampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_start: AwareDatetime
    window_end: AwareDatetime = Field(description=(
        "After window_start, at most 31 days after it, and not in the future (5 minutes of clock skew allowed); "
        "else 400."))
    good: JsonInt = Field(ge=0, le=MAX_COUNT, description="Good events; at most total (else 400).")
    total: JsonInt = Field(ge=0, le=MAX_COUNT)


_SAMPLE_FIELDS = ("window_start", "window_end", "good", "total")


class SliIn(BaseModel):
    """One sample (window_start, window_end, good, total) or {"samples": [...]}; not both.
    A sample for exactly the same window as a stored one replaces its counts."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": list(_SAMPLE_FIELDS), "not": {"required": ["samples"]}},
        {"required": ["samples"], "not": {"anyOf": [{"required": [f]} for f in _SAMPLE_FIELDS]}},
    ]})
    window_start: AwareDatetime = None
    window_end: AwareDatetime = Field(None, description=SliSampleIn.model_fields["window_end"].description)
    good: JsonInt = Field(default=None, ge=0, le=MAX_COUNT, description="Good events; at most total (else 400).")
    total: JsonInt = Field(default=None, ge=0, le=MAX_COUNT)
    samples: list[SliSampleIn] = Field(None, min_length=1, max_length=MAX_SAMPLES)

    def sample_list(self) -> list[SliSampleIn] | None:
        """The samples this body carries, or None when it mixes or lacks the two forms."""
        single = [f for f in _SAMPLE_FIELDS if f in self.model_fields_set]
        if "samples" in self.model_fields_set:
            return None if single else list(self.samples)
        if len(single) != len(_SAMPLE_FIELDS):
            return None
        return [SliSampleIn(window_start=self.window_start, window_end=self.window_end, good=self.good, total=self.total)]


class AttackPathQuery(BaseModel):
    targetServiceId: int | None = Field(None, ge=1, le=MAX_COUNT, description=(
        "Rank paths to this service only (404 if it is not in your org). "
        "Default: every tier-0/1 production service."))
    maxDepth: int = Field(4, ge=1, le=8, description="Most dependency hops a path may take (1–8).")


# --- responses ------------------------------------------------------------------------------------

class ServiceOut(BaseModel):
    id: int
    name: str
    description: str
    tier: int
    environment: str
    internet_facing: bool
    owner: str
    runbook_url: str
    slo_target: float
    depends_on: list[int] = Field(description="Ids of the services this one calls.")
    created_at: dt.datetime


class ServicePage(BaseModel):
    data: list[ServiceOut]
    next_cursor: str | None


class DependencyOut(BaseModel):
    id: int
    service_id: int
    service_name: str
    depends_on_id: int
    depends_on_name: str
    created_at: dt.datetime


class ChangeOut(BaseModel):
    id: int
    service_id: int
    kind: str
    summary: str
    ref: str
    occurred_at: dt.datetime
    created_at: dt.datetime


class ChangePage(BaseModel):
    data: list[ChangeOut]
    next_cursor: str | None


class BurnRuleOut(BaseModel):
    rule: str
    severity: str
    long_window: str
    short_window: str
    threshold: float
    long_burn: float
    short_burn: float
    fired: bool


class SliRecordedOut(BaseModel):
    service_id: int
    stored: int = Field(description="New samples stored.")
    replaced: int = Field(description="Stored samples for exactly the same window whose counts were replaced.")
    rules: list[BurnRuleOut] = Field(description="Every burn-rate rule as evaluated right after storing.")
    incidents: list[dict] = Field(description="Incidents opened or folded into by rules that fired.")


class WindowOut(BaseModel):
    window: str
    start: dt.datetime
    end: dt.datetime
    source: Literal["sli", "derived_from_incidents", "no_data"]
    unit: Literal["events", "minutes"] | None
    total: float | None
    good: float | None
    bad: float | None
    budget: float | None
    consumed: float | None
    remaining: float | None
    remaining_ratio: float | None
    burn_rate: float | None


class SloOut(BaseModel):
    service: dict
    target: float
    error_budget_fraction: float
    status: Literal["critical", "warning", "ok", "no_data"]
    status_reasons: list[str]
    windows: list[WindowOut]
    burn_rules: list[BurnRuleOut]
    derivation: str


class BudgetRowOut(BaseModel):
    service_id: int
    name: str
    tier: int
    environment: str
    target: float
    source: str
    burn_rate_1h: float | None
    burn_rate_6h: float | None
    remaining_ratio_30d: float | None
    budget_used_30d: float | None
    status: Literal["critical", "warning", "ok", "no_data"]
    reasons: list[str]


class BudgetSummaryOut(BaseModel):
    generated_at: dt.datetime
    services: list[BudgetRowOut]
    counts: dict[str, int]
    critical: int
    warning: int
    services_with_data: int
    average_budget_used: float | None = Field(description="Mean 30-day budget used (consumed/budget) over services "
                                                          "with data; above 1 means overspent.")
    rules: dict[str, str]


class GraphNodeOut(BaseModel):
    id: int
    name: str
    tier: int
    environment: str
    internet_facing: bool
    open_incidents: int
    open_findings: int
    depth: int


class GraphEdgeOut(BaseModel):
    source: int
    target: int


class GraphOut(BaseModel):
    nodes: list[GraphNodeOut]
    edges: list[GraphEdgeOut]
    direction: str


class AttackPathsOut(BaseModel):
    target_service_id: int | None
    max_depth: int
    formula: str
    weights: dict
    entry_points: list[dict]
    targets: list[dict]
    paths: list[dict]
    paths_found: int
    truncated: bool
