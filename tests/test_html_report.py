"""`costscope report`: the data behind the charts (hand-computed), the SVG primitives, escaping of untrusted trace
text, the findings cards, the savings waterfall and the command."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from goldens import assert_golden
from reportkit import call, empty_policy, priced_steps, write_inputs
from typer.testing import CliRunner

from costscope import htmlreport
from costscope.cli import app
from costscope.findings import find
from costscope.render import svg
from costscope.render.html import decade_text, render_html, waterfall_steps

runner = CliRunner()
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def charts(page: str) -> dict[str, ET.Element]:
    """Every chart of the page, parsed as XML (so each must be well-formed), by its data-chart name."""
    found = {}
    for chunk in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        root = ET.fromstring(chunk)
        found[root.attrib["data-chart"]] = root
    return found


def marks(chart: ET.Element) -> list[ET.Element]:
    return [e for e in chart.iter() if e.attrib.get("class", "").startswith("mark")]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def tags(page: str) -> list[str]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


# ---------------------------------------------------------------- data


def test_spend_over_time_fills_empty_days_and_sums_per_model(tmp_path: Path) -> None:
    data = htmlreport.build(priced_steps(tmp_path))
    spend = data.spend
    assert spend.period == "day"
    assert spend.periods == ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05"]
    assert spend.models == ["m-a", "m-b"]  # equal totals ($0.006): by name
    assert spend.usd[0] == pytest.approx([0.001, 0.002, 0.001, 0.0, 0.002])
    assert spend.usd[1] == pytest.approx([0.0, 0.0, 0.002, 0.0, 0.004])
    assert spend.undated_usd == 0.0
    assert [(g["key"]["agent"], g["cost_usd"]) for g in data.agents] == [
        ("coder", pytest.approx(0.009)),
        ("planner", pytest.approx(0.003)),
    ]


def test_models_beyond_the_limit_are_summed_as_other(tmp_path: Path) -> None:
    calls = [call(f"t{i}", 1, f"m-{'a' if i % 2 else 'b'}", 1000 * (i + 1), n=i) for i in range(4)]
    calls.append(call("t9", 2, "unknown-model", 5000))
    steps = priced_steps(tmp_path, calls)
    spend = htmlreport.spend_over_time(htmlreport.attr.llm_calls(steps.table), max_models=2)
    # m-b: 1000 + 3000 tokens = $0.004; m-a: 2000 + 4000 = $0.006; the unpriced model adds $0 to "other"
    assert spend.models == ["m-a", "other models"]
    assert spend.usd[0] == pytest.approx([0.006, 0.0]) and spend.usd[1] == pytest.approx([0.004, 0.0])


@pytest.mark.parametrize(("days", "period"), [(1, "day"), (62, "day"), (63, "week"), (420, "week"), (421, "month")])
def test_period_is_the_finest_that_stays_readable(days: int, period: str) -> None:
    first = date(2026, 1, 1)
    assert htmlreport.choose_period(first, date.fromordinal(first.toordinal() + days - 1)) == period


def test_period_labels_match_the_group_keys() -> None:
    weeks = htmlreport.period_labels(date(2026, 12, 27), date(2027, 1, 5), "week")
    assert weeks == ["2026-W52", "2026-W53", "2027-W01"]  # ISO 2026 has 53 weeks
    assert htmlreport.period_labels(date(2026, 1, 30), date(2026, 3, 1), "month") == ["2026-01", "2026-02", "2026-03"]


def test_trace_histogram_uses_quarter_decade_bins() -> None:
    h = htmlreport.trace_histogram(np.array([0.0, 0.001, 0.0015, 0.01, 0.5]))
    # edges 10^(-12/4) .. 10^(-1/4): 11 bins; 0.001 and 0.0015 < 10^-2.75 in bin 0, 0.01 = 10^(-8/4) opens bin 4,
    # 0.5 = 10^-0.30 in the last bin; the free trace is counted apart
    assert len(h.edges) == 12 and h.edges[0] == pytest.approx(0.001) and h.edges[4] == 0.01
    assert h.counts == [2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]
    assert h.zero == 1
    assert htmlreport.trace_histogram(np.array([0.02, 0.02])).counts == [2]


# ---------------------------------------------------------------- primitives


def test_nice_ticks() -> None:
    assert svg.nice_ticks(0.46) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert svg.nice_ticks(100) == [0, 20, 40, 60, 80, 100]
    assert svg.nice_ticks(0.011) == pytest.approx([0, 0.0025, 0.005, 0.0075, 0.01, 0.0125])
    assert svg.nice_ticks(0) == [0.0, 1.0]


def test_bars_are_proportional_and_text_is_escaped() -> None:
    chart = ET.fromstring(svg.hbar_chart("c", "t", [svg.Bar("a<b", 2.0), svg.Bar("c&d", 1.0)], str, width=500))
    rects = marks(chart)
    widths = [float(r.attrib["width"]) for r in rects]
    assert widths[0] == pytest.approx(2 * widths[1], abs=0.1)
    texts = ["".join(t.itertext()) for t in chart.iter(f"{SVG}text")]
    assert "a<b" in texts and "c&d" in texts


def test_stacked_columns_stack_to_the_total() -> None:
    series = [svg.Series("x", [1.0, 0.0], "#000"), svg.Series("y", [3.0, 2.0], "#111")]
    chart = ET.fromstring(svg.stacked_columns("c", "t", ["d1", "d2"], series, str, str, height=300))
    heights = [float(r.attrib["height"]) for r in marks(chart)]
    assert len(heights) == 3  # the zero value draws nothing
    assert heights[0] * 3 == pytest.approx(heights[1], abs=0.2)
    assert heights[2] == pytest.approx(2 * heights[0], abs=0.2)


def test_share_bars_fill_the_width() -> None:
    rows = [svg.ShareRow("tokens", [("a", 1.0), ("b", 3.0)], str)]
    chart = ET.fromstring(svg.share_bars("c", "t", rows, width=412))
    widths = [float(r.attrib["width"]) for r in marks(chart)]
    left = 12 + len("tokens") * svg.CHAR_PX
    assert sum(widths) == pytest.approx(412 - 12 - left, abs=0.2)
    assert widths[1] == pytest.approx(3 * widths[0], abs=0.2)


def test_waterfall_steps_add_up_to_the_joint_projection() -> None:
    scenario: dict[str, Any] = {
        "joint": "joint",
        "runs": [
            {"technique": "truncation", "policies": ["truncation"], "saved_usd": 3.0, "cost_before_usd": 10.0,
             "cost_after_usd": 7.0},
            {"technique": "routing", "policies": ["routing"], "saved_usd": 2.0, "cost_before_usd": 10.0,
             "cost_after_usd": 8.0},
            {"technique": "joint", "policies": ["truncation", "routing"], "saved_usd": 4.0, "cost_before_usd": 10.0,
             "cost_after_usd": 6.0},
        ],
    }  # fmt: skip
    steps = waterfall_steps(scenario)
    assert [(s.label, s.value, s.total) for s in steps] == [
        ("recorded", 10.0, True),
        ("truncation", -3.0, False),
        ("routing", -2.0, False),
        ("interaction", 1.0, False),
        ("projected", 6.0, True),
    ]
    chart = ET.fromstring(svg.waterfall("w", "t", steps, str, str))
    rects = marks(chart)
    tops = [float(r.attrib["y"]) for r in rects]
    bottoms = [float(r.attrib["y"]) + float(r.attrib["height"]) for r in rects]
    assert tops[1] == pytest.approx(tops[0], abs=0.2)  # the first saving hangs from the recorded total
    assert tops[2] == pytest.approx(bottoms[1], abs=0.2)  # the next one from where it ended
    assert bottoms[3] == pytest.approx(bottoms[2], abs=0.2)  # the interaction climbs back from where routing ended
    assert tops[4] == pytest.approx(tops[3], abs=0.2)  # the projection is where the interaction ends
    assert bottoms[3] - tops[3] == pytest.approx((bottoms[0] - tops[0]) / 10, abs=0.2)  # $1 of $10
    assert [r.attrib["fill"] for r in rects] == [svg.TOTAL, svg.GAIN, svg.GAIN, svg.LOSS, svg.TOTAL]


def test_decade_labels() -> None:
    assert [decade_text(10.0**k) for k in (-4, -1, 0, 2)] == ["$0.0001", "$0.1", "$1", "$100"]
    assert decade_text(10 ** (-0.25)) == ""


# ---------------------------------------------------------------- the page


FINDINGS = [
    {
        "kind": "uncached_prefix",
        "title": f"System prompt {HOSTILE} re-sent uncached",
        "usd_at_stake": 1.25,
        "evidence": ["t3: 4 calls re-send 12k tokens", HOSTILE],
        "policy_yaml": "version: 1\nprompt_cache:\n  providers: [anthropic]  # <b>\n",
    },
    {"kind": "frontier_overuse", "title": "Classifier on a frontier model", "usd_at_stake": 0.5, "evidence": []},
]


def test_page_has_every_chart_and_is_well_formed(tmp_path: Path) -> None:
    page = render_html(htmlreport.build(priced_steps(tmp_path), findings=FINDINGS))
    found = charts(page)
    assert list(found) == [
        "spend-over-time",
        "spend-by-model",
        "spend-by-agent",
        "token-composition",
        "cost-per-trace",
        "top-traces",
        "findings",
    ]
    assert all(marks(chart) for chart in found.values())
    assert len(marks(found["spend-over-time"])) == 6  # m-a on 4 days, m-b on 2
    assert len(marks(found["top-traces"])) == 4
    assert set(tags(page)) <= {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "p", "nav",
                               "a", "div", "b", "span", "section", "figure", "svg", "rect", "text", "line", "details",
                               "summary", "table", "thead", "tbody", "tr", "th", "td", "article", "ul", "li", "pre",
                               "code", "footer"}  # fmt: skip
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_untrusted_trace_text_is_escaped(tmp_path: Path) -> None:
    calls = [call(HOSTILE, 1, "m-a", 1000, agent=HOSTILE), call("t2", 2, f"m-a{HOSTILE}", 1000, n=1)]
    page = render_html(htmlreport.build(priced_steps(tmp_path, calls), findings=FINDINGS, title=HOSTILE))
    assert "script" not in tags(page) and "img" not in tags(page)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    charts(page)  # still well-formed XML


def test_findings_cards(tmp_path: Path) -> None:
    steps = priced_steps(tmp_path)
    page = render_html(htmlreport.build(steps, findings=FINDINGS))
    assert page.count('<article class="card"') == 2
    assert 'data-finding="uncached_prefix"' in page and "<b>$1.250</b> at stake" in page
    assert "providers: [anthropic]  # &lt;b&gt;" in page
    bars = marks(charts(page)["findings"])
    assert float(bars[0].attrib["width"]) == pytest.approx(2.5 * float(bars[1].attrib["width"]), abs=0.2)
    found = [f.to_dict() for f in find(steps)]  # by default, the page shows the leaks found in the steps
    assert render_html(htmlreport.build(steps)) == render_html(htmlreport.build(steps, findings=found))
    assert "No cost leak found." in render_html(htmlreport.build(steps, findings=[]))


def test_identity_policy_waterfall(tmp_path: Path) -> None:
    data = htmlreport.build(priced_steps(tmp_path), [empty_policy(tmp_path)])
    assert data.scenarios is not None and data.scenarios[0]["name"] == "identity"
    page = render_html(data)
    waterfall = charts(page)["savings-waterfall"]
    heights = [float(r.attrib["height"]) for r in marks(waterfall)]
    assert len(heights) == 2 and heights[0] == heights[1]  # recorded = projected
    assert "saves $0.0000 (0.0%)" in page


def test_page_is_deterministic_golden(tmp_path: Path) -> None:
    steps = priced_steps(tmp_path)
    page = render_html(htmlreport.build(steps, [empty_policy(tmp_path)], findings=FINDINGS))
    page = page.replace(str(tmp_path), "TMP")
    assert page == render_html(htmlreport.build(steps, [empty_policy(tmp_path)], findings=FINDINGS)).replace(
        str(tmp_path), "TMP"
    )
    assert_golden("report_small.html", page)


def test_sample_traces_report_has_all_charts() -> None:
    root = Path(__file__).parent.parent / "sample_traces"
    from costscope import api

    steps = api.load_priced_steps([str(root)], api.AnalyzeOptions(prices=str(root / "prices.yaml")))
    page = render_html(htmlreport.build(steps, findings=FINDINGS))
    assert set(charts(page)) == {
        "spend-over-time", "spend-by-model", "spend-by-agent", "token-composition", "input-segments",
        "cost-per-trace", "top-traces", "findings",
    }  # fmt: skip
    assert len(page.encode()) < 200_000


# ---------------------------------------------------------------- the command


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "80", "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


def test_cli_writes_the_page(tmp_path: Path) -> None:
    traces, prices = write_inputs(tmp_path)
    out_file = tmp_path / "r.html"
    code, out, err = run("report", traces, "--prices", prices, "-o", str(out_file), "-p", empty_policy(tmp_path))
    assert code == 0, err
    assert out == ""
    assert err.startswith(f"Wrote {out_file}: 7 charts, ")
    page = out_file.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "savings-waterfall" in page
    code, out, _ = run("report", traces, "--prices", prices, "-o", "-", "--top", "2")
    assert code == 0 and out.startswith("<!DOCTYPE html>")
    assert len(marks(charts(out)["top-traces"])) == 2


def test_cli_errors_exit_2(tmp_path: Path) -> None:
    traces, _ = write_inputs(tmp_path)
    code, _, err = run("report", traces, "-o", str(tmp_path / "missing-dir" / "r.html"))
    assert code == 2 and err.startswith("Error: cannot write")
    code, _, err = run("report", traces, "-o", str(tmp_path / "r.html"), "-p", str(tmp_path / "nope.yaml"))
    assert code == 2 and "Traceback" not in err
