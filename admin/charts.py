"""Server-rendered inline SVG charts: bar (grouped or stacked), horizontal bar and line.

No JavaScript: each chart is one <svg> with a title and description for screen readers,
axis labels, tick values and a legend. The pages print the numbers in a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count

from markupsafe import Markup, escape

# Colour-blind safe (Okabe-Ito), each at least 3:1 against white.
PALETTE = ("#b3261e", "#0072b2", "#009e73", "#d55e00", "#cc79a7", "#7a6400", "#56607a")
_ids = count(1)


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int | float]


def nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def short_number(value: float) -> str:
    """Tick labels: 1200 → 1,200; 35000 → 3.5万; 120000000 → 1.2亿."""
    v = abs(value)
    if v >= 100_000_000:
        text = f"{value / 100_000_000:.1f}".rstrip("0").rstrip(".") + "亿"
    elif v >= 10_000:
        text = f"{value / 10_000:.1f}".rstrip("0").rstrip(".") + "万"
    elif value == int(value):
        text = f"{int(value):,}"
    else:
        text = f"{value:.1f}"
    return text


def _text(
    x: float, y: float, s: str, *, anchor: str = "middle", size: int = 16, **attrs: str
) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{extra}>'
        f"{escape(s)}</text>"
    )


def _frame(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    n = next(_ids)
    return Markup(  # noqa: S704  (every text and attribute value above went through escape)
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart-t{n} chart-d{n}" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="chart-t{n}">{escape(title)}</title><desc id="chart-d{n}">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    out: list[str] = []
    cx = x
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{cx:.1f}" y="{y - 12:.1f}" width="14" height="14" fill="{colour}"/>')
        out.append(_text(cx + 20, y + 1, s.label, anchor="start", size=15))
        cx += 34 + 16 * len(s.label)
    return out


def _y_axis(left: float, top: float, plot_h: float, plot_w: float, top_value: float) -> list[str]:
    out: list[str] = []
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" '
            f'stroke="#d9dce1" stroke-width="1"/>'
        )
        out.append(_text(left - 8, y + 4, short_number(value), anchor="end", size=15))
    return out


def _describe(categories: Sequence[str], series: Sequence[Series]) -> str:
    parts = []
    for s in series:
        pairs = ", ".join(
            f"{c} {short_number(v)}" for c, v in zip(categories, s.values, strict=False)
        )
        parts.append(f"{s.label}: {pairs}")
    return "; ".join(parts)


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    x_label: str = "",
    stacked: bool = False,
    width: int = 640,
    height: int = 340,
) -> Markup:
    """Vertical bars per category; several series side by side, or stacked."""
    left, right, top, bottom = 78, 16, 44, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    if stacked:
        totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
        peak = max(totals, default=0)
    else:
        peak = max((v for s in series for v in s.values), default=0)
    top_value = nice_max(float(peak))
    body = _y_axis(left, top, plot_h, plot_w, top_value)
    body += _legend(series, left, 20)
    n = max(len(categories), 1)
    slot = plot_w / n
    group = slot * 0.7
    bar_w = group if stacked else group / max(len(series), 1)
    for i, cat in enumerate(categories):
        x0 = left + slot * i + (slot - group) / 2
        base: float = top + plot_h
        for j, s in enumerate(series):
            value = float(s.values[i]) if i < len(s.values) else 0.0
            h = plot_h * value / top_value
            colour = PALETTE[j % len(PALETTE)]
            x = x0 if stacked else x0 + bar_w * j
            y = base - h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(cat)} {escape(s.label)}: '
                f"{escape(short_number(value))}</title></rect>"
            )
            if stacked:
                base = y
        body.append(_text(left + slot * i + slot / 2, top + plot_h + 20, cat, size=15))
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#4a4a4a"/>'
    )
    body.append(
        _text(
            14,
            top + plot_h / 2,
            y_label,
            size=15,
            transform=f"rotate(-90 14 {top + plot_h / 2:.0f})",
        )
    )
    if x_label:
        body.append(_text(left + plot_w / 2, height - 8, x_label, size=15))
    return _frame(width, height, title, _describe(categories, series), body)


def hbar_chart(
    categories: Sequence[str],
    values: Sequence[int | float],
    *,
    title: str,
    x_label: str,
    width: int = 640,
    bar_h: int = 34,
) -> Markup:
    """Horizontal bars, one per category (long names such as partners fit on the left)."""
    left, right, top = 220, 80, 16
    height = top + bar_h * max(len(categories), 1) + 48
    plot_w = width - left - right
    top_value = nice_max(float(max(values, default=0)))
    body: list[str] = []
    for i, (cat, value) in enumerate(zip(categories, values, strict=False)):
        y = top + bar_h * i
        w = plot_w * float(value) / top_value
        label = cat if len(cat) <= 14 else cat[:13] + "…"
        body.append(_text(left - 8, y + bar_h / 2 + 5, label, anchor="end"))
        body.append(
            f'<rect x="{left}" y="{y + 4:.1f}" width="{w:.1f}" height="{bar_h - 8}" '
            f'fill="{PALETTE[1]}"><title>{escape(cat)}: '
            f"{escape(short_number(value))}</title></rect>"
        )
        body.append(
            _text(left + w + 6, y + bar_h / 2 + 5, short_number(value), anchor="start", size=15)
        )
    axis_y = top + bar_h * max(len(categories), 1)
    body.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{axis_y}" stroke="#4a4a4a"/>')
    body.append(_text(left + plot_w / 2, axis_y + 32, x_label, size=15))
    return _frame(width, height, title, _describe(categories, [Series(x_label, values)]), body)


def line_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    x_label: str = "",
    width: int = 640,
    height: int = 340,
) -> Markup:
    """One line per series over the categories (months), with a dot at each value."""
    left, right, top, bottom = 78, 16, 44, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for s in series for v in s.values), default=0)
    top_value = nice_max(float(peak))
    body = _y_axis(left, top, plot_h, plot_w, top_value)
    body += _legend(series, left, 20)
    n = len(categories)
    step = plot_w / max(n - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (step * i if n > 1 else plot_w / 2)
        return x, top + plot_h - plot_h * v / top_value

    for j, s in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        points = [xy(i, float(v)) for i, v in enumerate(s.values)]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="3"/>'
            )
        for (x, y), v, cat in zip(points, s.values, categories, strict=False):
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>{escape(cat)} '
                f"{escape(s.label)}: {escape(short_number(v))}</title></circle>"
            )
    every = max(1, math.ceil(n / 12))
    for i, cat in enumerate(categories):
        if i % every == 0:
            body.append(_text(xy(i, 0)[0], top + plot_h + 20, cat, size=15))
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#4a4a4a"/>'
    )
    body.append(
        _text(
            14,
            top + plot_h / 2,
            y_label,
            size=15,
            transform=f"rotate(-90 14 {top + plot_h / 2:.0f})",
        )
    )
    if x_label:
        body.append(_text(left + plot_w / 2, height - 8, x_label, size=15))
    return _frame(width, height, title, _describe(categories, series), body)
