"""Tables owned by the platform layer."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow


class IdempotencyRecord(db.Model):
    """A mutation's Idempotency-Key, scoped to (org, caller), with the response it produced."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("org_id", "caller", "key"),
        Index("ix_idempotency_records_created", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    caller: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12), default="running")  # running | done
    status_code: Mapped[int | None] = mapped_column(nullable=True)
    content_type: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SchedulerLease(db.Model):
    """Scheduler leadership: the process whose ``holder`` is here and whose lease has not expired runs the jobs.
    Taken and renewed with one conditional UPDATE (works the same on PostgreSQL and SQLite); a crashed leader
    stops renewing and another process takes over when ``expires_at`` passes."""

    __tablename__ = "scheduler_leases"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), default="")
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JobRun(db.Model):
    """One run of a scheduled job (for ``zentro jobs list``, the jobs page and metrics)."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(80))
    holder: Mapped[str] = mapped_column(String(120), default="")
    trigger: Mapped[str] = mapped_column(String(12), default="schedule")  # schedule | cli
    status: Mapped[str] = mapped_column(String(12), default="running")  # running | ok | failed
    detail: Mapped[str] = mapped_column(String(1000), default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
