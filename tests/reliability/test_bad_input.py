"""Bad input, table-driven: each case gets its documented exit code and one clear line, no traceback, and
nothing already loaded changes. The CLI runs in a subprocess from a clean cwd."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fake_posthog import FakePostHog, World
from tests.conftest import FAKE_NOW
from tests.helpers import read_rows
from tests.reliability.conftest import cli_env, copy_workdir, run_cli, snapshot

RESOURCES = "events,cohorts,feature_flags"


@dataclass
class Ctx:
    """What a case can refer to: the loaded server, a server of 'another region', the case's workdir."""

    server: FakePostHog
    other_region: FakePostHog
    workdir: Path

    def key(self, name: str) -> str:
        return self.server.world.keys[name]


@dataclass(frozen=True)
class Case:
    name: str
    code: int
    message: str  # regex the one `error:` line (or, for code 0, a warning) must match
    args: tuple[str, ...] = ("run", "--resources", RESOURCES)
    env: Callable[[Ctx], dict[str, str]] = lambda ctx: {}
    setup: Callable[[Ctx], Any] | None = None  # may return a Popen to stop after the run
    changes_data: bool = False


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broken_config(ctx: Ctx) -> None:
    (ctx.workdir / ".dlt").mkdir()
    (ctx.workdir / ".dlt" / "config.toml").write_text('[sources.posthog]\nstart_date = "2025-06-01\nwindow = 1d\n')


