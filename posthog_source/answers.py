"""A HogQL answer read a slice of rows at a time, straight from its body.

`orjson.loads` of a whole answer holds every row as Python objects at once, next to the body they came from:
a 64 MB page of events costs about 160 MB in that moment, and the walks' pages overlap. Here only the keys
before `results` are decoded up front; the rows are decoded a few megabytes at a time, each slice converted
and handed on before the next is decoded, and the keys after `results` with the last rows.

Slices are cut at `],["`, the text between two rows whose first column is a string. It can also occur
elsewhere (a string ending in `],[`, a nested array, the `types` after the rows), so every cut is proved by
decoding: JSON is unambiguous, so slices that each decode as rows, joined by their commas, are exactly the
answer's rows. A cut that does not decode is widened to the next candidate; the rest of the body, opened as
an object, must decode as the last rows and the answer's remaining keys. A body cut short (a proxy's
`200` with half the answer) fails there, after the rows before the cut: the walk asks again from the last
row it has (`hogql.keyset_pages`). An answer of another shape is decoded whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

# Bytes of body decoded at a time: small next to a page, large enough that per-slice costs do not show.
SLICE_BYTES = 4 * 1024 * 1024
_ROW_GAP = b'],["'
_RESULTS_KEY = b'"results"'
_WHITESPACE = b" \t\r\n"


@dataclass
class Answer:
    """A HogQL answer whose rows are still in its body.

    `fields` holds the answer's keys other than `results`: those before `results` at once, those after it
    (`types`, and in some versions `hasMore`) once `rows()` has read to the end. `rows()` yields the rows in
    order, in lists of about SLICE_BYTES of body each; it is meant to be called once. A body found broken
    partway (a proxy cut it short) raises `orjson.JSONDecodeError` after the rows before the break."""

    fields: dict[str, Any]
    body: bytes | bytearray | None  # None when the rows are already decoded, in `decoded`
    start: int  # offset in `body` of the first row
    decoded: list[list[Any]]
    size: int  # bytes of the whole body

    def rows(self, slice_bytes: int | None = None) -> Iterator[list[list[Any]]]:
        step = slice_bytes or SLICE_BYTES
        body, position = self.body, self.start
        self.body = None  # from here the generator holds the last reference: the body goes when it ends
        if body is None:
            rows, self.decoded = self.decoded, []
            if rows:
                yield rows
            return
        while True:
            cut = body.find(_ROW_GAP, position + step)
            while cut >= 0:
                try:
                    rows = orjson.loads(b"[" + body[position:cut + 1] + b"]")
                    break
                except orjson.JSONDecodeError:  # the cut was inside a string or a nested array: widen it
                    cut = body.find(_ROW_GAP, cut + 1)
            if cut < 0:
                break
            yield rows
            position = cut + 2  # past the comma, at the next row's opening bracket
            if isinstance(body, bytearray):  # the client's buffer: give back what has been read
                del body[:position]
                position = 0
        # The last rows and the keys after them: the rest of the body, opened as an object.
        rest = orjson.loads(b'{"results":[' + body[position:])
        del body
        if not isinstance(rest, dict) or not isinstance(rest.get("results"), list):
            raise orjson.JSONDecodeError("the end of the answer is not its rows and keys", "", 0)
        rows = rest.pop("results")
        self.fields.update(rest)
        if rows:
            yield rows


def decode_answer(content: bytes | bytearray) -> Answer:
    """The answer with its rows left in the body, or decoded whole when its shape is not the expected one
    (then a broken body raises `orjson.JSONDecodeError` here, as `orjson.loads` would)."""
    key = content.find(_RESULTS_KEY)
    value = _skip_whitespace(content, key + len(_RESULTS_KEY)) if key >= 0 else -1
    if value >= 0 and content[value:value + 1] == b":":
        value = _skip_whitespace(content, value + 1)
        first = _skip_whitespace(content, value + 1)
        if content[value:value + 1] == b"[" and content[first:first + 1] == b"[":
            try:  # the keys before `results`: the text up to its key closes as an object once it is empty
                head = orjson.loads(content[:key] + b'"results":[]}')
            except orjson.JSONDecodeError:
                head = None  # "results" is a key nested deeper: not the answer's rows
            if isinstance(head, dict):
                head.pop("results", None)
                return Answer(head, content, first, [], len(content))
    whole = orjson.loads(content)
    rows = whole.pop("results", None) if isinstance(whole, dict) else whole
    return Answer(whole if isinstance(whole, dict) else {}, None, 0, rows if isinstance(rows, list) else [],
                  len(content))


def _skip_whitespace(content: bytes | bytearray, position: int) -> int:
    while content[position:position + 1] and content[position] in _WHITESPACE:
        position += 1
    return position
