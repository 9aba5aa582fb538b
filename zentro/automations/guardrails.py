"""Guardrail kinds: their parameter models (one pydantic model per kind, the same ones the API and the
pages validate with) and their evaluation against a dry-run's blast radius at an injected ``now``.

Scope: a guardrail with a ``service_id`` applies when that service is in the blast radius (touched or a
downstream dependent); an org-wide guardrail (no service) always applies.

Kinds and verdicts
  maintenance_window  {weekdays, start "HH:MM", end "HH:MM", tz "UTC", block_outside}: inside the window
                      pass; outside needs_approval (blocked when block_outside). end <= start spans
                      midnight (the window opens on a listed weekday); start == end is the whole day.
  tier_protection     {max_tier}: touching a service of tier <= max_tier (0 = most critical) needs approval.
  max_blast_radius    {max_services}: more services in the radius than that blocks.
  required_approvers  {approvers: [emails of org members], min: 1}: needs approval from one of them
                      (or an owner/admin).
  change_freeze       {starts_at, ends_at, reason}: blocked while starts_at <= now < ends_at.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from zentro.compliance.attestations import UtcDatetime
from zentro.platform.types import iso
from zentro.reliability.schemas import JsonInt

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ClockTime = Annotated[str, StringConstraints(pattern=r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$")]
Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+$")]
FreezeReason = Annotated[str, StringConstraints(min_length=1, max_length=500,
                                                pattern=r"^[\t\n\r ]*[^\x00-\x20\x7f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MaintenanceWindowParams(_Params):
    weekdays: list[Weekday] = Field(min_length=1, max_length=7, description="Days the window opens (mon … sun).")
    start: ClockTime = Field(description="HH:MM, 24-hour clock, in tz.")
    end: ClockTime = Field(description="HH:MM; at or before start means the window spans midnight (equal: all day).")
    tz: Literal["UTC"] = Field("UTC", description="Time zone of start/end (UTC).")
    block_outside: StrictBool = Field(False, description="Outside the window: block instead of needing approval.")


class TierProtectionParams(_Params):
    max_tier: JsonInt = Field(0, ge=0, le=3, description="Touching a service of this tier or more critical needs approval.")


class MaxBlastRadiusParams(_Params):
    max_services: JsonInt = Field(ge=1, le=1000, description="More services in the blast radius than this blocks.")


class RequiredApproversParams(_Params):
    approvers: list[Email] = Field(min_length=1, max_length=20,
                                   description="E-mail addresses of members of this organisation (not viewers).")
    min: Literal[1] = Field(1, description="How many of them must approve (one).")


class ChangeFreezeParams(_Params):
    starts_at: UtcDatetime
    ends_at: UtcDatetime = Field(description="After starts_at.")
    reason: FreezeReason


PARAMS: dict[str, type[_Params]] = {
    "maintenance_window": MaintenanceWindowParams,
    "tier_protection": TierProtectionParams,
    "max_blast_radius": MaxBlastRadiusParams,
    "required_approvers": RequiredApproversParams,
    "change_freeze": ChangeFreezeParams,
}


# --- evaluation -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RadiusService:
    id: int
    name: str
    tier: int
    touched: bool


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_window(p: dict, now: dt.datetime) -> bool:
    """Whether ``now`` falls in the maintenance window ``p`` (UTC)."""
    local = now.astimezone(dt.timezone.utc)
    start, end, minute = _minutes(p["start"]), _minutes(p["end"]), local.hour * 60 + local.minute
    today, yesterday = WEEKDAYS[local.weekday()], WEEKDAYS[(local.weekday() - 1) % 7]
    days = set(p["weekdays"])
    if start == end:
        return today in days
    if start < end:
        return today in days and start <= minute < end
    return (today in days and minute >= start) or (yesterday in days and minute < end)


def _window_check(p: dict, radius: list[RadiusService], now: dt.datetime) -> tuple[str, str]:
    span = f"{', '.join(p['weekdays'])} {p['start']}–{p['end']} {p.get('tz', 'UTC')}"
    if in_window(p, now):
        return "pass", f"Inside the maintenance window ({span})."
    verdict = "blocked" if p.get("block_outside") else "needs_approval"
    return verdict, f"Outside the maintenance window ({span}) at {now:%a %H:%M} UTC" + (
        "; changes outside it are blocked." if verdict == "blocked" else "; an approval is required.")


def _tier_check(p: dict, radius: list[RadiusService], now: dt.datetime) -> tuple[str, str]:
    protected = [s for s in radius if s.touched and s.tier <= p["max_tier"]]
    if protected:
        names = ", ".join(f"{s.name} (tier {s.tier})" for s in protected)
        return "needs_approval", f"Touches protected services of tier ≤ {p['max_tier']}: {names}."
    return "pass", f"No touched service is tier ≤ {p['max_tier']}."


def _radius_check(p: dict, radius: list[RadiusService], now: dt.datetime) -> tuple[str, str]:
    n, limit = len(radius), p["max_services"]
    if n > limit:
        return "blocked", f"The blast radius holds {n} services, more than the limit of {limit}."
    return "pass", f"The blast radius holds {n} of at most {limit} services."


def _approvers_check(p: dict, radius: list[RadiusService], now: dt.datetime) -> tuple[str, str]:
    return "needs_approval", f"Needs approval from one of: {', '.join(p['approvers'])} (or an owner/admin)."


def _freeze_check(p: dict, radius: list[RadiusService], now: dt.datetime) -> tuple[str, str]:
    starts, ends = (dt.datetime.fromisoformat(p[k].replace("Z", "+00:00")) for k in ("starts_at", "ends_at"))
    if starts <= now < ends:
        return "blocked", f"Change freeze until {iso(ends)}: {p['reason']}"
    when = "ended" if now >= ends else f"starts {iso(starts)}"
    return "pass", f"No change freeze in force (the freeze {when})."


EVALUATORS = {
    "maintenance_window": _window_check,
    "tier_protection": _tier_check,
    "max_blast_radius": _radius_check,
    "required_approvers": _approvers_check,
    "change_freeze": _freeze_check,
}


def evaluate(guardrails, radius: list[RadiusService], now: dt.datetime) -> list[dict]:
    """One check per enabled guardrail in scope: {guardrail_id, name, kind, service_id, verdict, reason}
    (required_approvers checks also carry ``approvers``, the snapshot the decision rule uses)."""
    in_radius = {s.id: s for s in radius}
    checks = []
    for g in guardrails:
        if not g.enabled or (g.service_id is not None and g.service_id not in in_radius):
            continue
        scope = [in_radius[g.service_id]] if g.service_id is not None else radius
        verdict, reason = EVALUATORS[g.kind](g.params, scope if g.kind == "tier_protection" else radius, now)
        check = {"guardrail_id": g.id, "name": g.name, "kind": g.kind, "service_id": g.service_id,
                 "verdict": verdict, "reason": reason}
        if g.kind == "required_approvers":
            check["approvers"] = list(g.params["approvers"])
        checks.append(check)
    return checks


def overall(checks: list[dict]) -> str:
    verdicts = {c["verdict"] for c in checks}
    return "blocked" if "blocked" in verdicts else "needs_approval" if "needs_approval" in verdicts else "pass"
