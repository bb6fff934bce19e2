"""PostHog's own rules for a HogQL query, applied before the fake runs it its own way.

The fake's engine (hogql.py) is our reading of PostHog and cannot catch our misreadings: a query naming a
column PostHog does not have (`cohort_people.version`) ran here and failed on real PostHog. So every query is
first judged by what PostHog publishes:
- the parser: PostHog's own (`hogql-parser` on PyPI, the C++ parser PostHog runs). A syntax error gets the
  parser's message, as PostHog answers it (posthog/hogql/parser.py turns the JSON error into SyntaxError);
- the tables and fields: posthog_schema.json, facts read from posthog/hogql/database/schema/*.py and
  database.py (file and commit recorded there). A field is resolved as PostHog's resolver does it: the
  first name of a chain is a table alias, a select alias or a field of a table in scope; lazy joins
  (`events.person`, `cohort_people.person`) and virtual tables (`events.poe`) lead on to their fields; JSON
  fields (`properties`) take any key after them;
- the functions: posthog_functions.json, read from posthog/hogql/functions/mapping.py and what it imports:
  names (case-sensitive unless PostHog says otherwise) and argument counts.
What PostHog refuses gets PostHog's message (the templates and where each is raised are in
posthog_schema.json `errors`): `Unable to resolve field: x`, ``Unknown table `x`.``, `Field not found: x`,
`Unsupported function call 'x(...)'`, `Function 'x' expects ...`. Fields are resolved before functions are
checked: PostHog's resolver runs before its printer, which is where unknown functions are refused.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
import types
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
# The persons-on-events modes PostHog has (posthog_schema.json `persons_on_events`); the first is what a team
# without flags or settings gets, and what the fake serves unless told otherwise.
PERSONS_ON_EVENTS_MODES = ("person_id_override_properties_joined", "disabled",
                           "person_id_no_override_properties_on_events", "person_id_override_properties_on_events")
_JSON_KINDS = ("json",)
_STRUCTURAL = frozenset({"lazy_join", "virtual_table", "field_traverser", "depends_on_persons_on_events_mode"})


class PostHogRefusal(Exception):
    """What real PostHog answers with 400 validation_error: `str(self)` is PostHog's message."""


# -- PostHog's facts --------------------------------------------------------------------------------------
@cache
def schema_facts() -> dict[str, Any]:
    return json.loads((HERE / "posthog_schema.json").read_text())


@cache
def function_facts() -> dict[str, Any]:
    return json.loads((HERE / "posthog_functions.json").read_text())


@cache
def _parser() -> types.ModuleType:
    """PostHog's parser. It imports `posthog.hogql.errors` when it loads: PostHog's own module where PostHog is
    installed, else our stand-in with PostHog's class names (posthog_errors.py)."""
    try:
        importlib.import_module("posthog.hogql.errors")
    except ImportError:
        if importlib.util.find_spec("posthog") is None:
            sys.modules.setdefault("posthog", types.ModuleType("posthog"))
        else:  # another package called posthog (PostHog's Python SDK): give it the one submodule needed
            importlib.import_module("posthog")
        sys.modules.setdefault("posthog.hogql", types.ModuleType("posthog.hogql"))
        sys.modules["posthog.hogql.errors"] = importlib.import_module("fake_posthog.posthog_errors")
    return importlib.import_module("hogql_parser")


def parse(query: str) -> dict[str, Any]:
    """PostHog's AST of a SELECT as JSON, or PostHogRefusal with the parser's message."""
    tree = json.loads(_parser().parse_select_json(query, is_internal=True))
    if tree.get("error"):
        raise PostHogRefusal(str(tree.get("message") or "Syntax error"))
    return tree


# -- tables ------------------------------------------------------------------------------------------------
@dataclass
class Source:
    """Something a FROM names: a PostHog table (its fields from the schema, or None when the facts list only
    its name) or a subquery / CTE (its output names, or None when they cannot be known, as after `*`)."""

    name: str
    fields: dict[str, Any] | None = None
    columns: set[str] | None = None
    table: bool = True


