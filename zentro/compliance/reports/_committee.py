"""Shared computations of the committee & staffing reports: the weekly capacity budget over the forecast,
the peak weeks, owner load slices and the deterministic rebalance suggestions, and the staffing action rows.

Load balancing (documented in the obligation-load-balancing definitions):
- peak weeks: the forecast weeks whose owner-hours needed exceed the committee capacity; when none does, the
  three weeks with the most owner-hours (ties: the earlier week), leaving out weeks with no load;
- owner pool: the distinct owners (org members) with at least one open obligation due in the forecast horizon;
- fair share of a peak week = the week's owner-hours (assigned and unassigned) / the number of owners in the pool;
- suggestions, per peak week, greedy and deterministic:
  1. every unassigned obligation of the week (largest effort first, then key) goes to the owner with the least
     hours that week (ties: owner email);
  2. then, repeatedly, for the most loaded owner above the fair share (ties: email) and the least loaded owner
     (ties: email), move the donor's obligation whose effort h is closest to half the gap (donor − receiver) / 2
     among those with h < gap (ties: larger h, then key); a move always narrows the gap. When the most loaded
     owner has nothing that fits, the next one above the fair share is tried. Each obligation moves at most once;
     the loop stops when no owner above the fair share can give anything.
"""
from __future__ import annotations

import datetime as dt
import heapq
from dataclasses import dataclass, field

from sqlalchemy import select

from zentro.accounts.models import User
from zentro.compliance import obligations as obl
from zentro.compliance.models import StaffingAction
from zentro.extensions import db

UNASSIGNED = "(unassigned)"
RELIEF_KINDS = ("add_capacity", "defer", "consolidate")  # kinds that take hours off a week (rebalance moves them)
COUNTED_STATUSES = ("tracked", "completed")  # actions that count as planned relief
TOP_WEEKS = 3
MAX_MOVES_PER_WEEK = 200


@dataclass
class Forecast:
    config: obl.CommitteeConfig
    weeks: list[dt.date]
    buckets: dict[dt.date, list[obl.Obligation]]
    items: list[obl.Obligation]  # open obligations due before the end of the horizon (overdue ones included)
    start: dt.datetime
    end: dt.datetime

    @property
    def capacity(self) -> float:
        return float(self.config.capacity_hours_per_week)

    def hours(self, week: dt.date) -> float:
        return round(sum(o.effort_hours for o in self.buckets[week]), 2)

    def pool(self) -> list[str]:
        """Owners (emails) with an open obligation due in the horizon, sorted."""
        return sorted({o.owner for w in self.weeks for o in self.buckets[w] if o.owner})


def forecast(org_id: int, now: dt.datetime, weeks: int) -> Forecast:
    config = obl.committee_config(org_id)
    week_list = obl.weeks_from(now, weeks)
    start = dt.datetime.combine(week_list[0], dt.time(), dt.timezone.utc)
    end = start + dt.timedelta(weeks=weeks)
    # nothing due after the horizon is used: read only what is due before its end (overdue ones included)
    items = [o for o in obl.open_only(obl.load(org_id, now, config=config, until=end)) if o.due_at < end]
    return Forecast(config, week_list, obl.in_weeks(items, week_list), items, start, end)


def relief_by_week(org_id: int, weeks: list[dt.date]) -> dict[dt.date, float]:
    """Hours of tracked or completed add_capacity / defer / consolidate staffing actions per week: ONE grouped
    read over the horizon."""
    from sqlalchemy import func

    if not weeks:
        return {}
    rows = db.session.execute(
        select(StaffingAction.week_start, func.sum(StaffingAction.hours))
        .where(StaffingAction.org_id == org_id, StaffingAction.week_start >= weeks[0],
               StaffingAction.week_start <= weeks[-1], StaffingAction.kind.in_(RELIEF_KINDS),
               StaffingAction.status.in_(COUNTED_STATUSES))
        .group_by(StaffingAction.week_start))
    return {w: float(h or 0) for w, h in rows}


def pct(part: float, whole: float) -> float:
    return round(part / whole * 100, 1) if whole else 0.0


def capacity_rows(fc: Forecast, relief: dict[dt.date, float]) -> list[dict]:
    cap = fc.capacity
    out = []
    for w in fc.weeks:
        items = fc.buckets[w]
        needed = fc.hours(w)
        shortfall = round(max(0.0, needed - cap), 2)
        rel = round(relief.get(w, 0.0), 2)
        residual = round(max(0.0, needed - cap - rel), 2)
        out.append({"week": w, "obligations": len(items), "needed_hours": needed, "capacity_hours": cap,
                    "utilisation_pct": pct(needed, cap), "shortfall_hours": shortfall,
                    "headroom_hours": round(max(0.0, cap - needed), 2), "shortfall": shortfall > 0,
                    "relief_hours": rel, "residual_shortfall_hours": residual,
                    "owners": len({o.owner for o in items if o.owner}),
                    "unassigned_hours": round(sum(o.effort_hours for o in items if not o.owner), 2),
                    "density_level": obl.density_level(len(items), fc.config)})
    return out


