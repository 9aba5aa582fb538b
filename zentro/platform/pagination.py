"""Cursor pagination: ``?limit=&cursor=`` → ``{"data": [...], "next_cursor": ...}``.

Pages are keyset-ordered by id, newest first, so rows inserted while a client pages never shift
or repeat what it has not seen yet. The cursor is opaque (base64 of the last id)."""
from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, Field
from sqlalchemy import Select

from zentro.extensions import db
from zentro.platform.errors import ApiError


class PageQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200, description="Items per page (1–200).")
    cursor: str | None = Field(None, max_length=64, description="next_cursor from the previous page.")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id" or not value.isdigit():
            raise ValueError
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "Invalid cursor; pass next_cursor from a previous page unchanged.") from None


MAX_ID = 2_147_483_647  # ids are INTEGER keys; a cursor beyond every id simply means "from the newest"


def paginate(query: Select, id_column, page: PageQuery) -> tuple[list, str | None]:
    if page.cursor:
        last = decode_cursor(page.cursor)
        if last <= MAX_ID:
            query = query.where(id_column < last)
    rows = list(db.session.scalars(query.order_by(id_column.desc()).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, (encode_cursor(rows[-1].id) if more and rows else None)
