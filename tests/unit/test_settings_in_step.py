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


DEFAULTED = ["ingestion_lag", "max_lateness", "ingestion_overlap", "late_sweep", "window", "page_size", "page_bytes",
             "workers", "persons_full_refresh", "max_rate_limit_wait"]


def readme_defaults() -> dict[str, str]:
    """The default column of README's settings table (`| `key` | `default` | meaning |`)."""
    found: dict[str, str] = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        match = re.match(r"\|\s*`(\w+)`\s*\|\s*`([^`]+)`\s*\|", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _setting_value(text: str) -> object:
    """README writes byte sizes as `64 MiB`; everything else as a user would set it."""
    size = re.fullmatch(r"(\d+) MiB", text)
    return int(size.group(1)) * 1024 * 1024 if size else text


@pytest.mark.parametrize("name", DEFAULTED)
def test_readme_states_the_defaults_the_code_uses(name):
    defaults = readme_defaults()
    assert name in defaults, f"{name} has no default in README's settings table"
    assert getattr(SourceSettings.parse(api_key=KEY, **{name: _setting_value(defaults[name])}), name) == getattr(
        SourceSettings.parse(api_key=KEY), name)


@pytest.mark.parametrize("name", ["ingestion_lag", "max_lateness", "ingestion_overlap", "late_sweep", "window",
                                  "max_rate_limit_wait"])
def test_readme_and_config_toml_write_duration_defaults_one_way(name):
    """As settings.duration_text writes them (what --help shows), not `86400` in one place and `1d` in another."""
    written = settings.duration_text(getattr(SourceSettings.parse(api_key=KEY), name).total_seconds())
    assert readme_defaults()[name] == written
    assert commented_defaults()[name] == written


def _help_defaults() -> dict[tuple[str, str], str]:
    """`(command, option) -> the default its --help states`, for every option whose help says "default X"."""
    commands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no getter
    found: dict[tuple[str, str], str] = {}
    for command, parser in commands.items():
        for action in parser._actions:  # noqa: SLF001
            match = re.search(r"\(default ([^,)]+)", action.help or "")
            if match and action.dest in SourceSettings.__dataclass_fields__:
                found[(command, action.dest)] = match.group(1)
    return found


def test_help_states_the_defaults_the_code_uses():
    """Every option of a setting whose --help names a default names the one SourceSettings uses (backfill's
    --window said 1d whatever the `window` setting was; --workers said 4 while the code used 2)."""
    stated = _help_defaults()
    assert {("run", "workers"), ("backfill", "workers"), ("backfill", "window"), ("verify", "workers")} <= set(stated)
    for (command, name), text in stated.items():
        assert getattr(SourceSettings.parse(api_key=KEY, **{name: text}), name) == getattr(
            SourceSettings.parse(api_key=KEY), name), (command, name, text)


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