def peak_weeks(fc: Forecast) -> tuple[list[dt.date], str]:
    """(peak weeks in date order, basis): the weeks over capacity, else the top three by hours."""
    over = [w for w in fc.weeks if fc.hours(w) > fc.capacity]
    if over:
        return over, "over_capacity"
    loaded = [w for w in fc.weeks if fc.hours(w) > 0]
    top = sorted(loaded, key=lambda w: (-fc.hours(w), w))[:TOP_WEEKS]
    return sorted(top), ("top_by_hours" if top else "none")


@dataclass
class WeekBalance:
    week: dt.date
    hours: float
    fair_share: float
    before: dict[str, float]  # pool owner (and UNASSIGNED) -> hours
    counts: dict[str, int]
    after: dict[str, float]
    suggestions: list[dict] = field(default_factory=list)

    def overload(self, loads: dict[str, float]) -> float:
        return round(sum(max(0.0, h - self.fair_share) for o, h in loads.items() if o != UNASSIGNED), 2)


def balance_week(week: dt.date, items: list[obl.Obligation], pool: list[str]) -> WeekBalance:
    hours = round(sum(o.effort_hours for o in items), 2)
    before: dict[str, float] = {o: 0.0 for o in pool}
    counts: dict[str, int] = {o: 0 for o in pool}
    for o in items:
        who = o.owner or UNASSIGNED
        before[who] = round(before.get(who, 0.0) + o.effort_hours, 2)
        counts[who] = counts.get(who, 0) + 1
    fair = round(hours / len(pool), 2) if pool else 0.0
    wb = WeekBalance(week, hours, fair, before, counts, {})
    if not pool:
        wb.after = dict(before)
        return wb
    loads = {o: before.get(o, 0.0) for o in pool}
    held: dict[str, list[obl.Obligation]] = {o: [] for o in pool}
    for o in items:
        if o.owner:
            held[o.owner].append(o)

    def least() -> str:
        return min(pool, key=lambda p: (loads[p], p))

    def move(o: obl.Obligation, src: str, dst: str) -> None:
        wb.suggestions.append({"week": week, "obligation": o.key, "title": o.title, "kind": o.kind,
                               "due": o.due_at.date(), "hours": o.effort_hours, "from": src, "to": dst,
                               "from_hours_after": round(loads[src], 2) if src != UNASSIGNED else None,
                               "to_hours_after": round(loads[dst] + o.effort_hours, 2)})
        loads[dst] = round(loads[dst] + o.effort_hours, 2)

    heap = [(loads[p], p) for p in pool]  # loads only grow in this phase: a heap finds the least loaded fast
    heapq.heapify(heap)
    for o in sorted((o for o in items if not o.owner), key=lambda o: (-o.effort_hours, o.key)):
        _, dst = heapq.heappop(heap)
        move(o, UNASSIGNED, dst)
        heapq.heappush(heap, (loads[dst], dst))
    moved: set[str] = set()
    for _ in range(MAX_MOVES_PER_WEEK):
        done = True
        for donor in sorted((p for p in pool if loads[p] > fair + 1e-9), key=lambda p: (-loads[p], p)):
            receiver = least()
            gap = loads[donor] - loads[receiver]
            fits = [o for o in held[donor] if o.key not in moved and o.effort_hours < gap - 1e-9]
            if not fits:
                continue
            pick = min(fits, key=lambda o: (abs(o.effort_hours - gap / 2), -o.effort_hours, o.key))
            moved.add(pick.key)
            held[donor].remove(pick)
            loads[donor] = round(loads[donor] - pick.effort_hours, 2)
            move(pick, donor, receiver)
            done = False
            break
        if done:
            break
    wb.after = {**loads, UNASSIGNED: 0.0} if UNASSIGNED in before else dict(loads)
    return wb


def balances(fc: Forecast) -> tuple[list[WeekBalance], str]:
    weeks, basis = peak_weeks(fc)
    pool = fc.pool()
    return [balance_week(w, fc.buckets[w], pool) for w in weeks], basis


def suggestion_title(s: dict) -> str:
    return f"Move {s['obligation']} from {s['from']} to {s['to']}"


def user_emails(ids: set[int]) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())
