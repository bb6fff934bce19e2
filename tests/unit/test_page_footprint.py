"""How a page is parsed and handed on keeps the run's CPU and memory one page deep (issue 12): no cyclic
garbage collection over a page's objects, a page's Python rows freed as they become Arrow, and at most
`buffered` pages between the walks and dlt, those in production included."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator

import orjson
import pyarrow as pa

from posthog_source.hogql import EVENTS_BY_TIMESTAMP, pages, rows_to_arrow
from posthog_source.parallel import interleave
from posthog_source.projects import Project
from tests.unit.pages import parse_page

PROJECT = Project(1, "web", "UTC", None)
TYPES = [["uuid", "String"], ["event", "String"], ["distinct_id", "String"], ["person_id", "String"],
         ["timestamp", "DateTime64(6, 'UTC')"], ["created_at", "DateTime64(6, 'UTC')"], ["properties", "String"],
         ["elements_chain", "String"], ["$session_id", "String"]]


def event_rows(n: int) -> list[list[object]]:
    return [[f"0190f3a2-5c1e-7000-8000-{i:012d}", "$pageview", f"d{i % 97}", f"0190f3a2-0000-7000-8000-{i % 13:012d}",
             f"2026-03-06T14:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}000Z", "2026-03-06T15:00:00Z",
             orjson.dumps({"$browser": "Chrome", "i": i, "nested": {"a": [1, 2]}}).decode(), "", "" if i % 5 else "s"]
            for i in range(n)]


def test_a_page_is_parsed_without_cyclic_garbage_collection_and_the_collector_is_restored() -> None:
    body = orjson.dumps({"results": event_rows(20_000), "types": TYPES, "limit": 50_000})
    collections: list[str] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(phase)

    gc.callbacks.append(count)
    try:
        page = parse_page(body, EVENTS_BY_TIMESTAMP, PROJECT, 50_000)
    finally:
        gc.callbacks.remove(count)
    assert page.table is not None and page.table.num_rows == 20_000
    assert collections == []  # 20,000 rows are 20,000 lists: the collector would have run dozens of times
    assert gc.isenabled()
    gc.disable()
    try:
        parse_page(body, EVENTS_BY_TIMESTAMP, PROJECT, 50_000)
        assert not gc.isenabled()  # a caller that had turned it off keeps it off
    finally:
        gc.enable()


def test_rows_are_converted_slice_by_slice_freeing_them_into_the_same_table() -> None:
    rows = event_rows(2 * pages._CONVERT_ROWS + 17)
    expected = rows_to_arrow([list(r) for r in rows], EVENTS_BY_TIMESTAMP, PROJECT, TYPES)
    converted = pages._rows_to_arrow_releasing(rows, EVENTS_BY_TIMESTAMP, PROJECT, TYPES)
    assert rows == []  # every slice's Python objects were let go
    assert converted.schema == expected.schema
    assert converted.equals(expected)
    assert converted.column("session_id").null_count == expected.column("session_id").null_count > 0


def test_no_more_than_buffered_items_exist_between_producers_and_consumer() -> None:
    lock = threading.Lock()
    alive = [0]
    most = [0]

    def producer(k: int) -> Iterator[pa.Table]:
        for i in range(5):
            with lock:  # an item exists from the moment its production starts
                alive[0] += 1
                most[0] = max(most[0], alive[0])
            time.sleep(0.005)
            yield pa.table({"k": [k], "i": [i]})

    taken = []
    for item in interleave([lambda k=k: producer(k) for k in range(4)], workers=4, buffered=2):
        with lock:  # taken by the consumer: no longer between the two
            alive[0] -= 1
        time.sleep(0.01)  # a slow consumer: producers would race ahead and hold pages waiting for room
        taken.append((item["k"][0].as_py(), item["i"][0].as_py()))
    assert sorted(taken) == [(k, i) for k in range(4) for i in range(5)]
    assert most[0] <= 2
