"""The evidence engine: per-control evidence, freshness, attestation state, exceptions and score;
framework readiness (weighted), family rollups, gaps with reasons, and weekly trends.

The arithmetic is documented in docs/compliance.md ("Readiness arithmetic") and pinned by
tests/compliance/test_engine.py. In short, for control T of a framework, as of a moment ``at``:

* evidence for T = audit_tags rows tagged with any tag in ``catalog.equivalents(T)`` (T itself: direct;
  its one-hop crosswalk neighbours: crosswalk, split by edge strength), accepted policies whose control
  tags intersect ``equivalents(T)`` (one item each, at ``accepted_at`` or else ``updated_at``), and vendor
  inheritance (a vendor whose ``inherited_controls`` contains T and whose report has not expired);
* evidence points (0–70): 70 when the newest direct or full-crosswalk evidence is within the control's
  freshness SLA; 50 when only partial-crosswalk, policy or inherited evidence is fresh; 25 when some
  evidence exists but none is fresh; 0 when there is none;
* attestation points (0–30): 30 attested and still valid, 15 assigned and not yet due, 0 otherwise
  (none, overdue, expired; a rejected attestation is back with its owner: assigned, then overdue);
* an open exception caps the score at 50;
* passing >= 70, at_risk 40–69, failing < 40; readiness = weight-weighted mean of control scores.

Aggregation happens in SQL. Per org and request: ONE grouped query over audit_tags for the window
(``count(*), max(created_at) ... GROUP BY tag``), ONE grouped query for the last evidence per tag before
``now`` (freshness beyond the window; the prior-period and trend-start cut-offs ride along in the same
statement as conditional ``max``), and, for trends, ONE grouped query on ``(tag, week)``. Crosswalk
equivalents are then folded in Python over the per-tag aggregates (a few hundred rows), never over audit
rows. ``assess_all`` computes every framework from the same queries.

Fast paths (each pinned against the straightforward computation by tests/compliance/test_engine_fast_paths.py):
the weekly trend derives every control's attestation state and vendor inheritance at every week end in one pass
over the registers (``Registers.attestation_states`` / ``inherited_flags``) instead of re-deriving each row's state
per week; ``load_registers`` reads column tuples (``AttestationItem`` is a NamedTuple built with ``_make``); and
inside ``shared_reads()`` the registers and grouped queries are read once for reports composed of other reports.
"""
from __future__ import annotations

import bisect
import contextlib
import contextvars
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from sqlalchemy import Integer, case, func, literal_column, select

from zentro.audit.models import AuditTag
from zentro.audit.service import epoch_day
from zentro.compliance.catalog import Catalog, Control, Framework, load_catalog
from zentro.compliance import derived_cache
from zentro.compliance.models import Attestation, ControlException, Policy, Vendor
from zentro.extensions import db
from zentro.platform.types import utcnow

PASSING, AT_RISK = 70.0, 40.0
EVIDENCE_POINTS = {"full": 70, "partial": 50, "stale": 25, "none": 0}
ATTESTATION_POINTS = {"attested": 30, "assigned": 15, "overdue": 0, "expired": 0, "none": 0}
# When a control has several attestation rows, the best state counts (in this order).
ATTESTATION_PRIORITY = ("attested", "assigned", "overdue", "expired", "none")
EXCEPTION_CAP = 50
DEFAULT_PERIOD_DAYS = 30
DEFAULT_TREND_WEEKS = 12
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def state_for(score: float) -> str:
    return "passing" if score >= PASSING else "at_risk" if score >= AT_RISK else "failing"


def weighted_mean(pairs: Iterable[tuple[float, float]]) -> float:
    """Weighted mean of (weight, score) pairs rounded to one decimal; 0.0 for no pairs."""
    total_w = total = 0.0
    for weight, score in pairs:
        total_w += weight
        total += weight * score
    return round(total / total_w, 1) if total_w else 0.0


