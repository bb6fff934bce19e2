"""HogQL answers are decoded a slice of rows at a time (posthog_source/answers.py, issue 12): whatever the
rows hold, the slices are exactly the answer's rows, and a body cut short fails after a prefix of them, never
with a wrong row."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posthog_source import answers
from posthog_source.answers import decode_answer
from posthog_source.errors import TransientHTTPError
from posthog_source.hogql import EVENTS_BY_TIMESTAMP, keyset_pages
from posthog_source.projects import Project
from tests.unit.pages import parse_page

# Text made of the characters the cut looks for, so candidates fall inside strings and nested arrays.
TRICKY = st.text(alphabet='[],"\\{}: xé\n', max_size=12)
VALUE = st.one_of(st.none(), st.integers(-5, 5), TRICKY, st.lists(st.lists(TRICKY, max_size=2), max_size=2))
ROWS = st.lists(st.tuples(TRICKY, VALUE, VALUE).map(list), max_size=12)
OTHER_KEYS = st.dictionaries(st.sampled_from(["types", "hasMore", "columns", "limit", "timings", "query"]),
                             st.one_of(st.lists(st.lists(TRICKY, max_size=2), max_size=3), st.booleans(), TRICKY,
                                       st.integers(0, 50_000)), max_size=5)


def body_of(rows: list[list[Any]], others: dict[str, Any], results_at: int, pretty: bool) -> bytes:
    keys = list(others.items())
    keys.insert(min(results_at, len(keys)), ("results", rows))
    return orjson.dumps(dict(keys), option=orjson.OPT_INDENT_2 if pretty else 0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS, others=OTHER_KEYS, results_at=st.integers(0, 6), slice_bytes=st.integers(1, 120),
       pretty=st.booleans(), buffer=st.booleans())
def test_slices_are_exactly_the_rows_and_the_other_keys_are_kept(
        rows: list[list[Any]], others: dict[str, Any], results_at: int, slice_bytes: int, pretty: bool,
        buffer: bool) -> None:
    body = body_of(rows, others, results_at, pretty)
    answer = decode_answer(bytearray(body) if buffer else body)  # the client's buffer, or bytes
    slices = list(answer.rows(slice_bytes))
    assert [row for part in slices for row in part] == rows
    assert all(slices)  # no empty slice
    assert answer.fields == others


def test_a_large_answer_is_decoded_in_many_slices() -> None:
    rows = [[f"0190-{i:08d}", "$pageview", orjson.dumps({"a": [[1], ["x"]], "s": "],[" * (i % 3)}).decode()]
            for i in range(5_000)]
    body = orjson.dumps({"columns": ["uuid", "event", "properties"], "results": rows, "types": [["uuid", "String"]]})
    answer = decode_answer(body)
    slices = list(answer.rows(16 * 1024))
    assert len(slices) > 20
    assert [row for part in slices for row in part] == rows
    assert answer.fields["types"] == [["uuid", "String"]]


def test_the_clients_buffer_is_given_back_as_its_rows_are_read() -> None:
    rows = [[f"0190-{i:08d}", "$pageview", "x" * 200] for i in range(5_000)]
    body = bytearray(orjson.dumps({"results": rows, "types": [["uuid", "String"]]}))
    whole = len(body)
    slices = decode_answer(body).rows(16 * 1024)
    read: list[list[Any]] = []
    for part in slices:
        read += part
        if len(read) > len(rows) // 2:
            break
    assert len(body) < whole * 0.6  # about what is left to read, not the whole answer
    assert read + [row for part in slices for row in part] == rows


@settings(max_examples=300, deadline=None)
@given(rows=ROWS.filter(bool), others=OTHER_KEYS, results_at=st.integers(0, 6), slice_bytes=st.integers(1, 60),
       cut=st.floats(0.0, 0.999), buffer=st.booleans())
def test_a_body_cut_short_fails_after_a_prefix_of_the_rows(
        rows: list[list[Any]], others: dict[str, Any], results_at: int, slice_bytes: int, cut: float,
        buffer: bool) -> None:
    body = body_of(rows, others, results_at, False)
    cut_body = bytearray(body[:int(len(body) * cut)]) if buffer else body[:int(len(body) * cut)]
    got: list[list[Any]] = []
    with pytest.raises(orjson.JSONDecodeError):
        for part in decode_answer(cut_body).rows(slice_bytes):
            got += part
    assert got == rows[:len(got)]


class CuttingClient:
    """Answers HogQL keyset queries over `rows` (sorted by timestamp, uuid); the first answer of more than one
    slice is cut short after its first slices, as a proxy would."""

    def __init__(self, rows: list[list[Any]], cuts: int = 1) -> None:
        self.rows, self.cuts, self.queries, self.retries = rows, cuts, 0, 0

    def post(self, path: str, body: dict[str, Any], what: str = "", parse: Any = orjson.loads) -> Any:
        self.queries += 1
        query = body["query"]["query"]
        limit = int(query.rsplit("LIMIT", 1)[1])
        after = None
        if "uuid) > '" in query:
            after = query.split("toString(uuid) > '")[1].split("'")[0]
        wanted = [r for r in self.rows if after is None or r[0] > after][:limit]
        content = orjson.dumps({"results": wanted, "types": None, "limit": limit})
        if self.cuts and len(content) > 3 * 2048:
            self.cuts -= 1
            content = content[:len(content) * 2 // 3]
        return parse(content)

    def retry_broken_answer(self, what: str, attempt: int) -> None:
        self.retries += 1
        if attempt >= 3:
            raise TransientHTTPError(f"PostHog kept failing on {what}")


def event_rows(n: int) -> list[list[Any]]:
    # One timestamp for all: the walk continues on the uuid tie-breaker (`toString(uuid) > '...'`).
    return [[f"0190f3a2-5c1e-7000-8000-{i:012d}", "$pageview", "d", "p", "2026-03-06T14:00:00Z",
             "2026-03-06T15:00:00Z", orjson.dumps({"i": i, "pad": "x" * 200}).decode(), "", ""] for i in range(n)]


def test_a_walk_cut_short_mid_answer_asks_again_from_the_last_row_it_has(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answers, "SLICE_BYTES", 2048)
    rows = event_rows(400)
    client = CuttingClient(rows, cuts=2)
    pages = list(keyset_pages(client, Project(1, "web", "UTC", None), EVENTS_BY_TIMESTAMP, [],  # type: ignore[arg-type]
                              page_size=150))
    uuids = [u for page in pages if page.table is not None for u in page.table.column("uuid").to_pylist()]
    assert uuids == [r[0] for r in rows]  # every row once, in order, though two answers broke mid-way
    assert client.retries == 2
    assert len(pages) > 8  # read slice by slice


def test_answers_that_keep_breaking_stop_the_walk_with_the_clients_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answers, "SLICE_BYTES", 2048)
    client = CuttingClient(event_rows(400), cuts=100)
    with pytest.raises(TransientHTTPError):
        list(keyset_pages(client, Project(1, "web", "UTC", None), EVENTS_BY_TIMESTAMP, [],  # type: ignore[arg-type]
                          page_size=150))
    assert client.retries == 3


def test_a_copy_of_a_row_across_two_slices_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answers, "SLICE_BYTES", 1024)
    rows = event_rows(30)
    with_copies = [r for row in rows for r in ([row, row] if int(row[0][-3:]) % 4 == 0 else [row])]
    page = parse_page(orjson.dumps({"results": with_copies}), EVENTS_BY_TIMESTAMP,
                            Project(1, "web", "UTC", None), 50_000)
    assert page.table is not None
    assert page.table.column("uuid").to_pylist() == [r[0] for r in rows]
    assert page.answered == len(with_copies)
