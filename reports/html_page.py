"""Self-contained HTML page for a report: inline CSS and inline SVG charts, no script, no network.

Everything is drawn here in Python so the page opens anywhere (an air-gapped laptop, a CI artefact)
exactly as it was generated. Each chart mark carries ``class="mark"`` so tests can count them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from reports.models import ModelResult, ReportResult, format_value

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
OTHER_COLOUR = "#bab0ac"
MAX_STACKED_EVENTS = 6
TABLE_ROWS = 10
MAX_COHORT_BARS = 10
W, H = 560, 260
M_LEFT, M_RIGHT, M_TOP, M_BOTTOM = 48, 16, 26, 40

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;
background:#f6f7f9;color:#1d2433}
header{background:#1d2433;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9cfdb;font-size:13px}
main{padding:8px 28px 28px}section.project>h2{font-size:19px;margin:22px 0 10px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}
.card{background:#fff;border:1px solid #e3e6ec;border-radius:8px;padding:12px 14px}
.card.wide{grid-column:1/-1}.card{overflow-x:auto}
.card h3{margin:0 0 6px;font-size:14px}.card p.note{margin:0 0 6px;color:#667085;font-size:12px}
svg{display:block;max-width:100%;height:auto}svg text{font-size:11px;fill:#475467}
svg .axis{stroke:#98a2b3;stroke-width:1}svg .gridline{stroke:#eef0f4;stroke-width:1}
.legend{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;margin-top:4px}
.legend span::before{content:'';display:inline-block;width:10px;height:10px;margin-right:4px;
background:var(--c);border-radius:2px}
table{border-collapse:collapse;font-size:12px;width:100%}th,td{padding:3px 6px;text-align:left;
border-bottom:1px solid #eef0f4;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:220px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.skipped{color:#b42318;font-size:13px}
"""


