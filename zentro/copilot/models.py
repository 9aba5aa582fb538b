"""Copilot threads and their messages (assistant messages keep the mode that answered and the
records they referenced)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zentro.extensions import db
from zentro.platform.types import UTCDateTime, utcnow

MODES = ("openai", "reasoning", "guided")


class CopilotThread(db.Model):
    __tablename__ = "copilot_threads"
    __table_args__ = (Index("ix_copilot_threads_org_user", "org_id", "user_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CopilotMessage(db.Model):
    __tablename__ = "copilot_messages"
    __table_args__ = (Index("ix_copilot_messages_thread", "org_id", "thread_id", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    thread_id: Mapped[int] = mapped_column(ForeignKey("copilot_threads.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(10))  # user | assistant
    content: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(10), default="")  # for assistant turns: openai | reasoning | guided
    references: Mapped[list] = mapped_column(JSON, default=list)  # [{"type", "id", "label", "url"}]
    detail: Mapped[str] = mapped_column(Text, default="")  # why a backend was skipped, if one was
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
