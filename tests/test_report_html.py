"""The HTML report of the fixed test data, opened in headless Chromium.

Needs /usr/bin/chromium: skipped without it on a developer machine, a failure when CI=true.
``python tests/test_report_html.py`` regenerates docs/report-screenshot.png from the same data.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reports.html_page import PALETTE, write_html  # noqa: E402
from reports.models import ReportResult, run_report  # noqa: E402
from tests.test_sql_models import STEPS, build_db  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "report-screenshot.png"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--force-color-profile=srgb", "--enable-logging=stderr", "--v=0",
)


def fixed_report(tmp: Path) -> ReportResult:
    """The report of tests/data/report_fixture.sql, shown as if read from 'posthog.duckdb'."""
    db = build_db(tmp / "fixture.duckdb")
    result = run_report(db, funnel_steps=STEPS, window_days=7)
    return dataclasses.replace(result, duckdb_path="posthog.duckdb")


def fixed_page(tmp: Path, html_name: str = "report.html") -> Path:
    """The HTML page of `fixed_report`, written where the CLI would write it."""
    page = tmp / html_name
    write_html(fixed_report(tmp), str(page))
    return page


def need_chromium() -> str:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is required in CI (apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium); CI=true makes this a failure")


def chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run on a local file with a throw-away profile."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [need_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG into rows of raw pixel bytes (no PIL needed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(idat)
    low = int.from_bytes(b"\x7f" * stride, "big")
    high = int.from_bytes(b"\x80" * stride, "big")

    def add(a: bytes, b: bytes) -> bytes:  # bytewise (a + b) mod 256, all bytes at once
        x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
        return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(stride, "big")

    rows, prev = [], bytes(stride)
    for r in range(height):
        kind, line = raw[r * (stride + 1)], raw[r * (stride + 1) + 1 : (r + 1) * (stride + 1)]
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = add(line, prev)
        else:
            out = bytearray(line)
            for i in range(stride):
                left = out[i - bpp] if i >= bpp else 0
                if kind == 1:
                    out[i] = (out[i] + left) & 255
                elif kind == 3:
                    out[i] = (out[i] + ((left + prev[i]) >> 1)) & 255
                else:
                    up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                    out[i] = (out[i] + pred) & 255
            cur = bytes(out)
        rows.append(cur)
        prev = cur
    return width, height, rows


def test_html_is_self_contained(tmp_path: Path) -> None:
    html = Path(fixed_page(tmp_path)).read_text()
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    assert not re.search(r"\b(src|href)\s*=", html), "nothing may be fetched"
    assert html.count("<svg") == 16  # 8 charts x 2 projects
    assert html.count('class="mark"') == 32 + 26 + 15 + 13  # see test_chromium_draws_every_chart


def test_chromium_loads_page_without_console_errors_and_draws_every_chart(tmp_path: Path) -> None:
    page = Path(fixed_page(tmp_path))
    run = chromium(page, tmp_path, "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console_messages(run.stderr) == []
    sections = re.split(r'<section class="project" data-project="', run.stdout)[1:]
    assert [s[0] for s in sections] == ["1", "2"]
    for section, marks in zip(
        sections,
        [
            # project 1: 8 active days + 3 weeks, 14 (day, event) bars, 4 cells, 3 steps; sessions on 6 days,
            # their median and average (2 x 6 points), 4 channels, 4 cohorts (deleted 104 left out)
            [8 + 3, 14, 4, 3, 6, 2 * 6, 4, 4],
            [3 + 2, 5, 2, 3, 3, 2 * 3, 3, 1],  # project 2
        ],
        strict=True,
    ):
        svgs = re.findall(r"<svg.*?</svg>", section, flags=re.S)
        assert [svg.count('class="mark"') for svg in svgs] == marks
        assert 'class="line"' in svgs[0] and svgs[5].count('class="line"') == 2
    assert ">67%<" in sections[0] and "2 · 67%" in sections[0]  # retention cell and funnel label
    sessions, durations, channels, cohorts = re.findall(r"<svg.*?</svg>", sections[0], flags=re.S)[4:]
    assert "2024-03-11: 3 sessions, 3 persons, median 0s, bounce rate 50%" in sessions
    assert ">60m<" in durations and "2024-03-10 median: 1h 00m" in durations  # minutes axis, s4 lasted an hour
    assert "2024-03-11 average: 2m 13s" in durations  # (0 + 0 + 400) / 3 s
    assert ">3 · 38%<" in channels and ">6m 40s · 33% bounce<" in channels  # Organic Search: median s9
    assert [m for m in re.findall(r'text-anchor="end">([^<]+)<', cohorts)] == [
        "Beta testers", "Paying customers", "cohort #105", "Churned"]
    assert "Old import" not in sections[0]


def test_console_error_detection_is_not_vacuous(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>console.error('boom'); missingFunction();</script></body></html>")
    messages = console_messages(chromium(page, tmp_path, "--dump-dom").stderr)
    assert any("boom" in m for m in messages) and any("missingFunction" in m for m in messages)


def take_screenshot(page: Path, tmp: Path, target: Path) -> Path:
    run = chromium(page, tmp, f"--screenshot={target}", "--window-size=1200,1600")
    assert run.returncode == 0 and target.is_file(), run.stderr[-2000:]
    return target


def test_screenshot_is_not_blank(tmp_path: Path) -> None:
    page = Path(fixed_page(tmp_path))
    shot = take_screenshot(page, tmp_path, tmp_path / "shot.png")
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    bpp = len(rows[0]) // width
    colours = {row[i : i + 3] for row in rows[::2] for i in range(0, len(row), bpp * 2)}
    assert len(colours) > 50, f"only {len(colours)} colours: blank page?"
    chart_colours = {bytes.fromhex(c[1:]) for c in PALETTE[:5]}
    assert chart_colours <= colours, "the chart fills are not on screen"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        report_page = Path(fixed_page(tmp))
        shutil.copy(take_screenshot(report_page, tmp, tmp / "shot.png"), SCREENSHOT)
    print(f"wrote {SCREENSHOT}")