def lock_duckdb(ctx: Ctx) -> subprocess.Popen[str]:
    """Another process holds the DuckDB file open for writing until it is stopped."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('open', flush=True);"
         " time.sleep(120)", str(ctx.workdir / "warehouse.duckdb")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
    return holder


def not_a_directory(ctx: Ctx) -> dict[str, str]:
    """A destination whose parent is a file: unwritable even for root (tests run as root, chmod is no use)."""
    (ctx.workdir / "plain-file").write_text("")
    return {"DESTINATION__DUCKDB__CREDENTIALS": str(ctx.workdir / "plain-file" / "warehouse.duckdb")}


CASES = [
    Case("wrong key", 3, r"PostHog rejected the API key \(Personal API key found in request Authorization header is "
         r"invalid\.\); set a valid personal API key", env=lambda c: {"SOURCES__POSTHOG__API_KEY": "phx_" + "x" * 40}),
    Case("key of another region", 3, r"PostHog rejected the API key",
         env=lambda c: {"SOURCES__POSTHOG__HOST": c.other_region.url}),
    Case("project token as personal key", 3, r"the API key is a project token \(phc_\.\.\.\), which only sends "
         r"events to PostHog; create a personal API key \(phx_\.\.\.\) in PostHog under Settings > Personal API keys",
         env=lambda c: {"SOURCES__POSTHOG__API_KEY": c.key("project_token")}),
    Case("missing scope on one resource", 0, r"skipped feature_flags: PostHog refused feature_flags of project \d+: "
         r"API key missing required scope 'feature_flag:read'; add the scope 'feature_flag:read' to the key to load "
         r"it$",  # the advice once (it was repeated)
         env=lambda c: {"SOURCES__POSTHOG__API_KEY": c.key("limited")}, changes_data=True),
    Case("missing API key", 2, r"no PostHog API key; set SOURCES__POSTHOG__API_KEY",
         env=lambda c: {"SOURCES__POSTHOG__API_KEY": ""}),
    Case("unknown project id", 2, r"[Pp]roject.*999.*", args=("run", "--resources", RESOURCES, "--projects", "999")),
    Case("project of another key's scope", 3, r"this API key may not read project 2; give the key access to it",
         args=("run", "--resources", RESOURCES, "--projects", "2"),
         env=lambda c: {"SOURCES__POSTHOG__API_KEY": c.key("scoped")}),
    Case("non-numeric project id", 2, r"project id 'abc' is not a number",
         args=("run", "--resources", RESOURCES, "--projects", "1,abc")),
    Case("host without scheme", 2, r"host 'posthog\.example\.com' is not a valid URL",
         env=lambda c: {"SOURCES__POSTHOG__HOST": "posthog.example.com"}),
    Case("host ending in /api/", 2, r"host 'http://127\.0\.0\.1:\d+/api' ends in /api; set host to the base URL "
         r"without /api, such as http://127\.0\.0\.1:\d+$",
         env=lambda c: {"SOURCES__POSTHOG__HOST": c.server.url + "/api/"}),
    Case("host with a space", 2, r"host 'https://x y' is not a valid URL",
         env=lambda c: {"SOURCES__POSTHOG__HOST": "https://x y"}),
    Case("check with an unclosed IPv6 host", 2, r"host 'http://\[::1' is not a valid URL", args=("check",),
         env=lambda c: {"SOURCES__POSTHOG__HOST": "http://[::1"}),
    Case("abbreviated option", 2, r"unrecognized arguments: --start-dat 2025-06-01",
         args=("run", "--resources", RESOURCES, "--start-dat", "2025-06-01")),
    Case("zero workers", 2, r"argument --workers: must be a positive whole number, got '0'",
         args=("run", "--resources", RESOURCES, "--workers", "0")),
    Case("plain http to a remote host", 2, r"uses plain http; the API key would travel unencrypted",
         env=lambda c: {"SOURCES__POSTHOG__HOST": "http://192.0.2.1"}),
    Case("unreachable host", 2, r"cannot reach PostHog at http://127\.0\.0\.1:\d+ \(connection refused\)",
         env=lambda c: {"SOURCES__POSTHOG__HOST": f"http://127.0.0.1:{closed_port()}"}),
    Case("malformed start date", 2, r"start_date '2025-13-45' is not a date",
         args=("run", "--resources", RESOURCES, "--start-date", "2025-13-45")),
    Case("malformed date in config", 2, r"end_date 'yesterday-ish' is not a date",
         env=lambda c: {"SOURCES__POSTHOG__END_DATE": "yesterday-ish"}),
    Case("end before start", 2, r"end_date 2025-06-01T00:00:00Z is not after start_date",
         args=("run", "--resources", RESOURCES, "--start-date", "2025-06-02", "--end-date", "2025-06-01")),
    Case("unknown resource", 2, r"unknown resource eventz; choose from: ",
         args=("run", "--resources", "eventz,cohorts")),
    Case("bad duration", 2, r"window 'often' is not a duration", env=lambda c: {"SOURCES__POSTHOG__WINDOW": "often"}),
    Case("unknown destination", 2, r"unknown destination 'nosuchdb'",
         args=("run", "--resources", RESOURCES, "--destination", "nosuchdb")),
    Case("DuckDB file locked by another process", 2, r"the DuckDB file is in use by another process",
         setup=lock_duckdb),
    Case("DuckDB path not writable", 2, r"cannot write to the folder .*plain-file for the DuckDB file "
         r"warehouse\.duckdb \(it is a file, not a folder\); choose a writable path with "
         r"DESTINATION__DUCKDB__CREDENTIALS",
         env=not_a_directory),
    Case("filesystem without bucket_url", 2, r"the filesystem destination needs a bucket_url; set "
         r"DESTINATION__FILESYSTEM__BUCKET_URL", args=("run", "--resources", RESOURCES, "--destination", "filesystem")),
    Case("delta with snapshot tables", 2, r"--table-format delta cannot load cohorts, feature_flags \(.*\); use "
         r"--resources with tables that append, upsert or replace: (?=.*\bevents\b)(?=.*\bprojects\b)(?!.*cohorts)",
         args=("run", "--resources", RESOURCES, "--destination", "filesystem", "--table-format", "delta"),
         env=lambda c: {"DESTINATION__FILESYSTEM__BUCKET_URL": str(c.workdir / "lake")}),
    Case("config file syntax error", 2, r"a \.dlt config file has a syntax error", setup=broken_config),
]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakePostHog, FakePostHog]]:
    with FakePostHog(World.generate(seed=31, events=1_500, now=FAKE_NOW)) as server, \
            FakePostHog(World.generate(seed=32, events=500, now=FAKE_NOW)) as other_region:
        yield server, other_region


@pytest.fixture(scope="module")
def loaded(servers: tuple[FakePostHog, FakePostHog], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One successful load that every case starts from (copied, so cases cannot affect each other)."""
    workdir = tmp_path_factory.mktemp("loaded")
    result = run_cli(("run", "--resources", RESOURCES), cli_env(workdir, servers[0]), workdir)
    assert result.code == 0, result.stderr
    return workdir


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(case: Case, servers: tuple[FakePostHog, FakePostHog], loaded: Path, tmp_path: Path) -> None:
    copy_workdir(loaded, tmp_path)
    before = snapshot(tmp_path / "warehouse.duckdb")
    ctx = Ctx(servers[0], servers[1], tmp_path)
    env = cli_env(tmp_path, servers[0])
    env.update(case.env(ctx))
    holder = case.setup(ctx) if case.setup else None
    started = time.monotonic()
    try:
        result = run_cli(case.args, env, tmp_path)
    finally:
        if isinstance(holder, subprocess.Popen):
            holder.kill()
            holder.wait()
    assert result.code == case.code, result.stderr
    assert "Traceback" not in result.output
    assert ctx.key("full") not in result.output
    if case.code == 0:
        assert not result.error_lines()
        assert any(re.search(case.message, line) for line in result.stderr.splitlines()), result.stderr
    else:
        assert len(result.error_lines()) == 1, result.stderr
        assert re.search(case.message, result.error_lines()[0]), result.error_lines()[0]
        assert time.monotonic() - started < 30
    after = snapshot(tmp_path / "warehouse.duckdb")
    if case.changes_data:  # the readable tables were loaded, the unreadable one kept what it had
        assert after["posthog.feature_flags"] == before["posthog.feature_flags"]
        assert len(read_rows(tmp_path, "events")) == len(read_rows(loaded, "events"))
    else:
        assert after == before
