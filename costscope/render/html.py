"""`costscope report`: one self-contained HTML page (inline CSS and SVG, no script, no network) of an HtmlReport.

Trace content is untrusted (a prompt may contain `<script>`): every piece of text goes through `html.escape`, and
a Content-Security-Policy forbids scripts and every network fetch should anything slip through. The output is a
pure, deterministic function of the report (no clock, no random ids), so it can be compared byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..htmlreport import HtmlReport, SpendOverTime, TraceHistogram
from . import svg
from .fmt import MISSING, pct, tokens, usd
from .svg import esc

MAX_COLUMN_PERIODS = 45
"""Above this many periods spend over time is drawn as stacked areas instead of columns."""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: #fff; }
main { max-width: 940px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 34px 0 6px; padding-top: 8px;
  border-top: 1px solid var(--line); } h3 { font-size: 15px; margin: 18px 0 6px; }
p.lead, p.note, .muted { color: var(--muted); } p.note { font-size: 13px; margin: 4px 0; }
nav { font-size: 13px; margin: 10px 0 0; } nav a { margin-right: 12px; color: #0969da; text-decoration: none; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(168px, 1fr)); gap: 10px; margin: 18px 0 4px; }
.kpi { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.kpi b { display: block; font-size: 20px; } .kpi span { color: var(--muted); font-size: 12px; }
figure { margin: 10px 0; } svg.chart { max-width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: var(--ink); }
svg text.tick, svg text.value { fill: var(--muted); font-size: 11px; } svg text.inbar { fill: #fff; font-size: 11px; }
svg .grid { stroke: #eaeef2; } svg .axis { stroke: #8c959f; } svg .connector { stroke: #8c959f; stroke-dasharray: 3 3; }
svg .marker { stroke: #1f2328; stroke-dasharray: 4 3; } svg text.marker-label { font-size: 11px; }
svg .edge { fill: none; stroke-width: 1.5; } svg .area { fill-opacity: .78; }
svg .mark:hover { opacity: .75; }
details { margin: 4px 0 10px; } summary { cursor: pointer; color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top;
  overflow-wrap: anywhere; }
th { background: var(--panel); font-weight: 600; } td.n, th.n { text-align: right; white-space: nowrap; }
.cards { display: grid; gap: 12px; }
.card { border: 1px solid var(--line); border-left: 4px solid #e15759; border-radius: 6px; padding: 10px 14px; }
.card h3 { margin: 0 0 4px; } .card .kind { font-size: 12px; color: var(--muted); }
.card ul { margin: 6px 0; padding-left: 20px; } pre { background: var(--panel); border: 1px solid var(--line);
  border-radius: 6px; padding: 8px 10px; overflow-x: auto; font-size: 12px; margin: 6px 0; }
footer { margin-top: 40px; font-size: 12px; color: var(--muted); }
@media print { nav, details { display: none; } h2 { break-before: auto; } figure { break-inside: avoid; } }
"""


def axis_usd(value: float) -> str:
    if value >= 1000:
        return f"${value / 1000:g}k"
    return f"${value:g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th{' class=n' if i in numeric else ''}>{esc(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{esc(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _data(table: str, label: str = "Data") -> str:
    return f"<details><summary>{esc(label)}</summary>{table}</details>"


def _section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{"".join(parts)}</section>'


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _figure(chart: str) -> str:
    return f"<figure>{chart}</figure>"


