"""Server-side SVG charts for the staff dashboard: no chart library, no script, nothing fetched
from elsewhere. Each chart is an accessible image (role="img", a <title> and <desc>) and the
page shows the same figures as a table beside it.

Drawn in a 340-unit-wide viewBox that scales with its container, so labels stay readable on a
phone (a card on a 360 px screen is about 300 px wide: 0.9 px per unit). Figures are written
with the staff user's decimal mark (``mark``), as the table beside them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from markupsafe import Markup

from app import i18n
from app.formats import DecimalMark

WIDTH = 340
BAR = 18  # height of one horizontal bar row
LABEL_W = 110  # room for the labels of horizontal bars
COLOURS = ("#206bc4", "#74b816")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _svg(chart_id: str, title: str, desc: str, height: int, body: str) -> Markup:
    return Markup(
        # width/height give the browser the aspect ratio before CSS scales it to the card.
        f'<svg class="ot-chart" id="{chart_id}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMinYMin meet" '
        f'font-family="system-ui, sans-serif" font-size="13">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>{body}</svg>'
    )


def _fmt(value: float, mark: DecimalMark) -> str:
    return i18n.format_fixed(value, 0 if value == int(value) else 1, mark.language)


def _pct(share: float, places: int, mark: DecimalMark) -> str:
    return i18n.format_fixed(share * 100, places, mark.language) + "%"


def _empty(chart_id: str, title: str) -> Markup:
    body = (
        f'<text x="{WIDTH / 2}" y="30" text-anchor="middle" fill="#667382">'
        "No data in this range</text>"
    )
    return _svg(chart_id, title, "No data in this range.", 50, body)


def _row_label(label: str, y: float) -> str:
    """A bar's label, right-aligned before the bars: 16 characters at most, and a long one
    squeezed into the label column (13 px letters such as "m" would run off the left edge)."""
    short = label if len(label) <= 16 else label[:15] + "…"
    room = LABEL_W - 8
    fit = f' textLength="{room}" lengthAdjust="spacingAndGlyphs"' if len(short) > 13 else ""
    return (
        f'<text x="{LABEL_W - 6}" y="{y:.1f}" text-anchor="end"{fit}>'
        f"<title>{escape(label)}</title>{escape(short)}</text>"
    )


def bars(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
    *,
    zero_is_data: bool = False,
    mark: DecimalMark = DecimalMark.POINT,
) -> Markup:
    """Horizontal bars, one group per label, one bar per series, each with its value.

    Bars that are all zero say "No data" (no scans, no conversions), unless ``zero_is_data``:
    a conversion rate of 0% among visitors is a finding, not an absence."""
    if not labels or not (zero_is_data or any(v for s in series for v in s.values)):
        return _empty(chart_id, title)
    peak = max(max(s.values, default=0) for s in series) or 1
    span = WIDTH - LABEL_W - 50
    row_h = BAR * len(series) + 8
    legend = 18 if len(series) > 1 else 0
    parts: list[str] = []
    for k, s in enumerate(series if legend else ()):
        x = LABEL_W + k * 110
        parts.append(
            f'<rect x="{x}" y="2" width="10" height="10" fill="{COLOURS[k % 2]}"/>'
            f'<text x="{x + 14}" y="11">{escape(s.name)}</text>'
        )
    lines: list[str] = []
    for i, label in enumerate(labels):
        y0 = legend + i * row_h
        parts.append(_row_label(label, y0 + row_h / 2 + 4))
        for k, s in enumerate(series):
            value = s.values[i]
            shown = _fmt(value, mark)
            w = span * value / peak
            y = y0 + 4 + k * BAR
            parts.append(
                f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR - 3}" '
                f'fill="{COLOURS[k % 2]}"><title>{escape(label)}, {escape(s.name)}: '
                f"{shown}{unit}</title></rect>"
                f'<text x="{LABEL_W + w + 4:.1f}" y="{y + BAR - 6}">{shown}{unit}</text>'
            )
        lines.append(
            f"{label}: " + ", ".join(f"{s.name} {_fmt(s.values[i], mark)}" for s in series)
        )
    height = legend + len(labels) * row_h + 4
    return _svg(chart_id, title, "; ".join(lines), height, "".join(parts))


def daily(
    chart_id: str,
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    *,
    mark: DecimalMark = DecimalMark.POINT,
) -> Markup:
    """Vertical bars per day (first series) with the second series as a line over them."""
    if not days or not any(v for s in series for v in s.values):
        return _empty(chart_id, title)
    left, top, bottom, height = 36, 24, 30, 190
    plot_w, plot_h = WIDTH - left - 6, height - top - bottom
    peak = max(max(s.values, default=0) for s in series) or 1
    step = plot_w / len(days)
    parts: list[str] = []
    for k, s in enumerate(series):
        key_x = left + k * 100
        parts.append(
            f'<rect x="{key_x}" y="4" width="10" height="10" fill="{COLOURS[k % 2]}"/>'
            f'<text x="{key_x + 14}" y="13">{escape(s.name)}</text>'
        )
    for tick in sorted({0, round(peak / 2), peak}):
        tick_y = top + plot_h - plot_h * tick / peak
        parts.append(
            f'<line x1="{left}" x2="{WIDTH - 6}" y1="{tick_y:.1f}" y2="{tick_y:.1f}" '
            'stroke="#dce1e7"/>'
            f'<text x="{left - 4}" y="{tick_y + 4:.1f}" text-anchor="end">'
            f"{_fmt(tick, mark)}</text>"
        )
    bars_series, line_series = series[0], series[1:]
    for i, day in enumerate(days):
        value = bars_series.values[i]
        h = plot_h * value / peak
        x = left + i * step
        tip = f"{day.isoformat()}: " + ", ".join(
            f"{s.name} {_fmt(s.values[i], mark)}" for s in series
        )
        parts.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(step * 0.8, 0.5):.1f}" height="{h:.1f}" fill="{COLOURS[0]}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    for k, s in enumerate(line_series, start=1):
        points = " ".join(
            f"{left + (i + 0.5) * step:.1f},{top + plot_h - plot_h * v / peak:.1f}"
            for i, v in enumerate(s.values)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{COLOURS[k % 2]}" stroke-width="2"/>'
        )
    every = max(1, round(len(days) / 4))
    for i in range(0, len(days), every):
        x = left + (i + 0.5) * step
        parts.append(
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">'
            f"{days[i].strftime('%d %b')}</text>"
        )
    desc = f"{len(days)} days from {days[0].isoformat()} to {days[-1].isoformat()}; " + ", ".join(
        f"{s.name} in total {_fmt(sum(s.values), mark)}" for s in series
    )
    return _svg(chart_id, title, desc, height, "".join(parts))


@dataclass(frozen=True)
class Estimate:
    label: str
    mean: float
    low: float
    high: float
    probability_best: float | None  # None: not ranked (the row of conversions without a touch)


def intervals(
    chart_id: str,
    title: str,
    estimates: Sequence[Estimate],
    *,
    mark: DecimalMark = DecimalMark.POINT,
) -> Markup:
    """Each row's posterior mean as a dot on its 90% interval, on a 0 to top% rate axis."""
    if not estimates:
        return _empty(chart_id, title)
    top = max(e.high for e in estimates) or 1
    span = WIDTH - LABEL_W - 20
    row_h, head = 26, 20
    parts = [
        f'<text x="{LABEL_W}" y="12">0%</text>'
        f'<text x="{LABEL_W + span}" y="12" text-anchor="end">{_pct(top, 1, mark)}</text>'
    ]
    lines: list[str] = []
    for i, e in enumerate(estimates):
        y = head + i * row_h + row_h / 2
        x0, x1, xm = (LABEL_W + span * v / top for v in (e.low, e.high, e.mean))
        tip = (
            f"{e.label}: mean {_pct(e.mean, 1, mark)}, "
            f"90% interval {_pct(e.low, 1, mark)} to {_pct(e.high, 1, mark)}"
        )
        if e.probability_best is not None:
            tip += f", probability best {_pct(e.probability_best, 0, mark)}"
        parts.append(
            _row_label(e.label, y + 4)
            + f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLOURS[0]}" '
            f'stroke-width="4" stroke-linecap="round"><title>{escape(tip)}</title></line>'
            f'<circle cx="{xm:.1f}" cy="{y:.1f}" r="5" fill="#d63939"/>'
        )
        lines.append(tip)
    height = head + len(estimates) * row_h + 4
    return _svg(chart_id, title, "; ".join(lines), height, "".join(parts))
