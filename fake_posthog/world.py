"""The fake PostHog's data: deterministic generation, test-only mutations and ground truth.

Events, persons and distinct ids live in DuckDB (generated in SQL so a million events take seconds);
metadata objects (flags, cohorts, ...) are plain dicts shaped like PostHog's serializers. Fields whose
name starts with ``_`` are internal (owning team, hidden flags) and never served.
"""

from __future__ import annotations

import copy
import hashlib
import random
import threading
import uuid as uuidlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from .hogql import PERSON_SOURCES, sessions_view_sql

# (team id, organisation index, name, time zone, share of the events)
PROJECT_SPECS: tuple[tuple[int, int, str, str, float], ...] = (
    (1, 0, "Web App", "UTC", 0.58),
    (2, 0, "Mobile App", "America/New_York", 0.38),
    (3, 1, "Marketing Site", "Asia/Kolkata", 0.04),
    (4, 1, "Sandbox (empty)", "Europe/Berlin", 0.0),
)
ORG_NAMES = ("Acme Analytics", "Globex Research")

# Visible rows per kind and team; a further ~8 % soft-deleted rows are generated on top.
OBJECT_COUNTS: dict[str, dict[int, int]] = {
    "feature_flags": {1: 250, 2: 40, 3: 8},
    "cohorts": {1: 230, 2: 25, 3: 5},
    "insights": {1: 140, 2: 30, 3: 6},
    "dashboards": {1: 24, 2: 8, 3: 2},
    "annotations": {1: 1230, 2: 40, 3: 5},
    "actions": {1: 35, 2: 10, 3: 3},
    "experiments": {1: 18, 2: 4, 3: 1},
    "surveys": {1: 12, 2: 3, 3: 1},
    "event_definitions": {1: 120, 2: 20, 3: 10},
    "property_definitions": {1: 160, 2: 40, 3: 15},
    "early_access_features": {1: 6, 2: 2, 3: 1},
    "session_recordings": {1: 120, 2: 30, 3: 5},
}
GROUP_TYPES: dict[int, tuple[str, ...]] = {1: ("organization", "company"), 2: ("organization",)}
GROUP_COUNTS: dict[tuple[int, int], int] = {(1, 0): 130, (1, 1): 20, (2, 0): 15}
# Kinds whose serializer has a `deleted` field; the others are hidden through `_deleted`.
KINDS_WITH_DELETED_FIELD = {"feature_flags", "cohorts", "insights", "dashboards", "annotations", "actions",
                            "experiments"}
N_TEMPLATES = 4096
UUID_KINDS = {"surveys", "event_definitions", "property_definitions", "early_access_features"}
KINDS: tuple[str, ...] = (*OBJECT_COUNTS, "group_types", "groups")

EVENT_NAMES = ("$pageview", "$pageview", "$pageview", "$pageview", "$pageview", "$autocapture", "$autocapture",
               "$pageleave", "$feature_flag_called", "$identify", "signed_up", "purchase",
               "Checkout Completed", "vidéo_lue", "$rageclick", "$pageview")
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge", "Samsung Internet", "Mobile Safari")
PATHS = ("/", "/pricing", "/docs/getting-started", "/blog/über-uns", "/app/insights", "/signup?ref=ad",
         "/café/menu", "/app/dashboard/12")
FLAG_KEYS = ("new-onboarding", "beta-dashboard", "pricing-test", "dark-mode", "checkout-v2")
UNICODE_TEXT = ("Grüße aus Köln", "東京で会いましょう", "naïve café 🚀", "Ωmega — “quoted”", "emoji 🎉🔥")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


def iso_z(dt: datetime | None) -> str | None:
    """DRF's rendering of an instant: `isoformat()` in UTC with `Z`, so a zero fraction is dropped
    (`"2025-02-01T00:00:00Z"`, recorded) while others keep six digits (`"2021-06-02T10:56:33.222435Z"`)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _us(dt: datetime) -> int:
    return (dt - EPOCH) // US


SCHEMA_SQL = """
CREATE TABLE events(team_id INTEGER, uuid VARCHAR, event VARCHAR, distinct_id VARCHAR, person_id VARCHAR,
  properties VARCHAR, elements_chain VARCHAR, "$session_id" VARCHAR, "$window_id" VARCHAR,
  timestamp TIMESTAMPTZ, created_at TIMESTAMPTZ, "$group_0" VARCHAR, "$group_1" VARCHAR);
CREATE TABLE events_hidden AS SELECT * FROM events LIMIT 0;
CREATE TABLE persons(team_id INTEGER, id VARCHAR, created_at TIMESTAMPTZ, properties VARCHAR,
  is_identified BOOLEAN, is_deleted BOOLEAN, version BIGINT, last_seen_at TIMESTAMPTZ);
CREATE TABLE person_versions(team_id INTEGER, id VARCHAR, created_at TIMESTAMPTZ, properties VARCHAR,
  is_identified BOOLEAN, is_deleted BOOLEAN, version BIGINT);
CREATE TABLE person_distinct_ids(team_id INTEGER, distinct_id VARCHAR, person_id VARCHAR,
  is_deleted BOOLEAN, version BIGINT);
CREATE TABLE person_overrides(team_id INTEGER, old_person_id VARCHAR, override_person_id VARCHAR);
CREATE TABLE cohort_people(team_id INTEGER, cohort_id BIGINT, person_id VARCHAR, version BIGINT);
CREATE TABLE cohort_versions(team_id INTEGER, cohort_id BIGINT, version BIGINT);
CREATE TABLE static_cohort_people(team_id INTEGER, cohort_id BIGINT, person_id VARCHAR);
"""


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The tables `hogql.py` reads (shared with tests that build small worlds by hand).

    `persons` holds each person's current state (what the REST API and HogQL `persons` show),
    `person_versions` every version ever written (HogQL `raw_persons`), `person_overrides` the merges that
    re-point old events (`events.person_id` vs `event_person_id`), `events_hidden` the ingested events not
    yet queryable."""
    con.execute(SCHEMA_SQL)
    con.execute(f"CREATE TABLE sessions AS SELECT * FROM ({sessions_view_sql()}) LIMIT 0")


def refresh_sessions(con: duckdb.DuckDBPyConnection, session_ids: Iterable[str] | None = None) -> None:
    """Re-aggregate the materialised `sessions` table from the visible events: all of it, or only the given
    sessions (what changes when events arrive or become visible)."""
    if session_ids is None:
        con.execute("DELETE FROM sessions")
        con.execute(f"INSERT INTO sessions SELECT * FROM ({sessions_view_sql()})")
        return
    ids = sorted({sid for sid in session_ids if sid})
    if not ids:
        return
    con.execute("CREATE OR REPLACE TEMP TABLE _touched_sessions AS SELECT unnest(?::VARCHAR[]) AS sid", [ids])
    con.execute("DELETE FROM sessions WHERE session_id IN (SELECT sid FROM _touched_sessions)")
    con.execute(f"INSERT INTO sessions SELECT * FROM ({sessions_view_sql(touched_table='_touched_sessions')})")


@dataclass
class KeyInfo:
    """A personal API key: what PostHog's `@current` endpoint reports about it."""

    key: str
    label: str
    scopes: list[str]
    scoped_teams: list[int] | None = None
    scoped_organizations: list[str] | None = None
    id: str = ""