def table_source(name: str, missing: frozenset[str]) -> Source:
    facts = schema_facts()
    known = set(facts["database"]["table_names"]) | set(facts["tables"]) | set(
        facts["tables"].get("other_top_level_tables", {}).get("names_only", []))
    if name in missing or name not in known or name == "other_top_level_tables":
        raise PostHogRefusal(f"Unknown table `{name}`.")
    spec = facts["tables"].get(name) or {}
    return Source(name, spec.get("fields"))


# -- functions ---------------------------------------------------------------------------------------------
def _find_function(name: str) -> dict[str, Any] | None:
    """PostHog's lookup (posthog_functions.json `lookup`): the exact name, else the lower-case name when
    that function is not case-sensitive."""
    functions = function_facts()["functions"]
    meta = functions.get(name)
    if meta is not None:
        return meta
    meta = functions.get(name.lower())
    if meta is not None and meta.get("case_sensitive") is False:
        return meta
    return None


def check_call(name: str, args: int, params: int | None) -> None:
    meta = _find_function(name)
    if meta is None:
        raise PostHogRefusal(f"Unsupported function call '{name}(...)'")
    what = "Aggregation" if "aggregation" in _kinds(meta) else "Function"
    if meta.get("arity_known") is False:  # a name PostHog exposes whose argument counts were not readable
        return
    _check_count(what, name, args, meta.get("min_args") or 0, meta.get("max_args"))
    if params is not None and ("min_params" in meta or "max_params" in meta):
        _check_count(what, name, params, meta.get("min_params") or 0, meta.get("max_params"), "parameter")


def _kinds(meta: dict[str, Any]) -> list[str]:
    kinds = meta.get("kinds") or [meta.get("kind", "")]
    return [str(k) for k in kinds]


def _check_count(what: str, name: str, found: int, low: int, high: int | None, noun: str = "argument") -> None:
    """PostHog's messages (posthog/hogql/functions/core.py `validate_function_args`)."""
    def plural(n: int) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    if high is not None and low == high and found != low:
        raise PostHogRefusal(f"{what} '{name}' expects {plural(low)}, found {found}")
    if found < low:
        raise PostHogRefusal(f"{what} '{name}' expects at least {plural(low)}, found {found}")
    if high is not None and found > high:
        raise PostHogRefusal(f"{what} '{name}' expects at most {plural(high)}, found {found}")


# -- resolution --------------------------------------------------------------------------------------------
@dataclass
class Scope:
    sources: dict[str, Source] = field(default_factory=dict)  # alias (or table name) -> source
    aliases: set[str] = field(default_factory=set)  # select aliases of this SELECT
    ctes: dict[str, Source] = field(default_factory=dict)
    parent: Scope | None = None

    def cte(self, name: str) -> Source | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.ctes:
                return scope.ctes[name]
            scope = scope.parent
        return None


