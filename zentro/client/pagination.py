"""Cursor pages. A list method fetches the first page at once (so a bad filter or a missing parent raises
where you call it) and returns a ``Page``:

    page = client.incidents.list(status="active", limit=50)
    page.data          # this page's items
    page.next_cursor   # None on the last page
    for incident in page:   # every item of every page, fetching the next page as it goes
        ...
    for p in page.pages():  # page by page
        ...
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Page(Generic[T]):
    def __init__(self, fetch: Callable[[str | None], dict[str, Any]], body: dict[str, Any]):
        self._fetch = fetch
        self.data: list[T] = list(body.get("data") or [])
        self.next_cursor: str | None = body.get("next_cursor")

    @classmethod
    def first(cls, fetch: Callable[[str | None], dict[str, Any]]) -> "Page[T]":
        return cls(fetch, fetch(None))

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    def next_page(self) -> "Page[T] | None":
        if self.next_cursor is None:
            return None
        return Page(self._fetch, self._fetch(self.next_cursor))

    def pages(self) -> Iterator["Page[T]"]:
        page: Page[T] | None = self
        while page is not None:
            yield page
            page = page.next_page()

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.data

    def __repr__(self) -> str:
        return f"<Page of {len(self.data)} items, next_cursor={self.next_cursor!r}>"
