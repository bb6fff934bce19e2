"""A HogQL subset for the fake PostHog: ClickHouse-flavoured SQL in, DuckDB SQL run, PostHog's reply out.

It reproduces the traps of the real Query API on purpose (see shared/posthog-api.md §3.2, §3.3): OFFSET is
refused, a missing LIMIT silently means 100 rows, a LIMIT above 50,000 is clamped silently, DateTimes come
back as strings in the *project's* time zone, and bare string literals compared with DateTime columns are
read as wall-clock times in the project's zone. A kinder fake would let connector tests pass that fail
against the real service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

__all__ = ["DEFAULT_ROWS", "MAX_ROWS", "OFFSET_ERROR", "HogQLError", "execute_hogql", "sessions_view_sql"]

DEFAULT_ROWS = 100
MAX_ROWS = 50_000

OFFSET_ERROR = (
    "OFFSET is not supported on queries made with a personal API key. For pagination, use keyset pagination "
    "on the `timestamp` column (e.g. WHERE timestamp < '<last_timestamp>' ORDER BY timestamp DESC). For bulk "
    "data extraction, use batch exports: https://posthog.com/docs/cdp/batch-exports"
)


class HogQLError(Exception):
    """A user-facing query error: the server answers HTTP 400 validation_error with str(e) as detail."""


_DT6 = "DateTime64(6, {tz})"
_DT3 = "DateTime64(3, {tz})"
_NSTR = "Nullable(String)"
# HogQL-visible columns per table and their ClickHouse type names (`{tz}` is the render zone), as real
# PostHog's `types` name them: booleans are Int8 (`"is_identified": 0`, recorded), counts UInt64, person and
# cohort columns come from ClickHouse's own tables (`person.created_at` is DateTime64(3)).
_TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "events": {
        "uuid": "UUID",
        "event": "String",
        "properties": "String",
        "timestamp": _DT6,
        "distinct_id": "String",
        "elements_chain": "String",
        "created_at": _DT6,
        "$session_id": "String",
        "$window_id": "String",
        "person_mode": "String",
        "person_id": "UUID",
        "event_person_id": "UUID",
        **{f"$group_{i}": "String" for i in range(5)},
        "elements_chain_href": "String",
        "elements_chain_texts": "Array(String)",
        "elements_chain_ids": "Array(String)",
        "elements_chain_elements": "Array(String)",
        "issue_id": "Nullable(UUID)",
        "event_issue_id": "Nullable(UUID)",
        # selectable by name, never part of SELECT *
        "team_id": "Int64",
        "session_id": "String",
    },
    "persons": {
        "id": "UUID",
        "created_at": _DT3,
        "properties": "String",
        "is_identified": "Int8",
        "last_seen_at": f"Nullable({_DT3})",
        "$virt_initial_referring_domain_type": _NSTR,
        "$virt_initial_channel_type": "String",
        "team_id": "Int64",
    },
    "raw_persons": {
        "id": "UUID",
        "created_at": _DT3,
        "properties": "String",
        "is_identified": "Int8",
        "is_deleted": "Int8",
        "version": "UInt64",
        "team_id": "Int64",
    },
    "person_distinct_ids": {"distinct_id": "String", "person_id": "UUID", "team_id": "Int64"},
    "sessions": {
        "session_id": "String",
        "distinct_id": _NSTR,
        "$start_timestamp": _DT6,
        "$end_timestamp": _DT6,
        "max_inserted_at": _DT6,
        "$urls": "Array(String)",
        "$num_uniq_urls": "UInt64",
        "$entry_current_url": _NSTR,
        "$entry_pathname": _NSTR,
        "$entry_hostname": _NSTR,
        "$end_current_url": _NSTR,
        "$end_pathname": _NSTR,
        "$end_hostname": _NSTR,
        "$entry_referring_domain": _NSTR,
        "$entry_referrer": _NSTR,
        "$entry_utm_source": _NSTR,
        "$entry_utm_campaign": _NSTR,
        "$entry_utm_medium": _NSTR,
        "$entry_utm_term": _NSTR,
        "$entry_utm_content": _NSTR,
        "$entry_gclid": _NSTR,
        "$entry_fbclid": _NSTR,
        "$pageview_count": "UInt64",
        "$autocapture_count": "UInt64",
        "$screen_count": "UInt64",
        "$channel_type": "String",
        "$session_duration": "Int64",
        "$is_bounce": "Nullable(UInt8)",
        "$last_external_click_url": _NSTR,
        # selectable by name, never part of SELECT * (as in PostHog's sessions_v2 schema)
        "id": "String",
        "duration": "Int64",
        "$exit_current_url": _NSTR,
        "$exit_pathname": _NSTR,
        "team_id": "Int64",
    },
    "cohort_people": {"person_id": "UUID", "cohort_id": "Int64", "team_id": "Int64"},
    "raw_cohort_people": {"person_id": "UUID", "cohort_id": "Int64", "sign": "Int8", "version": "UInt64",
                          "team_id": "Int64"},
    "static_cohort_people": {"person_id": "UUID", "cohort_id": "Int64", "team_id": "Int64"},
}
# Columns selectable by name but never part of SELECT *: the reserved `team_id` and aliases.
_NOT_IN_STAR: dict[str, set[str]] = {
    "events": {"team_id", "session_id"},
    "sessions": {"team_id", "id", "duration", "$exit_current_url", "$exit_pathname"},
}
# What `SELECT *` expands to (recorded: events answer 23 columns and no team_id; persons add last_seen_at and
# the $virt_* columns).
_STAR_COLUMNS: dict[str, list[str]] = {
    table: [c for c in cols if c not in _NOT_IN_STAR.get(table, {"team_id"})]
    for table, cols in _TABLE_COLUMNS.items()
}
_COLUMN_TYPES: dict[str, str] = {}
for _cols in _TABLE_COLUMNS.values():
    for _name, _type in _cols.items():
        _COLUMN_TYPES.setdefault(_name, _type)
_DATETIME_COLUMNS = frozenset(c for cols in _TABLE_COLUMNS.values() for c, t in cols.items() if "DateTime" in t)

_SEARCH_DOMAINS = (
    "('www.google.com', 'google.com', 'www.bing.com', 'bing.com', 'duckduckgo.com', 'search.yahoo.com', "
    "'yandex.ru', 'www.baidu.com', 'www.ecosia.org')"
)
_SOCIAL_DOMAINS = (
    "('t.co', 'twitter.com', 'x.com', 'www.facebook.com', 'facebook.com', 'm.facebook.com', 'l.facebook.com', "
    "'www.linkedin.com', 'linkedin.com', 'www.reddit.com', 'reddit.com', 'l.instagram.com', 'www.instagram.com')"
)
_SEARCH_SOURCES = "('google', 'bing', 'duckduckgo', 'yahoo', 'baidu', 'yandex', 'ecosia')"
_SOCIAL_SOURCES = "('facebook', 'fb', 'instagram', 'ig', 'twitter', 'x', 'linkedin', 'reddit', 'tiktok')"


def _channel_type_sql(source: str, medium: str, campaign: str, domain: str, gclid: str) -> str:
    """PostHog's default channel rules (channel_type.py, after GA4), reduced to what the fake generates:
    Cross Network, Paid Search/Social/Video/Unknown, Direct, Organic Search/Social, Email, Push, Referral,
    Unknown."""
    src, med, cmp = (f"lower(nullif(nullif({x}, ''), 'null'))" for x in (source, medium, campaign))
    return f"""(CASE
      WHEN {cmp} LIKE '%cross-network%' THEN 'Cross Network'
      WHEN {med} IN ('cpc', 'cpm', 'cpv', 'cpa', 'ppc', 'retargeting') OR {med} LIKE 'paid%'
           OR nullif({gclid}, '') IS NOT NULL THEN
        CASE WHEN {src} IN {_SEARCH_SOURCES} OR {domain} IN {_SEARCH_DOMAINS} THEN 'Paid Search'
             WHEN {src} IN {_SOCIAL_SOURCES} OR {domain} IN {_SOCIAL_DOMAINS} THEN 'Paid Social'
             WHEN {cmp} LIKE '%video%' THEN 'Paid Video' ELSE 'Paid Unknown' END
      WHEN {domain} = '$direct' AND {med} IS NULL AND ({src} IS NULL OR {src} IN ('(direct)', 'direct', '$direct'))
        THEN 'Direct'
      WHEN {src} IN {_SEARCH_SOURCES} OR {domain} IN {_SEARCH_DOMAINS} THEN 'Organic Search'
      WHEN {src} IN {_SOCIAL_SOURCES} OR {domain} IN {_SOCIAL_DOMAINS} THEN 'Organic Social'
      WHEN {med} IN ('email', 'e-mail', 'e_mail', 'e mail') THEN 'Email'
      WHEN {med} LIKE '%push' THEN 'Push'
      WHEN {domain} = '$direct' THEN 'Direct'
      WHEN {domain} IS NOT NULL THEN 'Referral'
      ELSE 'Unknown' END)"""


def _prop(source: str, key: str) -> str:
    return f"""json_extract_string({source}, '$."{key}"')"""


def _url_rest(url: str) -> str:
    return f"substr({url}, strpos({url}, '://') + 3)"


def _url_path(url: str) -> str:
    """ClickHouse's path(url), with string functions (regexps are slow on every row)."""
    rest = _url_rest(url)
    after = f"substr({rest}, strpos({rest}, '/'))"
    return (f"CASE WHEN {url} IS NULL THEN NULL WHEN strpos({rest}, '/') = 0 THEN '' "
            f"ELSE split_part(split_part({after}, '?', 1), '#', 1) END")