class Judge:
    """Resolves one parsed query against PostHog's schema; calls are collected and checked afterwards."""

    def __init__(self, persons_on_events_mode: str, missing_tables: frozenset[str]) -> None:
        if persons_on_events_mode not in PERSONS_ON_EVENTS_MODES:
            raise ValueError(f"unknown persons-on-events mode {persons_on_events_mode!r}")
        self.mode = persons_on_events_mode
        self.missing = missing_tables
        self.calls: list[tuple[str, int, int | None]] = []

    # statements
    def statement(self, node: dict[str, Any], parent: Scope | None) -> set[str] | None:
        kind = node.get("node")
        if kind == "SelectSetQuery":
            columns = self.statement(node["initial_select_query"], parent)
            for part in node.get("subsequent_select_queries") or []:
                self.statement(part["select_query"], parent)
            return columns
        if kind == "SelectQuery":
            return self.select(node, parent)
        raise PostHogRefusal(f"Unsupported query node {kind}")

    def select(self, node: dict[str, Any], parent: Scope | None) -> set[str] | None:
        scope = Scope(parent=parent)
        ctes = node.get("ctes") or {}
        for cte in (ctes.values() if isinstance(ctes, dict) else ctes):
            if cte.get("cte_type") == "subquery":
                scope.ctes[cte["name"]] = Source(cte["name"], columns=self.statement(cte["expr"], scope), table=False)
            else:  # WITH <expr> AS name: a named expression
                self.expr(cte["expr"], scope)
                scope.aliases.add(cte["name"])
        join = node.get("select_from")
        constraints = []
        while join:
            self.join(join, scope)
            if join.get("constraint"):
                constraints.append(join["constraint"])
            join = join.get("next_join")
        for item in node.get("select") or []:
            if item.get("node") == "Alias":
                scope.aliases.add(item["alias"])
        for constraint in constraints:
            self.expr(constraint.get("expr"), scope)
        for key in ("select", "where", "prewhere", "having", "group_by", "order_by", "limit", "offset",
                    "limit_by", "qualify", "window_exprs"):
            self.expr(node.get(key), scope)
        return self.outputs(node.get("select") or [], scope)

    def join(self, join: dict[str, Any], scope: Scope) -> None:
        table = join.get("table")
        alias = join.get("alias")
        if table is None:
            return
        if table.get("node") == "Field":
            name = ".".join(table["chain"])
            source = scope.cte(name) or table_source(name, self.missing)
        elif table.get("node") in ("SelectQuery", "SelectSetQuery"):
            source = Source(alias or "", columns=self.statement(table, scope.parent), table=False)
        else:  # a table function (numbers(10), ...): its arguments are expressions
            self.expr(table, scope)
            source = Source(alias or "", columns=None, table=False)
        scope.sources[alias or source.name] = source

    @staticmethod
    def outputs(items: list[dict[str, Any]], scope: Scope) -> set[str] | None:
        names: set[str] = set()
        for item in items:
            if item.get("node") == "Alias":
                names.add(item["alias"])
            elif item.get("node") == "Field":
                chain = item["chain"]
                if chain[-1] == "*":
                    return None
                names.add(str(chain[-1]))
        return names

    # expressions
    def expr(self, node: Any, scope: Scope) -> None:
        if isinstance(node, list):
            for item in node:
                self.expr(item, scope)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("node")
        if kind == "Field":
            self.field_chain([str(c) for c in node["chain"]], scope)
            return
        if kind in ("SelectQuery", "SelectSetQuery"):
            self.statement(node, scope)
            return
        if kind == "Call":
            params = node.get("params")
            self.calls.append((node["name"], len(node.get("args") or []), None if params is None else len(params)))
        if kind == "Lambda":
            inner = Scope(parent=scope, aliases=set(node.get("args") or []))
            self.expr(node.get("expr"), inner)
            return
        for key, value in node.items():
            if key not in ("node", "start", "end") and isinstance(value, dict | list):
                self.expr(value, scope)

    def field_chain(self, chain: list[str], scope: Scope) -> None:
        head = chain[0]
        if head == "*":
            return
        current: Scope | None = scope
        while current is not None:  # PostHog looks in this SELECT, then in the enclosing ones
            if head in current.aliases:
                return
            if head in current.sources and len(chain) > 1:
                self.resolve_in(current.sources[head], chain[1:])
                return
            holders = [(alias, s) for alias, s in current.sources.items() if self.has_field(s, head)]
            if len(holders) > 1:  # posthog/hogql/resolver_utils.py lookup_field_by_name
                names = ", ".join(f"{alias}.{head}" for alias, _ in holders)
                raise PostHogRefusal(f"Ambiguous query. Found multiple sources for field: {head} ({names}). "
                                     "Use a qualified field name.")
            if holders:
                self.resolve_in(holders[0][1], chain)
                return
            current = current.parent
        raise PostHogRefusal(f"Unable to resolve field: {head}")

    def has_field(self, source: Source, name: str) -> bool:
        if source.fields is not None:
            return name in source.fields
        return source.columns is None or name in source.columns

    def resolve_in(self, source: Source, chain: list[str]) -> None:
        """`chain` read from `source`: each name a field of the table reached so far."""
        if source.fields is None:
            if source.columns is not None and chain[0] not in source.columns:
                raise PostHogRefusal(f"Column not found: {chain[0]}" if not source.table
                                     else f"Field not found: {chain[0]}")
            return
        self.resolve_fields(source.fields, chain, source.name)

    def resolve_fields(self, fields: dict[str, Any], chain: list[str], table: str) -> None:
        name, rest = chain[0], chain[1:]
        spec = fields.get(name)
        if spec is None:
            raise PostHogRefusal(f"Field not found: {name}")
        kind = str(spec.get("kind", ""))
        if kind == "depends_on_persons_on_events_mode":
            spec = self.persons_on_events_field(name)
            kind = spec["kind"]
        if not rest:
            return
        if kind.startswith(_JSON_KINDS) or kind not in _STRUCTURAL and kind.startswith(("unknown", "expression")):
            return  # a JSON field takes any key; an expression's type is not in the facts
        if kind == "lazy_join":
            target = table_source(spec["to"], frozenset())
            if target.fields is not None:
                self.resolve_fields(target.fields, rest, target.name)
            return
        if kind == "virtual_table":
            self.resolve_fields(spec.get("fields") or {}, rest, f"{table}.{name}")
            return
        if kind == "field_traverser":
            self.resolve_fields(fields, [*spec["chain"], *rest], table)
            return
        raise PostHogRefusal(f'Can not access property "{rest[0]}" on field "{name}".')

    def persons_on_events_field(self, name: str) -> dict[str, Any]:
        """`events.person_id` and `events.person` by the team's mode (posthog_schema.json
        `persons_on_events`): through `pdi` when disabled, the event's own columns (`poe`) when properties are
        on events, else the overrides expression and a join to `persons` (the default)."""
        if self.mode == "disabled":
            return {"kind": "field_traverser", "chain": ["pdi", name]}
        if name == "person":
            if self.mode.endswith("_on_events"):
                return {"kind": "field_traverser", "chain": ["poe"]}
            return {"kind": "lazy_join", "to": "persons"}
        return {"kind": "string"}


