"""A cross-request cache of derived compliance data (obligations, the engine's registers), validated on every use.

Reports at 100k obligations spend most of their time reading and deriving the same rows again on every request,
while the rows change a few times a day. Each worker therefore keeps the last derivation per (name, org) together
with the org's *compliance revision* at the time it was read, and reuses it only while the revision is unchanged.

The revision lives in the database (``compliance_revisions``), not in a worker: triggers on every source table
(``WATCHED_TABLES``; migration 0009) set it to a fresh random value in the same transaction as any INSERT, UPDATE
or DELETE, whatever issued it (the ORM, Core bulk writes, a retention purge, raw SQL). So:

- every worker and host sees a change as soon as it commits; nothing is invalidated by message;
- the revision is read *before* the data, so a change committed in between makes the stored entry stale at once
  (it is kept under the older revision) rather than wrong;
- a transaction reading its own uncommitted writes sees its own new random revision; if it rolls back, that value
  never becomes current again (random, never a counter), so the entry it left is simply never hit;
- values that are not in the watched tables but shape the derivation (owner e-mails, committee settings) are
  passed as ``check`` and compared on every hit.

Entries are shared between requests and must be treated as read-only by callers. The store is bounded
(``MAX_ENTRIES`` entries and ``MAX_ITEMS`` rows in all, least recently used first) and per process: losing
it costs one recomputation.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, TypeVar

from sqlalchemy import select

from zentro.compliance.models import ComplianceRevision
from zentro.extensions import db

# Keep in step with migrations/versions/0009_compliance_revisions.py (tests check that the triggers exist).
WATCHED_TABLES = ("attestations", "vendors", "audit_checkpoints", "evidence_requests", "policies",
                  "control_exceptions")
MAX_ENTRIES = 16
MAX_ITEMS = 400_000  # summed ``size`` of the entries kept (rows/obligations: about 150 MB at most per worker)

T = TypeVar("T")
_lock = threading.Lock()
_store: OrderedDict[tuple[str, str, int], tuple[int | None, Any, Any, int]] = OrderedDict()
stats = {"hits": 0, "misses": 0}


def revision(org_id: int) -> int | None:
    """The org's current compliance revision (None: no watched row of the org was ever written)."""
    return db.session.scalar(select(ComplianceRevision.revision).where(ComplianceRevision.org_id == org_id))


def cached(name: str, org_id: int, compute: Callable[[], T], *, check: Any = None,
           size: Callable[[T], int] | None = None) -> T:
    """``compute()``, or the value it returned earlier in this process for (name, database, org) when the org's
    revision and ``check`` are unchanged since. ``size(value)`` (items held, default 1) counts toward
    ``MAX_ITEMS``; the least recently used entries go first, and a value larger than the whole budget is
    returned without being kept."""
    key = (name, db.engine.url.render_as_string(hide_password=True), org_id)  # one process may serve two databases
    current = revision(org_id)  # before the data: see the module docstring
    with _lock:
        entry = _store.get(key)
        if entry is not None and entry[0] == current and entry[1] == check:
            _store.move_to_end(key)
            stats["hits"] += 1
            return entry[2]
    value = compute()
    weight = size(value) if size is not None else 1
    with _lock:
        stats["misses"] += 1
        _store.pop(key, None)
        if weight > MAX_ITEMS:
            return value
        _store[key] = (current, check, value, weight)
        while len(_store) > MAX_ENTRIES or sum(e[3] for e in _store.values()) > MAX_ITEMS:
            _store.popitem(last=False)
    return value


def clear() -> None:
    """Forget every entry (tests; a worker never needs to)."""
    with _lock:
        _store.clear()
