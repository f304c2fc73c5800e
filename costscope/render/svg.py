"""Chart primitives as hand-written inline SVG: bars, stacked columns, stacked areas, 100% share bars, histograms
and waterfalls.

Output is deterministic (coordinates rounded to 0.1 px, no ids from counters or clocks) and every piece of text is
escaped, so charts of untrusted trace content are safe to inline in HTML. Each chart is one `<svg data-chart=NAME>`;
hovering a mark shows its figure (an SVG `<title>`), which needs no JavaScript.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
OTHER = "#bab0ac"
GAIN = "#59a14f"
LOSS = "#e15759"
TOTAL = "#4e79a7"
WIDTH = 880
CHAR_PX = 6.6
"""Approximate width of one character of the 12 px label font, for laying out labels without measuring them."""

Fmt = Callable[[float], str]


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def num(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros, never `-0`."""
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 to at least `maximum`: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if not maximum > 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    ticks = [0.0]
    while ticks[-1] < maximum * (1 - 1e-9):
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _open(chart: str, title: str, width: float, height: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{esc(chart)}" '
        f'viewBox="0 0 {num(width)} {num(height)}" width="{num(width)}" height="{num(height)}" role="img" '
        f'aria-label="{esc(title)}"><title>{esc(title)}</title>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "", full: str | None = None) -> str:
    attrs = f' class="{cls}"' if cls else ""
    tip = f"<title>{esc(full)}</title>" if full is not None and full != text else ""
    return f'<text x="{num(x)}" y="{num(y)}" text-anchor="{anchor}"{attrs}>{tip}{esc(text)}</text>'


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str, cls: str = "mark") -> str:
    return (
        f'<rect class="{cls}" x="{num(x)}" y="{num(y)}" width="{num(max(w, 0.0))}" height="{num(max(h, 0.0))}" '
        f'fill="{fill}"><title>{esc(tip)}</title></rect>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, cls: str) -> str:
    return f'<line class="{cls}" x1="{num(x1)}" y1="{num(y1)}" x2="{num(x2)}" y2="{num(y2)}"/>'


def legend(items: Sequence[tuple[str, str]], x: float, y: float, width: float) -> tuple[str, float]:
    """Swatches and names wrapped into rows within `width`; returns the SVG and the height it takes."""
    parts, cx, cy = [], x, y
    for name, fill in items:
        label = clip(name, 32)
        w = 18 + len(label) * CHAR_PX + 14
        if cx > x and cx + w > x + width:
            cx, cy = x, cy + 18
        parts.append(f'<rect x="{num(cx)}" y="{num(cy)}" width="12" height="12" fill="{fill}"/>')
        parts.append(_text(cx + 17, cy + 10.5, label, full=name))
        cx += w
    return "".join(parts), (cy - y) + 18 if items else 0.0


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    tip: str = ""
    fill: str | None = None


def hbar_chart(chart: str, title: str, bars: Sequence[Bar], fmt: Fmt, width: float = WIDTH) -> str:
    """Horizontal bars, one per row, longest scale first as given; the value is printed after each bar."""
    label_chars = min(max((len(b.label) for b in bars), default=4), 34)
    left = 12 + label_chars * CHAR_PX
    right, row, top = 90.0, 24.0, 8.0
    height = top + row * max(len(bars), 1) + 8
    scale = (width - left - right) / max((b.value for b in bars), default=0.0) if any(b.value > 0 for b in bars) else 0
    out = [_open(chart, title, width, height)]
    for i, b in enumerate(bars):
        y = top + i * row
        w = max(b.value, 0.0) * scale
        out.append(_text(left - 8, y + 15, clip(b.label, label_chars), "end", full=b.label))
        out.append(_rect(left, y + 3, w, row - 6, b.fill or color(0), b.tip or f"{b.label}: {fmt(b.value)}"))
        out.append(_text(left + w + 6, y + 15, fmt(b.value), cls="value"))
    out.append(_line(left, top, left, top + row * max(len(bars), 1), "axis"))
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    fill: str


def _y_axis(ticks: list[float], left: float, right: float, y_of: Callable[[float], float], fmt: Fmt) -> list[str]:
    out = []
    for t in ticks:
        y = y_of(t)
        out.append(_line(left, y, right, y, "grid"))
        out.append(_text(left - 6, y + 4, fmt(t), "end", cls="tick"))
    return out


def _x_labels(categories: Sequence[str], x_of: Callable[[int], float], y: float, max_labels: int) -> list[str]:
    every = max(1, math.ceil(len(categories) / max_labels))
    return [_text(x_of(i), y, c, "middle", cls="tick") for i, c in enumerate(categories) if i % every == 0]


def _time_frame(
    chart: str, title: str, categories: Sequence[str], series: Sequence[Series], axis: Fmt, width: float, height: float
) -> tuple[list[str], float, float, float, Callable[[float], float], float]:
    """The shared frame of charts over time: legend, y grid; returns parts, left, right, plot bottom, y_of, top."""
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0.0))
    left, right = 64.0, width - 12
    legend_svg, legend_h = legend([(s.name, s.fill) for s in series], left, 6, right - left)
    top, bottom = 14 + legend_h, height - 26

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * v / ticks[-1]

    parts = [_open(chart, title, width, height), legend_svg, *_y_axis(ticks, left, right, y_of, axis)]
    return parts, left, right, bottom, y_of, top