def judge(query: str, persons_on_events_mode: str = PERSONS_ON_EVENTS_MODES[0],
          missing_tables: frozenset[str] = frozenset()) -> None:
    """Raise PostHogRefusal with PostHog's message when PostHog would refuse `query`; `missing_tables` are
    tables this PostHog does not have (an older self-hosted instance without `sessions`).

    PostHog's parser takes 50-200 ms a query, so each verdict is kept for the query's shape (its text with
    every literal blanked): what a query may name does not depend on its literals' values. A text whose
    literals do not scan (an unterminated string) has no shape and is always parsed."""
    key = _shape(query)
    if key is None:
        _judge(query, persons_on_events_mode, missing_tables)
        return
    verdicts = (key, persons_on_events_mode, missing_tables)
    if verdicts not in _VERDICTS:  # the first text of a shape is judged in its own words
        try:
            _judge(query, persons_on_events_mode, missing_tables)
            _VERDICTS[verdicts] = None
        except PostHogRefusal as exc:
            _VERDICTS[verdicts] = str(exc)
    if _VERDICTS[verdicts] is not None:
        raise PostHogRefusal(_VERDICTS[verdicts])


_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|(?<![\w$`.])\d+(?:\.\d+)?(?![\w`])")


def _shape(query: str) -> str | None:
    shaped = _LITERAL.sub("0", query)
    return None if "'" in shaped else shaped


# (shape, persons-on-events mode, missing tables) -> PostHog's message, or None when accepted
_VERDICTS: dict[tuple[str, str, frozenset[str]], str | None] = {}


def _judge(query: str, persons_on_events_mode: str, missing_tables: frozenset[str]) -> None:
    tree = parse(query)
    judge_ = Judge(persons_on_events_mode, missing_tables)
    judge_.statement(tree, None)
    for name, args, params in judge_.calls:
        check_call(name, args, params)
