"""Charts drawn on the server as inline SVG: no script, no network, readable in any browser.

One chart shows one usage resource's consumption per window over a span of days (docs/rules.md
stage 3: a daily window's date is its day, a monthly window's date is the period's last day),
each bar split into the part the buckets covered and the overage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from html import escape

from markupsafe import Markup

from consumption_pipeline.dashboard import formatting

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 26, 32  # margins: room for tick labels and month names
COVERED, OVERAGE, GRID = "#3b73b9", "#d9822b", "#d8dde3"


@dataclass(frozen=True)
class Bar:
    day: date
    covered: Decimal  # consumption the buckets covered, in the resource's unit
    overage: Decimal  # consumption left as overage, in the resource's unit
    title: str  # the exact figures, shown on hover


def nice_ticks(top: Decimal, count: int = 4) -> list[Decimal]:
    """Axis ticks from 0 at a step of 1, 2, 2.5 or 5 times a power of ten, the last one at or
    above `top`: 130 -> 0, 50, 100, 150."""
    if top <= 0:
        return [Decimal(0), Decimal(1)]
    raw = top / count
    power = Decimal(10) ** (raw.adjusted())
    step = next(m * power for m in (1, 2, Decimal("2.5"), 5, 10) if m * power >= raw)
    ticks = [Decimal(0)]
    while ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


def consumption_chart(bars: list[Bar], first: date, last: date, unit: str, label: str) -> Markup:
    """Bars per day from `first` to `last` (inclusive), a y axis in `unit`, month boundaries."""
    days = (last - first).days + 1
    ticks = nice_ticks(max((b.covered + b.overage for b in bars), default=Decimal(0)))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / days

    def x(day: date) -> float:
        return LEFT + (day - first).days * slot

    def y(value: Decimal) -> float:
        return TOP + plot_h - float(value / ticks[-1]) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" class="chart" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>'
    ]
    for tick in ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="{GRID}"/><text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{escape(formatting.number(tick))}</text>'
        )
    for month in _month_starts(first, last):
        parts.append(
            f'<line x1="{x(month):.1f}" x2="{x(month):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            f'stroke="{GRID}" stroke-dasharray="3 3"/><text class="month" x="{x(month) + 3:.1f}" '
            f'y="{HEIGHT - 8}">{month:%b %Y}</text>'
        )
    width = max(slot * 0.8, 1.0)
    for bar in bars:
        left = x(bar.day) + (slot - width) / 2
        base = y(Decimal(0))
        top_covered = y(bar.covered)
        top_all = y(bar.covered + bar.overage)
        parts.append(
            f'<g class="bar" data-day="{bar.day.isoformat()}" '
            f'data-value="{bar.covered + bar.overage}"><title>{escape(bar.title)}</title>'
            f'<rect class="covered" x="{left:.1f}" y="{top_covered:.1f}" width="{width:.1f}" '
            f'height="{base - top_covered:.1f}" fill="{COVERED}"/>'
            f'<rect class="overage" x="{left:.1f}" y="{top_all:.1f}" width="{width:.1f}" '
            f'height="{top_covered - top_all:.1f}" fill="{OVERAGE}"/></g>'
        )
    parts.append(
        f'<text class="unit" x="{LEFT - 6}" y="{TOP - 12}" text-anchor="end">'
        f"{escape(formatting.unit_label(unit))}</text></svg>"
    )
    return Markup("".join(parts))


def _month_starts(first: date, last: date) -> list[date]:
    month = first.replace(day=1)
    starts = []
    while month <= last:
        if month >= first:
            starts.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return starts
