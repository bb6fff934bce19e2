"""Progress a user can see: a bar on a terminal (dlt's tqdm collector, with the total the count queries know),
a line per finished window in a log. Both paths run the real CLI against the fake server."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import cli


@pytest.fixture
def env(make_fake_server: Any, tmp_path: Path) -> dict[str, str]:
    server = make_fake_server(seed=31, events=12_000)
    return {"SOURCES__POSTHOG__API_KEY": server.world.keys["full"], "SOURCES__POSTHOG__HOST": server.url,
            "SOURCES__POSTHOG__PAGE_SIZE": "1000", "SOURCES__POSTHOG__WINDOW": "6h",
            "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "w.duckdb")}


def total_events(server_env: dict[str, str], tmp_path: Path) -> int:
    import duckdb

    with duckdb.connect(server_env["DESTINATION__DUCKDB__CREDENTIALS"], read_only=True) as con:
        return int(con.execute("SELECT count(*) FROM posthog.events").fetchone()[0])


def test_a_log_gets_one_line_per_window_with_rows_total_rate_and_time_left(env, tmp_path):
    result = cli(["run", "--resources", "events"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = re.findall(r"events: window (\d+)/(\d+) done; ([\d,]+) of ([\d,]+) rows \(([\d.]+)%\), ([\d,]+) rows/s",
                       result.stderr)
    assert lines, result.stderr
    windows = {int(total) for _, total, *_ in lines}
    assert len(windows) == 1 and len(lines) == windows.pop()  # every window reported once
    expected = int(lines[-1][3].replace(",", ""))
    assert expected == total_events(env, tmp_path)  # the announced total is what was loaded
    assert int(lines[-1][2].replace(",", "")) == expected and lines[-1][4] == "100.0"
    assert "events to read in about" in result.stderr  # said up front


def test_a_terminal_gets_a_bar_with_the_total(env, tmp_path):
    """Under a pseudo-terminal: tqdm draws `events: NN%|...| read/total`, and the per-window lines stay out of
    the way of the bar."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    full_env.update(env)
    full_env["DLT_DATA_DIR"] = str(tmp_path / "dlt")
    main, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "pipelines", "run", "--resources", "events"], env=full_env,
                               cwd=tmp_path, stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not data:
            break
        chunks.append(data)
    assert process.wait(timeout=120) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    total = total_events(env, tmp_path)
    assert re.search(rf"events:\s+\d+%\|.*\| [\d.k]+/{total}", screen) or f"/{total} " in screen, screen[-3000:]
    assert "window 1/" not in screen
