"""Shared computations of the obligation reports (helper module, not a report): the forecast horizon and its
weekly density rows (forecast, what-if), audit-checkpoint milestones, and crossover clustering (crossover,
consolidation and the consolidation write path in ``zentro.compliance.checkpoints``).

Crossover clusters
------------------
Two open obligations are *linked* when

- they share evidence: a control of one is the same control as, or a direct crosswalk neighbour of, a control of
  the other (``Catalog.equivalents``: one hop, the same rule the evidence engine uses), or
- they share a framework (both carry the same catalog framework key).

Obligations with neither frameworks nor controls (scheduled bundles) never link.

Clusters are formed greedily in due order (due date, then key) over the candidate set: each obligation not yet in
a cluster *anchors* a window ``[anchor due, anchor due + windowDays]``; every unclustered candidate due inside
that window that links to the anchor or to a member already taken joins (repeated until nothing more joins). Two
or more members make a cluster; a lone anchor is left out and the next unclustered obligation anchors the next
window. The candidate set is every open obligation (overdue ones included) due before the end of
``CLUSTER_HORIZON_WEEKS`` weeks from the start of the current week, whatever horizon a report shows, so a
cluster's membership and key do not depend on the report's ``weeks`` parameter; reports list the clusters whose
anchor is due before the end of their horizon.

Cluster key: ``"<anchor obligation key>~<windowDays>d"`` (e.g. ``attestation:12~14d``). It stays the same while
the anchor is open and still the earliest member: obligations joining later in the window do not change it, which
is what the tracked consolidation play steps (``ConsolidationPlayStep.cluster_key``) hang on.

Potential hours saved = the members' effort hours summed minus the largest single member's effort: one
consolidated evidence pull, costed as the largest member's effort, instead of one pull per obligation.
"""
from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Iterable, Sequence

from sqlalchemy import select

from zentro.compliance import obligations as obl
from zentro.compliance.catalog import load_catalog
from zentro.compliance.models import AuditCheckpoint
from zentro.extensions import db

CLUSTER_HORIZON_WEEKS = 52
WINDOW_DAYS_MAX = 60
PLAY_STEPS = (
    (1, "Confirm shared scope", "Confirm the members really overlap: same systems, period and controls."),
    (2, "Pick the lead evidence owner", "One owner runs the pull for every member obligation."),
    (3, "Build one evidence request list", "Merge the members' evidence asks into a single list."),
    (4, "Collect once", "Collect each piece of evidence one time, from the source system."),
    (5, "Map evidence to each framework", "Map the collected evidence to every member framework's controls."),
    (6, "Record reuse in the audit log", "Record where the evidence was reused, for the assessors' trail."),
)
STEP_NAMES = {n: name for n, name, _ in PLAY_STEPS}
_DUE_ORDER = attrgetter("due_at", "key")
_KEY = re.compile(r"^(?P<anchor>[a-z-]+:[0-9A-Za-z-]+)~(?P<days>[0-9]{1,2})d$")


# --- horizon and weekly density ---------------------------------------------------------------------------

def horizon(now: dt.datetime, weeks: int) -> tuple[list[dt.date], dt.datetime, dt.datetime]:
    """(week starts, start of the current week, end of the last week) for a ``weeks``-week horizon."""
    days = obl.weeks_from(now, weeks)
    start = dt.datetime.combine(days[0], dt.time(), dt.timezone.utc)
    return days, start, start + dt.timedelta(weeks=weeks)


@dataclass
class WeekRow:
    week: dt.date
    count: int
    hours: float
    level: str
    kinds: dict[str, int]
    milestones: list[str] = field(default_factory=list)


def forecast_weeks(items: Iterable[obl.Obligation], weeks: Sequence[dt.date], config: obl.CommitteeConfig,
                   milestones: dict[dt.date, list[str]] | None = None) -> list[WeekRow]:
    """Per week of the horizon: open obligations due that week, their owner-hours and the density level."""
    buckets = obl.in_weeks(items, weeks)
    dens = obl.density(buckets)
    out = []
    for w in weeks:
        count, hours = dens[w]
        out.append(WeekRow(w, count, hours, obl.density_level(count, config), obl.kind_counts(buckets[w]),
                           list((milestones or {}).get(w, []))))
    return out


def peak(rows: Sequence[WeekRow]) -> WeekRow | None:
    """The week with the most obligations due (ties: the most hours, then the earliest)."""
    if not rows:
        return None
    return max(rows, key=lambda r: (r.count, r.hours, -r.week.toordinal()))


