"""The API key never leaves the Authorization header: not in output, logs, dlt traces, state, load packages
or tables, not even in a failing run's traceback; and it is never sent over plain http to a remote host."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fake_posthog import FakePostHog, FaultConfig
from pipelines.runner import RunOptions, run
from posthog_source import SourceSettings, build_client
from posthog_source.config import load_settings
from posthog_source.errors import ConfigurationError
from tests.reliability.conftest import CliResult, cli_env, run_cli


def leaks(key: str, workdir: Path, result: CliResult) -> list[str]:
    """Every place the key (or its secret part without the `phx_` prefix) shows up."""
    needles = [key.encode(), key[4:].encode()]
    found = [f"output: {line}" for line in result.output.splitlines() if any(n.decode() in line for n in needles)]
    for path in (workdir / "dlt").rglob("*"):
        if path.is_file() and any(n in path.read_bytes() for n in needles):
            found.append(f"file: {path}")
    database = workdir / "warehouse.duckdb"
    if database.exists():
        with duckdb.connect(str(database), read_only=True) as con:
            columns = con.execute(
                "SELECT table_schema, table_name, column_name FROM information_schema.columns "
                "WHERE data_type IN ('VARCHAR', 'JSON')"
            ).fetchall()
            for schema, table, column in columns:
                hits = con.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE contains("{column}"::VARCHAR, ?) '
                    f'OR contains("{column}"::VARCHAR, ?)', [key, key[4:]]
                ).fetchone()
                if hits and hits[0]:
                    found.append(f"table: {schema}.{table}.{column}")
    return found


def test_key_never_stored_or_printed_in_a_debug_run(make_fake_server: Callable[..., FakePostHog],
                                                     tmp_path: Path) -> None:
    server = make_fake_server(seed=41, events=1_000)
    key = server.world.keys["full"]
    env = cli_env(tmp_path, server, RUNTIME__LOG_LEVEL="DEBUG")
    result = run_cli(["--debug", "run"], env, tmp_path)
    assert result.code == 0, result.stderr[-2000:]
    assert "DEBUG" in result.stderr  # debug logging really was on
    assert list((tmp_path / "dlt").rglob("trace.pickle")), "no dlt trace to scan"
    assert leaks(key, tmp_path, result) == []


def test_key_not_in_traceback_of_a_failing_debug_run(make_fake_server: Callable[..., FakePostHog],
                                                      tmp_path: Path) -> None:
    """A 500 storm outlives every retry: the run fails with a traceback (--debug) that holds no key."""
    server = make_fake_server(seed=41, events=1_000, faults=FaultConfig(seed=1, rate_5xx=1.0))
    key = server.world.keys["full"]
    env = cli_env(tmp_path, server, RUNTIME__LOG_LEVEL="DEBUG")
    result = run_cli(["--debug", "run", "--resources", "events,cohorts"], env, tmp_path, fast_retries=True)
    assert result.code == 1, result.stderr[-2000:]
    assert "Traceback" in result.stderr
    assert "error: PostHog kept failing on" in result.stderr
    assert leaks(key, tmp_path, result) == []


def test_plain_http_to_a_remote_host_is_refused_before_any_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """192.0.2.1 (TEST-NET) never answers: a refusal that came after a connection attempt would be slow."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> Any:
        attempts.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="plain http"):
        build_client(SourceSettings.parse(api_key="phx_" + "k" * 40, host="http://192.0.2.1"))
    with pytest.raises(ConfigurationError, match="plain http"):
        load_settings(api_key="phx_" + "k" * 40, host="http://192.0.2.1:8000")
    # settings a library user built without parsing them: the run's client refuses the host all the same
    options = RunOptions(resources=["events"], duckdb_path=str(tmp_path / "warehouse.duckdb"),
                         pipelines_dir=str(tmp_path / "pipelines"),
                         settings=SourceSettings(api_key="phx_" + "k" * 40, host="http://192.0.2.1:8000"))
    with pytest.raises(Exception) as failure:
        run(options)
    assert "plain http" in str(failure.value) or "plain http" in repr(failure.value.__context__)
    assert attempts == []
    assert time.monotonic() - started < 5