def write_html(result: ReportResult, path: str) -> None:
    """Write the page; the parent folder is created if needed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(result), encoding="utf-8")


def render_html(result: ReportResult) -> str:
    """The whole page: one section per project, charts first, then the tabular models."""
    scope = f"project {result.project_id}" if result.project_id is not None else "all projects"
    sections = [_project_section(result, pid) for pid in result.project_ids()]
    skipped = [
        f'<p class="skipped">{escape(r.title)}: skipped ({escape(r.skipped)})</p>'
        for r in result.models.values()
        if r.skipped
    ]
    if not sections:
        sections = ['<p class="skipped">No rows to chart.</p>']
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>PostHog report</title><style>{CSS}</style></head><body>"
        f"<header><h1>PostHog report</h1><p>{escape(result.duckdb_path)} · schema {escape(result.dataset)}"
        f" · {escape(scope)} · days and weeks in {escape(result.tz)} · instants in UTC</p></header>"
        f"<main>{''.join(skipped)}{''.join(sections)}</main></body></html>"
    )


def _rows(result: ReportResult, name: str, project_id: int) -> list[dict[str, Any]]:
    model = result.models.get(name)
    if model is None or model.skipped:
        return []
    return [r for r in model.dicts() if r.get("project_id") == project_id]


def _project_section(result: ReportResult, pid: int) -> str:
    name = result.project_names.get(pid)
    title = f"Project {pid}" + (f" · {name}" if name else "")
    funnel_note = f"{' → '.join(result.funnel_steps)}, within {result.window_days} days of the first step"
    cards = [
        _card("Active users", "Distinct persons per day and per week (Monday start)",
              _active_users_chart(_rows(result, "active_users", pid))),
        _card("Event volume", "Events per day, most frequent event names stacked",
              _event_volume_chart(_rows(result, "event_volume", pid))),
        _card("Weekly retention", "Share of each first-seen cohort active N weeks later",
              _retention_heatmap(_rows(result, "retention_weekly", pid))),
        _card("Funnel", funnel_note, _funnel_chart(_rows(result, "funnel", pid))),
    ]
    if _loaded(result, "sessions"):
        sessions = _rows(result, "sessions", pid)
        cards += [
            _card("Sessions per day", "Sessions started each day (PostHog's sessions table); hover for details",
                  _sessions_chart(sessions)),
            _card("Session duration", "Median and average session length per day", _duration_chart(sessions)),
        ]
    if _loaded(result, "session_channels"):
        cards.append(_card("Sessions by channel type", "Sessions and share · median duration and bounce rate",
                           _channel_chart(_rows(result, "session_channels", pid))))
    if _loaded(result, "cohort_sizes"):
        cards.append(_card("Cohort sizes", f"Current members of the {MAX_COHORT_BARS} largest cohorts, as PostHog "
                           "last calculated them (each run replaces them: no history)",
                           _cohort_chart(_rows(result, "cohort_sizes", pid))))
    for model_name in ("top_events", "top_pages", "feature_flag_exposure", "cohort_sizes", "persons"):
        model = result.models.get(model_name)
        if model is not None and not model.skipped:
            wide = len(model.columns) > 6
            cards.append(_card(model.title, "", _table(model, _rows(result, model_name, pid)), wide=wide))
    return f'<section class="project" data-project="{pid}"><h2>{escape(title)}</h2>' \
           f'<div class="grid">{"".join(cards)}</div></section>'


def _loaded(result: ReportResult, name: str) -> bool:
    """The model ran (its tables were loaded); a skipped one is named once at the top of the page instead."""
    model = result.models.get(name)
    return model is not None and not model.skipped


def _card(title: str, note: str, body: str, wide: bool = False) -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    css_class = "card wide" if wide else "card"
    return f'<div class="{css_class}"><h3>{escape(title)}</h3>{note_html}{body}</div>'


def _empty(message: str = "No data") -> str:
    return f'<p class="note">{escape(message)}</p>'


def _nice_scale(value: float) -> tuple[float, float]:
    """Axis maximum and tick step for counts: 4-5 ticks at 1, 2 or 5 times a power of ten (>= 1)."""
    if value <= 0:
        return 4, 1
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(f * power for f in (1, 2, 5, 10) if f * power >= raw)
    return step * math.ceil(value / step), step


def _svg(body: str, label: str, height: int = H) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" '
        f'role="img" aria-label="{escape(label)}">{body}</svg>'
    )


def _count_label(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"


def _y_axis(value_max: float, height: int = H, label: Callable[[float], str] = _count_label) -> tuple[str, float]:
    """Grid lines and labels from 0 to a nice maximum above value_max; returns SVG and pixels per unit."""
    y_max, step = _nice_scale(value_max)
    top, bottom = M_TOP, height - M_BOTTOM
    scale = (bottom - top) / y_max
    parts = []
    for i in range(round(y_max / step) + 1):
        value = i * step
        y = bottom - value * scale
        parts.append(f'<line class="gridline" x1="{M_LEFT}" x2="{W - M_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{M_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label(value)}</text>')
    parts.append(f'<line class="axis" x1="{M_LEFT}" x2="{W - M_RIGHT}" y1="{bottom}" y2="{bottom}"/>')
    return "".join(parts), scale


def _date_labels(days: Sequence[dt.date], x_of: Any, height: int = H) -> str:
    step = max(1, math.ceil(len(days) / 6))
    return "".join(
        f'<text x="{x_of(d):.1f}" y="{height - M_BOTTOM + 16}" text-anchor="middle">'
        f'{d.strftime("%b %d")}</text>'
        for d in days[::step]
    )


def _legend(items: Sequence[tuple[str, str]]) -> str:
    spans = "".join(f'<span style="--c:{c}">{escape(label)}</span>' for label, c in items)
    return f'<div class="legend">{spans}</div>'


def _active_users_chart(rows: list[dict[str, Any]]) -> str:
    series = {g: sorted((r["period_start"], r["active_users"]) for r in rows if r["grain"] == g)
              for g in ("day", "week")}
    if not series["day"]:
        return _empty()
    all_days = [d for points in series.values() for d, _ in points]
    first, last = min(all_days), max(all_days)
    span = max((last - first).days, 1)
    axis, scale = _y_axis(max(v for points in series.values() for _, v in points))

    def x_of(day: dt.date) -> float:
        return M_LEFT + 12 + (day - first).days / span * (W - M_LEFT - M_RIGHT - 24)

    parts = [axis]
    for (grain, points), colour in zip(series.items(), PALETTE, strict=False):
        coords = [(x_of(d), H - M_BOTTOM - v * scale) for d, v in points]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords))
        parts.append(f'<path class="line" d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [
            f'<circle class="mark" data-series="{grain}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
            f"<title>{grain} of {d}: {v}</title></circle>"
            for (x, y), (d, v) in zip(coords, points, strict=True)
        ]
    labels = [first + dt.timedelta(days=i) for i in range(0, span + 1)]
    parts.append(_date_labels(labels, x_of))
    return _svg("".join(parts), "Active users over time") + _legend(
        [("daily active users", PALETTE[0]), ("weekly active users", PALETTE[1])]
    )


def _event_volume_chart(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _empty()
    totals: dict[str, int] = defaultdict(int)
    per_day: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        totals[r["event"]] += r["events"]
    top = sorted(totals, key=lambda e: (-totals[e], e))[:MAX_STACKED_EVENTS]
    for r in rows:
        per_day[r["day"]][r["event"] if r["event"] in top else "other"] += r["events"]
    names = top + (["other"] if len(totals) > len(top) else [])
    colours = {n: PALETTE[i] if n != "other" else OTHER_COLOUR for i, n in enumerate(names)}
    first, last = min(per_day), max(per_day)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    axis, scale = _y_axis(max(sum(v.values()) for v in per_day.values()))
    slot = (W - M_LEFT - M_RIGHT) / len(days)
    bar = max(slot * 0.7, 1)

    def x_of(day: dt.date) -> float:
        return M_LEFT + (days.index(day) + 0.5) * slot

    parts = [axis]
    for day in days:
        y = H - M_BOTTOM
        for name in names:
            count = per_day.get(day, {}).get(name, 0)
            if not count:
                continue
            height = count * scale
            y -= height
            parts.append(
                f'<rect class="mark" data-series="{escape(name)}" x="{x_of(day) - bar / 2:.1f}" y="{y:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}" fill="{colours[name]}">'
                f"<title>{day} {escape(name)}: {count}</title></rect>"
            )
    parts.append(_date_labels(days, x_of))
    return _svg("".join(parts), "Event volume per day") + _legend([(n, colours[n]) for n in names])


def _heat_colour(share: float) -> str:
    """White to the palette's blue, by share retained."""
    r, g, b = (int(255 + (c - 255) * share) for c in (0x2f, 0x5d, 0x8a))
    return f"rgb({r},{g},{b})"


