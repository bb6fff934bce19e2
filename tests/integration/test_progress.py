"""Progress a user can see: a bar on a terminal (dlt's tqdm collector, with the total the count queries know),
a line per finished window in a log. Both paths run the real CLI against the fake server."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pyte
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


def run_in_terminal(args: list[str], env: dict[str, str], tmp_path: Path, columns: int = 110,
                    lines: int = 60) -> tuple[int, str, list[str]]:
    """The CLI under a pseudo-terminal of `columns` x `lines`: its exit code, every byte it wrote (as text), and
    the screen a user sees at the end, rendered by a terminal emulator (pyte)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    full_env.update(env)
    full_env.update({"DLT_DATA_DIR": str(tmp_path / "dlt"), "COLUMNS": str(columns), "LINES": str(lines)})
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "pipelines", *args], env=full_env, cwd=tmp_path,
                               stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True)
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
    code = process.wait(timeout=120)
    raw = b"".join(chunks)
    screen = pyte.Screen(columns, lines)
    pyte.ByteStream(screen).feed(raw)
    logical: list[str] = []  # a line the terminal wrapped at its width is one line again
    wrapped = False
    for line in screen.display:
        if wrapped:
            logical[-1] += line.rstrip()
        else:
            logical.append(line.rstrip())
        wrapped = len(line.rstrip()) == columns
    return code, raw.decode("utf-8", "replace"), logical


TABLES = ["events", "persons", "person_distinct_ids", "sessions", "feature_flags", "cohort_people"]


def test_a_terminal_shows_bars_in_rows_logs_above_them_and_a_clean_summary(env, tmp_path):
    """The whole screen at the end, as a terminal shows it: log lines whole, no bar fragments, no `it` units, the
    summary intact and equal to what was stored. While running, the events bar had the counted total and
    reached 100 % (before: lines cut through the bars, fragments over the summary, `0it`, events stuck short)."""
    code, raw, screen = run_in_terminal(["run", "--resources", ",".join(TABLES)], env, tmp_path)
    assert code == 0, "\n".join(screen)
    text = "\n".join(screen)
    assert "rows loaded this run:" in text, text
    summary = screen[screen.index("rows loaded this run:") + 1:]
    rows = {}
    for line in summary:
        if not line:
            continue
        match = re.fullmatch(r"  (\w+)\s+([\d,]+)", line)
        assert match, f"a summary line was overwritten: {line!r}\n{text}"
        rows[match[1]] = int(match[2].replace(",", ""))
    assert set(rows) == set(TABLES)
    assert rows["events"] == total_events(env, tmp_path)
    for line in screen[:screen.index("rows loaded this run:")]:
        if line:  # every line above the summary is a whole log line, never a bar or a piece of one
            assert re.match(r"\d\d:\d\d:\d\d (INFO|WARNING) ", line), f"not a log line: {line!r}\n{text}"
    assert "it/s" not in raw and " 0it " not in raw and "%|" not in text
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", raw)  # what the bars wrote, without their colours and moves
    total = rows["events"]
    assert re.search(rf"events: +100%\|[^\r\n]*\| {total}/{total} ", plain), plain[-3000:]  # the bar reached its end
    assert re.search(rf"events: +\d\d?%\|[^\r\n]*\| \d+/{total} \[[^\]]* rows/s\]", plain)  # counted total, rows
    assert re.search(r"persons: \d+ rows \[", plain)  # a table without a counted total says its rows