def _url_host(url: str) -> str:
    """ClickHouse's domain(url)."""
    rest = _url_rest(url)
    return f"split_part(split_part(split_part(split_part({rest}, '/', 1), '?', 1), '#', 1), ':', 1)"


# How `events.person_id` is resolved, by the team's persons-on-events mode (posthog_schema.json
# `persons_on_events`, from posthog/hogql/database/schema/events.py and database.py): "override" (the default
# mode, person_id_override_properties_joined, and person_id_override_properties_on_events) is the person the
# event was ingested with unless a merge re-pointed it (PostHog: the override of the distinct id); "stored"
# (person_id_no_override_properties_on_events) the ingested person as is; "pdi" (disabled) the distinct id's
# current person through an INNER JOIN with person_distinct_ids, so an event whose distinct id has no live
# person row leaves the answer of a query that reads person_id.
PERSON_SOURCES = {"person_id_override_properties_joined": "override", "person_id_override_properties_on_events":
                  "override", "person_id_no_override_properties_on_events": "stored", "disabled": "pdi"}


def _events_view(team_id: int, persons: str) -> str:
    """Events as HogQL shows them: '' for absent session/window/group values (recorded `"$session_id": ""`),
    `person_id` as the team's mode resolves it (PERSON_SOURCES) beside the ingested `event_person_id`, the
    materialised `elements_chain_*` columns."""
    person, join = "e.person_id", ""
    if persons == "override":
        person = "coalesce(o.override_person_id, e.person_id)"
        join = "LEFT JOIN main.person_overrides o ON o.team_id = e.team_id AND o.old_person_id = e.person_id"
    elif persons == "pdi":
        person = "pdi.person_id"
        join = f"JOIN ({_view_sql('person_distinct_ids', team_id, 'stored')}) pdi ON pdi.distinct_id = e.distinct_id"
    return f"""
        SELECT e.uuid, e.event, e.properties, e."timestamp", e.team_id, e.distinct_id, e.elements_chain,
          e.created_at, coalesce(e."$session_id", '') AS "$session_id", coalesce(e."$session_id", '') AS session_id,
          coalesce(e."$window_id", '') AS "$window_id", 'full' AS person_mode, {person} AS person_id,
          e.person_id AS event_person_id, coalesce(e."$group_0", '') AS "$group_0",
          coalesce(e."$group_1", '') AS "$group_1", '' AS "$group_2", '' AS "$group_3", '' AS "$group_4",
          coalesce(regexp_extract(e.elements_chain, '(?::|")href="(.*?)"', 1), '') AS elements_chain_href,
          regexp_extract_all(e.elements_chain, '(?::|")text="(.*?)"', 1) AS elements_chain_texts,
          regexp_extract_all(e.elements_chain, '(?::|")attr_id="(.*?)"', 1) AS elements_chain_ids,
          regexp_extract_all(e.elements_chain, '(?:^|;)(a|button|form|input|select|textarea|label)(?:[.:;]|$)', 1)
            AS elements_chain_elements,
          CAST(NULL AS VARCHAR) AS issue_id, CAST(NULL AS VARCHAR) AS event_issue_id, e.rowid AS __row_id
        FROM main.events e {join} WHERE e.team_id = {int(team_id)}"""