def _retention_heatmap(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _empty()
    cohorts = sorted({r["cohort_week"] for r in rows})
    weeks = max(r["weeks_since"] for r in rows) + 1
    cell_w = min(100, (W - 150) / weeks)
    cell_h = 30
    left, top = 140, 24
    height = top + cell_h * len(cohorts) + 8
    sizes = {r["cohort_week"]: r["cohort_size"] for r in rows}
    parts = [
        f'<text x="{left + i * cell_w + cell_w / 2:.1f}" y="{top - 8}" text-anchor="middle">+{i}w</text>'
        for i in range(weeks)
    ]
    for j, cohort in enumerate(cohorts):
        y = top + j * cell_h
        parts.append(f'<text x="{left - 8}" y="{y + cell_h / 2 + 4}" text-anchor="end">'
                     f"{cohort.strftime('%b %d')} ({sizes[cohort]})</text>")
    for r in rows:
        x = left + r["weeks_since"] * cell_w
        y = top + cohorts.index(r["cohort_week"]) * cell_h
        share = float(r["share"])
        text_colour = "#fff" if share > 0.55 else "#1d2433"
        parts.append(
            f'<rect class="mark" x="{x + 1:.1f}" y="{y + 1}" width="{cell_w - 2:.1f}" height="{cell_h - 2}" '
            f'rx="3" fill="{_heat_colour(share)}" stroke="#e3e6ec"><title>cohort {r["cohort_week"]}, '
            f'+{r["weeks_since"]}w: {r["retained"]}/{r["cohort_size"]}</title></rect>'
            f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4}" text-anchor="middle" '
            f'style="fill:{text_colour}">'
            f"{share:.0%}</text>"
        )
    return _svg("".join(parts), "Weekly retention heat map", height=height)