def _kpis(data: HtmlReport) -> str:
    report = data.analysis
    t, d, cache = report.totals, report.traces, report.cache
    tiles = [
        (usd(t["cost_usd"]), f"total spend ({t['priced_calls']:,} of {t['calls']:,} calls priced)"),
        (f"{d['traces']:,}", "traces"),
        (usd(d["mean_usd"]), "mean cost per trace"),
        (usd(d["p95_usd"]), "p95 cost per trace"),
        (tokens(t["input_tokens"]), f"input tokens, {pct(cache['hit_ratio'])} cache reads"),
        (tokens(t["output_tokens"]), f"output tokens ({tokens(t['reasoning_tokens'])} reasoning)"),
    ]
    if report.unpriced:
        calls = sum(u.calls for u in report.unpriced)
        tiles.append((f"{calls:,}", f"unpriced calls ({len(report.unpriced)} models), not in the total"))
    return (
        '<div class="kpis">'
        + "".join(f'<div class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for v, k in tiles)
        + "</div>"
    )


def _header(data: HtmlReport) -> str:
    inputs = data.analysis.inputs
    formats = ", ".join(f"{k}: {v}" for k, v in inputs["formats"].items())
    files = ", ".join(f["path"] for f in inputs["files"][:6]) + (" …" if len(inputs["files"]) > 6 else "")
    lead = (
        f"{len(inputs['files'])} files ({formats}), {inputs['records_read']:,} records, "
        f"{inputs['records_skipped']:,} skipped. Prices: {', '.join(data.analysis.price_sources)}."
    )
    return f'<h1>{esc(data.title)}</h1><p class="lead">{esc(lead)}</p><p class="note">{esc(files)}</p>'


def _nav(sections: list[tuple[str, str]]) -> str:
    return "<nav>" + "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in sections) + "</nav>"


# ---------------------------------------------------------------- sections


def spend_section(spend: SpendOverTime) -> str:
    if not spend.periods:
        return _section("spend", "Spend over time by model", _note("No call has a timestamp."))
    series = [
        svg.Series(name, values, svg.OTHER if name == "other models" else svg.color(i))
        for i, (name, values) in enumerate(zip(spend.models, spend.usd, strict=True))
    ]
    draw = svg.stacked_columns if len(spend.periods) <= MAX_COLUMN_PERIODS else svg.stacked_area
    title = f"Spend per {spend.period} by model (USD)"
    chart = draw("spend-over-time", title, spend.periods, series, usd, axis_usd)
    rows = [
        [period, *[usd(values[i]) for values in spend.usd], usd(sum(values[i] for values in spend.usd))]
        for i, period in enumerate(spend.periods)
    ]
    table = _table([spend.period, *spend.models, "total"], rows, range(1, len(spend.models) + 2))
    parts = [_figure(chart), _data(table)]
    if spend.undated_usd:
        parts.append(_note(f"{usd(spend.undated_usd)} of calls without a timestamp is not drawn."))
    return _section("spend", "Spend over time by model", *parts)


def _group_rows(groups: list[dict[str, Any]], key: str, total: float) -> list[list[str]]:
    return [
        [
            MISSING if g["key"][key] is None else str(g["key"][key]),
            f"{g['calls']:,}",
            tokens(g["input_tokens"]),
            tokens(g["output_tokens"]),
            usd(g["cost_usd"]),
            pct(g["cost_usd"] / total if g["cost_usd"] is not None and total else None),
        ]
        for g in groups
    ]


def _group_bars(groups: list[dict[str, Any]], key: str, empty: str) -> list[svg.Bar]:
    return [
        svg.Bar(
            empty if g["key"][key] is None else str(g["key"][key]),
            g["cost_usd"] or 0.0,
            f"{empty if g['key'][key] is None else g['key'][key]}: {usd(g['cost_usd'])}, {g['calls']:,} calls",
        )
        for g in groups
    ]


def by_section(anchor: str, title: str, chart: str, groups: list[dict[str, Any]], key: str, total: float) -> str:
    if not groups:
        return _section(anchor, title, _note("No LLM call."))
    bars = _group_bars(groups, key, f"(no {key})")
    table = _table([key, "calls", "input", "output", "cost", "share"], _group_rows(groups, key, total), range(1, 6))
    return _section(anchor, title, _figure(svg.hbar_chart(chart, title, bars, usd)), _data(table))


BUCKETS = (
    ("uncached input", "uncached_input_tokens", "cost_input_usd"),
    ("cache read", "cache_read_tokens", "cost_cache_read_usd"),
    ("cache write", "cache_write_tokens", "cost_cache_write_usd"),
    ("output", "output_tokens", "cost_output_usd"),
)


def composition_section(data: HtmlReport) -> str:
    t = data.analysis.totals

    def fmt_tokens(v: float) -> str:
        return f"{tokens(round(v))} tokens"

    rows = [
        svg.ShareRow("tokens", [(name, float(t[tok] or 0)) for name, tok, _ in BUCKETS], fmt_tokens),
        svg.ShareRow("cost", [(name, float(t[cost] or 0.0)) for name, _, cost in BUCKETS], usd),
    ]
    parts = [_figure(svg.share_bars("token-composition", "Tokens and cost by billing bucket", rows))]
    table_rows = [[name, f"{t[tok]:,}", usd(t[cost])] for name, tok, cost in BUCKETS]
    if t["cost_request_usd"]:
        table_rows.append(["per-call fees", MISSING, usd(t["cost_request_usd"])])
    parts.append(_data(_table(["bucket", "tokens", "cost"], table_rows, (1, 2))))
    composition = data.analysis.composition
    if composition is not None:
        segments = composition["segments"]
        seg_rows = [
            svg.ShareRow(
                "input tokens", [(s["kind"], float(s["tokens"])) for s in segments if s["kind"] != "output"], fmt_tokens
            ),
            svg.ShareRow("cost", [(s["kind"], float(s["cost_usd"] or 0.0)) for s in segments], usd),
        ]
        title = f"What the input is made of ({composition['calls_with_content']:,} calls with request content)"
        parts += [f"<h3>{esc(title)}</h3>", _figure(svg.share_bars("input-segments", title, seg_rows))]
        rows_ = [[s["kind"], f"{s['tokens']:,}", pct(s["share"]), usd(s["cost_usd"])] for s in segments]
        parts.append(_data(_table(["segment", "tokens", "share of input", "cost"], rows_, (1, 2, 3))))
    return _section("composition", "Token composition", *parts)


def decade_text(edge: float) -> str:
    """The label of a histogram edge that is a power of ten ($0.001, $1, $10); other edges go unlabelled."""
    k = round(math.log10(edge))
    if not math.isclose(edge, 10.0**k, rel_tol=1e-9):
        return ""
    return "$0." + "0" * (-k - 1) + "1" if k < 0 else f"${10**k:,}"


def _edge_text(value: float) -> str:
    return usd(value) if value >= 0.0001 else f"${value:.1e}"


def histogram_section(data: HtmlReport) -> str:
    h: TraceHistogram = data.histogram
    d = data.analysis.traces
    title = "Cost per trace (log scale)"
    if not h.counts and not h.zero:
        return _section("distribution", "Cost per trace", _note("No priced trace."))
    labels, counts, tips = [], [], []
    if h.zero:
        labels.append("$0")
        counts.append(h.zero)
        tips.append(f"$0: {h.zero:,} traces")
    for i, count in enumerate(h.counts):
        labels.append(decade_text(h.edges[i]))
        counts.append(count)
        tips.append(f"{_edge_text(h.edges[i])} – {_edge_text(h.edges[i + 1])}: {count:,} traces")
    offset = 1 if h.zero else 0
    markers = []
    if h.edges:
        low, bins = math.log10(h.edges[0]), len(h.edges) - 1
        span = math.log10(h.edges[-1]) - low
        for name in ("p50", "mean", "p95"):
            value = d[f"{name}_usd"]
            if value is not None and value > 0:
                markers.append(svg.Marker(f"{name} {usd(value)}", offset + (math.log10(value) - low) / span * bins))
    chart = svg.histogram("cost-per-trace", title, labels, counts, tips, markers)
    note = (
        f"{d['priced_traces']:,} priced traces of {d['traces']:,}: mean {usd(d['mean_usd'])}, p50 {usd(d['p50_usd'])}, "
        f"p95 {usd(d['p95_usd'])}, max {usd(d['max_usd'])}. Bins are quarter-decades; a trace with no priced call "
        "has no known cost and is not drawn."
    )
    return _section("distribution", "Cost per trace", _figure(chart), _note(note))


def top_traces_section(data: HtmlReport) -> str:
    traces = data.analysis.top_traces
    if not traces:
        return _section("top-traces", "Costliest traces", _note("No trace."))
    bars = [
        svg.Bar(
            t["trace_id"] or MISSING,
            t["cost_usd"] or 0.0,
            f"{t['trace_id']}: {usd(t['cost_usd'])}, {t['calls']} calls, agents {', '.join(t['agents']) or MISSING}",
        )
        for t in traces
    ]
    rows = [
        [
            t["trace_id"] or MISSING,
            ", ".join(t["agents"]) or MISSING,
            t["tenant"] or MISSING,
            t["start"] or MISSING,
            f"{t['calls']:,}",
            tokens(t["input_tokens"]),
            tokens(t["output_tokens"]),
            usd(t["cost_usd"]),
        ]
        for t in traces
    ]
    table = _table(["trace", "agents", "tenant", "start", "calls", "input", "output", "cost"], rows, (4, 5, 6, 7))
    title = f"The {len(traces)} costliest traces"
    return _section("top-traces", "Costliest traces", _figure(svg.hbar_chart("top-traces", title, bars, usd)), table)


def _money(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def finding_card(finding: dict[str, Any]) -> str:
    at_stake = _money(finding.get("usd_at_stake"))
    evidence = [str(e) for e in finding.get("evidence") or []]
    policy = finding.get("policy_yaml")
    parts = [
        f'<article class="card" data-finding="{esc(finding.get("kind", ""))}">',
        f'<div class="kind">{esc(finding.get("kind", ""))}</div>',
        f"<h3>{esc(finding.get('title', ''))}</h3>",
        f"<p><b>{esc(usd(at_stake))}</b> at stake</p>",
    ]
    if evidence:
        parts.append("<ul>" + "".join(f"<li>{esc(e)}</li>" for e in evidence) + "</ul>")
    if policy:
        parts.append(f'<p class="note">Policy that would fix it:</p><pre><code>{esc(policy)}</code></pre>')
    parts.append("</article>")
    return "".join(parts)


def findings_section(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return _section("findings", "Findings", _note("No cost leak found."))
    parts = []
    bars = [
        svg.Bar(
            str(f.get("title", "")),
            _money(f.get("usd_at_stake")) or 0.0,
            f"{f.get('title', '')}: {usd(_money(f.get('usd_at_stake')))} at stake",
        )
        for f in findings
    ]
    if any(b.value > 0 for b in bars):
        parts.append(_figure(svg.hbar_chart("findings", "USD at stake per finding", bars, usd)))
    parts.append('<div class="cards">' + "".join(finding_card(f) for f in findings) + "</div>")
    return _section("findings", "Findings", *parts)


def waterfall_steps(scenario: dict[str, Any]) -> list[svg.Step]:
    """Recorded cost, each technique's saving alone, their interaction in the joint replay, the projected cost.

    The techniques act on the same tokens, so their savings alone do not add up to the joint saving: the
    difference is drawn as `interaction`, which makes the bars end exactly at the joint projection."""
    runs = scenario["runs"]
    joint = runs[-1]
    alone = [r for r in runs if r["technique"] != scenario["joint"]] or ([joint] if joint["policies"] else [])
    steps = [svg.Step("recorded", joint["cost_before_usd"], total=True)]
    steps += [svg.Step(str(r["technique"]), -r["saved_usd"]) for r in alone]
    interaction = joint["saved_usd"] - sum(r["saved_usd"] for r in alone)
    if abs(interaction) > 1e-9:
        steps.append(svg.Step("interaction", -interaction))
    steps.append(svg.Step("projected", joint["cost_after_usd"], total=True))
    return steps


def savings_section(scenarios: list[dict[str, Any]]) -> str:
    parts = []
    for scenario in scenarios:
        joint = scenario["runs"][-1]
        label = f"{scenario['name']} ({', '.join(scenario['policies']) or 'no policy enabled'})"
        title = f"Savings of {label}"
        chart = svg.waterfall("savings-waterfall", title, waterfall_steps(scenario), usd, axis_usd)
        share = MISSING if joint["saved_pct"] is None else f"{joint['saved_pct']:.1f}%"
        saved = f"{usd(joint['saved_usd'])} ({share})"
        parts += [
            f"<h3>{esc(label)}</h3>",
            _figure(chart),
            _note(
                f"Recorded {usd(joint['cost_before_usd'])} → projected {usd(joint['cost_after_usd'])}: saves {saved}."
                + (
                    " Each technique is replayed alone and jointly; the interaction bar is the joint saving minus "
                    "the sum of their savings alone (they act on the same tokens)."
                    if len(scenario["runs"]) > 1
                    else ""
                )
            ),
        ]
        rows = [
            [str(r["technique"]), usd(r["cost_before_usd"]), usd(r["cost_after_usd"]), usd(r["saved_usd"])]
            for r in scenario["runs"]
        ]
        parts.append(_data(_table(["run", "before", "after", "saved"], rows, (1, 2, 3))))
        if scenario["assumptions"]:
            items = "".join(f"<li>{esc(a)}</li>" for a in scenario["assumptions"])
            parts.append(f"<details><summary>Assumptions</summary><ul>{items}</ul></details>")
    return _section("savings", "What the policies would save", *parts)


def caveats_section(data: HtmlReport) -> str:
    report = data.analysis
    parts = []
    if report.unpriced:
        rows = [
            [u.model or MISSING, u.provider or MISSING, f"{u.calls:,}", tokens(u.input_tokens), u.hint or ""]
            for u in report.unpriced
        ]
        parts += [
            "<h3>Unpriced models (not in the totals)</h3>",
            _table(["model", "provider", "calls", "input", "hint"], rows, (2, 3)),
        ]
    if report.warnings:
        parts += ["<h3>Warnings</h3>", "<ul>" + "".join(f"<li>{esc(w)}</li>" for w in report.warnings) + "</ul>"]
    return _section("caveats", "Caveats", *parts) if parts else ""


def render_html(data: HtmlReport) -> str:
    report = data.analysis
    total = report.totals["cost_usd"] or 0.0
    sections = [
        ("spend", "Over time", spend_section(data.spend)),
        ("models", "Models", by_section("models", "Spend by model", "spend-by-model", report.groups, "model", total)),
        ("agents", "Agents", by_section("agents", "Spend by agent", "spend-by-agent", data.agents, "agent", total)),
        ("composition", "Composition", composition_section(data)),
        ("distribution", "Per trace", histogram_section(data)),
        ("top-traces", "Top traces", top_traces_section(data)),
    ]
    if data.findings is not None:
        sections.append(("findings", "Findings", findings_section(data.findings)))
    if data.scenarios:
        sections.append(("savings", "Savings", savings_section(data.scenarios)))
    caveats = caveats_section(data)
    if caveats:
        sections.append(("caveats", "Caveats", caveats))
    body = "".join(html for _, _, html in sections)
    nav = _nav([(anchor, label) for anchor, label, _ in sections])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="costscope {esc(__version__)}">'
        f"<title>{esc(data.title)}</title><style>{CSS}</style></head>"
        f"<body><main>{_header(data)}{nav}{_kpis(data)}{body}"
        f"<footer>costscope {esc(__version__)} · prices: {esc(', '.join(report.price_sources))}</footer>"
        "</main></body></html>\n"
    )