@dataclass
class World:
    """All data served by the fake. Build it with `World.generate`."""

    seed: int
    now: datetime
    con: duckdb.DuckDBPyConnection
    organizations: list[dict[str, Any]]
    projects: list[dict[str, Any]]
    user: dict[str, Any]
    key_info: dict[str, KeyInfo]
    keys: dict[str, str]
    objects: dict[str, dict[int, list[dict[str, Any]]]]
    project_details: dict[int, dict[str, Any]] = field(default_factory=dict)
    fat_share: float = 0.0
    property_padding: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    _person_n: dict[int, int] = field(default_factory=dict)
    _event_i: int = 0
    _seq: dict[str, int] = field(default_factory=dict)
    _pk: int = 0

    # ------------------------------------------------------------------ generation
    @classmethod
    def generate(cls, seed: int = 1, events: int = 200_000, now: datetime | None = None, *,
                 fat_share: float = 0.0, property_padding: int = 0) -> World:
        """Build a deterministic world; `now` anchors every date (default: the real current time).

        `fat_share` turns that share of the events into `$exception` (stack traces) and `$ai_generation`
        (LLM input/output) events of 10-50 KB properties; `property_padding` adds a `$padding` string of
        about that many bytes to every other event (benchmarks that want wide rows, e.g. 1000)."""
        if not 0.0 <= fat_share <= 1.0:
            raise ValueError("fat_share must be between 0 and 1")
        if property_padding < 0:
            raise ValueError("property_padding must be >= 0")
        anchor = (now or datetime.now(UTC)).astimezone(UTC)
        rng = random.Random(seed)
        orgs = []
        for i, name in enumerate(ORG_NAMES):
            created = anchor - timedelta(days=900 - 200 * i)
            orgs.append({
                "id": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                "name": name, "slug": name.lower().replace(" ", "-"),
                "created_at": iso_z(created), "updated_at": iso_z(created + timedelta(days=30)),
                "membership_level": 15, "plugins_access_level": 9, "is_member_join_email_enabled": True,
                "customer_id": None, "enforce_2fa": None, "member_count": 3 + i,
                "available_product_features": [], "is_ai_data_processing_approved": None,
                # fields of the recorded organisation the connector does not need (tolerate them)
                "is_active": True, "is_not_active_reason": None, "is_pending_deletion": False,
                "default_experiment_stats_method": "bayesian", "metadata": {"instance_tag": "none"},
                "logo_media_id": None, "default_role_id": None,
            })
        details = []
        for team_id, org_i, name, tz, _share in PROJECT_SPECS:
            details.append({
                "id": team_id, "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                "organization": orgs[org_i]["id"],
                "api_token": "phc_" + hashlib.sha256(f"{seed}-token-{team_id}".encode()).hexdigest()[:43],
                "name": name, "timezone": tz, "is_demo": False, "completed_snippet_onboarding": team_id != 4,
                "has_completed_onboarding_for": {"product_analytics": True} if team_id != 4 else None,
                "ingested_event": team_id != 4, "access_control": False, "anonymize_ips": False,
                "created_at": iso_z(anchor - timedelta(days=400 - 20 * team_id)), "week_start_day": 1,
                "project_id": team_id, "has_group_types": team_id in GROUP_TYPES,
                "test_account_filters": [], "data_attributes": ["data-attr"], "primary_dashboard": None,
            })
        for org in orgs:
            org["teams"] = [_project_basic(p) for p in details if p["organization"] == org["id"]]
            org["projects"] = [{"id": p["id"], "name": p["name"], "organization_id": org["id"]}
                               for p in details if p["organization"] == org["id"]]
        user = {
            "id": 1, "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
            "distinct_id": "user-ada-" + str(seed), "first_name": "Ada", "last_name": "Lovelace",
            "email": "ada@example.com", "is_email_verified": True, "hedgehog_config": None,
            "role_at_organization": "engineering",
        }
        key_info = _make_keys(seed, orgs)
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        world = cls(seed=seed, now=anchor, con=con, organizations=orgs,
                    projects=[_project_basic(p) for p in details], user=user,
                    key_info={k.key: k for k in key_info.values()},
                    keys={name: k.key for name, k in key_info.items()}, objects={},
                    project_details={p["id"]: p for p in details}, fat_share=fat_share,
                    property_padding=property_padding)
        world.keys["project_token"] = details[0]["api_token"]
        world._generate_data(events, rng)
        return world

    def _generate_data(self, total_events: int, rng: random.Random) -> None:
        con = self.con
        con.execute("""
            CREATE MACRO uuid_hex(a, b, ver) AS
              printf('%08x-%04x-%s%03x-%04x-%012x', a >> 32, (a >> 16) & 65535, ver, a & 4095,
                     ((b >> 48) & 16383) | 32768, b & 281474976710655)
        """)
        # A UUIDv7 from a millisecond instant and a hash, like PostHog's event and session ids.
        con.execute("""
            CREATE MACRO uuid7_hex(ms, h) AS
              printf('%08x-%04x-7%03x-%04x-%012x', ms >> 16, ms & 65535, h & 4095, ((h >> 12) & 16383) | 32768,
                     (h >> 8) & 281474976710655)
        """)
        create_schema(con)
        # The legacy integer primary key of a person (kept for lookups; REST shows the uuid as `id`).
        con.execute("CREATE TABLE person_pks(team_id INTEGER, person_id VARCHAR, pk BIGINT)")
        # Generation helper: distinct id j of person k, so events can pick a person by (k, j).
        con.execute("CREATE TABLE _pdi_k(team_id INTEGER, k BIGINT, j BIGINT, distinct_id VARCHAR, "
                    "person_id VARCHAR)")
        self._create_templates()
        hi = _us(self.now)
        lo = hi - 90 * 86_400_000_000
        counts = _split(total_events)
        for team_id, n in counts.items():
            if n == 0:
                self._person_n[team_id] = 0
                continue
            self._insert_persons(team_id, max(20, n // 25), lo - 5 * 86_400_000_000, lo + 80 * 86_400_000_000)
            self._insert_events(team_id, n, lo, hi, want_ids=False, sessions=True)
        if counts:
            self._place_tie_block(max(counts, key=lambda t: counts[t]))
        self._refresh_last_seen()
        refresh_sessions(self.con)
        self._generate_objects(rng)
        self._generate_cohort_people()

    def _insert_persons(self, team_id: int, n: int, lo: int, hi: int, start: int | None = None) -> list[str]:
        """Persons k in [start, start+n): some with 2-3 distinct ids, some deleted (at version + 100, as PostHog
        does), some with an older version in `person_versions`, a block sharing created_at. `created_at` has
        millisecond precision, as ClickHouse's `person` table keeps it."""
        start = self._person_n.get(team_id, 0) if start is None else start
        s = self.seed
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _new_p AS
            SELECT k,
              uuid_hex(hash({s}, {team_id}, k, 11), hash({s}, {team_id}, k, 12), '4') AS id,
              make_timestamp((CASE WHEN k BETWEEN 100 AND 129 THEN {lo} + ({hi} - {lo}) // 3
                                   ELSE {lo} + (hash({s}, {team_id}, k, 13) % ({hi} - {lo} + 1))::BIGINT END)
                             // 1000 * 1000)::TIMESTAMPTZ AS created_at,
              1 + (k % 5 = 0)::INTEGER + (k % 15 = 0)::INTEGER AS n_ids,
              k % 47 = 46 AS is_deleted,
              (hash({s}, {team_id}, k, 14) % 4)::BIGINT AS version,
              k % 3 <> 0 AS is_identified,
              '{{"email":' || to_json('user' || k || '@example.com') AS head,
              ',"name":' || to_json(list_element(['Ada','Grace','Linus','Zoë','Björn','李雷'], (k % 6)::INTEGER + 1)
                                    || ' ' || k) ||
              CASE WHEN k % 4 = 0 THEN ',"Plan":"Pro","plan":"free"' ELSE ',"plan":"free"' END ||
              ',"$initial_browser":' || to_json(list_element({list(BROWSERS)}, (k % 6)::INTEGER + 1)) ||
              list_element(['', ',"$initial_referring_domain":"$direct"',
                            ',"$initial_referring_domain":"www.google.com"',
                            ',"$initial_referring_domain":"www.google.com","$initial_utm_source":"google",'
                              || '"$initial_utm_medium":"cpc"',
                            ',"$initial_referring_domain":"news.ycombinator.com"'], (k % 5)::INTEGER + 1) ||
              CASE WHEN k % 7 = 0 THEN ',"address":{{"city":"München","zip":"80331"}},"tags":["vip","beta"]'
                   ELSE '' END || '}}' AS tail
            FROM range({start}, {start + n}) r(k)""")
        self.con.execute(f"""
            INSERT INTO persons SELECT {team_id}, id, created_at, head || tail, is_identified, is_deleted,
              version + CASE WHEN is_deleted THEN 100 ELSE 0 END, NULL
            FROM _new_p""")
        self.con.execute(f"""
            INSERT INTO person_versions
            SELECT {team_id}, id, created_at, head || '}}', is_identified, false, version - 1
              FROM _new_p WHERE version > 0
            UNION ALL SELECT {team_id}, id, created_at, head || tail, is_identified, false, version FROM _new_p
            UNION ALL SELECT {team_id}, id, created_at, head || tail, is_identified, true, version + 100
              FROM _new_p WHERE is_deleted""")
        self.con.execute(f"""
            INSERT INTO _pdi_k SELECT {team_id}, k, j, {_distinct_id_sql(self.seed, team_id)}, id
            FROM _new_p, range(3) j(j) WHERE j < n_ids""")
        self.con.execute(f"""
            INSERT INTO person_distinct_ids
            SELECT {team_id}, d.distinct_id, p.id, p.is_deleted, p.version + CASE WHEN p.is_deleted THEN 100 ELSE 0 END
            FROM _new_p p JOIN _pdi_k d ON d.team_id = {team_id} AND d.k = p.k""")
        self.con.execute(f"""
            INSERT INTO person_pks SELECT {team_id}, id, {self._pk} + k - {start} + 1 FROM _new_p""")
        self._pk += n
        ids = [r[0] for r in self.con.execute("SELECT id FROM _new_p ORDER BY k").fetchall()]
        self._person_n[team_id] = start + n
        return ids

    def _insert_events(self, team_id: int, n: int, lo: int, hi: int, *, late_by_us: int | None = None,
                       tie: bool = False, want_ids: bool = True, sessions: bool = False,
                       table: str = "events") -> list[str]:
        """n events with created_at in [lo, hi] (µs since epoch); returns their uuids if wanted.

        `sessions=True` (generation) groups consecutive events into sessions of 1-30 events of one person a
        few seconds to a minute and a half apart; about 1.4 % arrive late (timestamp 1-7 days, or 8 up to
        ~80 days, before created_at, in a session of their own) and 0.3 % carry a timestamp slightly after
        created_at. Otherwise created_at is uniform in [lo, hi] and events of one person within 30 minutes
        share a session."""
        start, s = self._event_i, self.seed
        self._event_i += n
        np_ = max(1, self._person_n.get(team_id, 0))
        day = 86_400_000_000
        late = "false"
        if sessions:
            span = max(1, hi - lo - 45 * 60 * 1_000_000)
            base = f"""
              SELECT i, h2, h5, tid, si, i - si AS pos, (hash(si, {s}, 6) % {np_})::BIGINT AS k,
                     hash(si, {s}, 1) AS hs,
                     least({hi}, {lo} + (hash(si, {s}, 1) % {span})::BIGINT
                                 + (i - si) * (5000000 + (hash(si, {s}, 7) % 90000000)::BIGINT)
                                 + (h5 % 4000000)::BIGINT) AS c
              FROM (SELECT i, hash(i, {s}, 2) AS h2, hash(i, {s}, 5) AS h5,
                           (hash(i, {s}, 4) % {N_TEMPLATES})::INTEGER AS tid,
                           coalesce(max(CASE WHEN i % 30 = 0 OR hash(i, {s}, 10) % 8 = 0 THEN i END)
                                      OVER (ORDER BY i ROWS UNBOUNDED PRECEDING), {start}) AS si
                    FROM range({start}, {start + n}) r(i))"""
            ts = f"""(CASE WHEN h2 % 100 = 0 THEN c - {day} - (hash(i, {s}, 3) % (6 * {day}))::BIGINT
                           WHEN h2 % 250 = 1
                             THEN greatest({lo}, c - 8 * {day} - (hash(i, {s}, 3) % (72 * {day}))::BIGINT)
                           WHEN h2 % 300 = 2 THEN c + (hash(i, {s}, 3) % 2000000)::BIGINT
                           ELSE c - (hash(i, {s}, 3) % 3000000)::BIGINT END)"""
            late = "(h2 % 100 = 0 OR h2 % 250 = 1)"
            sid = f"""CASE WHEN hs % 20 = 0 THEN NULL
                           WHEN {late} THEN uuid7_hex(tus // 1000, hash(i, {s}, 13))
                           ELSE uuid7_hex(({lo} + (hs % {span})::BIGINT) // 1000, hs) END"""
            pick = "hs"
        else:
            created = f"{hi}::BIGINT" if tie else f"({lo} + (hash(i, {s}, 1) % ({hi} - {lo} + 1))::BIGINT)"
            base = f"""
              SELECT i, hash(i, {s}, 2) AS h2, hash(i, {s}, 5) AS h5, (hash(i, {s}, 4) % {N_TEMPLATES})::INTEGER AS tid,
                     (hash(i, {s}, 6) % {np_})::BIGINT AS k, {created} AS c, hash(i, {s}, 5) AS hs
              FROM range({start}, {start + n}) r(i)"""
            if tie:
                ts = f"{hi}::BIGINT"
            elif late_by_us is not None:
                ts = f"(c - {late_by_us})"
            else:
                ts = f"""(CASE WHEN h2 % 100 = 0 THEN c - {day} - (hash(i, {s}, 3) % (6 * {day}))::BIGINT
                               WHEN h2 % 300 = 1 THEN c + (hash(i, {s}, 3) % 2000000)::BIGINT
                               ELSE c - (hash(i, {s}, 3) % 3000000)::BIGINT END)"""
            # 95 % UUIDv7 (PostHog's SDKs), 2.5 % a UUIDv4 (a custom or old client: no session row in PostHog),
            # 2.5 % none
            sid = f"""CASE WHEN h5 % 20 <> 0 THEN uuid_hex(hash({s}, {team_id}, t.k, tus // 1800000000), h5, '7')
                      WHEN h5 % 40 = 0 THEN uuid_hex(hash({s}, {team_id}, t.k, tus // 1800000000), h5, '4') END"""
            pick = "h5"
        groups = [(idx, n_) for (t, idx), n_ in sorted(GROUP_COUNTS.items()) if t == team_id]
        group_cols = []
        for idx in (0, 1):
            n_groups = dict(groups).get(idx)
            if n_groups is None:
                group_cols.append(f'NULL AS "$group_{idx}"')
            else:
                prefix = f"{'org' if idx == 0 else 'co'}:{team_id}:"
                group_cols.append(f"""CASE WHEN hash({s}, {team_id}, k, {30 + idx}) % 5 < 2
                    THEN '{prefix}' || lpad((hash({s}, {team_id}, k, {32 + idx}) % {n_groups})::VARCHAR, 4, '0')
                    END AS "$group_{idx}" """)
        fat_cut = int(round(self.fat_share * 1_000_000))
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _new_e AS
            WITH b AS ({base}),
            t AS (SELECT *, {ts} AS tus, (1 + (k % 5 = 0)::INTEGER + (k % 15 = 0)::INTEGER) AS n_ids,
                         (hash(i, {s}, 12) % 1000000) < {fat_cut} AS fat, (hash(i, {s}, 14) % 2) = 0 AS exc FROM b),
            u AS (SELECT t.*, d.person_id, d.distinct_id, {sid} AS sid
                  FROM t JOIN _pdi_k d ON d.team_id = {team_id} AND d.k = t.k AND d.j = ({pick} % t.n_ids))
            SELECT {team_id} AS team_id,
              printf('%08x-%04x-7%03x-%04x-%012x', (tus // 1000) >> 16, (tus // 1000) & 65535, h5 & 4095,
                     ((h2 >> 2) & 16383) | 32768, hash(i, {s}, 8) & 281474976710655) AS uuid,
              CASE WHEN NOT fat THEN tp.event WHEN exc THEN '$exception' ELSE '$ai_generation' END AS event,
              distinct_id, person_id,
              CASE WHEN NOT fat THEN tp.props WHEN exc THEN {_EXCEPTION_SQL.replace('{s}', str(s))}
                   ELSE {_AI_SQL.replace('{s}', str(s))} END
                || ch.props
                || CASE WHEN sid IS NULL THEN '}}' ELSE ',"$session_id":"' || sid || '"}}' END AS properties,
              CASE WHEN fat THEN '' ELSE tp.elements_chain END AS elements_chain, sid AS "$session_id",
              left(sid, 24) || reverse(right(sid, 12)) AS "$window_id",
              make_timestamp(tus)::TIMESTAMPTZ AS timestamp, make_timestamp(c)::TIMESTAMPTZ AS created_at,
              {", ".join(group_cols)}
            FROM u JOIN _templates tp ON tp.tid = u.tid JOIN _channels ch ON ch.ch = (u.hs >> 3) % 10""")
        self.con.execute(f"INSERT INTO {table} SELECT * FROM _new_e")
        if not want_ids:
            return []
        return [r[0] for r in self.con.execute("SELECT uuid FROM _new_e").fetchall()]

    def _create_templates(self) -> None:
        """Event name, properties (without `$session_id` and the closing brace) and elements chain for
        N_TEMPLATES variants: building JSON once per variant instead of once per event keeps generation fast."""
        s = self.seed
        self.con.execute("CREATE TABLE _channels(ch INTEGER, props VARCHAR)")
        self.con.executemany("INSERT INTO _channels VALUES (?, ?)", list(enumerate(CHANNEL_PROPS)))
        padding = self.property_padding
        pad_sql = (f"""',"$padding":"' || left(repeat(md5(tid::VARCHAR || '{s}'), {padding // 32 + 1}), {padding})
                       || '"'""" if padding else "''")
        self.con.execute(f"""
            CREATE TABLE _templates AS
            WITH v AS (SELECT tid, hash(tid, {s}, 2) AS h2, hash(tid, {s}, 4) AS h4, hash(tid, {s}, 5) AS h5,
                         list_element({list(EVENT_NAMES)}, (hash(tid, {s}, 9) % {len(EVENT_NAMES)})::INTEGER + 1)
                           AS event
                       FROM range({N_TEMPLATES}) r(tid))
            SELECT tid::INTEGER AS tid, event,
              '{{"$browser":' || to_json(list_element({list(BROWSERS)}, (h2 % 6)::INTEGER + 1)) ||
              ',"$current_url":' || to_json('https://example.com' ||
                                           list_element({list(PATHS)}, (h4 % 8)::INTEGER + 1)) ||
              ',"$lib":"web","$browser_version":' || (100 + h5 % 30)::VARCHAR ||
              CASE WHEN event = '$feature_flag_called' THEN
                ',"$feature_flag":' || to_json(list_element({list(FLAG_KEYS)}, (h5 % 5)::INTEGER + 1)) ||
                ',"$feature_flag_response":' ||
                  list_element(['true', 'false', '"control"', '"test"'], (h2 % 4)::INTEGER + 1) ELSE '' END ||
              CASE WHEN h5 % 10 = 3 THEN ',"Plan":"Pro","plan":"free"' ELSE '' END ||
              CASE WHEN h4 % 9 = 2 THEN ',"title":' ||
                to_json(list_element({list(UNICODE_TEXT)}, (h2 % 5)::INTEGER + 1)) ELSE '' END ||
              CASE WHEN event IN ('purchase', 'Checkout Completed') THEN
                ',"cart":{{"items":[{{"sku":"A-' || (h5 % 50)::VARCHAR || '","qty":' || (1 + h4 % 3)::VARCHAR ||
                '}}],"total":' || ((h5 % 10000) / 100.0)::VARCHAR || ',"currency":"EUR"}},"tags":["sale","q' ||
                (1 + h2 % 4)::VARCHAR || '"]' ELSE '' END ||
              CASE WHEN h2 % 17 = 5 THEN ',"empty":null,"nested":{{"a":{{"b":[1,2,{{"c":"d"}}]}}}}' ELSE '' END
                || {pad_sql} AS props,
              CASE WHEN event IN ('$autocapture', '$rageclick') AND h4 % 4 = 0 THEN
                'a.nav-link:attr__class="nav-link"href="/pricing"nth-child="1"nth-of-type="1"text="Pricing";'
                || 'nav:attr_id="top-nav"nth-child="1"nth-of-type="1";body:nth-child="1"'
                   WHEN event IN ('$autocapture', '$rageclick') THEN
                'button.btn.btn-primary:attr__class="btn btn-primary"nth-child="1"nth-of-type="1"text="' ||
                list_element(['Sign up', 'Kaufen', 'Get started'], (h5 % 3)::INTEGER + 1) ||
                '";form.signup:attr__id="signup"attr_id="signup"nth-child="2"nth-of-type="1";body:nth-child="1"'
                ELSE '' END AS elements_chain
            FROM v""")

    def _place_tie_block(self, team_id: int, size: int = 200) -> None:
        """Add `size` events sharing one timestamp and created_at, straddling row 50,000 in (created_at, uuid)
        order (row n/2 for smaller projects) and a 1000-row page boundary in timestamp order."""
        n = self.con.execute("SELECT count(*) FROM events WHERE team_id = ?", [team_id]).fetchone()[0]
        target = 50_000 if n > 50_000 + size else n // 2
        if target < size // 2:  # too few events for a block in the middle: it goes first
            target = size // 2
        if n == 0:
            return
        t_us = self.con.execute(
            "SELECT epoch_us(created_at) FROM events WHERE team_id = ? ORDER BY created_at, uuid "
            "LIMIT 1 OFFSET ?", [team_id, target - size // 2]).fetchone()[0]
        t = make_dt(t_us)
        before_ts = self.con.execute("SELECT count(*) FROM events WHERE team_id = ? AND timestamp < ?",
                                     [team_id, t]).fetchone()[0]
        # Late arrivals (old timestamp, ingested after t) shift the block to the wanted timestamp rank.
        wanted = before_ts + (1000 - size // 2 - before_ts % 1000) % 1000
        if wanted - before_ts > 0:
            hi = _us(self.now)
            self._insert_events(team_id, wanted - before_ts, t_us + 1, hi, late_by_us=None)
            self.con.execute("""
                UPDATE events SET timestamp =
                  make_timestamp(? - 86400000000 - epoch_us(created_at) % 86400000000)::TIMESTAMPTZ
                WHERE uuid IN (SELECT uuid FROM _new_e)""", [t_us])
            self.con.execute("""UPDATE events e SET uuid = printf('%08x-%04x', epoch_ms(e.timestamp) >> 16,
                                  epoch_ms(e.timestamp) & 65535) || e.uuid[14:]
                                WHERE uuid IN (SELECT uuid FROM _new_e)""")
        self._insert_events(team_id, size, t_us, t_us, tie=True)

    def _refresh_last_seen(self, team_id: int | None = None) -> None:
        """`last_seen_at` = the latest visible event timestamp of the person (millisecond precision); a person
        without events keeps NULL. It changes without a new version, as in PostHog."""
        where = "" if team_id is None else f"WHERE team_id = {int(team_id)}"
        self.con.execute(f"""
            UPDATE persons p SET last_seen_at = make_timestamp(x.m // 1000 * 1000)::TIMESTAMPTZ
            FROM (SELECT team_id, person_id, max(epoch_us(timestamp)) AS m FROM events {where} GROUP BY ALL) x
            WHERE p.team_id = x.team_id AND p.id = x.person_id""")

    def _generate_cohort_people(self) -> None:
        """Deterministic membership for the live cohorts: dynamic ones in `cohort_people` at the cohort's
        version, static ones in `static_cohort_people`; each cohort's `count` is set to match."""
        specs = [(team_id, c["id"], c["_member_pct"], c.get("version") or 0, bool(c["is_static"]))
                 for team_id, rows in self.objects["cohorts"].items() for c in rows
                 if not c["deleted"] and c["_member_pct"] > 0]
        self.con.execute("CREATE OR REPLACE TEMP TABLE _coh(team_id INTEGER, cohort_id BIGINT, pct INTEGER, "
                         "version BIGINT, static BOOLEAN)")
        if specs:
            self.con.executemany("INSERT INTO _coh VALUES (?, ?, ?, ?, ?)", specs)
        member = f"hash({self.seed}, c.cohort_id, p.id) % 100 < c.pct"
        self.con.execute(f"""
            INSERT INTO cohort_people SELECT c.team_id, c.cohort_id, p.id, c.version
            FROM _coh c JOIN persons p ON p.team_id = c.team_id AND NOT p.is_deleted
            WHERE NOT c.static AND {member} ORDER BY 1, 2, 3""")
        self.con.execute(f"""
            INSERT INTO static_cohort_people SELECT c.team_id, c.cohort_id, p.id
            FROM _coh c JOIN persons p ON p.team_id = c.team_id AND NOT p.is_deleted
            WHERE c.static AND {member} ORDER BY 1, 2, 3""")
        counts = {(t, c): n for t, c, n in self.con.execute("""
            SELECT team_id, cohort_id, count(*) FROM cohort_people GROUP BY ALL
            UNION ALL SELECT team_id, cohort_id, count(*) FROM static_cohort_people GROUP BY ALL""").fetchall()}
        for team_id, rows in self.objects["cohorts"].items():
            for c in rows:
                c["count"] = counts.get((team_id, c["id"]), 0) if not c["deleted"] else c["count"]
        self._sync_cohort_versions()

    def _sync_cohort_versions(self) -> None:
        """`cohort_versions`: the (cohort, version) pairs HogQL's `cohort_people` serves, as PostHog reads them
        from its database for each query (schema/cohort_people.py: dynamic, non-deleted cohorts whose
        `version` is set; `is_calculating` is not consulted). Kept in step with every cohort change."""
        pairs = [(team_id, c["id"], int(c["version"])) for team_id, rows in self.objects["cohorts"].items()
                 for c in rows if not c["is_static"] and not c["deleted"] and c.get("version") is not None]
        self.con.execute("DELETE FROM cohort_versions")
        if pairs:
            self.con.executemany("INSERT INTO cohort_versions VALUES (?, ?, ?)", pairs)

    # ------------------------------------------------------------------ metadata objects
    def _generate_objects(self, rng: random.Random) -> None:
        self.objects = {kind: {p["id"]: [] for p in self.projects} for kind in KINDS}
        for kind, per_team in OBJECT_COUNTS.items():
            for team_id, n in per_team.items():
                total = n + max(1, n // 12)
                rows = [self._make_object(kind, team_id, rng, i) for i in range(total)]
                for row in rng.sample(rows, total - n):
                    _mark_deleted(kind, row)
                self.objects[kind][team_id] = rows
        # A few archived flags and internal survey flags: hidden from the default flag list.
        for i, flag in enumerate(self.objects["feature_flags"][1][:12]):
            if flag["deleted"]:
                continue
            if i % 2:
                flag["active"], flag["_archived"] = False, True
            else:
                flag["key"], flag["_internal"] = f"survey-targeting-{flag['id']}", True
        # Organisation-wide annotations: shown in every project of the organisation.
        for team_id, n in ((1, 25), (2, 2), (3, 2)):
            for row in self.objects["annotations"][team_id][:n]:
                row["scope"] = "organization"
        for team_id, names in GROUP_TYPES.items():
            for idx, name in enumerate(names):
                self.objects["group_types"][team_id].append({
                    "group_type": name, "group_type_index": idx, "name_singular": None, "name_plural": None,
                    "detail_dashboard": None, "default_columns": None,
                    "created_at": iso_z(self.now - timedelta(days=300 - idx)),
                })
        for (team_id, idx), n in GROUP_COUNTS.items():
            for i in range(n):
                self.objects["groups"][team_id].append(self._make_group(team_id, idx, rng, i))

    def _next_id(self, kind: str, rng: random.Random) -> int | str:
        if kind in UUID_KINDS:
            return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        self._seq[kind] = self._seq.get(kind, 0) + 1
        return self._seq[kind]

    def _make_group(self, team_id: int, idx: int, rng: random.Random, i: int) -> dict[str, Any]:
        created = self.now - timedelta(days=200) + timedelta(seconds=rng.randint(0, 190 * 86400))
        if i % 40 == 7:  # a few groups share created_at exactly: the cursor must still not skip them
            created = self.now - timedelta(days=100)
        return {"group_type_index": idx, "group_key": f"{'org' if idx == 0 else 'co'}:{team_id}:{i:04d}",
                "group_properties": {"name": f"Group {i} — Ünïcode", "industry": rng.choice(["saas", "retail"]),
                                     "employees": rng.randint(1, 5000)},
                "created_at": iso_z(created)}

    def _make_object(self, kind: str, team_id: int, rng: random.Random, i: int) -> dict[str, Any]:
        """One row shaped like PostHog's serializer for `kind` (posthog-api.md, "Key object fields")."""
        now = self.now
        created = now - timedelta(days=400) + timedelta(microseconds=rng.randint(0, 395 * 86_400_000_000))
        updated = min(now, created + timedelta(seconds=rng.randint(0, 60 * 86400)))
        obj_id = self._next_id(kind, rng)
        user = self.user
        if kind == "feature_flags":
            key = f"{rng.choice(FLAG_KEYS)}-{obj_id}"
            rollout = rng.choice([None, 10, 50, 100])
            return {"id": obj_id, "name": f"Flag {obj_id}: {rng.choice(UNICODE_TEXT)}", "key": key,
                    "filters": {"groups": [{"properties": [], "rollout_percentage": rollout}],
                                "multivariate": None, "payloads": {}},
                    "deleted": False, "active": rng.random() > 0.2, "created_by": user, "created_at": iso_z(created),
                    "updated_at": iso_z(updated), "version": rng.randint(1, 9), "last_modified_by": user,
                    "rollout_percentage": rollout, "tags": [], "evaluation_tags": [], "status": "ACTIVE",
                    "evaluation_runtime": "all", "last_called_at": None if i % 4 == 0 else iso_z(updated),
                    "ensure_experience_continuity": False, "is_remote_configuration": False,
                    "has_encrypted_payloads": False, "team_id": team_id,
                    # recorded fields the connector never asked for: it must keep or ignore them
                    "bucketing_identifier": "distinct_id", "analytics_dashboards": [], "features": [],
                    "surveys": [], "usage_dashboard": None if i % 3 else 1000 + i, "user_access_level": "manager",
                    "can_edit": True, "experiment_set": [], "is_used_in_replay_settings": False}
        if kind == "cohorts":
            static = i % 9 == 0
            return {"id": obj_id, "name": f"Cohort {obj_id}", "description": rng.choice(["", "Power users 🚀"]),
                    "groups": [], "deleted": False, "is_calculating": False, "created_by": user,
                    "filters": {"properties": {"type": "OR", "values": [{"type": "AND", "values": [
                        {"key": "plan", "type": "person", "value": ["Pro"], "operator": "exact"}]}]}},
                    "query": None, "created_at": iso_z(created), "last_calculation": None if static else iso_z(updated),
                    "errors_calculating": 0, "count": 0, "is_static": static,
                    "cohort_type": None if i % 5 == 1 else "static" if static else "person_property",
                    "experiment_set": [], "version": None if static else 1 + i % 4,
                    "pending_version": None if static else 1 + i % 4, "condition_type": None,
                    "last_error_message": None, "last_backfill_person_properties_at": None,
                    "_member_pct": rng.choice([0, 0, 1, 2, 3, 5])}
        if kind == "insights":
            series = [{"label": "$pageview", "count": 0, "data": [rng.randint(0, 999) for _ in range(30)],
                       "days": [(now - timedelta(days=30 - d)).strftime("%Y-%m-%d") for d in range(30)]}]
            query = {"kind": "InsightVizNode", "source": {
                "kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}],
                "dateRange": {"date_from": "-30d"}, "interval": "day"}}
            return {"id": obj_id, "short_id": hashlib.md5(f"{self.seed}-{obj_id}".encode()).hexdigest()[:8],
                    "name": rng.choice([None, f"Insight {obj_id}", f"Pageviews — {rng.choice(UNICODE_TEXT)}"]),
                    "derived_name": f"Pageview count {obj_id}", "query": query, "order": rng.choice([None, i]),
                    "deleted": False, "dashboards": [], "dashboard_tiles": [], "last_refresh": iso_z(updated),
                    "cache_target_age": None, "next_allowed_client_refresh": None, "result": series,
                    "hasMore": False, "columns": None, "created_at": iso_z(created), "created_by": user,
                    "description": "", "updated_at": iso_z(updated), "tags": [], "favorited": i % 11 == 0,
                    "last_modified_at": iso_z(updated), "last_modified_by": user, "is_sample": False,
                    "effective_restriction_level": 21, "effective_privilege_level": 37, "timezone":
                    self.project(team_id)["timezone"], "is_cached": True, "saved": True,
                    "last_viewed_at": None, "types": [["date", "Date"]], "hogql": "SELECT count() FROM events"}
        if kind == "dashboards":
            return {"id": obj_id, "name": f"Dashboard {obj_id}", "description": "", "pinned": i % 5 == 0,
                    "created_at": iso_z(created), "created_by": user, "last_accessed_at": iso_z(updated),
                    "last_viewed_at": iso_z(updated), "is_shared": False, "deleted": False,
                    "creation_mode": "default", "tags": [], "restriction_level": 21,
                    "effective_restriction_level": 21, "effective_privilege_level": 37,
                    "user_access_level": "editor", "access_control_version": "v2", "last_refresh": None,
                    "team_id": team_id}
        if kind == "annotations":
            marker = now - timedelta(days=i % 365, seconds=rng.randint(0, 86399), microseconds=rng.randint(1, 999999))
            if i % 2:  # date markers picked in the UI fall on a day: REST renders them without a fraction
                marker = marker.replace(hour=0, minute=0, second=0, microsecond=0)
            return {"id": obj_id, "content": f"Release {i}: {rng.choice(UNICODE_TEXT)}",
                    "date_marker": iso_z(marker), "creation_type": rng.choice(["USR", "GIT"]),
                    "dashboard_item": None, "dashboard_id": None, "dashboard_name": None, "insight_short_id": None,
                    "insight_name": None, "insight_derived_name": None, "created_by": user,
                    "created_at": iso_z(created), "updated_at": iso_z(updated), "deleted": False,
                    "scope": "project", "emoji": rng.choice([None, "🚀"]),
                    "hidden_in_user_interface": None if i % 3 else False,
                    "_team_id": team_id}
        if kind == "actions":
            return {"id": obj_id, "name": f"Action {obj_id}", "description": "", "tags": [],
                    "post_to_slack": False, "slack_message_format": "",
                    "steps": [{"event": "$autocapture", "selector": "button.btn", "text": "Sign up",
                               "text_matching": "exact", "href": None, "url": None, "url_matching": "contains",
                               "properties": []}],
                    "created_at": iso_z(created), "created_by": user, "deleted": False, "is_calculating": False,
                    "last_calculated_at": iso_z(updated), "team_id": team_id, "is_action": True,
                    "bytecode_error": None, "pinned_at": None, "creation_context": None}
        if kind == "experiments":
            return {"id": obj_id, "name": f"Experiment {obj_id}", "description": "",
                    "start_date": iso_z(created + timedelta(days=1)), "end_date": None,
                    "feature_flag_key": f"exp-{obj_id}", "feature_flag": None, "holdout": None,
                    "exposure_cohort": None, "parameters": {"feature_flag_variants": [
                        {"key": "control", "rollout_percentage": 50}, {"key": "test", "rollout_percentage": 50}]},
                    "secondary_metrics": [], "saved_metrics": [], "filters": {}, "archived": False,
                    "deleted": False, "created_by": user, "created_at": iso_z(created),
                    "updated_at": iso_z(updated), "type": "product", "metrics": [], "metrics_secondary": [],
                    "stats_config": None, "conclusion": None, "conclusion_comment": None}
        if kind == "surveys":
            return {"id": obj_id, "name": f"Survey {i}", "description": "", "type": "popover",
                    "questions": [{"type": "open", "question": "What could we improve? — Qu'améliorer ?",
                                   "id": str(uuidlib.UUID(int=rng.getrandbits(128), version=4))}],
                    "linked_flag": None, "targeting_flag": None, "internal_targeting_flag": None,
                    "conditions": None, "appearance": None, "created_at": iso_z(created), "created_by": user,
                    "start_date": iso_z(created), "end_date": None, "archived": False, "responses_limit": None,
                    "iteration_count": None, "iteration_frequency_days": None, "schedule": "once"}
        if kind == "event_definitions":
            name = EVENT_NAMES[i] if i < len(EVENT_NAMES) and EVENT_NAMES[i] not in EVENT_NAMES[:i] \
                else f"custom_event_{i}"
            return {"id": obj_id, "name": name, "owner": None, "description": None, "tags": [],
                    "created_at": iso_z(created), "updated_at": iso_z(updated), "updated_by": None,
                    "last_seen_at": iso_z(now - timedelta(days=rng.randint(0, 40), seconds=rng.randint(0, 86399))),
                    "last_updated_at": iso_z(updated), "verified": False, "verified_at": None, "verified_by": None,
                    "is_action": False, "post_to_slack": False, "default_columns": [], "hidden": False}
        if kind == "property_definitions":
            return {"id": obj_id, "name": ("$browser", "$current_url", "Plan", "plan", "title")[i] if i < 5
                    else f"prop_{i:03d}", "is_numerical": i % 6 == 0, "property_type":
                    "Numeric" if i % 6 == 0 else "String", "tags": [], "is_seen_on_filtered_events": None,
                    "type": 1, "description": None, "verified": False, "hidden": False}
        if kind == "early_access_features":
            return {"id": obj_id, "feature_flag": None, "name": f"Early feature {i}", "description": "✨",
                    "stage": rng.choice(["concept", "beta", "alpha"]), "documentation_url": "",
                    "created_at": iso_z(created), "payload": {}}
        if kind == "session_recordings":
            start = now - timedelta(days=rng.randint(0, 29), seconds=rng.randint(0, 86399))
            duration = rng.randint(5, 3600)
            return {"id": _uuid7(_us(start) // 1000, rng),
                    "distinct_id": f"user{rng.randint(0, 999)}@example.com", "viewed": False, "viewers": [],
                    "recording_duration": duration, "active_seconds": duration // 2, "inactive_seconds":
                    duration - duration // 2, "start_time": iso_z(start),
                    "end_time": iso_z(start + timedelta(seconds=duration)), "click_count": rng.randint(0, 90),
                    "keypress_count": rng.randint(0, 90), "mouse_activity_count": rng.randint(0, 900),
                    "console_log_count": 0, "console_warn_count": 0, "console_error_count": rng.randint(0, 3),
                    "start_url": "https://example.com" + rng.choice(PATHS), "person": None,
                    "storage": "object_storage", "retention_period_days": 30,
                    "expiry_time": iso_z(start + timedelta(days=30)), "recording_ttl": 30, "snapshot_source":
                    "web", "ongoing": False, "activity_score": round(rng.random() * 100, 2)}
        raise KeyError(kind)

    # ------------------------------------------------------------------ lookups
    @property
    def current_organization(self) -> str:
        """The user's current organisation (what /api/projects/ lists)."""
        return self.organizations[0]["id"]

    @property
    def current_team(self) -> int:
        """The user's current project (what `@current` resolves to)."""
        return self.projects[0]["id"]

    def project(self, team_id: int) -> dict[str, Any] | None:
        """The project's detail form (what `/api/projects/{id}/` returns; lists show `projects`' short form)."""
        return self.project_details.get(team_id)

    def timezone(self, team_id: int) -> str:
        project = self.project(team_id)
        return project["timezone"] if project else "UTC"

    def organization(self, org_id: str) -> dict[str, Any] | None:
        return next((o for o in self.organizations if o["id"] == org_id), None)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB cursor for the calling thread (connections are not shared between threads)."""
        return self.con.cursor()

    def projects_for_key(self, key: str) -> list[int]:
        """Project ids the key may read (its scoped teams or organisations, else every project)."""
        info = self.key_info.get(key)
        if info is None:
            return []
        ids = [p["id"] for p in self.projects
               if info.scoped_organizations is None or p["organization"] in info.scoped_organizations]
        if info.scoped_teams is not None:
            ids = [i for i in ids if i in info.scoped_teams]
        return ids

    def visible_objects(self, kind: str, team_id: int) -> list[dict[str, Any]]:
        """What the API list returns for `kind` (deleted, archived and internal rows hidden; organisation-
        scoped annotations of sibling projects added), without internal fields, in storage order."""
        with self.lock:
            if kind == "annotations":
                org = (self.project(team_id) or {}).get("organization")
                siblings = [p["id"] for p in self.projects if p["organization"] == org and p["id"] != team_id]
                rows = list(self.objects[kind].get(team_id, []))
                rows += [r for t in siblings for r in self.objects[kind].get(t, []) if r["scope"] == "organization"]
            else:
                rows = self.objects[kind].get(team_id, [])
            return [public(r) for r in rows if not (r.get("deleted") or r.get("_deleted") or r.get("_archived")
                                                     or r.get("_internal"))]

    def archived_flags(self, team_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [public(r) for r in self.objects["feature_flags"].get(team_id, [])
                    if r.get("_archived") and not r.get("deleted")]

    # ------------------------------------------------------------------ ground truth
    def truth_events(self, team_id: int, as_dicts: bool = False, include_hidden: bool = False,
                     persons_on_events_mode: str = "person_id_override_properties_joined",
                     ) -> pa.Table | list[dict[str, Any]]:
        """Every queryable event of the team (plus the not yet visible ones with `include_hidden`): an Arrow
        table (properties as JSON text), or dicts with parsed properties. `person_id` is what HogQL's
        `events.person_id` shows in the team's persons-on-events mode (hogql.PERSON_SOURCES; by default it
        follows merges); the person the event was ingested with is HogQL's `event_person_id`. In mode
        "disabled" an event whose distinct id has no live person is not among them (PostHog's INNER JOIN)."""
        source = "(SELECT * FROM events UNION ALL SELECT * FROM events_hidden)" if include_hidden else "events"
        persons = PERSON_SOURCES[persons_on_events_mode]
        person = {"override": "coalesce(o.override_person_id, e.person_id)", "stored": "e.person_id",
                  "pdi": "d.person_id"}[persons]
        pdi = ("JOIN (SELECT distinct_id, person_id FROM person_distinct_ids WHERE team_id = ? QUALIFY "
               "row_number() OVER (PARTITION BY distinct_id ORDER BY version DESC) = 1 AND NOT is_deleted) d "
               "ON d.distinct_id = e.distinct_id" if persons == "pdi" else "")
        table = self.cursor().execute(f"""
            SELECT e.uuid, e.event, e.distinct_id, {person} AS person_id,
                   e.timestamp, e.created_at, e.properties, e.elements_chain, e."$session_id" AS session_id,
                   e.person_id AS event_person_id
            FROM {source} e LEFT JOIN person_overrides o ON o.team_id = e.team_id AND o.old_person_id = e.person_id
            {pdi} WHERE e.team_id = ? ORDER BY e.created_at, e.uuid""",
            [team_id, team_id] if pdi else [team_id]).to_arrow_table()
        if not as_dicts:
            return table
        rows = table.to_pylist()
        for row in rows:
            row["properties"] = orjson.loads(row["properties"])
        return rows

    def truth_persons(self, team_id: int, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Each person's current state (latest version); deleted ones only with `include_deleted`."""
        rows = self.cursor().execute(f"""
            SELECT id, created_at, properties, is_identified, is_deleted, version, last_seen_at FROM persons
            WHERE team_id = ? {'' if include_deleted else 'AND NOT is_deleted'} ORDER BY created_at, id""",
                                     [team_id]).fetchall()
        return [{"id": r[0], "created_at": r[1], "properties": orjson.loads(r[2]), "is_identified": r[3],
                 "is_deleted": r[4], "version": r[5], "last_seen_at": r[6]} for r in rows]

    def truth_person_versions(self, team_id: int) -> list[dict[str, Any]]:
        """Every version of every person ever written (HogQL `raw_persons`), ordered by id and version."""
        rows = self.cursor().execute("""
            SELECT id, version, is_deleted, properties FROM person_versions WHERE team_id = ?
            ORDER BY id, version""", [team_id]).fetchall()
        return [{"id": r[0], "version": r[1], "is_deleted": r[2], "properties": orjson.loads(r[3])} for r in rows]

    def truth_distinct_ids(self, team_id: int) -> list[dict[str, Any]]:
        """The current person of every live distinct id (merges and deletions applied)."""
        rows = self.cursor().execute("""
            SELECT distinct_id, person_id, version FROM person_distinct_ids
            WHERE team_id = ? AND NOT is_deleted ORDER BY distinct_id""", [team_id]).fetchall()
        return [{"distinct_id": r[0], "person_id": r[1], "version": r[2]} for r in rows]

    def truth_sessions(self, team_id: int) -> list[dict[str, Any]]:
        """One row per `$session_id` of the team's visible events, as HogQL's `sessions` table answers it
        (instants as UTC datetimes), ordered by session_id."""
        cur = self.cursor()
        rel = cur.execute(f"SELECT * FROM ({sessions_view_sql(team_id)}) ORDER BY session_id")
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]

    def truth_cohort_people(self, team_id: int) -> list[dict[str, Any]]:
        """Membership of every cohort of the team: dynamic cohorts at their current version (with it; older
        versions stay stored, as in PostHog's cohortpeople, until cleaned up), static ones as uploaded
        (version None), ordered by cohort and person."""
        rows = self.cursor().execute("""
            SELECT DISTINCT c.cohort_id, c.person_id, c.version, false FROM cohort_people c
              JOIN cohort_versions v USING (team_id, cohort_id, version) WHERE c.team_id = ?
            UNION ALL SELECT cohort_id, person_id, NULL, true FROM static_cohort_people WHERE team_id = ?
            ORDER BY 1, 2""", [team_id, team_id]).fetchall()
        return [{"cohort_id": r[0], "person_id": r[1], "version": r[2], "is_static": r[3]} for r in rows]

    def stats(self) -> dict[str, dict[str, int]]:
        """Row counts per table per project (visible rows for metadata kinds)."""
        out: dict[str, dict[str, int]] = {}
        cur = self.cursor()
        for table, where in (("events", ""), ("events_hidden", ""), ("persons", "WHERE NOT is_deleted"),
                             ("person_distinct_ids", "WHERE NOT is_deleted"), ("cohort_people", ""),
                             ("static_cohort_people", "")):
            counts = dict(cur.execute(f"SELECT team_id, count(*) FROM {table} {where} GROUP BY 1").fetchall())
            out[table] = {str(p["id"]): counts.get(p["id"], 0) for p in self.projects}
        for kind in KINDS:
            out[kind] = {str(p["id"]): len(self.visible_objects(kind, p["id"])) for p in self.projects}
        return out

    # ------------------------------------------------------------------ mutations (tests only)
    def _ingest_us(self, at: datetime | None) -> int:
        """The ingestion instant of a mutation: `at`, else now but after every stored row."""
        if at is not None:
            return _us(at.astimezone(UTC))
        cur_max = self.con.execute("""SELECT max(m) FROM (SELECT max(epoch_us(created_at)) AS m FROM events
                                      UNION ALL SELECT max(epoch_us(created_at)) FROM events_hidden)""").fetchone()[0]
        return max(_us(datetime.now(UTC)), (cur_max or 0) + 1)

    def add_events(self, team_id: int, n: int, *, created_at: datetime | None = None,
                   late_by: timedelta | float | None = None, tie: bool = False, hidden: bool = False) -> list[str]:
        """Insert n new events ingested at `created_at` (default: now, after every existing row).
        `late_by` gives them a timestamp that much older (late arrivals, any age); `tie` makes them share one
        timestamp and created_at; `hidden` keeps them out of HogQL, REST and ground truth until
        `reveal_events`/`reveal_all` (ClickHouse makes rows queryable some time after their created_at).
        Returns their uuids."""
        with self.lock:
            hi = self._ingest_us(created_at)
            if self._person_n.get(team_id, 0) == 0:
                self._insert_persons(team_id, 5, hi - 86_400_000_000, hi)
            late_us = None
            if late_by is not None:
                late_us = int((late_by.total_seconds() if isinstance(late_by, timedelta) else late_by) * 1e6)
            lo = hi if (tie or created_at is not None) else hi - 1_000_000
            uuids = self._insert_events(team_id, n, lo, hi, late_by_us=late_us, tie=tie,
                                        table="events_hidden" if hidden else "events")
            if not hidden:
                self._refresh_last_seen(team_id)
                refresh_sessions(self.con, [r[0] for r in self.con.execute(
                    'SELECT DISTINCT "$session_id" FROM _new_e').fetchall()])
            return uuids

    def reveal_events(self, uuids: Iterable[str]) -> int:
        """Make hidden events queryable; returns how many were revealed."""
        with self.lock:
            wanted = list(uuids)
            if not wanted:
                return 0
            self.con.execute("CREATE OR REPLACE TEMP TABLE _reveal AS SELECT unnest(?::VARCHAR[]) AS uuid", [wanted])
            n = self.con.execute("SELECT count(*) FROM events_hidden WHERE uuid IN (SELECT uuid FROM _reveal)"
                                 ).fetchone()[0]
            touched = [r[0] for r in self.con.execute(
                'SELECT DISTINCT "$session_id" FROM events_hidden WHERE uuid IN (SELECT uuid FROM _reveal)').fetchall()]
            self.con.execute("INSERT INTO events SELECT * FROM events_hidden WHERE uuid IN (SELECT uuid FROM _reveal)")
            self.con.execute("DELETE FROM events_hidden WHERE uuid IN (SELECT uuid FROM _reveal)")
            self._refresh_last_seen()
            refresh_sessions(self.con, touched)
            return int(n)

    def reveal_all(self) -> int:
        """Make every hidden event queryable; returns how many were revealed."""
        with self.lock:
            uuids = [r[0] for r in self.con.execute("SELECT uuid FROM events_hidden").fetchall()]
            return self.reveal_events(uuids)

    def add_persons(self, team_id: int, n: int, *, created_at: datetime | None = None) -> list[str]:
        """Insert n persons created at `created_at` (default now); returns their ids."""
        with self.lock:
            hi = _us((created_at or datetime.now(UTC)).astimezone(UTC))
            return self._insert_persons(team_id, n, hi, hi)

    def _person_of(self, team_id: int, distinct_id: str) -> tuple[str, dict[str, Any], int, bool] | None:
        row = self.con.execute("""
            SELECT p.id, p.properties, p.version, p.is_identified FROM person_distinct_ids d
            JOIN persons p ON p.team_id = d.team_id AND p.id = d.person_id
            WHERE d.team_id = ? AND d.distinct_id = ? AND NOT d.is_deleted AND NOT p.is_deleted""",
                               [team_id, distinct_id]).fetchone()
        return None if row is None else (row[0], orjson.loads(row[1]), int(row[2]), bool(row[3]))

    def _write_person(self, team_id: int, person_id: str, properties: dict[str, Any], version: int, *,
                      is_identified: bool | None = None, is_deleted: bool = False) -> None:
        """A new version of a person: the current state and one more `person_versions` row."""
        props = orjson.dumps(properties).decode()
        self.con.execute("""
            UPDATE persons SET properties = ?, version = ?, is_deleted = ?,
                               is_identified = coalesce(?, is_identified)
            WHERE team_id = ? AND id = ?""", [props, version, is_deleted, is_identified, team_id, person_id])
        self.con.execute("""
            INSERT INTO person_versions SELECT team_id, id, created_at, properties, is_identified, is_deleted, version
            FROM persons WHERE team_id = ? AND id = ?""", [team_id, person_id])

    def _insert_event_row(self, team_id: int, event: str, distinct_id: str, person_id: str,
                          properties: dict[str, Any], at_us: int) -> str:
        """One event of a person mutation (`$set`, `$identify`), timestamp = created_at = `at_us`."""
        rng = random.Random(f"{self.seed}-mutation-{self._event_i}")
        self._event_i += 1
        uuid = _uuid7(at_us // 1000, rng)
        moment = make_dt(at_us)
        self.con.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, '', NULL, NULL, ?, ?, NULL, NULL)",
                         [team_id, uuid, event, distinct_id, person_id, orjson.dumps(properties).decode(),
                          moment, moment])
        return uuid

    def add_session_events(self, team_id: int, session_id: str, n: int, *, gap_seconds: int = 45,
                           at: datetime | None = None) -> list[str]:
        """A session grows: n `$pageview`s of its person, `gap_seconds` apart after its last event (within
        PostHog's 30-minute inactivity limit), ingested at `at` or now. Returns their uuids."""
        with self.lock:
            row = self.con.execute(
                'SELECT distinct_id, person_id, max(timestamp), max("$window_id") FROM events '
                'WHERE team_id = ? AND "$session_id" = ? GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1',
                [team_id, session_id]).fetchone()
            if row is None:
                raise KeyError(f"session {session_id!r} has no events in project {team_id}")
            distinct_id, person_id, last, window_id = row
            created_us = self._ingest_us(at)
            uuids = []
            for i in range(n):
                moment = last + timedelta(seconds=gap_seconds * (i + 1))
                rng = random.Random(f"{self.seed}-session-{self._event_i}")
                self._event_i += 1
                uuid = _uuid7(_us(moment) // 1000, rng)
                props = {"$current_url": f"https://example.com/pricing?step={i + 1}", "$session_id": session_id,
                         "$window_id": window_id, "$lib": "web"}
                self.con.execute(
                    "INSERT INTO events (team_id, uuid, event, distinct_id, person_id, properties, elements_chain, "
                    '"$session_id", "$window_id", timestamp, created_at) VALUES (?, ?, ?, ?, ?, ?, \'\', ?, ?, ?, ?)',
                    [team_id, uuid, "$pageview", distinct_id, person_id, orjson.dumps(props).decode(), session_id,
                     window_id, moment, make_dt(created_us + i)])
                uuids.append(uuid)
            refresh_sessions(self.con, [session_id])
            return uuids

    def set_person_properties(self, team_id: int, distinct_id: str, *, set: dict[str, Any] | None = None,  # noqa: A002
                              set_once: dict[str, Any] | None = None, at: datetime | None = None) -> dict[str, Any]:
        """Change a person the PostHog way: ingest a `$set` event carrying `$set`/`$set_once` (created_at =
        `at` or now) and, if the properties change, write the person's next version (`$set` overrides,
        `$set_once` only fills missing keys). Returns {"uuid", "person_id", "version"}."""
        with self.lock:
            found = self._person_of(team_id, distinct_id)
            if found is None:
                raise KeyError(f"distinct id {distinct_id!r} has no person in project {team_id}")
            person_id, props, version, _ = found
            at_us = self._ingest_us(at)
            uuid = self._insert_event_row(team_id, "$set", distinct_id, person_id,
                                          {"$set": set or {}, "$set_once": set_once or {}, "$lib": "posthog-python"},
                                          at_us)
            merged = dict(props)
            for key, value in (set_once or {}).items():
                merged.setdefault(key, value)
            merged.update(set or {})
            if merged != props:
                version += 1
                self._write_person(team_id, person_id, merged, version)
            self._refresh_last_seen(team_id)
            return {"uuid": uuid, "person_id": person_id, "version": version}

    def update_person_properties(self, team_id: int, person_id: str, props: dict[str, Any]) -> int:
        """The API's person property edit: captures a `$set` event for the person's first distinct id (so
        it changes through an event, as in PostHog); returns the new version."""
        with self.lock:
            row = self.con.execute("""SELECT min(distinct_id) FROM person_distinct_ids
                                      WHERE team_id = ? AND person_id = ? AND NOT is_deleted""",
                                   [team_id, person_id]).fetchone()
            if row is None or row[0] is None:
                raise KeyError(person_id)
            return int(self.set_person_properties(team_id, row[0], set=props)["version"])

    def merge_persons(self, team_id: int, keep_distinct_id: str, merge_distinct_id: str, *,
                      at: datetime | None = None) -> dict[str, Any]:
        """`$identify` the way PostHog merges: an `$identify` event (distinct id `keep_distinct_id`,
        `$anon_distinct_id` = `merge_distinct_id`), the merged person's distinct ids re-pointed to the kept
        person (each at version + 1), the kept person's next version (merged properties, identified), the
        merged person deleted (version + 100) and its old events re-pointed (`person_id` changes,
        `event_person_id` stays). An unknown `merge_distinct_id` just becomes an alias of the kept person.
        Returns {"uuid", "person_id", "merged_person_id", "version"}."""
        with self.lock:
            kept = self._person_of(team_id, keep_distinct_id)
            if kept is None:
                raise KeyError(f"distinct id {keep_distinct_id!r} has no person in project {team_id}")
            keep_id, keep_props, keep_version, _ = kept
            merged = self._person_of(team_id, merge_distinct_id)
            at_us = self._ingest_us(at)
            uuid = self._insert_event_row(team_id, "$identify", keep_distinct_id, keep_id,
                                          {"$anon_distinct_id": merge_distinct_id, "$lib": "web"}, at_us)
            merged_id = None if merged is None else merged[0]
            if merged is None:
                self.con.execute("DELETE FROM person_distinct_ids WHERE team_id = ? AND distinct_id = ?",
                                 [team_id, merge_distinct_id])
                self.con.execute("INSERT INTO person_distinct_ids VALUES (?, ?, ?, false, 0)",
                                 [team_id, merge_distinct_id, keep_id])
                self._write_person(team_id, keep_id, keep_props, keep_version + 1, is_identified=True)
                keep_version += 1
            elif merged_id != keep_id:
                _, merge_props, merge_version, _ = merged
                self.con.execute("""UPDATE person_distinct_ids SET person_id = ?, version = version + 1
                                    WHERE team_id = ? AND person_id = ? AND NOT is_deleted""",
                                 [keep_id, team_id, merged_id])
                keep_version += 1
                self._write_person(team_id, keep_id, {**merge_props, **keep_props}, keep_version, is_identified=True)
                self._write_person(team_id, merged_id, merge_props, merge_version + 100, is_deleted=True)
                self.con.execute("UPDATE person_overrides SET override_person_id = ? "
                                 "WHERE team_id = ? AND override_person_id = ?", [keep_id, team_id, merged_id])
                self.con.execute("INSERT INTO person_overrides VALUES (?, ?, ?)", [team_id, merged_id, keep_id])
            self._refresh_last_seen(team_id)
            return {"uuid": uuid, "person_id": keep_id, "merged_person_id": merged_id, "version": keep_version}

    def delete_person(self, team_id: int, person_id: str) -> None:
        """Delete as PostHog does: `is_deleted` written at version + 100 for the person and its distinct ids;
        no event is emitted."""
        with self.lock:
            row = self.con.execute("SELECT properties, version FROM persons WHERE team_id = ? AND id = ?",
                                   [team_id, person_id]).fetchone()
            if row is None:
                raise KeyError(person_id)
            self._write_person(team_id, person_id, orjson.loads(row[0]), int(row[1]) + 100, is_deleted=True)
            self.con.execute("UPDATE person_distinct_ids SET is_deleted = true, version = version + 100 "
                             "WHERE team_id = ? AND person_id = ? AND NOT is_deleted", [team_id, person_id])

    def recalculate_cohort(self, team_id: int, cohort_id: int, *, leave: Iterable[str] | None = None,
                           join: Iterable[str] | None = None, at: datetime | None = None) -> dict[str, Any]:
        """Recalculate a dynamic cohort: the given persons leave and join (default: about a fifth of the
        members leave and as many others join, chosen from the seed), `version`/`pending_version` + 1,
        `last_calculation` = `at` or now, `count` updated. Returns {"version", "left", "joined", "count"}."""
        with self.lock:
            cohort = self._find("cohorts", team_id, cohort_id)
            if cohort.get("is_static"):
                raise ValueError(f"cohort {cohort_id} is static: its people change by upload, not recalculation")
            version = int(cohort.get("version") or 0)
            members = [r[0] for r in self.con.execute(
                "SELECT person_id FROM cohort_people WHERE team_id = ? AND cohort_id = ? AND version = ? "
                "ORDER BY person_id", [team_id, cohort_id, version]).fetchall()]
            if leave is None and join is None:
                rng = random.Random(f"{self.seed}-cohort-{team_id}-{cohort_id}-{version}")
                leaving = rng.sample(members, max(1, len(members) // 5)) if members else []
                others = [r[0] for r in self.con.execute(
                    "SELECT id FROM persons WHERE team_id = ? AND NOT is_deleted AND id NOT IN "
                    "(SELECT person_id FROM cohort_people WHERE team_id = ? AND cohort_id = ? AND version = ?) "
                    "ORDER BY id", [team_id, team_id, cohort_id, version]).fetchall()]
                joining = rng.sample(others, min(len(others), max(1, len(leaving))))
            else:
                leaving, joining = list(leave or []), list(join or [])
            current = (set(members) - set(leaving)) | set(joining)
            version += 1
            # the new version's rows are written beside the old ones (PostHog cleans old versions up later)
            if current:
                self.con.executemany("INSERT INTO cohort_people VALUES (?, ?, ?, ?)",
                                     [(team_id, cohort_id, pid, version) for pid in sorted(current)])
            cohort.update(version=version, pending_version=version, count=len(current),
                          last_calculation=iso_z(make_dt(self._ingest_us(at))))
            self._sync_cohort_versions()
            return {"version": version, "left": sorted(set(members) & set(leaving)),
                    "joined": sorted(set(joining) - set(members)), "count": len(current)}

    def _find(self, kind: str, team_id: int, obj_id: Any) -> dict[str, Any]:
        key = "group_key" if kind == "groups" else "group_type_index" if kind == "group_types" else "id"
        for row in self.objects[kind][team_id]:
            if str(row[key]) == str(obj_id):
                return row
        raise KeyError(f"{kind} {obj_id} not found in project {team_id}")

    def edit_object(self, kind: str, team_id: int, obj_id: Any, **changes: Any) -> dict[str, Any]:
        """Change fields of an object; bumps its modification timestamps like PostHog does."""
        with self.lock:
            row = self._find(kind, team_id, obj_id)
            stamp = iso_z(datetime.now(UTC))
            for f in ("updated_at", "last_modified_at"):
                if f in row:
                    row[f] = stamp
            row.update(changes)
            if kind == "cohorts":
                self._sync_cohort_versions()
            return public(row)

    def delete_object(self, kind: str, team_id: int, obj_id: Any) -> None:
        """Soft delete: the row stays stored but leaves every list."""
        with self.lock:
            _mark_deleted(kind, self._find(kind, team_id, obj_id))
            if kind == "cohorts":
                self._sync_cohort_versions()

    def add_object(self, kind: str, team_id: int, **fields: Any) -> dict[str, Any]:
        """Create an object of `kind` with default fields (created now) overridden by `fields`."""
        with self.lock:
            rng = random.Random(f"{self.seed}-{kind}-{team_id}-{len(self.objects[kind][team_id])}")
            if kind == "groups":
                row = self._make_group(team_id, fields.get("group_type_index", 0), rng,
                                       len(self.objects[kind][team_id]))
            elif kind == "group_types":
                row = {"group_type": "project", "group_type_index": len(self.objects[kind][team_id]),
                       "name_singular": None, "name_plural": None, "detail_dashboard": None,
                       "default_columns": None}
            else:
                row = self._make_object(kind, team_id, rng, len(self.objects[kind][team_id]))
            stamp = iso_z(datetime.now(UTC))
            for f in ("created_at", "updated_at", "last_modified_at", "start_time"):
                if f in row:
                    row[f] = stamp
            row.update(fields)
            self.objects[kind][team_id].append(row)
            if kind == "cohorts":
                self._sync_cohort_versions()
            return public(row)


# Per-session acquisition properties (the SDK sends `$referrer`/`$referring_domain` on every event; UTM
# parameters as properties): sessions' `$channel_type` follows from them (Direct x4, Organic Search x2,
# Paid Search, Referral, Organic Social, Email).
CHANNEL_PROPS = (
    ',"$referrer":"$direct","$referring_domain":"$direct"',
    ',"$referrer":"$direct","$referring_domain":"$direct"',
    ',"$referrer":"$direct","$referring_domain":"$direct"',
    ',"$referrer":"$direct","$referring_domain":"$direct"',
    ',"$referrer":"https://www.google.com/","$referring_domain":"www.google.com"',
    ',"$referrer":"https://duckduckgo.com/","$referring_domain":"duckduckgo.com"',
    ',"$referrer":"https://www.google.com/","$referring_domain":"www.google.com","utm_source":"google",'
    '"utm_medium":"cpc","utm_campaign":"spring_sale","gclid":"Cj0KCQiA-fake"',
    ',"$referrer":"https://news.ycombinator.com/item?id=1","$referring_domain":"news.ycombinator.com"',
    ',"$referrer":"https://t.co/abc","$referring_domain":"t.co"',
    ',"$referrer":"$direct","$referring_domain":"$direct","utm_source":"newsletter","utm_medium":"email",'
    '"utm_campaign":"march_digest"',
)
CHANNEL_OF_PROPS = ("Direct",) * 4 + ("Organic Search",) * 2 + ("Paid Search", "Referral", "Organic Social", "Email")

# Fat events (World.generate(fat_share=...)): properties without the closing brace, 10-50 KB each.
_EXCEPTION_SQL = """('{"$lib":"web","$exception_list":[{"type":"TypeError","value":"Cannot read properties of '
  || 'undefined (reading ''id'')","mechanism":{"handled":false,"type":"onerror"},"stacktrace":{"type":"raw",'
  || '"frames":[' || repeat('{"filename":"https://example.com/static/chunk-' || (h5 % 97)::VARCHAR
  || '.js","function":"handleClick","lineno":' || (h5 % 900)::VARCHAR || ',"colno":17,"in_app":true,'
  || '"platform":"web:javascript","context_line":"const id = props.session.user.id; // Grüße"},',
  (50 + hash(i, {s}, 15) % 210)::BIGINT)
  || '{"filename":"https://example.com/static/main.js","function":"main","lineno":1,"colno":1,"in_app":false}'
  || ']}}],"$exception_fingerprint":"' || md5(i::VARCHAR) || '","$exception_level":"error"')"""
_AI_SQL = """('{"$lib":"posthog-python","$ai_model":"gpt-4o-mini","$ai_provider":"openai","$ai_trace_id":"'
  || md5(i::VARCHAR) || '","$ai_input_tokens":' || (200 + h5 % 4000)::VARCHAR || ',"$ai_output_tokens":'
  || (50 + h2 % 900)::VARCHAR || ',"$ai_latency":' || ((h5 % 5000) / 1000.0)::VARCHAR
  || ',"$ai_input":[{"role":"system","content":"You are a careful analyst."},{"role":"user","content":"'
  || repeat('Summarise the quarterly report for the EMEA region with numbers — naïve café 🚀. ',
            (100 + hash(i, {s}, 15) % 300)::BIGINT)
  || '"}],"$ai_output_choices":[{"role":"assistant","content":"'
  || repeat('Revenue grew 4 % while churn fell; see the table below.\\n', (60 + hash(i, {s}, 16) % 240)::BIGINT)
  || '"}]')"""

_DISTINCT_ID_SQL = """CASE j WHEN 0 THEN uuid_hex(hash({s}, {t}, k, 21), hash({s}, {t}, k, 22), '4')
                             WHEN 1 THEN 'user' || k || '@example.com' ELSE 'ユーザー_' || k END"""


def _distinct_id_sql(seed: int, team_id: int) -> str:
    """Distinct id j of person k: an anonymous device uuid, an e-mail, or a unicode id."""
    return _DISTINCT_ID_SQL.format(s=seed, t=team_id)


def _uuid7(ms: int, rng: random.Random) -> str:
    """A UUIDv7 string (time-ordered, like PostHog's session and event ids)."""
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    return str(uuidlib.UUID(int=value))


def make_dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of the row without internal (`_`-prefixed) fields."""
    return {k: copy.deepcopy(v) if isinstance(v, dict | list) else v for k, v in row.items()
            if not k.startswith("_")}


def _mark_deleted(kind: str, row: dict[str, Any]) -> None:
    if kind in KINDS_WITH_DELETED_FIELD:
        row["deleted"] = True
    else:
        row["_deleted"] = True


def _split(total: int) -> dict[int, int]:
    counts = {spec[0]: int(total * spec[4]) for spec in PROJECT_SPECS}
    biggest = max(counts, key=lambda t: counts[t])
    counts[biggest] += total - sum(counts.values())
    return counts


PROJECT_SHORT_FIELDS = ("id", "uuid", "organization", "api_token", "name", "completed_snippet_onboarding",
                        "has_completed_onboarding_for", "ingested_event", "is_demo", "timezone", "access_control",
                        "project_id")


def _project_basic(p: dict[str, Any]) -> dict[str, Any]:
    """The short form `/api/projects/` and `/organizations/{id}/projects/` list (recorded: no `created_at`)."""
    return {k: p[k] for k in PROJECT_SHORT_FIELDS}


def _instant_arg(value: Any) -> datetime | None:
    """An instant from JSON (ISO 8601 text, `Z` allowed) or None."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# Every test mutation, callable with JSON arguments (what `POST /_fake/mutate {"op", "args"}` runs).
MUTATIONS: dict[str, Callable[[World, dict[str, Any]], Any]] = {
    "add_session_events": lambda w, a: w.add_session_events(a["team_id"], a["session_id"], a["n"],
                                                            at=_instant_arg(a.get("at"))),
    "add_events": lambda w, a: w.add_events(a["team_id"], a["n"], created_at=_instant_arg(a.get("created_at")),
                                            late_by=a.get("late_by"), tie=bool(a.get("tie", False)),
                                            hidden=bool(a.get("hidden", False))),
    "reveal_events": lambda w, a: w.reveal_events(a["uuids"]),
    "reveal_all": lambda w, a: w.reveal_all(),
    "add_persons": lambda w, a: w.add_persons(a["team_id"], a["n"], created_at=_instant_arg(a.get("created_at"))),
    "update_person_properties": lambda w, a: w.update_person_properties(a["team_id"], a["person_id"], a["props"]),
    "set_person_properties": lambda w, a: w.set_person_properties(
        a["team_id"], a["distinct_id"], set=a.get("set"), set_once=a.get("set_once"), at=_instant_arg(a.get("at"))),
    "merge_persons": lambda w, a: w.merge_persons(a["team_id"], a["keep_distinct_id"], a["merge_distinct_id"],
                                                  at=_instant_arg(a.get("at"))),
    "delete_person": lambda w, a: w.delete_person(a["team_id"], a["person_id"]),
    "recalculate_cohort": lambda w, a: w.recalculate_cohort(a["team_id"], a["cohort_id"], leave=a.get("leave"),
                                                            join=a.get("join"), at=_instant_arg(a.get("at"))),
    "edit_object": lambda w, a: w.edit_object(a["kind"], a["team_id"], a["id"], **a.get("changes", {})),
    "delete_object": lambda w, a: w.delete_object(a["kind"], a["team_id"], a["id"]),
    "add_object": lambda w, a: w.add_object(a["kind"], a["team_id"], **a.get("fields", {})),
}


def _make_keys(seed: int, orgs: Iterable[dict[str, Any]]) -> dict[str, KeyInfo]:
    """Keys derived from the seed at run time, so none is ever committed."""
    org_ids = [o["id"] for o in orgs]

    def key(name: str) -> str:
        return "phx_" + hashlib.sha256(f"fake-posthog-{seed}-{name}".encode()).hexdigest()[:40]

    every_read = [f"{o}:read" for o in ("person", "cohort", "feature_flag", "insight", "dashboard", "annotation",
                                         "action", "experiment", "survey", "event_definition",
                                         "property_definition", "session_recording", "early_access_feature",
                                         "group", "notebook", "batch_export", "organization",
                                         "organization_member", "project", "query", "user")]
    specs = {
        "full": KeyInfo(key("full"), "full access", ["*"]),
        "limited": KeyInfo(key("limited"), "no flags, no recordings",
                           [s for s in every_read if s not in ("feature_flag:read", "session_recording:read")]),
        "scoped": KeyInfo(key("scoped"), "first project only", ["*"], scoped_teams=[PROJECT_SPECS[0][0]]),
        "no_query": KeyInfo(key("no_query"), "everything but query", [s for s in every_read if s != "query:read"]),
        "org_scoped": KeyInfo(key("org_scoped"), "second organisation only", ["*"],
                              scoped_organizations=[org_ids[1]]),
    }
    for i, info in enumerate(specs.values()):
        info.id = str(uuidlib.UUID(int=seed * 1000 + i + 1, version=4))
    return specs
