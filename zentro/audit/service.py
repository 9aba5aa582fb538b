"""Recording and verifying the hash-chained audit log. Every mutation records through ``record``."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterable, Iterator

from sqlalchemy import func, insert, select

from zentro.accounts.models import Org
from zentro.audit.models import GENESIS_HASH, AuditEvent, AuditTag, PurgeCheckpoint
from zentro.extensions import db
from zentro.platform.types import iso, utcnow


@dataclass(frozen=True)
class Actor:
    type: str  # user | api_key | ingest_token | system
    id: str = ""
    label: str = ""


SYSTEM = Actor("system", "", "zentro")
# Set per request by the platform layer so service code need not pass it around.
current_request_id: ContextVar[str] = ContextVar("zentro_request_id", default="")


def _canonical(row: AuditEvent) -> bytes:
    payload = {
        "org_id": row.org_id,
        "seq": row.seq,
        "created_at": iso(row.created_at),
        "actor": [row.actor_type, row.actor_id, row.actor_label],
        "action": row.action,
        "target": [row.target_type, row.target_id],
        "control_tags": row.control_tags,
        "request_id": row.request_id,
        "data": row.data,
        "prev_hash": row.prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def compute_hash(row: AuditEvent) -> str:
    return hashlib.sha256(_canonical(row)).hexdigest()


def record(
    org_id: int,
    action: str,
    actor: Actor,
    *,
    target_type: str = "",
    target_id: object = "",
    control_tags: Iterable[str] = (),
    data: dict | None = None,
    request_id: str = "",
    now: dt.datetime | None = None,
) -> AuditEvent:
    """Append one event to the org's chain inside the caller's transaction.

    The org row is locked (PostgreSQL) so concurrent writers extend the chain one at a time;
    SQLite transactions are already serialised (BEGIN IMMEDIATE, see zentro.db_setup).
    """
    lock_org(org_id)
    sess = db.session()
    heads = sess.info.setdefault("zentro_audit_heads", {})
    cached = heads.get(org_id)
    if cached is not None and cached[0] is sess.get_transaction() and not sess.in_nested_transaction():
        head = cached[1]  # this transaction wrote the head itself, under the org lock
    else:
        head = db.session.execute(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.org_id == org_id)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).first()
    row = AuditEvent(
        org_id=org_id,
        seq=(head.seq + 1) if head else 1,
        created_at=now or utcnow(),
        actor_type=actor.type,
        actor_id=str(actor.id),
        actor_label=actor.label[:320],
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        control_tags=" ".join(sorted(set(control_tags))),
        request_id=(request_id or current_request_id.get())[:64],
        data=json.dumps(data or {}, sort_keys=True, separators=(",", ":"), default=str),
        prev_hash=head.hash if head else GENESIS_HASH,
    )
    row.hash = compute_hash(row)
    db.session.add(row)
    db.session.flush()
    if row.control_tags:
        day = epoch_day(row.created_at)
        db.session.execute(insert(AuditTag), [
            {"org_id": org_id, "event_id": row.id, "tag": tag[:60], "created_at": row.created_at, "day": day}
            for tag in row.control_tags.split()])
    heads[org_id] = (sess.get_transaction(), _Head(row.seq, row.hash))
    return row


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def epoch_day(moment: dt.datetime) -> int:
    """Whole UTC days since 1970-01-01 (the ``day`` column of audit_tags)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return (moment - EPOCH).days


@dataclass(frozen=True)
class _Head:
    seq: int
    hash: str


def lock_org(org_id: int) -> None:
    """Serialise the writers of one org until this transaction ends: a PostgreSQL row lock, taken
    once per transaction however many services ask (SQLite transactions are already IMMEDIATE)."""
    sess = db.session()
    held = sess.info.setdefault("zentro_org_locks", {})
    txn = sess.get_transaction()
    if txn is not None and held.get(org_id) is txn:
        return
    # FOR NO KEY UPDATE: writers of the org queue behind each other, but rows that merely reference the org
    # (their foreign key takes FOR KEY SHARE on it) do not block it; plain FOR UPDATE deadlocked two
    # transactions that had each inserted such a row before asking for the lock.
    sess.execute(select(Org.id).where(Org.id == org_id).with_for_update(key_share=True))
    held[org_id] = sess.get_transaction()


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    broken_id: int | None = None
    reason: str = ""