def _funnel_chart(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _empty()
    axis, scale = _y_axis(max(r["persons"] for r in rows))
    slot = (W - M_LEFT - M_RIGHT) / len(rows)
    bar = min(slot * 0.6, 120)
    parts = [axis]
    for i, r in enumerate(sorted(rows, key=lambda row: row["step"])):
        x = M_LEFT + (i + 0.5) * slot
        height = r["persons"] * scale
        y = H - M_BOTTOM - height
        conversion = r["conversion_from_first"]
        label = f"{r['persons']}" + (f" · {conversion:.0%}" if conversion is not None else "")
        parts.append(
            f'<rect class="mark" x="{x - bar / 2:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
            f'fill="{PALETTE[0]}" rx="3"><title>step {r["step"]} {escape(r["event"])}: {label}</title></rect>'
            f'<text x="{x:.1f}" y="{y - 5:.1f}" text-anchor="middle">{escape(label)}</text>'
            f'<text x="{x:.1f}" y="{H - M_BOTTOM + 16}" text-anchor="middle">'
            f'{r["step"]}. {escape(r["event"])}</text>'
        )
    return _svg("".join(parts), "Funnel")


def format_duration(seconds: float | None) -> str:
    """A session length people read at a glance: 45s, 3m 20s, 1h 05m."""
    if seconds is None:
        return "-"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60:02d}s"
    return f"{total // 3600}h {total % 3600 // 60:02d}m"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _day_slots(days_with_data: Sequence[dt.date]) -> tuple[list[dt.date], float, Callable[[dt.date], float]]:
    """Every day from the first to the last one with data, the width of a day and its centre's x."""
    first, last = min(days_with_data), max(days_with_data)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    slot = (W - M_LEFT - M_RIGHT) / len(days)

    def x_of(day: dt.date) -> float:
        return M_LEFT + ((day - first).days + 0.5) * slot

    return days, slot, x_of


def _sessions_chart(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _empty()
    days, slot, x_of = _day_slots([r["day"] for r in rows])
    axis, scale = _y_axis(max(r["sessions"] for r in rows))
    bar = max(slot * 0.7, 1)
    parts = [axis]
    for r in sorted(rows, key=lambda row: row["day"]):
        height = r["sessions"] * scale
        tip = (f"{r['day']}: {r['sessions']} sessions, {r['persons']} persons, median "
               f"{format_duration(r['median_duration_s'])}, bounce rate {_share(r['bounce_rate'])}")
        parts.append(
            f'<rect class="mark" data-series="sessions" x="{x_of(r["day"]) - bar / 2:.1f}" '
            f'y="{H - M_BOTTOM - height:.1f}" width="{bar:.1f}" height="{height:.1f}" fill="{PALETTE[0]}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    parts.append(_date_labels(days, x_of))
    return _svg("".join(parts), "Sessions per day")


def _duration_chart(rows: list[dict[str, Any]]) -> str:
    """Median and average duration per day on one axis, in seconds or, past two minutes, in minutes."""
    points = sorted((r["day"], r["median_duration_s"], r["avg_duration_s"]) for r in rows
                    if r["median_duration_s"] is not None)
    if not points:
        return _empty()
    days, _, x_of = _day_slots([d for d, _, _ in points])
    longest = max(max(m, a) for _, m, a in points)
    unit, suffix = (60, "m") if longest >= 120 else (1, "s")
    axis, scale = _y_axis(longest / unit, label=lambda v: f"{v:g}{suffix}")
    parts = [axis]
    # the average first and dashed, so the median stays visible where the two meet
    series = (("average", 2, PALETTE[3], ' stroke-dasharray="5 3"'), ("median", 1, PALETTE[2], ""))
    for name, index, colour, dash in series:
        coords = [(x_of(p[0]), H - M_BOTTOM - p[index] / unit * scale, p) for p in points]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y, _) in enumerate(coords))
        parts.append(f'<path class="line" d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        parts += [
            f'<circle class="mark" data-series="{name}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
            f"<title>{p[0]} {name}: {format_duration(p[index])}</title></circle>"
            for x, y, p in coords
        ]
    parts.append(_date_labels(days, x_of))
    return _svg("".join(parts), "Session duration per day") + _legend(
        [("median duration", PALETTE[2]), ("average duration", PALETTE[3])]
    )


