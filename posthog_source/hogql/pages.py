"""Paging through one HogQL table: keyset walks, pages sized by bytes, answers decoded slice by slice with the
memory they held given back."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from posthog_source import settings
from posthog_source.answers import Answer, decode_answer
from posthog_source.client import PostHogClient
from posthog_source.errors import PostHogSourceError
from posthog_source.hogql.convert import rows_to_arrow
from posthog_source.hogql.queries import build_query, query_body, query_path
from posthog_source.hogql.tables import HogQLTable
from posthog_source.projects import Project


# -- paging ---------------------------------------------------------------------------------------------
class RowWidth:
    """Bytes per row seen so far (of one table), shared by the walks of a run: the next LIMIT keeps a page
    near `page_bytes` whatever the width of the events (a 50,000-row page of 20 KB events is 1 GB)."""

    def __init__(self, page_bytes: int = settings.DEFAULT_PAGE_BYTES) -> None:
        self.page_bytes = page_bytes
        self._lock = threading.Lock()
        self._bytes_per_row: float | None = None

    def limit(self, page_size: int) -> int:
        with self._lock:
            if self._bytes_per_row is None:  # nothing seen yet: a first page small enough for any width
                return min(page_size, max(settings.MIN_PAGE_ROWS, self.page_bytes // 50_000))
            rows = int(self.page_bytes / max(self._bytes_per_row, 1.0))
        return min(page_size, max(settings.MIN_PAGE_ROWS, rows))

    @classmethod
    def of(cls, host: str, table: str, page_bytes: int = settings.DEFAULT_PAGE_BYTES) -> RowWidth:
        """The width of `table` on `host` seen so far in this process: the runs of a backfill (one per few
        windows) learn it once instead of each sending its own probe (`measure_width`)."""
        with _SHARED_LOCK:
            width = _SHARED.get((host, table, page_bytes))
            if width is None:
                width = _SHARED[(host, table, page_bytes)] = cls(page_bytes)
            return width

    @property
    def known(self) -> bool:
        with self._lock:
            return self._bytes_per_row is not None

    def observe(self, body_bytes: int, rows: int) -> None:
        if rows <= 0:
            return
        width = body_bytes / rows
        with self._lock:  # the widest recent page wins quickly; narrower pages pull it down slowly
            previous = self._bytes_per_row
            self._bytes_per_row = width if previous is None or width > previous else 0.8 * previous + 0.2 * width


_SHARED: dict[tuple[str, str, int], RowWidth] = {}
_SHARED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Page:
    """A slice of one answer's rows (an answer is read a few megabytes at a time, `answers.py`)."""

    table: pa.Table | None  # None when the slice holds no row (or only copies of the previous one)
    more: bool  # PostHog may hold more rows after this slice
    last_key: tuple[Any, Any] | None  # (cursor, tie-breaker) of the last row, for the next query
    answered: int = 0  # rows PostHog sent in this slice, copies included


# Decoded JSON is several times the size of its Arrow slice, and decoding holds the GIL anyway: slices are
# decoded and converted one at a time, so memory stays flat however many walks run in parallel.
_PARSE_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """A page is hundreds of thousands of new lists and strings, none in a cycle; Python's cyclic collector,
    triggered every 700 allocations, would walk that growing heap again and again (a third of the parse's
    CPU, measured in benchmarks/RESULTS.md). Reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: its allocator returns memory its own way
        return None


_MALLOC_TRIM = _load_malloc_trim()


def _return_freed_memory() -> None:
    """The decoded JSON of a page is freed as its slices become Arrow, but glibc keeps freed heap in its
    arenas: a run's resident memory would ratchet up page by page to the worst moment of every thread.
    Handing it back after each page keeps the footprint one page deep (measured in benchmarks/RESULTS.md);
    it costs about a millisecond."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def decode(content: bytes | bytearray) -> Answer:
    """The client's parse step for a HogQL answer: the keys before its rows; `answer_pages` decodes the rows
    slice by slice. An answer of another shape is decoded whole here (a cut one raises: the client retries)."""
    with _PARSE_LOCK, _no_cyclic_gc():
        return decode_answer(content)


def answer_pages(answer: Answer, table: HogQLTable, project: Project, limit: int) -> Iterator[Page]:
    """The rows of one answer as Arrow slices, in order; only the last says whether PostHog holds more.
    Nothing for an empty answer. Each slice's Python rows are freed as it becomes Arrow, and copies of a
    row are dropped within and across slices (`drop_adjacent_duplicates`). A body found broken partway
    raises `orjson.JSONDecodeError` after the slices before the break."""
    key = list(dict.fromkeys((table.cursor, table.tie_breaker)))
    slices = answer.rows()
    held: Page | None = None
    answered = 0
    while True:
        with _PARSE_LOCK, _no_cyclic_gc():
            rows = next(slices, None)
            if rows is None:
                break
            count = len(rows)
            # `types` follows the rows in PostHog's answers: the last slice may be the first to have it.
            arrow = _rows_to_arrow_releasing(rows, table, project, answer.fields.get("types"))
            del rows
        last_key = (arrow.column(table.cursor)[-1].as_py(), arrow.column(table.tie_breaker)[-1].as_py())
        arrow = drop_adjacent_duplicates(arrow, key)
        if held is not None and held.last_key is not None and _first_key(arrow, table) == held.last_key:
            arrow = arrow.slice(1)  # a copy of the previous slice's last row
        answered += count
        if held is not None:
            yield held
        held = Page(arrow if arrow.num_rows else None, True, last_key, count)
    if held is not None:
        # The effective limit may be lower than asked (self-hosted settings): only a page shorter than both
        # ends the walk, never a short page alone.
        effective = min(limit, int(answer.fields.get("limit") or limit))
        yield replace(held, more=answered >= effective or bool(answer.fields.get("hasMore")))