def _persons_view(team_id: int) -> str:
    keys = ("$initial_referring_domain", "$initial_utm_source", "$initial_utm_medium", "$initial_utm_campaign",
            "$initial_gclid")
    extracted = ", ".join(f'nullif({_prop("p.properties", k)}, \'\') AS "{k}"' for k in keys)
    channel = _channel_type_sql('"$initial_utm_source"', '"$initial_utm_medium"', '"$initial_utm_campaign"',
                                '"$initial_referring_domain"', '"$initial_gclid"')
    domain = '"$initial_referring_domain"'
    domain_type = (f"(CASE WHEN {domain} = '$direct' THEN '$direct' WHEN {domain} IN {_SEARCH_DOMAINS} THEN 'Search' "
                   f"WHEN {domain} IN {_SOCIAL_DOMAINS} THEN 'Social' END)")
    return f"""
        SELECT id, created_at, team_id, properties, is_identified, last_seen_at,
          {domain_type} AS "$virt_initial_referring_domain_type", {channel} AS "$virt_initial_channel_type", __row_id
        FROM (
          SELECT p.id, p.created_at, p.team_id, p.properties, CAST(p.is_identified AS TINYINT) AS is_identified,
            p.last_seen_at, {extracted}, p.rowid AS __row_id
          FROM main.persons p
          WHERE p.team_id = {int(team_id)} AND NOT p.is_deleted AND p.created_at < now() + INTERVAL 1 DAY)"""


# Only events whose `$session_id` is a UUIDv7 make a session row: PostHog's raw_sessions materialised view keeps
# `bitAnd(bitShiftRight(toUInt128(accurateCastOrNull($session_id, 'UUID')), 76), 0xF) == 7`, the version nibble
# (posthog/models/raw_sessions/sessions_v2.py at 282a8c521173d454ac8c58908aedbcdbf4ca410d), and sessions_v2 is
# keyed by that UInt128 (`session_id_v7`). The generator writes lower-case ids, so `session_id` (PostHog's
# canonical lower-case text of the UUID) is the id as sent.
UUID_V7_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def sessions_view_sql(team_id: int | None = None, touched_table: str | None = None) -> str:
    """The rows of the `sessions` table: one per UUIDv7 `$session_id` of the visible events (PostHog
    aggregates sessions from events, so a session changes while its events arrive). The world materialises it
    (`refresh_sessions`) after each change; `touched_table` (a table of `sid`) limits it to those sessions.
    Entry/end values come from the
    first/last event by (timestamp, uuid); `$is_bounce` follows PostHog's default rule (NULL without a
    pageview, else not (more than one pageview or any autocapture or at least 10 seconds))."""
    url = "'$.\"$current_url\"'"
    # first/last event by (timestamp, uuid), as one comparable number (deterministic on ties)
    order_key = '((CAST(epoch_us(e."timestamp") AS HUGEINT) << 64) + hash(e.uuid))'
    where = "true" if team_id is None else f"e.team_id = {int(team_id)}"
    if touched_table is not None:
        where += f' AND e."$session_id" IN (SELECT sid FROM {touched_table})'
    first, last = "first_props", "last_props"
    entry_url, end_url = f"nullif({_prop(first, '$current_url')}, '')", f"nullif({_prop(last, '$current_url')}, '')"
    entry = {key: f"nullif({_prop(first, key)}, '')" for key in (
        "$referring_domain", "$referrer", "utm_source", "utm_campaign", "utm_medium", "utm_term", "utm_content",
        "gclid", "fbclid")}
    channel = _channel_type_sql('"$entry_utm_source"', '"$entry_utm_medium"', '"$entry_utm_campaign"',
                                '"$entry_referring_domain"', '"$entry_gclid"')
    return f"""
        SELECT session_id, session_id AS id, team_id, distinct_id, "$start_timestamp", "$end_timestamp",
          max_inserted_at, "$urls", CAST(len("$urls") AS UBIGINT) AS "$num_uniq_urls",
          "$entry_current_url", {_url_path('"$entry_current_url"')} AS "$entry_pathname",
          {_url_host('"$entry_current_url"')} AS "$entry_hostname",
          "$end_current_url", {_url_path('"$end_current_url"')} AS "$end_pathname",
          {_url_host('"$end_current_url"')} AS "$end_hostname",
          "$entry_referring_domain", "$entry_referrer", "$entry_utm_source", "$entry_utm_campaign",
          "$entry_utm_medium", "$entry_utm_term", "$entry_utm_content", "$entry_gclid", "$entry_fbclid",
          CAST(pv AS UBIGINT) AS "$pageview_count", CAST(ac AS UBIGINT) AS "$autocapture_count",
          CAST(sc AS UBIGINT) AS "$screen_count", {channel} AS "$channel_type", dur AS "$session_duration",
          dur AS duration,
          CASE WHEN pv = 0 THEN NULL ELSE CAST(NOT (pv > 1 OR ac > 0 OR dur >= 10) AS UTINYINT) END AS "$is_bounce",
          CAST(NULL AS VARCHAR) AS "$last_external_click_url", "$end_current_url" AS "$exit_current_url",
          {_url_path('"$end_current_url"')} AS "$exit_pathname"
        FROM (
          SELECT sid AS session_id, team_id, distinct_id, st AS "$start_timestamp", et AS "$end_timestamp",
            mi AS max_inserted_at, urls AS "$urls", {entry_url} AS "$entry_current_url",
            {end_url} AS "$end_current_url", {entry['$referring_domain']} AS "$entry_referring_domain",
            {entry['$referrer']} AS "$entry_referrer", {entry['utm_source']} AS "$entry_utm_source",
            {entry['utm_campaign']} AS "$entry_utm_campaign", {entry['utm_medium']} AS "$entry_utm_medium",
            {entry['utm_term']} AS "$entry_utm_term", {entry['utm_content']} AS "$entry_utm_content",
            {entry['gclid']} AS "$entry_gclid", {entry['fbclid']} AS "$entry_fbclid", pv, ac, sc,
            date_diff('second', st, et) AS dur
          FROM (
            SELECT e."$session_id" AS sid, e.team_id,
              arg_max(e.distinct_id, {order_key}) AS distinct_id,
              min(e."timestamp") AS st, max(e."timestamp") AS et, max(e.created_at) AS mi,
              arg_min(e.properties, {order_key}) AS first_props,
              arg_max(e.properties, {order_key}) AS last_props,
              count(*) FILTER (WHERE e.event = '$pageview') AS pv,
              count(*) FILTER (WHERE e.event = '$autocapture') AS ac,
              count(*) FILTER (WHERE e.event = '$screen') AS sc,
              list_sort(list_distinct(list(nullif(json_extract_string(e.properties, {url}), '')))) AS urls
            FROM main.events e
            WHERE {where} AND regexp_full_match(e."$session_id", '{UUID_V7_PATTERN}')
            GROUP BY e.team_id, e."$session_id"))"""


