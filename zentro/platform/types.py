"""Column types and time helpers shared by every package."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=_UTC)
        return value.astimezone(_UTC)

    def result_processor(self, dialect, coltype):
        """On SQLite, one C call per value: the stored text (naive UTC, ISO 8601) parsed with a UTC offset
        appended. The general path (the dialect's string parser, then ``process_result_value``) costs twice as
        much, which shows on reports that read tens of thousands of rows. Anything unexpected takes it."""
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite":
            return general
        fromiso = dt.datetime.fromisoformat

        def process(value):
            if value is None:
                return None
            if value.__class__ is str and len(value) >= 19 and value[10] == " " and "+" not in value[19:]:
                try:
                    return fromiso(value + "+00:00")
                except ValueError:
                    pass
            return general(value) if general else value

        return process


_UTC = dt.timezone.utc


def iso(value: dt.datetime | None) -> str | None:
    """RFC 3339 UTC with a Z (list pages format hundreds of these, so the common case is short)."""
    if not value:
        return None
    if value.tzinfo is not _UTC:
        value = value.astimezone(_UTC)
    return value.isoformat()[:-6] + "Z"