def _first_key(arrow: pa.Table, table: HogQLTable) -> tuple[Any, Any] | None:
    if arrow.num_rows == 0:
        return None
    return arrow.column(table.cursor)[0].as_py(), arrow.column(table.tie_breaker)[0].as_py()


# Rows converted at a time: each part's Python objects are freed as soon as it is in Arrow.
_CONVERT_ROWS = 8192


def _rows_to_arrow_releasing(rows: list[list[Any]], table: HogQLTable, project: Project, types: Any) -> pa.Table:
    """rows_to_arrow by parts from the end, emptying `rows` as it goes, so a slice never exists twice in
    full (as Python objects and as Arrow) at the same moment. Same columns, types and errors."""
    parts: list[pa.Table] = []
    while rows:
        start = max(0, len(rows) - _CONVERT_ROWS)
        parts.append(rows_to_arrow(rows[start:], table, project, types))
        del rows[start:]
    parts.reverse()
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def drop_adjacent_duplicates(page: pa.Table, key: Sequence[str]) -> pa.Table:
    """ClickHouse keeps copies of a row until it merges them (docs/posthog-api.md); copies share the whole
    key, so in our key order they are neighbours. The first copy stays."""
    if page.num_rows < 2:
        return page
    same_as_previous = None
    for name in key:
        column = page.column(name).combine_chunks()
        same = pc.fill_null(pc.equal(column.slice(1), column.slice(0, len(column) - 1)), False)
        same_as_previous = same if same_as_previous is None else pc.and_(same_as_previous, same)
    if same_as_previous is None or not pc.any(same_as_previous).as_py():
        return page
    return page.filter(pa.concat_arrays([pa.array([True]), pc.invert(same_as_previous)]))


def keyset_pages(
    client: PostHogClient,
    project: Project,
    table: HogQLTable,
    conditions: Sequence[str],
    page_size: int = settings.HOGQL_MAX_ROWS,
    label: str = "",
    after: tuple[Any, Any] | None = None,
    width: RowWidth | None = None,
) -> Iterator[Page]:
    """Every row matching `conditions` after the key `after`, one query per page of rows, in (cursor,
    tie-breaker) order, as slices of each answer. Each slice says its last key, so a caller that must split
    the walk knows where it stood."""
    page_size = min(page_size, settings.HOGQL_MAX_ROWS)
    width = width or RowWidth()
    what = f"{table.table} of project {project.id}"
    broken = 0  # answers in a row found cut short
    while True:
        limit = width.limit(page_size)
        body = query_body(build_query(table, conditions, after, limit), f"{table.table} {label}")
        answer = client.post(query_path(project), body, what=what, parse=decode)
        last: Page | None = None
        answered = 0
        try:
            for page in answer_pages(answer, table, project, limit):
                last = page
                answered += page.answered
                yield page
        except orjson.JSONDecodeError:
            broken += 1  # cut short after `last`: ask again from there, as the client retries a cut body
            client.retry_broken_answer(what, broken)
            after = last.last_key if last is not None and last.last_key is not None else after
            continue
        finally:
            size = answer.size
            del answer
            _return_freed_memory()
        broken = 0
        if last is None:
            return
        width.observe(size, answered)
        if not last.more:
            return
        if after is not None and last.last_key is not None and last.last_key <= after:
            raise PostHogSourceError(f"HogQL paging of {what} made no progress at {last.last_key}; stopped")
        after = last.last_key


def measure_width(client: PostHogClient, project: Project, table: HogQLTable, conditions: Sequence[str],
                  width: RowWidth, rows: int = settings.WIDTH_PROBE_ROWS) -> None:
    """Learn the bytes per row of `table` from its first `rows` rows matching `conditions`: slices are cut to
    one page each (slices.py), and a page's rows depend on the width. The rows are not kept; a caller asks
    for a small range (it reads what it scans)."""
    body = query_body(build_query(table, conditions, None, rows), f"{table.table} width")
    answer = client.post(query_path(project), body, what=f"{table.table} of project {project.id}", parse=decode)
    try:
        answered = sum(page.answered for page in answer_pages(answer, table, project, rows))
        width.observe(answer.size, answered)
    finally:
        del answer
        _return_freed_memory()


def table_pages(
    client: PostHogClient,
    project: Project,
    table: HogQLTable,
    conditions: Sequence[str],
    page_size: int,
    label: str,
    width: RowWidth | None = None,
) -> Iterator[pa.Table]:
    """The Arrow tables of `keyset_pages`, for walks that need no key to continue from."""
    for page in keyset_pages(client, project, table, conditions, page_size, label, width=width):
        if page.table is not None:
            yield page.table