def _hbars(items: Sequence[tuple[str, float, str, str, str]], label: str, left: int = 130) -> str:
    """Horizontal bars: (name, value, text after the bar, text at the right edge, fill) per row."""
    row_h, top = 26, 6
    height = top + row_h * len(items) + 6
    right_col = 150 if any(item[3] for item in items) else 0
    room = W - left - M_RIGHT - right_col - 70  # 70: the value after the bar
    biggest = max((value for _, value, _, _, _ in items), default=0) or 1
    parts = []
    for i, (name, value, after, right, fill) in enumerate(items):
        y = top + i * row_h
        width = max(value / biggest * room, 1 if value else 0)
        short = name if len(name) <= 20 else name[:19] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + row_h / 2 + 4}" text-anchor="end">{escape(short)}</text>'
            f'<rect class="mark" x="{left}" y="{y + 4}" width="{width:.1f}" height="{row_h - 8}" rx="3" '
            f'fill="{fill}"><title>{escape(name)}: {escape(after)}{" · " + escape(right) if right else ""}'
            f"</title></rect>"
            f'<text x="{left + width + 6:.1f}" y="{y + row_h / 2 + 4}">{escape(after)}</text>'
        )
        if right:
            parts.append(f'<text x="{W - M_RIGHT}" y="{y + row_h / 2 + 4}" text-anchor="end">{escape(right)}</text>')
    return _svg("".join(parts), label, height=height)


def _channel_chart(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _empty()
    items = [
        (r["channel_type"], r["sessions"], f"{r['sessions']:,} · {_share(r['share'])}",
         f"{format_duration(r['median_duration_s'])} · {_share(r['bounce_rate'])} bounce", PALETTE[4])
        for r in sorted(rows, key=lambda row: row["rank"])
    ]
    return _hbars(items, "Sessions by channel type")


def _cohort_chart(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _empty()
    largest = sorted(rows, key=lambda r: (-r["members"], r["cohort_id"]))[:MAX_COHORT_BARS]
    kinds = {False: ("dynamic", PALETTE[0]), True: ("static", PALETTE[1]), None: ("not in the cohort list",
                                                                                  OTHER_COLOUR)}
    items = [
        (r["name"] or f"cohort #{r['cohort_id']}", r["members"], f"{r['members']:,}", "", kinds[r["is_static"]][1])
        for r in largest
    ]
    shown = [kinds[k] for k in (False, True, None) if any(r["is_static"] is k for r in largest)]
    more = f'<p class="note">… and {len(rows) - len(largest)} smaller cohorts</p>' if len(rows) > len(largest) else ""
    return _hbars(items, "Cohort sizes", left=150) + _legend(shown) + more


def _table(model: ModelResult, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _empty("No rows")
    columns = [c for c in model.columns if c != "project_id"]
    numeric = {
        c for c in columns
        if all((isinstance(r[c], int | float) and not isinstance(r[c], bool)) or r[c] is None for r in rows)
    }
    head = "".join(f'<th class="{"num" if c in numeric else ""}">{escape(c)}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="{"num" if c in numeric else ""}">{escape(format_value(r[c]))}</td>' for c in columns
        ) + "</tr>"
        for r in rows[:TABLE_ROWS]
    )
    more = f'<p class="note">… {len(rows) - TABLE_ROWS} more rows</p>' if len(rows) > TABLE_ROWS else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"
