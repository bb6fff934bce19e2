"""The command line as users run it: a subprocess with config in environment variables."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import INTERRUPTED
from tests.integration.test_events import assert_events_exact


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    full_env["DLT_DATA_DIR"] = str(cwd / "dlt")  # pipeline state of this test only
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "pipelines", *args], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def server(make_fake_server: Any) -> Any:
    return make_fake_server(seed=4, events=1_000)


def test_check_lists_projects_and_what_can_be_read(server, tmp_path):
    key = server.world.keys["limited"]
    result = cli(["check"], {"SOURCES__POSTHOG__API_KEY": key, "SOURCES__POSTHOG__HOST": server.url}, tmp_path)
    assert result.returncode == 0, result.stderr
    for project in server.world.projects:
        assert f"  {project['id']}  " in result.stdout
    assert "not readable: feature_flags (add the scope 'feature_flag:read'" in result.stdout
    assert key not in result.stdout + result.stderr


def test_check_with_a_wrong_key_exits_3_with_one_line(server, tmp_path):
    key = "phx_" + "x" * 40
    result = cli(["check"], {"SOURCES__POSTHOG__API_KEY": key, "SOURCES__POSTHOG__HOST": server.url}, tmp_path)
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: PostHog rejected the API key")
    assert key not in result.stdout + result.stderr


def test_run_then_report_from_the_command_line(server, tmp_path):
    env = {"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
           "SOURCES__POSTHOG__START_DATE": "2025-06-01", "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "w.duckdb")}
    result = cli(["run", "--resources", "events,persons,person_distinct_ids,projects"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "events" in result.stdout
    report = cli(["report", "--html", str(tmp_path / "r.html")], env, tmp_path)
    assert report.returncode == 0, report.stderr
    assert "Active users" in report.stdout and (tmp_path / "r.html").exists()
    assert report.stdout.count("HTML report") == 1  # before: printed twice


# ------------------------------------------------------------------------------------------------ interrupts
def run_env(server: Any, tmp_path: Path) -> dict[str, str]:
    return {"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
            "SOURCES__POSTHOG__START_DATE": "2025-06-01", "SOURCES__POSTHOG__INGESTION_LAG": "0",
            "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "warehouse.duckdb")}


def popen(args: list[str], env: dict[str, str], cwd: Path, python_args: Sequence[str] = ("-m", "pipelines"),
          ) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__", "RUNTIME__"))}
    full_env["DLT_DATA_DIR"] = str(cwd / "dlt")
    full_env.update(env)
    return subprocess.Popen([sys.executable, *python_args, *args], env=full_env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_sigint_by_default)


def _sigint_by_default() -> None:
    """A suite started in the background by a non-interactive shell (`./.ci/run &`) inherits SIGINT ignored,
    and an ignored signal stays ignored across exec: the CLI would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def hold_queries(server: Any) -> threading.Event:
    """Every HogQL query waits 0.5 s in the server; the event is set when the first one arrives, so a test can
    interrupt the client while it is extracting (and not before, or after)."""
    arrived = threading.Event()
    original = server.throttle

    def throttle(key: Any, route: Any, req: Any) -> None:
        if route.bucket == "query":
            arrived.set()
            time.sleep(0.5)
        original(key, route, req)

    server.throttle = throttle
    return arrived


