"""Small inline SVG charts for the dashboard: no JavaScript, no image files, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

__all__ = ["step_chart"]

_COLOURS = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2f}"


def step_chart(
    series: Sequence[tuple[str, Sequence[tuple[int, float]]]],
    *,
    title: str,
    y_label: str,
    width: int = 640,
    height: int = 240,
) -> str:
    """A cumulative step chart of ``series`` (name, ``[(unix seconds, value), ...]``) as SVG.

    Each series steps up at each point and is drawn from its first point to the latest point of
    any series. An empty chart says so.
    """
    left, right, top, bottom = 56, 16, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for _, s in series for p in s]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="18" class="chart-title">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="chart-area"/>',
    ]
    if not points:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle"'
            ' class="chart-empty">nothing yet</text></svg>'
        )
        return "".join(parts)
    t0 = min(ts for ts, _ in points)
    t1 = max(ts for ts, _ in points)
    if t1 == t0:
        t0, t1 = t0 - 3600, t1 + 3600
    y_max = _nice_max(max(v for _, v in points))

    def x(ts: float) -> float:
        return left + (ts - t0) / (t1 - t0) * plot_w

    def y(value: float) -> float:
        return top + plot_h - value / y_max * plot_h

    for i in range(5):
        value = y_max * i / 4
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}"'
            f' class="chart-grid"/><text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end"'
            f' class="chart-tick">{_label(value)}</text>'
        )
    for i in range(3):
        ts = t0 + (t1 - t0) * i / 2
        when = datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")
        anchor = ("start", "middle", "end")[i]
        parts.append(
            f'<text x="{x(ts):.1f}" y="{height - 12}" text-anchor="{anchor}"'
            f' class="chart-tick">{when}</text>'
        )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})"'
        f' text-anchor="middle" class="chart-tick">{escape(y_label)}</text>'
    )
    for index, (name, data) in enumerate(series):
        if not data:
            continue
        colour = _COLOURS[index % len(_COLOURS)]
        coords = [(x(data[0][0]), y(0))]
        previous = 0.0
        for ts, value in data:
            coords.append((x(ts), y(previous)))
            coords.append((x(ts), y(value)))
            previous = value
        coords.append((x(t1), y(previous)))
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for ts, value in data:
            parts.append(f'<circle cx="{x(ts):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}"/>')
        parts.append(
            f'<text x="{left + plot_w - 8}" y="{top + 16 + 16 * index}" text-anchor="end"'
            f' fill="{colour}" class="chart-legend">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