def _city_hash(args: list[exp.Expression]) -> exp.Expression:
    """ClickHouse's cityHash64(x) as a stable 64-bit hash of the value's text (DuckDB's `hash`). Not the same
    numbers as ClickHouse, but the same use: a uniform UInt64 per value, so ranges of it split a day's events
    into parts of predictable size (and fake_posthog/cost.py prunes by the same expression)."""
    if len(args) != 1:
        raise HogQLError(f"Function 'cityHash64' takes between 1 and 1 arguments, got {len(args)}")
    return _func("hash", exp.cast(args[0], exp.DataType.build("VARCHAR")))


def _view_sql(name: str, team_id: int, persons: str) -> str:
    """Each table reference becomes one of these, so a query can only ever see its own team's live rows."""
    t = int(team_id)
    if name == "events":
        return _events_view(t, persons)
    if name == "persons":
        return _persons_view(t)
    if name == "raw_persons":
        return (
            "SELECT id, created_at, team_id, properties, CAST(is_identified AS TINYINT) AS is_identified, "
            "CAST(is_deleted AS TINYINT) AS is_deleted, CAST(version AS UBIGINT) AS version, rowid AS __row_id "
            f"FROM main.person_versions WHERE team_id = {t}"
        )
    if name == "person_distinct_ids":
        return (
            "SELECT distinct_id, person_id, team_id FROM ("
            "SELECT distinct_id, person_id, team_id, is_deleted FROM main.person_distinct_ids "
            f"WHERE team_id = {t} "
            "QUALIFY row_number() OVER (PARTITION BY distinct_id ORDER BY version DESC) = 1"
            ") WHERE NOT is_deleted"
        )
    if name == "sessions":
        return f"SELECT * FROM main.sessions WHERE team_id = {t}"
    if name == "cohort_people":  # each dynamic cohort at its current version (posthog_schema.json `cohorts`)
        return ("SELECT DISTINCT c.person_id, c.cohort_id, c.team_id FROM main.cohort_people c "
                f"JOIN main.cohort_versions v USING (team_id, cohort_id, version) WHERE c.team_id = {t}")
    if name == "raw_cohort_people":
        return ("SELECT person_id, cohort_id, CAST(1 AS TINYINT) AS sign, CAST(version AS UBIGINT) AS version, "
                f"team_id FROM main.cohort_people WHERE team_id = {t}")
    if name == "static_cohort_people":
        return f"SELECT person_id, cohort_id, team_id FROM main.static_cohort_people WHERE team_id = {t}"
    raise KeyError(name)


_VIEWS = tuple(_TABLE_COLUMNS)

# sqlglot function nodes whose DuckDB translation keeps ClickHouse's meaning for our purposes.
_ALLOWED_FUNCS: tuple[type[exp.Expression], ...] = (
    exp.Count,
    exp.CountIf,
    exp.Min,
    exp.Max,
    exp.Sum,
    exp.Avg,
    exp.Coalesce,
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Concat,
    exp.If,
    exp.Case,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Greatest,
    exp.Least,
    exp.Cast,
    exp.Distinct,
)
# Operators that sqlglot models as functions (AND, OR, LIKE, arithmetic, ...).
_OPERATORS: tuple[type[exp.Expression], ...] = (exp.Connector, exp.Binary, exp.Unary, exp.Predicate)
_ALLOWED_SELECT_ARGS = frozenset(
    {
        "with_",
        "kind",
        "expressions",
        "distinct",
        "from_",
        "joins",
        "where",
        "group",
        "having",
        "order",
        "limit",
        "offset",
    }
)
_ALLOWED_UNION_ARGS = frozenset({"with_", "this", "expression", "distinct", "order", "limit", "offset"})
_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)

