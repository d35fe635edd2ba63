"""Charts as inline SVG text, drawn on the server: grouped daily bars and a funnel.

No script and no external file: the report opens offline, prints, and reads the same in any
browser. Every bar carries its value (`data-value`, and a `<title>` shown on hover).
"""

from __future__ import annotations

from html import escape

PALETTE = ("#2f6fdf", "#e0762b", "#2a9d62", "#b0413e", "#7a5fc0")


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bar_chart(
    days: list[str], series: list[tuple[str, list[float]]], width: int = 216, height: int = 150
) -> str:
    """Grouped bars: one group of bars per day, one bar per series (label, values by day), in a
    chart of a fixed size (a long period makes thinner bars, not a wider page)."""
    count = max(len(series), 1)
    left, bottom, top = 36, 28, 10
    slot = (width - left - 10) / max(len(days), 1)
    peak = max((v for _, values in series for v in values), default=0)
    low = min((v for _, values in series for v in values), default=0)
    low = min(low, 0)
    span = (peak - low) or 1
    plot = height - bottom - top

    def y(value: float) -> float:
        return top + (peak - value) / span * plot

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - 6}" y2="{y(0):.1f}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{y(peak) + 4:.1f}" text-anchor="end" class="tick">{_number(peak)}</text>',
    ]
    bar = slot * 0.8 / count
    every = max(1, round(40 / slot))  # a date under every bar group that has room for one
    for d, day in enumerate(days):
        x0 = left + d * slot + slot * 0.1
        for s, (label, values) in enumerate(series):
            value = values[d]
            top_y, base = sorted((y(value), y(0)))
            parts.append(
                f'<rect x="{x0 + s * bar:.1f}" y="{top_y:.1f}" width="{max(bar - 1, 0.5):.1f}" '
                f'height="{max(base - top_y, 0.5):.1f}" fill="{PALETTE[s % len(PALETTE)]}" '
                f'data-series="{escape(label)}" data-day="{day}" data-value="{_number(value)}">'
                f"<title>{escape(label)} {day}: {_number(value)}</title></rect>"
            )
        if d % every == 0:
            parts.append(
                f'<text x="{x0 + slot * 0.4:.1f}" y="{height - 10}" text-anchor="middle" class="tick">'
                f"{day[5:]}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _short(value: float) -> str:
    """A coordinate with one decimal at most, `12` for `12.0`: a path's bytes are mostly these."""
    return f"{value:.1f}".removesuffix(".0")


def bar_paths(
    days: list[str], series: list[tuple[str, list[float]]], width: int = 216, height: int = 150
) -> str:
    """The bars of `bar_chart` in about a tenth of its bytes: one path a series, each bar a stroke
    (class `s0`, `s1`... for its colour, see `SERIES_STYLE`) and no bar for a zero; no value on
    a bar, since the table beside the chart holds them. For the folded sections of a report of
    many groups, which `bar_chart`'s rects made tens of megabytes."""
    count = max(len(series), 1)
    left, bottom, top = 36, 28, 10
    slot = (width - left - 10) / max(len(days), 1)
    peak = max((v for _, values in series for v in values), default=0)
    low = min(min((v for _, values in series for v in values), default=0), 0)
    span = (peak - low) or 1
    plot = height - bottom - top

    def y(value: float) -> float:
        return top + (peak - value) / span * plot

    zero = _short(y(0))
    bar = slot * 0.8 / count
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<path class="axis" d="M{left} {zero}H{width - 6}"/>',
        f'<text x="{left - 4}" y="{y(peak) + 4:.1f}" class="tick e">{_number(peak)}</text>',
    ]
    for s, (_, values) in enumerate(series):
        strokes = "".join(
            f"M{_short(left + d * slot + slot * 0.1 + s * bar + bar / 2)} {zero}V{_short(y(value))}"
            for d, value in enumerate(values)
            if value
        )
        if strokes:
            parts.append(
                f'<path class="s{s % len(PALETTE)}" stroke-width="{_short(max(bar - 1, 0.5))}" d="{strokes}"/>'
            )
    every = max(1, round(40 / slot))
    parts.extend(
        f'<text x="{left + d * slot + slot * 0.5:.1f}" y="{height - 10}" class="tick m">{day[5:]}</text>'
        for d, day in enumerate(days)
        if d % every == 0
    )
    parts.append("</svg>")
    return "".join(parts)


# The colours of `bar_paths`' series and of the legend's keys, as classes: once in the page's
# style, not once a bar.
SERIES_STYLE = (
    "".join(
        f".s{i} {{ stroke: {colour}; fill: none; }} .key i.s{i} {{ background: {colour}; }}\n"
        for i, colour in enumerate(PALETTE)
    )
    + ".axis { stroke: #999; fill: none; } .tick.e { text-anchor: end; } .tick.m { text-anchor: middle; }\n"
)


def legend(labels: list[str]) -> str:
    """The colour key of a chart's series, as HTML."""
    return "".join(
        f'<span class="key"><i class="s{i % len(PALETTE)}"></i>{escape(label)}</span>'
        for i, label in enumerate(labels)
    )


def funnel(stages: list[tuple[str, int]], width: int = 360) -> str:
    """Horizontal bars, widest first stage, each with its label and count."""
    row, label_w = 26, 60
    height = row * max(len(stages), 1) + 4
    widest = max((count for _, count in stages), default=0) or 1
    parts = [
        f'<svg class="funnel" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    room = width - label_w - 50
    for i, (label, count) in enumerate(stages):
        w = max(count / widest * room, 1)
        yy = i * row + 2
        parts.append(
            f'<text x="{label_w - 6}" y="{yy + 16}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{yy}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{PALETTE[i % len(PALETTE)]}" data-stage="{escape(label)}" data-value="{count}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{yy + 16}">{count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