def _date(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else "never"


# --- reads shared within one request --------------------------------------------------------------------------

_SHARED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("zentro_engine_shared", default=None)


@contextlib.contextmanager
def shared_reads() -> Iterator[None]:
    """Inside this block the engine's reads (``load_registers`` and the grouped audit_tags queries) are memoised by
    their arguments, so reports composed of other reports (the committee meeting pack) read the org's registers
    and aggregates once. Only for read-only work: nothing written inside the block is seen by a repeated read.
    Nested blocks share the outermost memo."""
    if _SHARED.get() is not None:
        yield
        return
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _memoised(key: tuple, compute):
    memo = _SHARED.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


# --- the grouped queries ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TagAgg:
    count: int
    last: dt.datetime | None


def _tag_window_aggregates(org_id: int, windows: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[dict[str, TagAgg]]:
    """Per tag: evidence rows and the newest one inside each [start, end) window, in ONE grouped query.

    One window is the plain ``SELECT tag, count(*), max(created_at) ... WHERE org_id=:o AND created_at >= :start
    AND created_at < :end GROUP BY tag`` (an index-only range scan of (org_id, created_at, tag)); several
    windows (live and prior period) scan their union with conditional aggregates."""
    if not windows:
        return []
    lo, hi = min(w[0] for w in windows), max(w[1] for w in windows)
    if len(windows) == 1:
        cols = [func.count(), func.max(AuditTag.created_at)]
    else:
        cols = []
        for start, end in windows:
            inside = (AuditTag.created_at >= start) & (AuditTag.created_at < end)
            cols += [func.sum(case((inside, 1), else_=0)), func.max(case((inside, AuditTag.created_at)))]
    stmt = (select(AuditTag.tag, *cols)
            .where(AuditTag.org_id == org_id, AuditTag.created_at >= lo, AuditTag.created_at < hi)
            .group_by(AuditTag.tag))
    out: list[dict[str, TagAgg]] = [{} for _ in windows]
    for row in db.session.execute(stmt):
        for i in range(len(windows)):
            count, last = row[1 + 2 * i], row[2 + 2 * i]
            if count:
                out[i][row[0]] = TagAgg(int(count), last)
    return out


def tag_window_aggregates(org_id: int, windows: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[dict[str, TagAgg]]:
    """``_tag_window_aggregates``, memoised inside ``shared_reads()``."""
    return _memoised(("tag_window_aggregates", org_id, tuple(windows)), lambda: _tag_window_aggregates(org_id, windows))


def _tag_last_evidence(org_id: int, cutoffs: Sequence[dt.datetime]) -> list[dict[str, dt.datetime]]:
    """Per tag: the newest evidence strictly before each cut-off (freshness beyond the window), in ONE grouped
    query over the (org_id, tag, created_at) index: ``SELECT tag, max(created_at) ... WHERE org_id=:o AND
    created_at < :now GROUP BY tag``; earlier cut-offs (prior period, trend start) are conditional maxima."""
    if not cutoffs:
        return []
    hi = max(cutoffs)
    cols = [func.max(AuditTag.created_at) if c == hi else func.max(case((AuditTag.created_at < c, AuditTag.created_at)))
            for c in cutoffs]
    stmt = (select(AuditTag.tag, *cols).where(AuditTag.org_id == org_id, AuditTag.created_at < hi)
            .group_by(AuditTag.tag))
    out: list[dict[str, dt.datetime]] = [{} for _ in cutoffs]
    for row in db.session.execute(stmt):
        for i in range(len(cutoffs)):
            if row[1 + i] is not None:
                out[i][row[0]] = row[1 + i]
    return out


def tag_last_evidence(org_id: int, cutoffs: Sequence[dt.datetime]) -> list[dict[str, dt.datetime]]:
    """``_tag_last_evidence``, memoised inside ``shared_reads()``."""
    return _memoised(("tag_last_evidence", org_id, tuple(cutoffs)), lambda: _tag_last_evidence(org_id, cutoffs))


@dataclass(frozen=True)
class TrendWindow:
    start_day: int  # epoch day of week 0's first day
    weeks: int
    start: dt.datetime  # midnight UTC of start_day
    end: dt.datetime  # now

    def week_start(self, week: int) -> dt.datetime:
        return EPOCH + dt.timedelta(days=self.start_day + 7 * week)

    def week_end(self, week: int) -> dt.datetime:
        """The moment week ``week`` is assessed at: its last instant, or now for the running week."""
        return min(self.end, EPOCH + dt.timedelta(days=self.start_day + 7 * (week + 1)))


def trend_window(now: dt.datetime, weeks: int) -> TrendWindow:
    """``weeks`` seven-day buckets ending with today (the last bucket is today and the six days before)."""
    start_day = epoch_day(now) - 7 * weeks + 1
    return TrendWindow(start_day, weeks, EPOCH + dt.timedelta(days=start_day), now)


def _tag_weekly_aggregates(org_id: int, tw: TrendWindow) -> dict[str, dict[int, TagAgg]]:
    """Per (tag, week): rows and the newest, in ONE grouped query where week = (day - start_day) / 7."""
    # the start day is inlined (an int we computed), so SELECT and GROUP BY are the same expression on PostgreSQL
    week = literal_column(f"({AuditTag.__tablename__}.day - {int(tw.start_day)}) / 7", Integer).label("week")
    stmt = (select(AuditTag.tag, week, func.count(), func.max(AuditTag.created_at))
            .where(AuditTag.org_id == org_id, AuditTag.created_at >= tw.start, AuditTag.created_at < tw.end)
            .group_by(AuditTag.tag, week))
    out: dict[str, dict[int, TagAgg]] = defaultdict(dict)
    for tag, wk, count, last in db.session.execute(stmt):
        wk = int(wk)
        if 0 <= wk < tw.weeks:
            out[tag][wk] = TagAgg(int(count), last)
    return out


def tag_weekly_aggregates(org_id: int, tw: TrendWindow) -> dict[str, dict[int, TagAgg]]:
    """``_tag_weekly_aggregates``, memoised inside ``shared_reads()``."""
    return _memoised(("tag_weekly_aggregates", org_id, tw), lambda: _tag_weekly_aggregates(org_id, tw))


# --- the org's registers (small tables, read once per request) --------------------------------------------

@dataclass(frozen=True)
class PolicyItem:
    id: int
    name: str
    tags: frozenset[str]
    at: dt.datetime


@dataclass(frozen=True)
class VendorItem:
    id: int
    name: str
    inherited: frozenset[str]
    report_expires_at: dt.datetime | None
    created_at: dt.datetime

    def valid_at(self, at: dt.datetime) -> bool:
        return self.created_at <= at and self.report_expires_at is not None and self.report_expires_at > at


class AttestationItem(NamedTuple):
    """One attestation row (a named tuple: a large org has tens of thousands, built on every engine read)."""
    id: int
    control: str
    status: str
    owner_id: int | None
    due_at: dt.datetime
    attested_at: dt.datetime | None
    valid_until: dt.datetime | None
    created_at: dt.datetime

    def state_at(self, at: dt.datetime) -> str | None:
        """assigned | overdue | attested | expired as of ``at``; None before it existed. A rejected statement
        sends the duty back to its owner: assigned until the due date, overdue after it."""
        if self.created_at > at:
            return None
        if self.status == "attested" and self.attested_at is not None and self.attested_at <= at:
            return "attested" if self.valid_until is None or self.valid_until > at else "expired"
        return "overdue" if self.due_at <= at else "assigned"


@dataclass(frozen=True)
class ExceptionItem:
    id: int
    control: str
    reason: str
    compensating_control: str
    status: str
    opened_at: dt.datetime
    expires_at: dt.datetime
    closed_at: dt.datetime | None

    def open_at(self, at: dt.datetime) -> bool:
        if self.opened_at > at or self.expires_at <= at:
            return False
        if self.closed_at is not None:
            return self.closed_at > at
        return self.status == "open"


@dataclass
class Registers:
    policies: list[PolicyItem]
    vendors: list[VendorItem]
    attestations: dict[str, list[AttestationItem]]
    exceptions: dict[str, list[ExceptionItem]]
    policies_by_tag: dict[str, list[PolicyItem]] = field(default_factory=dict)
    vendors_by_tag: dict[str, list[VendorItem]] = field(default_factory=dict)

    def policies_for(self, tag: str, equivalents: Iterable[str]) -> tuple[PolicyItem, ...]:
        """Accepted policies tagged with any of the control's equivalents, each once (cached per control)."""
        if not self.policies:
            return ()
        cached = self._policy_cache.get(tag)
        if cached is None:
            seen: dict[int, PolicyItem] = {}
            for t in equivalents:
                for p in self.policies_by_tag.get(t, ()):
                    seen.setdefault(p.id, p)
            cached = self._policy_cache[tag] = tuple(seen.values())
        return cached

    def attestation_states(self, moments: Sequence[dt.datetime]) -> dict[str, list[str]]:
        """Per control with attestations: ``attestation_state(items, m)`` for each of the ascending ``moments``,
        in one pass over the rows instead of one ``state_at`` per row and moment (the weekly trend asks for
        every control at every week end). Controls without attestations are left out (their state is "none").

        Why it is the same: ``AttestationItem.state_at`` gives each row one state per time interval — nothing
        before ``created_at``; from then, if it counts as attested (status attested with an ``attested_at``),
        "attested" from max(created_at, attested_at) until ``valid_until`` and "expired" after; before that (or
        for ever if it does not count) "assigned" until ``due_at`` and "overdue" from it. With ``idx(t)`` = the
        first moment index with m >= t (``bisect_left``), "t <= m" is "index >= idx(t)", so each interval is an
        index range; a difference array per state counts the rows in that state at each moment, and the state
        is the first one in ``ATTESTATION_PRIORITY`` with a non-zero count — what ``attestation_state`` picks."""
        key = tuple(moments)
        cached = self._state_cache.get(key)
        if cached is not None:
            return cached
        n = len(key)
        order = ("attested", "assigned", "overdue", "expired")
        out: dict[str, list[str]] = {}
        for tag, items in self.attestations.items():
            diff = [[0] * (n + 1) for _ in order]  # attested, assigned, overdue, expired
            att, asg, ovd, exp = diff
            for item in items:
                ic = bisect.bisect_left(key, item.created_at)
                if ic >= n:
                    continue
                if item.status == "attested" and item.attested_at is not None:
                    ia = max(ic, bisect.bisect_left(key, item.attested_at))
                    iv = n if item.valid_until is None else max(ia, bisect.bisect_left(key, item.valid_until))
                    att[ia] += 1
                    att[iv] -= 1
                    exp[iv] += 1
                else:
                    ia = n
                idd = min(max(ic, bisect.bisect_left(key, item.due_at)), ia)
                asg[ic] += 1
                asg[idd] -= 1
                ovd[idd] += 1
                ovd[ia] -= 1
            states = []
            live = [0, 0, 0, 0]
            for i in range(n):
                for k in range(4):
                    live[k] += diff[k][i]
                states.append(next((order[k] for k in range(4) if live[k] > 0), "none"))
            out[tag] = states
        self._state_cache[key] = out
        return out

    def inherited_flags(self, moments: Sequence[dt.datetime]) -> dict[str, list[bool]]:
        """Per tag some vendor inherits: whether any of them is valid at each ascending moment — the truth value of
        ``gather_evidence``'s ``inherited_from`` (all the weekly trend needs; the names are only shown as of now).
        ``VendorItem.valid_at`` holds on created_at <= m < report_expires_at, one index range per vendor."""
        key = tuple(moments)
        n = len(key)
        spans = {}
        for v in self.vendors:
            if v.report_expires_at is None:
                continue
            lo, hi = bisect.bisect_left(key, v.created_at), bisect.bisect_left(key, v.report_expires_at)
            if lo < hi:
                spans[v.id] = (lo, hi)
        out: dict[str, list[bool]] = {}
        for tag, vendors in self.vendors_by_tag.items():
            diff = [0] * (n + 1)
            for v in vendors:
                span = spans.get(v.id)
                if span:
                    diff[span[0]] += 1
                    diff[span[1]] -= 1
            flags, live = [], 0
            for i in range(n):
                live += diff[i]
                flags.append(live > 0)
            out[tag] = flags
        return out

    def inherited_flags_cached(self, moments: Sequence[dt.datetime]) -> dict[str, list[bool]]:
        """``inherited_flags``, computed once per moments for these registers."""
        key = ("inherited", tuple(moments))
        if key not in self._state_cache:
            self._state_cache[key] = self.inherited_flags(moments)  # type: ignore[assignment]
        return self._state_cache[key]  # type: ignore[return-value]

    def __post_init__(self) -> None:
        self._policy_cache: dict[str, tuple[PolicyItem, ...]] = {}
        self._state_cache: dict[tuple, dict[str, list[str]]] = {}
        by_tag: dict[str, list[PolicyItem]] = defaultdict(list)
        for p in self.policies:
            for t in p.tags:
                by_tag[t].append(p)
        self.policies_by_tag = dict(by_tag)
        vendors: dict[str, list[VendorItem]] = defaultdict(list)
        for v in self.vendors:
            for t in v.inherited:
                vendors[t].append(v)
        self.vendors_by_tag = dict(vendors)


_UTC = dt.timezone.utc


def _load_registers(org_id: int) -> Registers:
    """Accepted policies, vendors, attestations and exceptions of the org (read straight from their tables)."""
    pol = db.session.execute(select(Policy.id, Policy.name, Policy.control_tags, Policy.accepted_at, Policy.updated_at)
                             .where(Policy.org_id == org_id, Policy.status == "accepted")).all()
    ven = db.session.execute(select(Vendor.id, Vendor.name, Vendor.inherited_controls,
                                    Vendor.report_expires_at, Vendor.created_at)
                             .where(Vendor.org_id == org_id)).all()
    att = db.session.execute(select(Attestation.id, Attestation.control, Attestation.status, Attestation.owner_id,
                                    Attestation.due_at, Attestation.attested_at, Attestation.valid_until,
                                    Attestation.created_at).where(Attestation.org_id == org_id)).all()
    exc = db.session.execute(select(ControlException.id, ControlException.control, ControlException.reason,
                                    ControlException.compensating_control, ControlException.status,
                                    ControlException.opened_at, ControlException.expires_at, ControlException.closed_at)
                             .where(ControlException.org_id == org_id)).all()
    attestations: dict[str, list[AttestationItem]] = defaultdict(list)
    make = AttestationItem._make
    for r in att:
        attestations[r[1]].append(make(r))
    exceptions: dict[str, list[ExceptionItem]] = defaultdict(list)
    for r in exc:
        exceptions[r.control].append(ExceptionItem(*r))
    return Registers(
        policies=[PolicyItem(r.id, r.name, frozenset((r.control_tags or "").split()), r.accepted_at or r.updated_at)
                  for r in pol],
        vendors=[VendorItem(r[0], r[1], frozenset(r[2] or []), r[3], r[4]) for r in ven],
        attestations=dict(attestations), exceptions=dict(exceptions))


def load_registers(org_id: int) -> Registers:
    """``_load_registers``, memoised inside ``shared_reads()``. The rows are kept between requests by
    ``derived_cache`` until one of them changes; each call gets its own ``Registers`` around them, so the
    per-moment state caches of one request never grow another's."""
    def fresh() -> Registers:
        kept = derived_cache.cached("registers", org_id, lambda: _load_registers(org_id),
                                    size=lambda r: len(r.vendors) + sum(map(len, r.attestations.values())))
        return Registers(kept.policies, kept.vendors, kept.attestations, kept.exceptions)
    return _memoised(("load_registers", org_id), fresh)


# --- per-control arithmetic ---------------------------------------------------------------------------------

@dataclass
class ControlResult:
    tag: str
    framework: str
    id: str
    title: str
    family: str
    weight: float
    freshness_days: int
    direct_count: int
    crosswalk_count: int
    policy_count: int
    inherited_from: list[str]
    evidence_count: int
    last_evidence_at: dt.datetime | None
    fresh: bool
    evidence_level: str  # full | partial | stale | none
    evidence_points: int
    attestation: str  # none | assigned | attested | overdue | expired
    attestation_points: int
    open_exceptions: list[dict]
    score: float
    state: str  # passing | at_risk | failing
    reason: str
    attrs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "control": self.tag, "framework": self.framework, "id": self.id, "title": self.title, "family": self.family,
            "weight": self.weight, "freshness_days": self.freshness_days, "direct_count": self.direct_count,
            "crosswalk_count": self.crosswalk_count, "policy_count": self.policy_count,
            "inherited_from": list(self.inherited_from), "evidence_count": self.evidence_count,
            "last_evidence_at": self.last_evidence_at, "fresh": self.fresh, "evidence_level": self.evidence_level,
            "evidence_points": self.evidence_points, "attestation": self.attestation,
            "attestation_points": self.attestation_points, "open_exceptions": self.open_exceptions,
            "score": self.score, "state": self.state, "reason": self.reason,
        }


@dataclass
class Evidence:
    """What speaks for one control as of a moment: window counts and the newest item per source."""
    direct_count: int = 0
    full_count: int = 0
    partial_count: int = 0
    policy_count: int = 0
    last_direct: dt.datetime | None = None
    last_full: dt.datetime | None = None
    last_partial: dt.datetime | None = None
    last_policy: dt.datetime | None = None
    inherited_from: tuple[str, ...] = ()

    @property
    def last(self) -> dt.datetime | None:
        times = [t for t in (self.last_direct, self.last_full, self.last_partial, self.last_policy) if t is not None]
        return max(times) if times else None


def _newer(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


@dataclass(frozen=True)
class Edges:
    """A control's crosswalk neighbours split by strength (precomputed once per catalog)."""
    full: tuple[str, ...]
    partial: tuple[str, ...]
    equivalents: tuple[str, ...]


_EDGES: dict[int, tuple[Catalog, dict[str, Edges]]] = {}


def edges_of(catalog: Catalog) -> dict[str, Edges]:
    cached = _EDGES.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    out = {}
    for tag in catalog.all_tags():
        near = catalog.neighbours(tag)
        out[tag] = Edges(tuple(t for t, s in near if s == "full"), tuple(t for t, s in near if s != "full"),
                         (tag, *(t for t, _ in near)))
    _EDGES[id(catalog)] = (catalog, out)
    return out


def gather_evidence(control: Control, catalog: Catalog, window: dict[str, TagAgg], last: dict[str, dt.datetime],
                    registers: Registers, at: dt.datetime, window_start: dt.datetime | None,
                    inherited: bool | None = None) -> Evidence:
    """Fold the per-tag aggregates of the control's equivalents into its evidence (no database access).

    ``inherited``, when given, stands in for the vendor names (the trend only needs whether any vendor is valid,
    precomputed by ``Registers.inherited_flags``): True gives a one-element placeholder, False none."""
    tag = control.tag
    edges = edges_of(catalog)[tag]
    ev = Evidence()
    if window:
        agg = window.get(tag)
        ev.direct_count = agg.count if agg else 0
        for other in edges.full:
            agg = window.get(other)
            ev.full_count += agg.count if agg else 0
        for other in edges.partial:
            agg = window.get(other)
            ev.partial_count += agg.count if agg else 0
    ev.last_direct = last.get(tag)
    for other in edges.full:
        ev.last_full = _newer(ev.last_full, last.get(other))
    for other in edges.partial:
        ev.last_partial = _newer(ev.last_partial, last.get(other))
    for p in registers.policies_for(tag, edges.equivalents):
        if p.at > at:
            continue
        ev.last_policy = _newer(ev.last_policy, p.at)
        if window_start is None or p.at >= window_start:
            ev.policy_count += 1
    if inherited is not None:
        ev.inherited_from = ("(inherited)",) if inherited else ()
        return ev
    vendors = registers.vendors_by_tag.get(tag)
    if vendors:
        ev.inherited_from = tuple(sorted(v.name for v in vendors if v.valid_at(at)))
    return ev


def attestation_state(items: Iterable[AttestationItem], at: dt.datetime) -> str:
    states = {s for s in (i.state_at(at) for i in items) if s}
    return next((s for s in ATTESTATION_PRIORITY if s in states), "none")


def _attestation_date(items: Iterable[AttestationItem], state: str, at: dt.datetime) -> dt.datetime | None:
    dates = []
    for i in items:
        if i.state_at(at) == state:
            dates.append({"assigned": i.due_at, "overdue": i.due_at, "expired": i.valid_until,
                          "attested": i.valid_until}.get(state))
    dates = [d for d in dates if d is not None]
    if not dates:
        return None
    return max(dates) if state in ("attested", "expired") else min(dates)


def evidence_level(ev: Evidence, freshness_days: int, at: dt.datetime) -> str:
    """full | partial | stale | none (see the module docstring)."""
    fresh_from = at - dt.timedelta(days=freshness_days)

    def fresh(t: dt.datetime | None) -> bool:
        return t is not None and t >= fresh_from

    if fresh(ev.last_direct) or fresh(ev.last_full):
        return "full"
    if fresh(ev.last_partial) or fresh(ev.last_policy) or ev.inherited_from:
        return "partial"
    return "stale" if ev.last is not None else "none"


def control_score(level: str, attestation: str, open_exception: bool) -> float:
    """Evidence points + attestation points, capped at 50 while an exception is open."""
    score = float(EVIDENCE_POINTS[level] + ATTESTATION_POINTS[attestation])
    return min(score, float(EXCEPTION_CAP)) if open_exception else score


def score_at(control: Control, ev: Evidence, registers: Registers, at: dt.datetime,
             attestation: str | None = None) -> float:
    """Only the score (the trend's inner loop): the same arithmetic as ``score_control``. ``attestation``, when
    given, is the control's attestation state at ``at`` already derived (``Registers.attestation_states``)."""
    tag = control.tag
    if attestation is None:
        att_items = registers.attestations.get(tag)
        attestation = attestation_state(att_items, at) if att_items else "none"
    exc_items = registers.exceptions.get(tag)
    return control_score(evidence_level(ev, control.freshness_days, at), attestation,
                         bool(exc_items) and any(e.open_at(at) for e in exc_items))


def score_control(control: Control, ev: Evidence, registers: Registers, at: dt.datetime,
                  with_reason: bool = True) -> ControlResult:
    """The control's score as of ``at`` from its evidence, attestations and exceptions (see module docstring)."""
    level = evidence_level(ev, control.freshness_days, at)
    att_items = registers.attestations.get(control.tag, ())
    att = attestation_state(att_items, at)
    exceptions = [e for e in registers.exceptions.get(control.tag, ()) if e.open_at(at)]
    score = control_score(level, att, bool(exceptions))
    state = state_for(score)
    reason = _reason(control, ev, level, att, att_items, exceptions, at) if with_reason else ""
    return ControlResult(
        tag=control.tag, framework=control.framework, id=control.id, title=control.title, family=control.family,
        weight=control.weight, freshness_days=control.freshness_days, direct_count=ev.direct_count,
        crosswalk_count=ev.full_count + ev.partial_count, policy_count=ev.policy_count,
        inherited_from=list(ev.inherited_from),
        evidence_count=ev.direct_count + ev.full_count + ev.partial_count + ev.policy_count,
        last_evidence_at=ev.last, fresh=level in ("full", "partial"), evidence_level=level,
        evidence_points=EVIDENCE_POINTS[level], attestation=att, attestation_points=ATTESTATION_POINTS[att],
        open_exceptions=[{"id": e.id, "reason": e.reason, "compensating_control": e.compensating_control,
                          "opened_at": e.opened_at, "expires_at": e.expires_at} for e in exceptions],
        score=score, state=state, reason=reason, attrs=dict(control.attrs))


def _reason(control: Control, ev: Evidence, level: str, att: str, att_items, exceptions: list[ExceptionItem],
            at: dt.datetime) -> str:
    parts: list[str] = []
    if level == "none":
        parts.append(f"no evidence: nothing tagged {control.tag} or a crosswalk equivalent, and no accepted policy")
    elif level == "stale":
        age = (at - ev.last).days
        parts.append(f"evidence is stale: the last was on {_date(ev.last)} ({age} days ago), "
                     f"past the {control.freshness_days}-day freshness SLA")
    elif level == "partial":
        sources = []
        fresh_from = at - dt.timedelta(days=control.freshness_days)
        if ev.last_partial and ev.last_partial >= fresh_from:
            sources.append("partial crosswalk matches")
        if ev.last_policy and ev.last_policy >= fresh_from:
            sources.append("an accepted policy")
        if ev.inherited_from:
            sources.append("inheritance from " + ", ".join(ev.inherited_from))
        parts.append(f"only indirect evidence ({', '.join(sources)}): no fresh audit evidence tagged {control.tag} "
                     f"or a full crosswalk equivalent")
    if att == "none":
        parts.append("no attestation assigned")
    elif att == "assigned":
        parts.append(f"attestation assigned, not yet attested (due {_date(_attestation_date(att_items, att, at))})")
    elif att == "overdue":
        parts.append(f"attestation overdue since {_date(_attestation_date(att_items, att, at))}")
    elif att == "expired":
        parts.append(f"attestation expired on {_date(_attestation_date(att_items, att, at))}")
    for e in exceptions:
        comp = e.compensating_control.strip() or "none recorded"
        parts.append(f"open exception #{e.id} until {_date(e.expires_at)} ({e.reason.strip()}); compensating control: "
                     f"{comp}; score capped at {EXCEPTION_CAP}")
    if not parts:
        return "Fresh evidence and a valid attestation."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


# --- framework results ----------------------------------------------------------------------------------------

@dataclass
class FamilyResult:
    id: str
    title: str
    readiness: float
    controls: int
    passing: int
    at_risk: int
    failing: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TrendPoint:
    week: int
    week_start: dt.datetime
    assessed_at: dt.datetime
    readiness: float
    passing: int
    evidence_events: int  # direct tag rows of this framework's controls in that week

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class FrameworkResult:
    key: str
    name: str
    slug: str
    version: str
    now: dt.datetime
    period_days: int
    window_start: dt.datetime
    readiness: float
    controls: list[ControlResult]
    families: list[FamilyResult]
    trend: list[TrendPoint] = field(default_factory=list)
    control_trends: dict[str, list[float]] = field(default_factory=dict)  # tag -> score per trend week

    @property
    def counts(self) -> dict[str, int]:
        out = {"passing": 0, "at_risk": 0, "failing": 0}
        for c in self.controls:
            out[c.state] += 1
        return out

    @property
    def with_evidence(self) -> int:
        """Controls with evidence in the window (any source, or inherited from a vendor)."""
        return sum(1 for c in self.controls if c.evidence_count > 0 or c.inherited_from)

    @property
    def gaps(self) -> list[ControlResult]:
        """Controls under 70, worst first by weight × (70 − score)."""
        order = {c.tag: i for i, c in enumerate(self.controls)}
        under = [c for c in self.controls if c.score < PASSING]
        return sorted(under, key=lambda c: (-c.weight * (PASSING - c.score), order[c.tag]))

    def control(self, tag: str) -> ControlResult:
        return next(c for c in self.controls if c.tag == tag)

    def summary(self) -> dict:
        counts = self.counts
        return {"framework": self.key, "name": self.name, "readiness": self.readiness, "controls": len(self.controls),
                **counts, "with_evidence": self.with_evidence, "gaps": len(self.gaps)}


def _framework_result(fw: Framework, results: list[ControlResult], now: dt.datetime, period_days: int,
                      start: dt.datetime) -> FrameworkResult:
    families = []
    for fam in fw.families:
        members = [c for c in results if c.family == fam.id]
        states = [c.state for c in members]
        families.append(FamilyResult(fam.id, fam.title, weighted_mean((c.weight, c.score) for c in members),
                                     len(members), states.count("passing"), states.count("at_risk"),
                                     states.count("failing")))
    return FrameworkResult(fw.key, fw.name, fw.slug, fw.version, now, period_days, start,
                           weighted_mean((c.weight, c.score) for c in results), results, families)


@dataclass
class Snapshot:
    """Everything the engine read for one org as of ``now``: enough to assess any framework."""
    org_id: int
    now: dt.datetime
    period_days: int
    start: dt.datetime
    window: dict[str, TagAgg]
    last: dict[str, dt.datetime]
    registers: Registers
    catalog: Catalog
    trend: TrendWindow | None = None
    weekly: dict[str, dict[int, TagAgg]] = field(default_factory=dict)
    last_before_trend: dict[str, dt.datetime] = field(default_factory=dict)

    def assess(self, framework_key: str, *, with_trend: bool = True) -> FrameworkResult:
        fw = self.catalog.framework(framework_key)
        results = [score_control(c, gather_evidence(c, self.catalog, self.window, self.last, self.registers,
                                                    self.now, self.start), self.registers, self.now)
                   for c in fw.controls]
        out = _framework_result(fw, results, self.now, self.period_days, self.start)
        if with_trend and self.trend is not None:
            out.trend, out.control_trends = self._trend(fw)
        return out

    def assess_control(self, tag: str) -> ControlResult:
        c = self.catalog.control(tag)
        return score_control(c, gather_evidence(c, self.catalog, self.window, self.last, self.registers, self.now,
                                                self.start), self.registers, self.now)

    def _trend(self, fw: Framework) -> tuple[list[TrendPoint], dict[str, list[float]]]:
        tw = self.trend
        edges = edges_of(self.catalog)
        tags = set()
        for c in fw.controls:
            tags.update(edges[c.tag].equivalents)
        running = {t: self.last_before_trend[t] for t in tags if t in self.last_before_trend}
        points = []
        per_control: dict[str, list[float]] = {c.tag: [] for c in fw.controls}
        fw_tags = set(fw.tags())
        total_weight = sum(c.weight for c in fw.controls)
        # every control's attestation state and vendor inheritance at every week end, from one pass over the
        # registers (shared by all frameworks of the snapshot; see Registers.attestation_states)
        moments = [tw.week_end(week) for week in range(tw.weeks)]
        att_states = self.registers.attestation_states(moments)
        inherited = self.registers.inherited_flags_cached(moments)
        for week in range(tw.weeks):
            events = 0
            for t in tags:
                agg = self.weekly.get(t, {}).get(week)
                if agg is not None:
                    running[t] = _newer(running.get(t), agg.last)
                    if t in fw_tags:
                        events += agg.count
            at = tw.week_end(week)
            weighted = 0.0
            passing = 0
            for c in fw.controls:
                att = att_states.get(c.tag)
                inh = inherited.get(c.tag)
                score = score_at(c, gather_evidence(c, self.catalog, {}, running, self.registers, at, None,
                                                    inh[week] if inh else False),
                                 self.registers, at, att[week] if att else "none")
                per_control[c.tag].append(score)
                weighted += c.weight * score
                passing += score >= PASSING
            readiness = round(weighted / total_weight, 1) if total_weight else 0.0
            points.append(TrendPoint(week, tw.week_start(week), at, readiness, passing, events))
        return points, per_control


def _as_utc(now: dt.datetime | None) -> dt.datetime:
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.astimezone(dt.timezone.utc)


def snapshot(org_id: int, period_days: int = DEFAULT_PERIOD_DAYS, now: dt.datetime | None = None, *,
             trend_weeks: int = 0, catalog: Catalog | None = None) -> Snapshot:
    """Run the grouped queries once for the org: the window aggregate, the last-evidence aggregate (with the
    trend start as a second cut-off when a trend is asked for) and, for a trend, the weekly aggregate."""
    now = _as_utc(now)
    catalog = catalog or load_catalog()
    start = now - dt.timedelta(days=period_days)
    tw = trend_window(now, trend_weeks) if trend_weeks > 0 else None
    (window,) = tag_window_aggregates(org_id, [(start, now)])
    cutoffs = [now] + ([tw.start] if tw else [])
    lasts = tag_last_evidence(org_id, cutoffs)
    snap = Snapshot(org_id, now, period_days, start, window, lasts[0], load_registers(org_id), catalog)
    if tw is not None:
        snap.trend, snap.last_before_trend = tw, lasts[1]
        snap.weekly = tag_weekly_aggregates(org_id, tw)
    return snap


def assess(org_id: int, framework_key: str, period_days: int = DEFAULT_PERIOD_DAYS, now: dt.datetime | None = None,
           *, trend_weeks: int = 0) -> FrameworkResult:
    """One framework for the org over the window [now - period_days, now)."""
    catalog = load_catalog()
    catalog.framework(framework_key)
    return snapshot(org_id, period_days, now, trend_weeks=trend_weeks, catalog=catalog).assess(framework_key)


def assess_all(org_id: int, period_days: int = DEFAULT_PERIOD_DAYS, now: dt.datetime | None = None, *,
               trend_weeks: int = 0) -> dict[str, FrameworkResult]:
    """Every framework from the same two grouped audit_tags queries (three with a trend), keyed by framework key."""
    snap = snapshot(org_id, period_days, now, trend_weeks=trend_weeks)
    return {key: snap.assess(key) for key in snap.catalog.frameworks}


@dataclass
class Baseline:
    key: str
    name: str
    slug: str
    current: FrameworkResult
    prior: FrameworkResult

    @property
    def delta(self) -> float:
        return round(self.current.readiness - self.prior.readiness, 1)


def baseline_comparison(org_id: int, period_days: int = DEFAULT_PERIOD_DAYS,
                        now: dt.datetime | None = None) -> list[Baseline]:
    """Every framework now vs as of ``now - period_days`` (the prior period of the same length), from one
    two-window aggregate and one two-cut-off last-evidence aggregate."""
    now = _as_utc(now)
    catalog = load_catalog()
    prior_now = now - dt.timedelta(days=period_days)
    start, prior_start = now - dt.timedelta(days=period_days), prior_now - dt.timedelta(days=period_days)
    window, prior_window = tag_window_aggregates(org_id, [(start, now), (prior_start, prior_now)])
    last, prior_last = tag_last_evidence(org_id, [now, prior_now])
    registers = load_registers(org_id)
    cur = Snapshot(org_id, now, period_days, start, window, last, registers, catalog)
    old = Snapshot(org_id, prior_now, period_days, prior_start, prior_window, prior_last, registers, catalog)
    return [Baseline(key, fw.name, fw.slug, cur.assess(key), old.assess(key)) for key, fw in catalog.frameworks.items()]


def attestation_rollup(org_id: int, now: dt.datetime | None = None, registers: Registers | None = None) -> dict[str, int]:
    """Attestation rows by derived state now (rejected ones counted apart)."""
    now = _as_utc(now)
    registers = registers or load_registers(org_id)
    out = {"assigned": 0, "attested": 0, "overdue": 0, "expired": 0, "rejected": 0}
    for items in registers.attestations.values():
        for item in items:
            state = item.state_at(now)
            if item.status == "rejected":
                out["rejected"] += 1
            elif state:
                out[state] += 1
    out["total"] = sum(out.values())
    return out


def overdue_attestations(org_id: int, now: dt.datetime | None = None, registers: Registers | None = None,
                         limit: int = 10) -> list[dict[str, Any]]:
    now = _as_utc(now)
    registers = registers or load_registers(org_id)
    catalog = load_catalog()
    rows = []
    for tag, items in registers.attestations.items():
        for item in items:
            if item.state_at(now) == "overdue":
                title = catalog.control(tag).title if catalog.has(tag) else ""
                rows.append({"id": item.id, "control": tag, "title": title, "due_at": item.due_at,
                             "owner_id": item.owner_id, "days_overdue": (now - item.due_at).days})
    rows.sort(key=lambda r: (r["due_at"], r["id"]))
    return rows[:limit]


def evidence_timeline(org_id: int, tag: str, limit: int = 50) -> list:
    """The newest ``limit`` audit rows carrying ``tag`` or any of its crosswalk equivalents, newest first.

    Reads audit_tags through the (org_id, tag, created_at) index: at most ``limit`` rows per equivalent tag are
    enough to find the ``limit`` newest distinct events, which are then loaded by primary key."""
    from zentro.audit.models import AuditEvent

    catalog = load_catalog()
    equivalents = sorted(catalog.equivalents(tag))
    hits = db.session.execute(
        select(AuditTag.event_id, AuditTag.created_at)
        .where(AuditTag.org_id == org_id, AuditTag.tag.in_(equivalents))
        .order_by(AuditTag.created_at.desc(), AuditTag.event_id.desc())
        .limit(limit * len(equivalents))).all()
    ids: list[int] = []
    for event_id, _ in hits:
        if event_id not in ids:
            ids.append(event_id)
            if len(ids) == limit:
                break
    if not ids:
        return []
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.id.in_(ids))).all()
    order = {i: n for n, i in enumerate(ids)}
    return sorted(rows, key=lambda r: order[r.id])