def stacked_columns(
    chart: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Fmt,
    axis: Fmt,
    width: float = WIDTH,
    height: float = 300,
) -> str:
    """One column per category (a period), stacked by series in the order given (first at the bottom)."""
    parts, left, right, bottom, y_of, _ = _time_frame(chart, title, categories, series, axis, width, height)
    slot = (right - left) / max(len(categories), 1)
    bar = max(slot * 0.8, 1.0)
    for i, category in enumerate(categories):
        base = 0.0
        x = left + i * slot + (slot - bar) / 2
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            y1, y0 = y_of(base + value), y_of(base)
            parts.append(_rect(x, y1, bar, y0 - y1, s.fill, f"{category} · {s.name}: {fmt(value)}"))
            base += value
    parts += _x_labels(categories, lambda i: left + (i + 0.5) * slot, bottom + 16, int((right - left) // 64))
    parts += [_line(left, bottom, right, bottom, "axis"), "</svg>"]
    return "".join(parts)


def stacked_area(
    chart: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Fmt,
    axis: Fmt,
    width: float = WIDTH,
    height: float = 300,
) -> str:
    """Stacked areas over evenly spaced categories (periods), first series at the bottom, each outlined by a line."""
    parts, left, right, bottom, y_of, _ = _time_frame(chart, title, categories, series, axis, width, height)
    n = len(categories)
    step = (right - left) / max(n - 1, 1)

    def x_of(i: int) -> float:
        return left + i * step if n > 1 else (left + right) / 2

    base = [0.0] * n
    for s in series:
        upper = [base[i] + max(s.values[i], 0.0) for i in range(n)]
        top_pts = [f"{num(x_of(i))},{num(y_of(upper[i]))}" for i in range(n)]
        low_pts = [f"{num(x_of(i))},{num(y_of(base[i]))}" for i in reversed(range(n))]
        total = sum(max(v, 0.0) for v in s.values)
        parts.append(
            f'<polygon class="mark area" points="{" ".join(top_pts + low_pts)}" fill="{s.fill}">'
            f"<title>{esc(s.name)}: {esc(fmt(total))} in all</title></polygon>"
        )
        parts.append(f'<polyline class="edge" points="{" ".join(top_pts)}" stroke="{s.fill}"/>')
        base = upper
    parts += _x_labels(categories, x_of, bottom + 16, int((right - left) // 64))
    parts += [_line(left, bottom, right, bottom, "axis"), "</svg>"]
    return "".join(parts)


@dataclass(frozen=True)
class ShareRow:
    label: str
    parts: Sequence[tuple[str, float]]
    """(name, amount) in drawing order; each is shown as its share of the row's total."""
    fmt: Fmt


def share_bars(chart: str, title: str, rows: Sequence[ShareRow], width: float = WIDTH) -> str:
    """One 100% bar per row (e.g. tokens, cost), split into named parts that share colours across rows."""
    names = list(dict.fromkeys(name for r in rows for name, _ in r.parts))
    fills = {name: color(i) for i, name in enumerate(names)}
    label_chars = min(max((len(r.label) for r in rows), default=4), 24)
    left, right = 12 + label_chars * CHAR_PX, width - 12
    legend_svg, legend_h = legend([(n, fills[n]) for n in names], left, 6, right - left)
    top, row = 14 + legend_h, 34.0
    height = top + row * len(rows) + 6
    out = [_open(chart, title, width, height), legend_svg]
    for i, r in enumerate(rows):
        y = top + i * row
        total = sum(max(v, 0.0) for _, v in r.parts)
        out.append(_text(left - 8, y + 18, clip(r.label, label_chars), "end", full=r.label))
        x = left
        for name, value in r.parts:
            if value <= 0 or total <= 0:
                continue
            w = (right - left) * value / total
            share = f"{value / total * 100:.1f}%"
            out.append(_rect(x, y + 4, w, row - 8, fills[name], f"{r.label} · {name}: {r.fmt(value)} ({share})"))
            if w >= 44:
                out.append(_text(x + w / 2, y + 21, share, "middle", cls="inbar"))
            x += w
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Marker:
    label: str
    position: float
    """Where on the x axis, in bin units (0 = left edge of the first bin)."""


def histogram(
    chart: str,
    title: str,
    labels: Sequence[str],
    counts: Sequence[int],
    tips: Sequence[str],
    markers: Sequence[Marker] = (),
    width: float = WIDTH,
    height: float = 280,
) -> str:
    """Adjacent columns of counts; `labels` name each bin's left edge (empty: unlabelled); markers are dashed
    vertical lines."""
    ticks = nice_ticks(float(max(counts, default=0)), 4)
    left, right, top, bottom = 48.0, width - 12, 22.0, height - 30
    slot = (right - left) / max(len(counts), 1)

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * v / ticks[-1]

    out = [_open(chart, title, width, height), *_y_axis(ticks, left, right, y_of, lambda v: f"{v:g}")]
    for i, (count, tip) in enumerate(zip(counts, tips, strict=True)):
        if count > 0:
            out.append(_rect(left + i * slot + 0.5, y_of(count), slot - 1, bottom - y_of(count), color(0), tip))
    out += [_text(left + i * slot, bottom + 16, label, "middle", cls="tick") for i, label in enumerate(labels) if label]
    for j, m in enumerate(markers):
        x = left + m.position * slot
        out.append(_line(x, top - 4, x, bottom, "marker"))
        out.append(_text(x + 4, top + 6 + 13 * j, m.label, cls="marker-label"))
    out += [_line(left, bottom, right, bottom, "axis"), "</svg>"]
    return "".join(out)


@dataclass(frozen=True)
class Step:
    label: str
    value: float
    """A total's level, or a change (negative: a saving)."""
    total: bool = False


def waterfall(chart: str, title: str, steps: Sequence[Step], fmt: Fmt, axis: Fmt, width: float = WIDTH) -> str:
    """Totals as full columns; changes float from the running level (savings down in green, increases in red)."""
    level, spans = 0.0, []
    for s in steps:
        if s.total:
            spans.append((0.0, s.value))
            level = s.value
        else:
            spans.append((level, level + s.value))
            level += s.value
    ticks = nice_ticks(max((max(a, b) for a, b in spans), default=0.0))
    height, left, right, top = 300.0, 64.0, width - 12, 16.0
    bottom = height - 44
    slot = (right - left) / max(len(steps), 1)
    bar = min(slot * 0.66, 120.0)

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * v / ticks[-1]

    out = [_open(chart, title, width, height), *_y_axis(ticks, left, right, y_of, axis)]
    previous: tuple[float, float] | None = None
    for i, (s, (a, b)) in enumerate(zip(steps, spans, strict=True)):
        x = left + i * slot + (slot - bar) / 2
        fill = TOTAL if s.total else (GAIN if s.value <= 0 else LOSS)
        low, high = min(a, b), max(a, b)
        shown = f"{fmt(s.value)}" if s.total else ("−" if s.value < 0 else "+") + fmt(abs(s.value))
        out.append(_rect(x, y_of(high), bar, max(y_of(low) - y_of(high), 1.0), fill, f"{s.label}: {shown}"))
        out.append(_text(x + bar / 2, y_of(high) - 5, shown, "middle", cls="value"))
        out.append(_text(x + bar / 2, bottom + 16, clip(s.label, int(slot // CHAR_PX)), "middle", full=s.label))
        if previous is not None:
            out.append(_line(previous[0], y_of(previous[1]), x, y_of(previous[1]), "connector"))
        previous = (x + bar, b)
    out += [_line(left, bottom, right, bottom, "axis"), "</svg>"]
    return "".join(out)
