"""One default per setting: `.dlt/config.toml`'s commented defaults, `--help` and `SourceSettings` agree, and
every list setting is parsed one way (issue: `PROMOTED_PROPERTIES='["$browser", "quantity:int"]'` was refused
while `PROJECT_IDS='[101, 201]'` was accepted; `--help` and config.toml said 4 workers, the code 2)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from pipelines.cli import build_parser
from posthog_source import settings
from posthog_source.config import SourceSettings, parse_list
from posthog_source.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
KEY = "phx_" + "a" * 40


def commented_defaults() -> dict[str, object]:
    """`# key = value   # comment` lines of [sources.posthog] in .dlt/config.toml, parsed as TOML."""
    found: dict[str, object] = {}
    for line in (ROOT / ".dlt" / "config.toml").read_text().splitlines():
        match = re.match(r"#\s*(\w+)\s*=\s*(.+?)\s*(#.*)?$", line)
        if match:
            found[match.group(1)] = tomllib.loads(f"v = {match.group(2)}")["v"]
    return found


@pytest.mark.parametrize("name", ["ingestion_lag", "max_lateness", "ingestion_overlap", "late_sweep", "window",
                                  "page_size", "page_bytes", "workers", "persons_full_refresh", "max_rate_limit_wait"])
def test_config_toml_shows_the_defaults_the_code_uses(name):
    defaults = commented_defaults()
    assert name in defaults, f"{name} is not in .dlt/config.toml"
    assert getattr(SourceSettings.parse(api_key=KEY, **{name: defaults[name]}), name) == getattr(
        SourceSettings.parse(api_key=KEY), name)


def test_help_names_the_default_workers():
    run = build_parser()._subparsers._group_actions[0].choices["run"]  # noqa: SLF001 - argparse has no getter
    workers = next(a for a in run._actions if a.dest == "workers")  # noqa: SLF001
    assert f"default {settings.DEFAULT_WORKERS}" in workers.help


@pytest.mark.parametrize("text, expected", [
    ('["$browser", "quantity:int"]', ["$browser", "quantity:int"]),
    ("$browser, quantity:int", ["$browser", "quantity:int"]),
    ("['$browser']", ["$browser"]),
    ("[101, 201]", [101, 201]),
    ("101,201", ["101", "201"]),
])
def test_every_list_setting_is_parsed_one_way(text, expected):
    assert parse_list(text, "x") == expected


def test_list_settings_from_env_text():
    parsed = SourceSettings.parse(api_key=KEY, promoted_properties='["$browser", "quantity:int"]',
                                  project_ids="[101, 201]")
    assert parsed.promoted_properties == ("$browser", "quantity:int") and parsed.project_ids == (101, 201)


def test_a_broken_list_is_one_line():
    with pytest.raises(ConfigurationError, match="is not a list"):
        parse_list('["$browser", ', "promoted_properties")


def test_the_library_entry_point_takes_exactly_the_settings() -> None:
    """`posthog_source(...)` (for dlt users) and `SourceSettings` (what everything else takes) name the same
    settings, so neither door has one the other lacks."""
    import dataclasses
    import inspect

    from posthog_source import SETTING_NAMES, posthog_source

    parameters = list(inspect.signature(posthog_source).parameters)
    assert parameters == list(SETTING_NAMES) == [f.name for f in dataclasses.fields(SourceSettings)]