# Quoted strings/identifiers are skipped; a bare `$name` identifier gets backticks.
_DOLLAR_RE = re.compile(
    r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`|\$[A-Za-z_][A-Za-z0-9_$]*"
)
_DATETIME_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
_DT_META = "hogql_datetime"
_ZONE_META = "hogql_zone"  # the zone toTimeZone() gave a DateTime: toDate() and toString() then use it
_TABLE_META = "hogql_table"
_ROW_ID = "__row_id"


def _zone(name: str) -> ZoneInfo:
    """Validate a time zone name (it ends up quoted inside SQL, so only real zone names may pass)."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name):
        raise HogQLError(f"Unknown time zone: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise HogQLError(f"Unknown time zone: {name!r}") from e


def _parse_wall_clock(text: str, zone: str) -> datetime:
    """Read a DateTime literal as ClickHouse does: wall clock in `zone` unless the text carries an offset."""
    m = _DATETIME_RE.match(text)
    if not m:
        raise HogQLError(f"Cannot parse DateTime from string {text!r}")
    year, month, day, hh, mi, ss, frac, off = m.groups()
    try:
        naive = datetime(
            int(year),
            int(month),
            int(day),
            int(hh or 0),
            int(mi or 0),
            int(ss or 0),
            int((frac or "0")[:6].ljust(6, "0")),
        )
    except ValueError as e:
        raise HogQLError(f"Cannot parse DateTime from string {text!r}: {e}") from e
    if off is None:
        return naive.replace(tzinfo=_zone(zone)).astimezone(UTC)
    if off == "Z":
        return naive.replace(tzinfo=UTC)
    digits = off[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return naive.replace(tzinfo=timezone(-delta if off[0] == "-" else delta)).astimezone(UTC)


def _instant_literal(moment: datetime) -> exp.Expression:
    """A TIMESTAMPTZ constant for DuckDB (always written in UTC, so the session zone cannot matter)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    node = exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMPTZ"))
    node.meta[_DT_META] = True
    return node


def _func(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _is_datetime(node: exp.Expression) -> bool:
    """Static typing just good enough to know where string literals must be read as DateTimes."""
    while isinstance(node, exp.Paren):
        node = node.this
    if node.meta.get(_DT_META):
        return True
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return node.name in _DATETIME_COLUMNS
    if isinstance(node, (exp.Min, exp.Max)):
        return _is_datetime(node.this)
    return False


def _string_literal(node: exp.Expression) -> str | None:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        return node.this
    return None


@dataclass
class _OutputColumn:
    name: str
    static_type: str | None  # ClickHouse type known from the HogQL schema, else derived from DuckDB's type
    zone: str | None  # render zone forced by toTimeZone(), else the project's


@dataclass
class _Translator:
    """Validates the parsed HogQL AST and rewrites it, in place, into DuckDB SQL restricted to one team."""

    team_id: int
    project_tz: str
    cte_names: set[str] = field(default_factory=set)
    persons: str = "stored"  # how events.person_id is resolved (PERSON_SOURCES)

    def rewrite(self, node: exp.Expression) -> exp.Expression:
        """Post-order rewrite: children first, so each node sees already-translated operands."""
        for key, value in list(node.args.items()):
            if isinstance(value, exp.Expression):
                node.set(key, self.rewrite(value))
            elif isinstance(value, list):
                node.set(key, [self.rewrite(v) if isinstance(v, exp.Expression) else v for v in value])
        return self._rewrite_node(node)

    def _rewrite_node(self, node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Offset):
            raise HogQLError(OFFSET_ERROR)
        if isinstance(node, exp.Select):
            self._check_args(node, _ALLOWED_SELECT_ARGS, "SELECT")
            return node
        if isinstance(node, exp.SetOperation):
            if not isinstance(node, exp.Union):
                raise HogQLError(f"Unsupported set operation: {node.key.upper()}")
            self._check_args(node, _ALLOWED_UNION_ARGS, "UNION")
            return node
        if isinstance(node, exp.Limit):
            if node.args.get("expressions"):
                raise HogQLError("LIMIT BY is not supported")
            return node
        if isinstance(node, exp.Table):
            return self._table(node)
        if isinstance(node, exp.Join):
            if node.args.get("kind") and str(node.args["kind"]).upper() == "ARRAY":
                raise HogQLError("ARRAY JOIN is not supported")
            return node
        if isinstance(node, exp.Column):
            return self._column(node)
        if isinstance(node, _COMPARISONS):
            return self._comparison(node)
        if isinstance(node, exp.Between):
            if _is_datetime(node.this):
                for key in ("low", "high"):
                    node.set(key, self._as_instant(node.args[key]))
            return node
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                return node
            if _is_datetime(node.this):
                node.set("expressions", [self._as_instant(e) for e in node.expressions])
            return node
        if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)):
            return self._anonymous(node)
        if isinstance(node, exp.CityHash64):  # the events sort key hashes distinct_id and uuid with it
            return _city_hash(node.expressions)
        if isinstance(node, exp.ApproxDistinct):  # ClickHouse uniq(); exact here, close enough for a fake
            return exp.Count(this=exp.Distinct(expressions=[node.this]))
        if isinstance(node, exp.JSONExtractScalar):  # JSONExtractString(properties, 'key', ...)
            return self._json_extract_string(node)
        if isinstance(node, (exp.Min, exp.Max)):
            if _is_datetime(node.this):
                node.meta[_DT_META] = True
            return node
        if isinstance(node, exp.Func) and not isinstance(node, _ALLOWED_FUNCS + _OPERATORS):
            name = node.sql_name() if hasattr(node, "sql_name") else node.key
            raise HogQLError(f"Unsupported function: {name}")
        if isinstance(node, (exp.Command, exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop)):
            raise HogQLError("Only SELECT queries are supported")
        return node

    @staticmethod
    def _check_args(node: exp.Expression, allowed: frozenset[str], what: str) -> None:
        for key, value in node.args.items():
            if value not in (None, False, []) and key not in allowed:
                raise HogQLError(f"Unsupported {what} clause: {key.rstrip('_').upper()}")

    def _table(self, node: exp.Table) -> exp.Expression:
        if not isinstance(node.this, exp.Identifier) or node.args.get("db") or node.args.get("catalog"):
            raise HogQLError(f"Unknown table `{node.sql(dialect='clickhouse')}`")
        name = node.name
        if name in self.cte_names:
            return node
        if name not in _VIEWS:
            raise HogQLError(f"Unknown table `{name}`. Available tables: {', '.join(_VIEWS)}")
        view = sqlglot.parse_one(_view_sql(name, self.team_id, self.persons), read="duckdb")
        subquery = exp.Subquery(this=view, alias=exp.TableAlias(this=exp.to_identifier(node.alias_or_name)))
        subquery.meta[_TABLE_META] = name
        return subquery

    def _column(self, node: exp.Column) -> exp.Expression:
        """`properties.$browser` / `events.properties.key`: HogQL property access (JSON value as string)."""
        parts = [p.name for p in node.parts]
        if "properties" not in parts[:-1] or parts[0] in self.cte_names:
            return node
        idx = parts.index("properties")
        qualifier = parts[:idx]
        if len(qualifier) > 1:
            raise HogQLError(f"Unsupported property access: {node.sql(dialect='clickhouse')}")
        source = exp.column("properties", table=qualifier[0] if qualifier else None, quoted=True)
        return exp.func("json_extract_string", source, exp.Literal.string(self._json_path(parts[idx + 1 :])))

    @staticmethod
    def _json_path(keys: list[str]) -> str:
        return "$" + "".join('."' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)

    def _json_extract_string(self, node: exp.JSONExtractScalar) -> exp.Expression:
        path = node.expression
        keys: list[str] = []
        for part in path.expressions if isinstance(path, exp.JSONPath) else [None]:
            if isinstance(part, exp.JSONPathRoot):
                continue
            if not isinstance(part, exp.JSONPathKey) or not isinstance(part.this, str):
                raise HogQLError("JSONExtractString: only string keys are supported")
            keys.append(part.this)
        json_path = exp.Literal.string(self._json_path(keys))
        # ClickHouse returns '' when the key is missing or not a string.
        is_string = exp.EQ(
            this=exp.func("json_type", node.this.copy(), json_path.copy()),
            expression=exp.Literal.string("VARCHAR"),
        )
        value = exp.func("json_extract_string", node.this, json_path)
        return exp.Coalesce(this=exp.If(this=is_string, true=value), expressions=[exp.Literal.string("")])

    def _comparison(self, node: exp.Binary) -> exp.Expression:
        if _is_datetime(node.this) and _string_literal(node.expression) is not None:
            node.set("expression", self._as_instant(node.expression))
        elif _is_datetime(node.expression) and _string_literal(node.this) is not None:
            node.set("this", self._as_instant(node.this))
        return node

    def _as_instant(self, node: exp.Expression) -> exp.Expression:
        text = _string_literal(node)
        return node if text is None else _instant_literal(_parse_wall_clock(text, self.project_tz))

    def _anonymous(self, node: exp.Expression) -> exp.Expression:
        raw_name = node.name
        name = raw_name.lower()
        args = list(node.expressions)
        if name == "totimezone":
            self._arity(raw_name, args, 2, 2)
            zone = _string_literal(args[1])
            if zone is None:
                raise HogQLError("toTimeZone: the time zone must be a string literal")
            _zone(zone)
            if not _is_datetime(args[0]):
                raise HogQLError("toTimeZone: the first argument must be a DateTime")
            args[0].meta[_ZONE_META] = zone
            return args[0]
        if name in ("todatetime64", "todatetime"):
            return self._to_datetime(raw_name, args, name == "todatetime64")
        if name == "now":
            self._arity(raw_name, args, 0, 0)
            result = exp.cast(_func("now"), exp.DataType.build("TIMESTAMPTZ"))
            result.meta[_DT_META] = True
            return result
        if name == "tostring":
            self._arity(raw_name, args, 1, 1)
            if _is_datetime(args[0]):
                return self._local_text(args[0], args[0].meta.get(_ZONE_META, self.project_tz),
                                        "%Y-%m-%d %H:%M:%S.%f")
            return exp.cast(args[0], exp.DataType.build("VARCHAR"))
        if name == "todate":
            self._arity(raw_name, args, 1, 1)
            if _is_datetime(args[0]):
                zone = args[0].meta.get(_ZONE_META, self.project_tz)
                local = _func("timezone", exp.Literal.string(zone), args[0])
                return exp.cast(local, exp.DataType.build("DATE"))
            return exp.cast(args[0], exp.DataType.build("DATE"))
        if name == "bitshiftright":
            self._arity(raw_name, args, 2, 2)
            return exp.Paren(this=exp.BitwiseRightShift(this=args[0], expression=args[1]))
        if name in ("uniq", "uniqexact"):
            return exp.Count(this=exp.Distinct(expressions=args))
        if name in ("isnull", "isnotnull"):
            self._arity(raw_name, args, 1, 1)
            test = exp.Is(this=args[0], expression=exp.Null())
            return test if name == "isnull" else exp.Not(this=test)
        raise HogQLError(f"Unsupported function: {raw_name}")

    @staticmethod
    def _arity(name: str, args: list[exp.Expression], low: int, high: int) -> None:
        if not low <= len(args) <= high:
            raise HogQLError(f"Function '{name}' takes between {low} and {high} arguments, got {len(args)}")

    def _to_datetime(self, raw_name: str, args: list[exp.Expression], is64: bool) -> exp.Expression:
        self._arity(raw_name, args, 1, 3 if is64 else 2)
        zone_arg = args[2] if is64 and len(args) == 3 else (args[1] if not is64 and len(args) == 2 else None)
        zone = self.project_tz
        if zone_arg is not None:
            zone_text = _string_literal(zone_arg)
            if zone_text is None:
                raise HogQLError(f"{raw_name}: the time zone must be a string literal")
            _zone(zone_text)
            zone = zone_text
        text = _string_literal(args[0])
        if text is not None:
            return _instant_literal(_parse_wall_clock(text, zone))
        if _is_datetime(args[0]):
            return args[0]
        if isinstance(args[0], exp.Literal) and not args[0].is_string:  # epoch seconds
            result = _func("to_timestamp", args[0])
            result.meta[_DT_META] = True
            return result
        raise HogQLError(f"{raw_name}: unsupported argument {args[0].sql(dialect='clickhouse')}")

    @staticmethod
    def _local_text(value: exp.Expression, zone: str, fmt: str) -> exp.Expression:
        local = _func("timezone", exp.Literal.string(zone), value)
        return exp.func("strftime", local, exp.Literal.string(fmt))


def _late_materialize(select: exp.Expression) -> exp.Expression:
    """Page queries (`... ORDER BY created_at, uuid LIMIT 50000`) pick the page's rows by key first.

    DuckDB sorts the whole payload when LIMIT is large compared to the table (no top-N); choosing rowids
    first and fetching the 50k rows afterwards saves a good part of a page's time. Only plain
    single-table, non-aggregating selects whose ORDER BY uses table columns are rewritten.
    """
    if not isinstance(select, exp.Select) or not select.args.get("order") or not select.args.get("limit"):
        return select
    source = select.args["from_"].this if select.args.get("from_") else None
    table = source.meta.get(_TABLE_META) if isinstance(source, exp.Subquery) else None
    if table not in ("events", "persons", "raw_persons"):
        return select
    if any(select.args.get(k) for k in ("joins", "group", "having", "distinct", "with_")):
        return select
    if any(item.find(exp.AggFunc, exp.Window, exp.Subquery) for item in select.expressions):
        return select
    if any(isinstance(o.this, exp.Literal) for o in select.args["order"].expressions):  # ORDER BY 1
        return select
    aliases = {item.alias for item in select.expressions if isinstance(item, exp.Alias)}
    order_columns = list(select.args["order"].find_all(exp.Column))
    if any(c.name in aliases or c.name not in _TABLE_COLUMNS[table] for c in order_columns):
        return select
    alias = source.alias_or_name
    keys = exp.Select(
        expressions=[exp.column(_ROW_ID, table=alias, quoted=True)],
        from_=exp.From(this=source.copy()),
        where=select.args["where"].copy() if select.args.get("where") else None,
        order=select.args["order"].copy(),
        limit=select.args["limit"].copy(),
    )
    picked = exp.In(this=exp.column(_ROW_ID, table=alias, quoted=True), query=keys.subquery())
    select.set("where", exp.Where(this=picked))
    return select


def _known_sources(select: exp.Select, cte_names: set[str]) -> dict[str, str]:
    """alias -> HogQL table for the FROM/JOIN sources of a select that are plain tables."""
    sources: list[exp.Expression] = []
    if select.args.get("from_"):
        sources.append(select.args["from_"].this)
    sources.extend(j.this for j in select.args.get("joins") or [])
    return {
        s.alias_or_name: s.name
        for s in sources
        if isinstance(s, exp.Table) and isinstance(s.this, exp.Identifier) and s.name in _TABLE_COLUMNS
        and s.name not in cte_names
    }


def _column_type(column: exp.Column, sources: dict[str, str]) -> str | None:
    """The schema type of a column reference: its table's when known, else the first table defining it."""
    if column.table and column.table in sources:
        return _TABLE_COLUMNS[sources[column.table]].get(column.name)
    for table in dict.fromkeys(sources.values()):
        if column.name in _TABLE_COLUMNS[table]:
            return _TABLE_COLUMNS[table][column.name]
    return _COLUMN_TYPES.get(column.name)


def _output_columns(select: exp.Select, cte_names: set[str]) -> list[_OutputColumn]:
    """Names and known types of the outer select list, read before translation (HogQL naming rules)."""
    out: list[_OutputColumn] = []
    sources = _known_sources(select, cte_names)
    for item in select.expressions:
        inner = item.this if isinstance(item, exp.Alias) else item
        zone: str | None = None
        if (
            isinstance(inner, exp.Anonymous)
            and inner.name.lower() == "totimezone"
            and len(inner.expressions) == 2
        ):
            zone = _string_literal(inner.expressions[1])
        if isinstance(item, exp.Alias):
            name = item.alias
        elif isinstance(inner, exp.Column) and not isinstance(inner.this, exp.Star):
            name = inner.name
        else:
            name = inner.sql(dialect="clickhouse")
        static: str | None = None
        if isinstance(inner, exp.Column) and "properties" in [p.name for p in inner.parts[:-1]]:
            static = _NSTR  # property access: JSONExtractRaw-like, NULL when the key is missing
        elif isinstance(inner, exp.Column):
            static = _column_type(inner, sources)
        elif isinstance(inner, (exp.Min, exp.Max)) and isinstance(inner.this, exp.Column):
            static = _column_type(inner.this, sources)
            if static and static.startswith("Nullable("):
                static = static[len("Nullable("):-1]
        elif isinstance(inner, (exp.Count, exp.ApproxDistinct)) or (
            isinstance(inner, (exp.Anonymous, exp.AnonymousAggFunc))
            and inner.name.lower() in ("uniq", "uniqexact")
        ):
            static = "UInt64"
        elif isinstance(inner, exp.Anonymous) and inner.name.lower() == "tostring":
            static = "String"
        out.append(_OutputColumn(name=name, static_type=static, zone=zone))
    return out


def _expand_stars(tree: exp.Expression, cte_names: set[str]) -> None:
    """`SELECT *` lists HogQL's own column set (not the view's helper columns), like PostHog does."""
    for select in list(tree.find_all(exp.Select)):
        sources: list[exp.Expression] = []
        if select.args.get("from_"):
            sources.append(select.args["from_"].this)
        sources.extend(j.this for j in select.args.get("joins") or [])
        known = {
            s.alias_or_name: s.name
            for s in sources
            if isinstance(s, exp.Table)
            and isinstance(s.this, exp.Identifier)
            and s.name in _STAR_COLUMNS
            and s.name not in cte_names
        }
        if not known:
            continue
        qualify = len(sources) > 1
        expanded: list[exp.Expression] = []
        for item in select.expressions:
            if isinstance(item, exp.Star) and not item.args.get("except_") and len(known) == len(sources):
                for alias, table in known.items():
                    expanded.extend(
                        exp.column(c, table=alias if qualify else None, quoted=True)
                        for c in _STAR_COLUMNS[table]
                    )
            elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star) and item.table in known:
                table = known[item.table]
                expanded.extend(exp.column(c, table=item.table, quoted=True) for c in _STAR_COLUMNS[table])
            else:
                expanded.append(item)
        select.set("expressions", expanded)


def _quote_dollars(query: str) -> str:
    """HogQL allows bare `$name` identifiers (properties.$browser); sqlglot needs them backticked."""
    return _DOLLAR_RE.sub(lambda m: f"`{m.group(0)}`" if m.group(0).startswith("$") else m.group(0), query)


def _limit_value(node: exp.Expression) -> int | None:
    limit = node.args.get("limit")
    if limit is None:
        return None
    value = limit.expression
    if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
        return int(value.this)
    raise HogQLError("LIMIT must be a non-negative integer literal")


def _instant_text(value: str, zone: str) -> str:
    """ISO text of an instant in `zone` the way PostHog's JSON carries it (Python `isoformat()`): six
    fractional digits, or none when the fraction is zero; `Z` for UTC (recorded
    `2026-03-06T14:24:34.632000Z`), the zone's offset otherwise (`2024-03-10T01:59:59.123456-05:00`)."""
    fraction = f"CASE WHEN epoch_us({value}) % 1000000 = 0 THEN '' ELSE strftime(timezone('UTC', {value}), '.%f') END"
    if zone == "UTC":
        return f"strftime(timezone('UTC', {value}), '%Y-%m-%dT%H:%M:%S') || {fraction} || 'Z'"
    local = f"timezone('{zone}', {value})"
    diff = f"(epoch_us({local}) - epoch_us({value}))"
    return (
        f"printf('%s%s%s%02d:%02d', strftime({local}, '%Y-%m-%dT%H:%M:%S'), {fraction}, "
        f"CASE WHEN {diff} < 0 THEN '-' ELSE '+' END, abs({diff}) // 3600000000, (abs({diff}) // 60000000) % 60)"
    )


def _render_sql(ref: str, duck_type: str, zone: str) -> str:
    """SQL turning one result column into what PostHog's JSON carries (done in SQL: pages are 50k rows).
    Booleans become 0/1 (ClickHouse has no boolean in results: `"is_identified": 0`, recorded)."""
    if duck_type in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"):
        value = ref if duck_type == "TIMESTAMP WITH TIME ZONE" else f"CAST({ref} AS TIMESTAMPTZ)"
        return _instant_text(value, zone)
    if duck_type == "BOOLEAN":
        return f"CAST({ref} AS TINYINT)"
    if duck_type == "DATE":
        return f"strftime({ref}, '%Y-%m-%d')"
    if duck_type.startswith("DECIMAL"):
        return f"CAST({ref} AS DOUBLE)"
    if duck_type in ("VARCHAR[]", "BIGINT[]", "INTEGER[]", "DOUBLE[]"):
        return ref
    if duck_type in ("UUID", "INTERVAL", "TIME", "TIME WITH TIME ZONE", "BLOB", "BIT") or duck_type.endswith(
        "]"
    ):
        return f"CAST({ref} AS VARCHAR)"
    return ref


def _clickhouse_type(duck_type: str, zone: str) -> str:
    if duck_type.startswith("TIMESTAMP"):
        return f"DateTime64(6, '{zone}')"
    if duck_type.startswith("DECIMAL"):
        return "Float64"
    if duck_type.endswith("[]"):
        return f"Array({_clickhouse_type(duck_type[:-2], zone)})"
    return {
        "VARCHAR": "String",
        "BOOLEAN": "UInt8",
        "BIGINT": "Int64",
        "INTEGER": "Int32",
        "SMALLINT": "Int16",
        "TINYINT": "Int8",
        "HUGEINT": "Int64",
        "UBIGINT": "UInt64",
        "UINTEGER": "UInt32",
        "USMALLINT": "UInt16",
        "UTINYINT": "UInt8",
        "DOUBLE": "Float64",
        "FLOAT": "Float32",
        "DATE": "Date",
        "UUID": "UUID",
        '"NULL"': "Nullable(Nothing)",
        "NULL": "Nullable(Nothing)",
    }.get(duck_type, "String")


def _clean_duckdb_message(message: str) -> str:
    """DuckDB errors are helpful but mention its internals; keep the first useful lines."""
    lines = [line for line in message.splitlines() if line.strip()][:3]
    return " ".join(lines).replace("main.", "")


def execute_hogql(con: duckdb.DuckDBPyConnection, team_id: int, team_timezone: str, query: str,
                  persons_on_events_mode: str = "person_id_override_properties_joined") -> dict:
    """Run a HogQL query for one team and return the HogQLQuery response body, or raise HogQLError.
    `persons_on_events_mode` is the team's mode, which decides what `events.person_id` is (PERSON_SOURCES)."""
    try:
        return _execute(con, team_id, team_timezone, query, PERSON_SOURCES[persons_on_events_mode])
    except HogQLError:
        raise
    except duckdb.Error as e:
        raise HogQLError(_clean_duckdb_message(str(e))) from e
    except SqlglotError as e:
        raise HogQLError(f"Syntax error: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    except RecursionError as e:
        raise HogQLError("Query is too deeply nested") from e
    except Exception as e:  # a fake must answer 400, never 500, for anything a user can type
        raise HogQLError(f"Unsupported query ({type(e).__name__}: {e})") from e


def _execute(con: duckdb.DuckDBPyConnection, team_id: int, team_timezone: str, query: str, persons: str) -> dict:
    if not isinstance(query, str) or not query.strip():
        raise HogQLError("Query is empty")
    _zone(team_timezone)
    statements = [s for s in sqlglot.parse(_quote_dollars(query), read="clickhouse") if s is not None]
    if len(statements) != 1:
        raise HogQLError("Exactly one SELECT statement is expected")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.Union)):
        raise HogQLError("Only SELECT queries are supported")
    # OFFSET first: it is the error PostHog gives even when the rest of the query is fine.
    if any(True for _ in tree.find_all(exp.Offset)):
        raise HogQLError(OFFSET_ERROR)

    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    if cte_names & set(_VIEWS):
        raise HogQLError(f"A CTE cannot be named like a table ({', '.join(_VIEWS)})")
    _expand_stars(tree, cte_names)
    first_select = tree
    while isinstance(first_select, exp.Union):
        first_select = first_select.this
    if not isinstance(first_select, exp.Select):
        raise HogQLError("Only SELECT queries are supported")
    outputs = _output_columns(first_select, cte_names)

    asked = _limit_value(tree)
    if asked is None:
        effective, fetch = DEFAULT_ROWS, DEFAULT_ROWS + 1
    else:
        effective = fetch = min(asked, MAX_ROWS)

    if persons == "override" and not con.execute(
            "SELECT count(*) FROM main.person_overrides WHERE team_id = ?", [int(team_id)]).fetchone()[0]:
        persons = "stored"  # no merge re-pointed an event: the same answer without the join
    if persons == "pdi" and not any(c.name in ("person_id", "person") for c in tree.find_all(exp.Column)):
        persons = "stored"  # PostHog joins person_distinct_ids only for a query that reads the person
    translated = _Translator(
        team_id=team_id, project_tz=team_timezone, cte_names=cte_names, persons=persons
    ).rewrite(tree)
    translated.set("limit", exp.Limit(expression=exp.Literal.number(fetch)))
    translated = _late_materialize(translated)
    inner_sql = translated.sql(dialect="duckdb", identify=True)

    types = [str(t) for t in con.sql(inner_sql).types]
    if len(types) != len(outputs):  # a star we could not expand: DuckDB knows the real list
        names = con.sql(inner_sql).columns
        outputs = [_OutputColumn(name=n, static_type=_COLUMN_TYPES.get(n), zone=None) for n in names]
    refs = [f"_c{i}" for i in range(len(outputs))]
    renders = [
        _render_sql(ref, duck_type, out.zone or team_timezone)
        for ref, duck_type, out in zip(refs, types, outputs, strict=True)
    ]
    final_sql = f"SELECT {', '.join(renders)} FROM ({inner_sql}) AS _q({', '.join(refs)})"
    rows = con.execute(final_sql).fetchall()

    has_more = asked is None and len(rows) > DEFAULT_ROWS
    if has_more:
        rows = rows[:DEFAULT_ROWS]
    type_names = []
    for out, duck_type in zip(outputs, types, strict=True):
        zone = out.zone or team_timezone
        static = out.static_type
        if static is not None and "{tz}" in static and duck_type.startswith("TIMESTAMP"):
            type_names.append([out.name, static.replace("{tz}", f"'{zone}'")])
        elif duck_type.startswith("TIMESTAMP"):
            type_names.append([out.name, f"DateTime64(6, '{zone}')"])
        elif static is not None and "{tz}" not in static:
            type_names.append([out.name, static])
        else:
            type_names.append([out.name, _clickhouse_type(duck_type, zone)])
    return {
        "results": [list(row) for row in rows],
        "columns": [out.name for out in outputs],
        "types": type_names,
        "hasMore": has_more,
        "limit": effective,
        "offset": 0,
        "hogql": query,
        "clickhouse": final_sql,
        "timings": [],
        "modifiers": {},
        "query": query,
        "error": None,
        "is_cached": False,
    }