def checkpoint_milestones(org_id: int, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Audit checkpoints (planned and done) due in [start, end), in date order: the committee milestones."""
    rows = db.session.execute(select(AuditCheckpoint.id, AuditCheckpoint.name, AuditCheckpoint.framework,
                                     AuditCheckpoint.due_at, AuditCheckpoint.status)
                              .where(AuditCheckpoint.org_id == org_id, AuditCheckpoint.due_at >= start,
                                     AuditCheckpoint.due_at < end)
                              .order_by(AuditCheckpoint.due_at, AuditCheckpoint.id))
    out = []
    for cid, name, framework, due_at, status in rows:
        due_at = due_at if due_at.tzinfo else due_at.replace(tzinfo=dt.timezone.utc)
        out.append({"id": cid, "name": name, "framework": framework, "due_at": due_at, "status": status,
                    "week": obl.week_start(due_at)})
    return out


# --- crossover clusters -----------------------------------------------------------------------------------

@dataclass
class Cluster:
    key: str
    anchor: obl.Obligation
    members: list[obl.Obligation]
    window_days: int
    frameworks: tuple[str, ...]
    shared_frameworks: tuple[str, ...]
    shared_controls: tuple[str, ...]

    @property
    def window_start(self) -> dt.date:
        return self.anchor.due_at.date()

    @property
    def window_end(self) -> dt.date:
        return (self.anchor.due_at + dt.timedelta(days=self.window_days)).date()

    @property
    def link(self) -> str:
        """crosswalk (shared or crosswalk-equivalent controls), framework (a shared framework only), or both."""
        if self.shared_controls and self.shared_frameworks:
            return "crosswalk+framework"
        return "crosswalk" if self.shared_controls else "framework"

    @property
    def effort_hours(self) -> float:
        return round(sum(o.effort_hours for o in self.members), 1)

    @property
    def largest_effort(self) -> float:
        return max(o.effort_hours for o in self.members)

    @property
    def hours_saved(self) -> float:
        return round(self.effort_hours - self.largest_effort, 1)


def cluster_key(anchor_key: str, window_days: int) -> str:
    return f"{anchor_key}~{window_days}d"


def window_of_key(key: str) -> int | None:
    """The window (days) a cluster key was formed with, or None when the key is not a cluster key."""
    m = _KEY.match(key or "")
    if not m:
        return None
    days = int(m.group("days"))
    return days if 1 <= days <= WINDOW_DAYS_MAX else None


def cluster_candidates(obligations: Iterable[obl.Obligation], now: dt.datetime) -> list[obl.Obligation]:
    """Open obligations due before the end of the clustering horizon (overdue ones included)."""
    _, _, end = horizon(now, CLUSTER_HORIZON_WEEKS)
    return [o for o in obligations if o.status == "open" and o.due_at < end]


def clusters(obligations: Iterable[obl.Obligation], now: dt.datetime, window_days: int) -> list[Cluster]:
    """Crossover clusters over the open obligations (see the module docstring), in anchor due order."""
    edges = _equivalents()
    cands = sorted((o for o in cluster_candidates(obligations, now) if o.frameworks or o.controls),
                   key=_DUE_ORDER)  # obligations.load's order already: a linear pass
    dues = [o.due_at for o in cands]
    window = dt.timedelta(days=window_days)
    taken = [False] * len(cands)
    out: list[Cluster] = []

    def reach_of(o: obl.Obligation) -> set[str]:
        r: set[str] = set()
        for c in o.controls:
            r.update(edges.get(c, (c,)))
        return r

    get_edges = edges.get

    for i, anchor in enumerate(cands):
        if taken[i]:
            continue
        taken[i] = True
        stop = bisect.bisect_right(dues, anchor.due_at + window)
        pending = [j for j in range(i + 1, stop) if not taken[j]]
        if not pending:
            continue
        frameworks = set(anchor.frameworks)
        reach = reach_of(anchor)
        members = [i]
        grew = True
        while grew and pending:
            grew = False
            rest = []
            for j in pending:
                o = cands[j]
                if frameworks.intersection(o.frameworks) or reach.intersection(o.controls):
                    members.append(j)
                    frameworks.update(o.frameworks)
                    for c in o.controls:
                        reach.update(get_edges(c, (c,)))
                    grew = True
                else:
                    rest.append(j)
            pending = rest
        if len(members) < 2:
            continue
        for j in members:
            taken[j] = True
        items = sorted((cands[j] for j in members), key=_DUE_ORDER)
        out.append(_cluster(anchor, items, window_days, edges))
    return out


def _cluster(anchor: obl.Obligation, items: list[obl.Obligation], window_days: int,
             edges: dict[str, tuple[str, ...]]) -> Cluster:
    holders: dict[str, set[int]] = {}  # control tag -> indexes of members carrying it
    fw_count: dict[str, int] = {}
    for n, o in enumerate(items):
        for c in o.controls:
            holders.setdefault(c, set()).add(n)
        for f in o.frameworks:
            fw_count[f] = fw_count.get(f, 0) + 1
    shared = set()
    for tag, owners in holders.items():
        if len(owners) > 1:  # the same control in two members
            shared.add(tag)
            continue
        for other in edges.get(tag, ()):  # a crosswalk neighbour in another member
            if other != tag and holders.get(other, set()) - owners:
                shared.add(tag)
                break
    frameworks = sorted(fw_count)
    return Cluster(cluster_key(anchor.key, window_days), anchor, items, window_days, tuple(frameworks),
                   tuple(f for f in frameworks if fw_count[f] > 1), tuple(sorted(shared)))


_EQ: dict[int, tuple[object, dict[str, tuple[str, ...]]]] = {}


def _equivalents() -> dict[str, tuple[str, ...]]:
    """Control tag -> (itself, its direct crosswalk neighbours), computed once per catalog."""
    catalog = load_catalog()
    cached = _EQ.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    table = {tag: tuple(sorted(catalog.equivalents(tag))) for tag in catalog.all_tags()}
    _EQ[id(catalog)] = (catalog, table)
    return table


def cluster_rows(items: Iterable[Cluster], now: dt.datetime) -> list[dict]:
    return [{"cluster_key": c.key, "window_start": c.window_start, "window_end": c.window_end,
             "members": len(c.members), "member_keys": [o.key for o in c.members],
             "kinds": sorted({o.kind for o in c.members}), "frameworks": list(c.frameworks),
             "framework_count": len(c.frameworks), "shared_frameworks": list(c.shared_frameworks),
             "shared_controls": list(c.shared_controls), "link": c.link,
             "owners": sorted({o.owner or "(unassigned)" for o in c.members}),
             "overdue_members": sum(1 for o in c.members if o.overdue(now)),
             "effort_hours": c.effort_hours, "largest_effort": c.largest_effort, "hours_saved": c.hours_saved}
            for c in items]
