"""A HogQL answer's rows to Arrow, by the ClickHouse types PostHog sends with them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from posthog_source.errors import PostHogSourceError
from posthog_source.hogql.tables import TIMESTAMP, HogQLTable, Kind
from posthog_source.projects import Project

# -- converting answers ----------------------------------------------------------------------------------
_WRAPPERS = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")


def clickhouse_base_type(name: Any) -> str:
    """`Nullable(DateTime64(6, 'UTC'))` -> `DateTime64(6, 'UTC')`; a missing type -> ''."""
    text = str(name or "").strip()
    while True:
        match = _WRAPPERS.match(text)
        if not match:
            return text
        text = match.group(1).strip()


def _types_by_position(types: Any, count: int) -> list[str]:
    """HogQL sends `types` as [name, type] pairs (or, in older versions, bare type names)."""
    if not isinstance(types, list) or len(types) != count:
        return [""] * count
    return [clickhouse_base_type(t[1] if isinstance(t, list | tuple) and len(t) == 2 else t) for t in types]


def rows_to_arrow(rows: list[list[Any]], table: HogQLTable, project: Project, types: Any = None) -> pa.Table:
    """Rows as HogQL returns them -> one Arrow table with `project_id` first, each column converted by the
    type PostHog says it has."""
    columns_data = list(zip(*rows, strict=True))
    if len(columns_data) != len(table.columns):
        raise PostHogSourceError(
            f"PostHog answered {len(columns_data)} columns for {table.table} where {len(table.columns)} were "
            "asked for; this PostHog version answers differently: please report it"
        )
    arrays: list[pa.Array] = [pa.array([project.id] * len(rows), pa.int64())]
    for column, values, clickhouse_type in zip(table.columns, columns_data,
                                               _types_by_position(types, len(table.columns)), strict=True):
        try:
            array = convert_column(values, column.kind, clickhouse_type, project.timezone)
            if column.empty_is_null:
                array = pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)
            arrays.append(array)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError, TypeError) as exc:
            sample = next((v for v in values if v is not None), None)
            raise PostHogSourceError(
                f"PostHog answered {table.table}.{column.name} as {clickhouse_type or 'an untyped column'} "
                f"(for example {str(sample)[:60]!r}), which cannot be read as {column.kind.name.lower()}; "
                "please report it with your PostHog version"
            ) from exc
    return pa.Table.from_arrays(arrays, schema=table.schema)


def convert_column(values: Sequence[Any], kind: Kind, clickhouse_type: str, project_timezone: str) -> pa.Array:
    """One column of an answer -> Arrow, by its ClickHouse type (`''` when PostHog sent none)."""
    if kind is Kind.INSTANT:
        return to_utc_timestamps(values, project_timezone)
    if kind is Kind.BOOL:
        return _to_bool(values)
    if kind in (Kind.STRING, Kind.JSON):
        return _as_string_array(values)
    if kind is Kind.INT:
        return _to_number(values, pa.int64())
    return _to_number(values, pa.float64())


def _to_bool(values: Sequence[Any]) -> pa.Array:
    """ClickHouse booleans are `Int8`/`UInt8` 0/1 (recorded from PostHog Cloud), `Bool` true/false in newer
    columns, and text where an expression was stringified."""
    try:
        return pa.array(values, pa.bool_())  # true/false (and None)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        numbers = pa.array(values, pa.int64())  # 0/1
        return pc.not_equal(numbers, 0)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return pa.array([_bool_value(v) for v in values], pa.bool_())


_TRUE_TEXT = frozenset({"true", "1", "t", "yes"})
_FALSE_TEXT = frozenset({"false", "0", "f", "no", ""})


def _bool_value(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE_TEXT:
        return True
    if text in _FALSE_TEXT:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _to_number(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """Numbers arrive as JSON numbers, and as strings for 64-bit integers in some ClickHouse settings;
    a float that is a whole number is accepted as an integer, any other is an error."""
    try:
        return pa.array(values, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return pa.array([None if v is None else float(v) for v in values], pa.float64()).cast(arrow_type)


def _as_string_array(values: Sequence[Any]) -> pa.Array:
    """HogQL sends properties as a JSON string, but a parsed object or a number must not break the page:
    those are serialised to JSON text (only then is each value looked at in Python)."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([_as_text(v) for v in values], pa.string())


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def to_utc_timestamps(values: Sequence[str | None], project_timezone: str) -> pa.Array:
    """HogQL instants -> UTC. Values with an offset (the normal case, `Z` or `+05:30`, with or without a
    fraction) are converted by Arrow in C; values without one are wall-clock times in the project's zone (an
    ambiguous or skipped wall-clock time is read as the earliest instant it can mean). A page mixing both
    forms is converted value by value, by the same rules."""
    strings = pa.array(values, pa.string())
    try:
        return strings.cast(TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return _wall_clock_to_utc(strings, project_timezone)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    converted = []  # a mix of forms: slow but exact
    for value in values:
        single = pa.array([value], pa.string())
        try:
            converted.append(single.cast(TIMESTAMP)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            try:
                converted.append(_wall_clock_to_utc(single, project_timezone)[0].as_py())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(f"'{value}' is not an instant") from exc
    return pa.array(converted, TIMESTAMP)


def _wall_clock_to_utc(strings: pa.Array, project_timezone: str) -> pa.Array:
    wall_clock = strings.cast(pa.timestamp("us"))
    local = pc.assume_timezone(wall_clock, project_timezone, ambiguous="earliest", nonexistent="earliest")
    return local.cast(TIMESTAMP)