def test_ctrl_c_mid_extract_exits_130_with_one_line_and_the_next_run_completes(make_fake_server, tmp_path):
    """Before: `error: KeyboardInterrupt:` (or StopIteration) and exit 1."""
    server = make_fake_server(seed=4, events=3_000)
    arrived = hold_queries(server)
    env = run_env(server, tmp_path)
    process = popen(["run", "--resources", "events,persons"], env, tmp_path)
    try:
        assert arrived.wait(60), "the run never queried"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == INTERRUPTED
    assert "error:" not in stderr and "Traceback" not in stderr
    server.throttle = server.__class__.throttle.__get__(server)
    again = cli(["run", "--resources", "events,persons"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert_events_exact(server.world, tmp_path)


SIGINT_DURING_LOAD = """
import os, signal, sys
from dlt.load.load import Load
original = Load.complete_package
def complete_package(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)  # rows are in the destination, the package is not yet marked done
    return original(self, *args, **kwargs)
Load.complete_package = complete_package
from pipelines.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_ctrl_c_during_load_is_not_swallowed(server, tmp_path):
    """Before: dlt caught the SIGINT, finished the load and the run exited 0 as if nothing happened."""
    env = run_env(server, tmp_path)
    process = popen(["run", "--resources", "events,cohorts"], env, tmp_path, python_args=("-c", SIGINT_DURING_LOAD))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == INTERRUPTED
    again = cli(["run", "--resources", "events,cohorts"], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert_events_exact(server.world, tmp_path)


# ------------------------------------------------------------------------------------------------ configuration
@pytest.mark.parametrize("host", ["https://x y", "http://[::1", "https://ph.example.com:port"])
def test_check_with_a_malformed_host_exits_2(tmp_path, host):
    """Before: exit 1 with `LocationParseError` / `ValueError: Invalid IPv6 URL`."""
    result = cli(["check"], {"SOURCES__POSTHOG__API_KEY": "phx_" + "x" * 40, "SOURCES__POSTHOG__HOST": host}, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "is not a valid URL" in result.stderr


def test_a_misspelled_setting_is_named_with_the_closest_key(server, tmp_path):
    env = {"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
           "SOURCES__POSTHOG__STRAT_DATE": "2024-01-01"}
    result = cli(["check"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "unknown setting" in line]
    assert len(warnings) == 1
    assert warnings[0].endswith("unknown setting 'strat_date' under [sources.posthog] is ignored; did you mean "
                                "'start_date'?")


def test_a_misspelled_section_is_named(server, tmp_path):
    """`[source.posthog]` and SOURCE__POSTHOG__* are read by nobody: said, not silently ignored."""
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text('[source.posthog]\nstart_date = "2024-01-01"\n')
    env = {"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
           "SOURCE__POSTHOG__START_DATE": "2024-01-01"}
    result = cli(["check"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "are ignored: the section is" in line]
    assert len(warnings) == 2, result.stderr
    assert "[source.posthog] in .dlt/config.toml are ignored" in warnings[0]
    assert "SOURCE__POSTHOG__* environment variables are ignored" in warnings[1]


def read_only_runner() -> list[str]:
    """A prefix under which a chmod 0555 folder is really read-only: none for a normal user; for root (CI
    containers), a user namespace without a mapping, where root's permission override does not apply."""
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-U", "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without `unshare -U`: a read-only folder cannot be made")
    return [unshare, "-U"]


def test_a_read_only_output_folder_is_named_with_the_os_error_before_extracting(server, tmp_path):
    """Before: the OS error was shown only under --debug."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    env = run_env(server, tmp_path) | {"DESTINATION__DUCKDB__CREDENTIALS": str(folder / "warehouse.duckdb")}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    full_env.update(env, DLT_DATA_DIR=str(tmp_path / "dlt"))
    try:
        result = subprocess.run([*read_only_runner(), sys.executable, "-m", "pipelines", "run", "--resources",
                                 "events"], env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    finally:
        folder.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert f"cannot write to the folder {folder} for the DuckDB file warehouse.duckdb (Permission denied)" \
        in result.stderr
    assert "reading events" not in result.stderr  # found before extracting
    assert not server.request_log or all("/query" not in str(entry) for entry in server.request_log)


# ------------------------------------------------------------------------------------------------ ./dev and the demo
DEV = Path(__file__).resolve().parents[2] / "dev"


def dev(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    full_env["DLT_DATA_DIR"] = str(cwd / "dlt")
    full_env.update(env)
    return subprocess.run([str(DEV), *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_dev_help_lists_the_commands(tmp_path):
    result = dev(["help"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("test", "bench", "run", "backfill", "check", "demo", "report"):
        assert re.search(rf"^\s+{command}\b", result.stdout, re.MULTILINE), command
    assert "sed" not in result.stdout and "set -e" not in result.stdout


def test_dev_relative_paths_mean_the_callers_folder(server, tmp_path):
    """Before: ./dev changed into the repository, so relative paths wrote there."""
    env = run_env(server, tmp_path) | {"DESTINATION__DUCKDB__CREDENTIALS": "relative.duckdb"}
    result = dev(["run", "--resources", "events,persons,person_distinct_ids,projects"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "relative.duckdb").exists()
    report = dev(["report", "--html", "out.html"], env, tmp_path)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "out.html").exists()
    assert not (DEV.parent / "relative.duckdb").exists() and not (DEV.parent / "out.html").exists()


def test_the_demo_suggests_commands_that_work(tmp_path):
    result = cli(["demo", "--events", "2000", "--duckdb", str(tmp_path / "demo.duckdb")], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("HTML report") == 1
    suggested = [line.split(":", 1)[1].strip() for line in result.stdout.splitlines()
                 if line.startswith(("report again:", "explore:"))]
    assert len(suggested) == 2
    for command in suggested:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
    assert "events" in done.stdout