def verify_chain(org_id: int) -> VerifyResult:
    """Walk the org's chain in order; report the first row whose link or content is wrong.

    A seq gap left by a retention purge is bridged only when purge checkpoints cover it exactly
    (contiguous ranges from the first missing seq up to the row before the next present one); the
    next row's prev_hash must then equal the last checkpoint's last_hash. Any other gap fails."""
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    checkpoints: dict[int, list[PurgeCheckpoint]] = {}
    for cp in db.session.scalars(select(PurgeCheckpoint).where(PurgeCheckpoint.org_id == org_id)
                                 .order_by(PurgeCheckpoint.from_seq, PurgeCheckpoint.id)):
        checkpoints.setdefault(cp.from_seq, []).append(cp)
    rows = db.session.execute(
        select(AuditEvent).where(AuditEvent.org_id == org_id).order_by(AuditEvent.seq).execution_options(yield_per=1000)
    ).scalars()
    for row in rows:
        bridged = False
        if row.seq != expected_seq:
            bridge, uncovered = _bridge(checkpoints, expected_seq, row.seq)
            if bridge is None:
                return VerifyResult(False, checked, uncovered, None,
                                    f"row seq {uncovered} is missing (next present is {row.seq})")
            expected_prev, bridged = bridge.last_hash, True
        if row.prev_hash != expected_prev:
            reason = ("prev_hash does not match the purge checkpoint's last_hash" if bridged
                      else "prev_hash does not match the previous row's hash")
            return VerifyResult(False, checked, row.seq, row.id, reason)
        if compute_hash(row) != row.hash:
            return VerifyResult(False, checked, row.seq, row.id, "row content does not match its hash (altered)")
        expected_prev, expected_seq, checked = row.hash, row.seq + 1, checked + 1
    return VerifyResult(True, checked)


def _bridge(checkpoints: dict[int, list[PurgeCheckpoint]], first_missing: int,
            next_present: int) -> tuple[PurgeCheckpoint | None, int]:
    """(the last of a run of purge checkpoints covering seqs first_missing .. next_present-1 exactly, 0), or
    (None, the first seq of the gap no checkpoint accounts for)."""
    seq, last = first_missing, None
    while seq < next_present:
        fitting = [cp for cp in checkpoints.get(seq, ()) if seq <= cp.to_seq < next_present]
        if not fitting:
            return None, seq
        last = max(fitting, key=lambda cp: cp.to_seq)
        seq = last.to_seq + 1
    return last, 0


WINDOWS = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30), "all": None}
EXPORT_COLUMNS = ["seq", "id", "created_at", "actor_type", "actor_id", "actor_label", "action",
                  "target_type", "target_id", "control_tags", "request_id", "data", "prev_hash", "hash"]


def count_events(org_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.org_id == org_id)) or 0


def export_csv(org_id: int, window: str, now: dt.datetime | None = None) -> Iterator[str]:
    """Yield the org's audit rows as CSV text chunks, oldest first, in constant memory."""
    query = select(*[getattr(AuditEvent, c) for c in EXPORT_COLUMNS]).where(AuditEvent.org_id == org_id)
    span = WINDOWS[window]
    if span is not None:
        query = query.where(AuditEvent.created_at >= (now or utcnow()) - span)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS)
    result = db.session.execute(query.order_by(AuditEvent.seq).execution_options(yield_per=1000, stream_results=True))
    for n, row in enumerate(result, 1):
        values = list(row)
        values[2] = iso(values[2])
        writer.writerow(values)
        if n % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
